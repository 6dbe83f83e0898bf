"""Request bodies of entitlements and the platform's entitlement price."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TOKEN = r"^[A-Za-z0-9._:*+-]+$"
DECIMAL = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"


class EntitlementIn(BaseModel):
    """No price field: the platform's price applies (a body naming one is refused)."""

    model_config = ConfigDict(extra="forbid")
    tenant_id: str = Field(max_length=72, pattern=TOKEN)
    units: str = Field(pattern=DECIMAL, description="compute-unit hours, a decimal string")
    pay_from: Literal["wallet", "programme"] = Field(
        default="wallet", description="the grantee's wallet, or a voucher programme's fund")
    programme_id: str | None = Field(default=None, max_length=40, pattern=TOKEN)
    valid_until: datetime | None = None


class EntitlementPriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fen_per_unit_hour: str = Field(pattern=r"^[0-9]{1,8}(\.[0-9]{1,4})?$",
                                   description="fen per compute-unit hour, a decimal string")
