"""Request and response bodies of API keys and the audit log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

TOKEN = r"^[A-Za-z0-9._:*+-]+$"


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str | None = Field(default=None, max_length=72, pattern=TOKEN,
                                  description="operators: another tenant's; default your own")
    name: str = Field(default="", max_length=120, pattern=r"^[^\x00-\x1f\x7f]*$")
    scopes: list[str] | None = Field(default=None, min_length=1, max_length=4,
                                     description="read, submit, spend, admin; default: those "
                                     "of the key making it")
    expires_at: datetime | None = Field(default=None, description="optional, with offset")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_s: int = Field(default=0, ge=0, le=7 * 86_400,
                         description="the old key keeps working this long (default: stops now)")


class KeyOut(BaseModel):
    key_id: str
    tenant_id: str
    name: str
    scopes: list[str]
    state: str = Field(description="active, expired or revoked")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None
    rotated_from: str | None


class NewKeyOut(KeyOut):
    api_key: str = Field(description="shown once; only its hash is stored")
