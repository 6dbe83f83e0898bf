"""Request and response bodies of wallets, the ledger, tariffs, vouchers, usage and bills.

Money is int fen; prices, quantities and shares are decimal strings (an int is accepted where
the value is whole). A JSON float is refused: binary fractions are not money.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _decimal_text(value: Any) -> Any:
    if isinstance(value, (bool, float)):  # pydantic reports a ValueError as a 422
        raise ValueError("a decimal as a string (or an integer); a JSON float is refused")  # noqa: TRY004
    return str(value) if isinstance(value, int) else value


DecimalText = Annotated[str, BeforeValidator(_decimal_text),
                        Field(max_length=40, description="a decimal as a string, e.g. \"12.5\"")]
Fen = Annotated[int, Field(ge=0, le=10**15, description="integer fen (1 CNY = 100 fen)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- ledger ----------------------------------------------------------------------------------

class AccountOut(BaseModel):
    id: str
    kind: str
    balance_fen: int = Field(description="credits posted - debits posted")
    available_fen: int = Field(description="balance less the pending debits (holds)")
    debits_posted_fen: int
    credits_posted_fen: int
    debits_pending_fen: int
    credits_pending_fen: int
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool


class TransferOut(BaseModel):
    id: str
    kind: str
    code: str
    state: str
    debit_account_id: str
    credit_account_id: str
    amount_fen: int
    pending_id: str | None
    reference: str
    timestamp: datetime
    expires_at: datetime | None


class AccountDetailOut(BaseModel):
    account: AccountOut
    transfers: list[TransferOut] = Field(description="newest first")


class LedgerCheckOut(BaseModel):
    ok: bool
    accounts: int
    transfers: int
    debits_posted_fen: int
    credits_posted_fen: int
    debits_pending_fen: int
    credits_pending_fen: int
    problems: list[str]


# -- wallets ---------------------------------------------------------------------------------

class WalletOut(BaseModel):
    tenant_id: str
    billing_mode: str = Field(description="prepaid (holds from the wallet) or postpaid")
    wallet: AccountOut
    held_fen: int = Field(description="reserved by holds for placed and running jobs")
    receivable: AccountOut | None = Field(
        default=None, description="for a provider: what the platform owes it")


class DepositIn(Strict):
    amount_fen: int = Field(ge=1, le=10**12)
    reference: str = Field(default="", max_length=128,
                           description="e.g. the bank transfer's reference")


class DepositOut(BaseModel):
    transfer: TransferOut
    wallet: WalletOut


class BillingModeIn(Strict):
    mode: str = Field(description="prepaid or postpaid")


# -- tariffs and price guidance --------------------------------------------------------------

class TierIn(Strict):
    from_quantity: DecimalText
    unit_price_fen: DecimalText


class TimeOfUseIn(Strict):
    hour_bands: list[str] = Field(min_length=24, max_length=24,
                                  description="band of each local hour 0-23 (Asia/Shanghai): "
                                              "critical-peak, peak, flat, valley")
    multipliers: dict[str, DecimalText] = Field(max_length=4)


class TariffIn(Strict):
    basis: str = Field(default="device-hour", description="device-hour or compute-unit-hour")
    base_unit_price_fen: DecimalText
    tiers: list[TierIn] = Field(default_factory=list, max_length=7)
    tier_mode: str = Field(default="graduated", description="graduated or volume")
    time_of_use: TimeOfUseIn | None = None
    spot_discount: DecimalText = "0"
    reserved_unit_price_fen: DecimalText | None = None
    minimum_charge_fen_per_job: int = Field(default=0, ge=0, le=10**10)


class TariffOut(BaseModel):
    pool_id: str
    version: int | None = Field(description="None: the pool's list price, no tariff of its own")
    source: str = Field(description="tariff or list-price")
    created_at: datetime | None
    tariff: dict[str, Any]


class FindingOut(BaseModel):
    field: str
    unit_price_fen: str
    verdict: str


class GuidanceOut(BaseModel):
    pool_id: str
    basis: str
    inputs: dict[str, str]
    defaults_used: list[str]
    costs: dict[str, str]
    low_fen: str
    high_fen: str
    tariff_id: str
    findings: list[FindingOut]
    within_band: bool


# -- vouchers --------------------------------------------------------------------------------

class ProgrammeIn(Strict):
    id: str = Field(min_length=2, max_length=40, description="a-z 0-9 -")
    name: str | None = Field(default=None, max_length=120)
    issuer: str = Field(min_length=1, max_length=120)
    budget_fen: int = Field(ge=1, le=10**13)
    coverage: DecimalText = Field(description="share of an eligible compute line, e.g. \"0.3\"")
    cap_fen_per_tenant: int = Field(ge=0, le=10**13)
    eligible_tenant_classes: list[str] = Field(min_length=1, max_length=3)
    valid_from: datetime
    valid_until: datetime
    eligible_hubs: list[str] | None = Field(default=None, max_length=8)
    eligible_provinces: list[str] | None = Field(default=None, max_length=40)
    eligible_provider_ids: list[str] | None = Field(default=None, max_length=200)
    western_extra_coverage: DecimalText = "0"


class ProgrammeOut(BaseModel):
    id: str
    name: str
    issuer: str
    budget_fen: int
    coverage: str
    western_extra_coverage: str
    cap_fen_per_tenant: int
    eligible_tenant_classes: list[str]
    eligible_hubs: list[str] | None
    eligible_provinces: list[str] | None
    eligible_provider_ids: list[str] | None
    valid_from: datetime
    valid_until: datetime
    fund_account_id: str
    remaining_fen: int
    paid_fen: int
    granted_fen: int
    vouchers: int


class GrantIn(Strict):
    tenant_id: str = Field(min_length=1, max_length=72)
    granted_fen: int = Field(ge=1, le=10**13)
    valid_until: datetime | None = None


class VoucherOut(BaseModel):
    id: str
    programme_id: str
    tenant_id: str
    granted_fen: int
    remaining_fen: int
    valid_until: datetime | None
    created_at: datetime


# -- usage records ---------------------------------------------------------------------------

class UsageRecordIn(Strict):
    id: str = Field(min_length=1, max_length=72, description="the provider's record id")
    lease_id: str = Field(min_length=1, max_length=72)
    start: datetime
    end: datetime
    device_count: int | None = Field(default=None, ge=1, le=1_000_000,
                                     description="default: the lease's devices")
    measured_energy_wh: int | None = Field(default=None, ge=0, le=10**13)


class ChargeOut(BaseModel):
    usage_record_id: str
    period: str
    tariff_id: str
    amount_fen: int
    discount_fen: int
    payable_fen: int
    collected_fen: int
    unpaid_fen: int
    fee_fen: int
    provider_fen: int


class UsageIngestOut(BaseModel):
    id: str
    outcome: str = Field(description="accepted or duplicate")
    lease_id: str
    job_id: str
    charge: ChargeOut | None
