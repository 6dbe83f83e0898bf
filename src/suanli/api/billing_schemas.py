"""Request and response bodies of wallets, the ledger, tariffs, vouchers, usage and bills.

Money is int fen; prices, quantities and shares are decimal strings (an int is accepted where
the value is whole). A JSON float is refused: binary fractions are not money.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from suanli.api.fields import (
    MAX_DEVICES,
    Name,
    Province,
    Strict,
    Token,
    bounded_int,
    one_of,
    text,
)
from suanli.domain.resources import Hub
from suanli.domain.tariffs import Band, Basis, TierMode
from suanli.domain.tenants import TenantClass

# A plain decimal: no sign, no exponent, at most 15 digits before the point and 9 after.
DECIMAL_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,9})?$"


def _decimal_text(value: Any) -> Any:
    if isinstance(value, (bool, float)):  # pydantic reports a ValueError as a 422
        raise ValueError("a decimal as a string (or an integer); a JSON float is refused")  # noqa: TRY004
    return str(value) if isinstance(value, int) else value


DecimalText = Annotated[str, BeforeValidator(_decimal_text),
                        Field(max_length=25, pattern=DECIMAL_PATTERN,
                              description="a decimal as a string, e.g. \"12.5\"")]
BandName = one_of([b.value for b in Band], what="time-of-use band")
BasisName = one_of([b.value for b in Basis], what="basis")
TierModeName = one_of([m.value for m in TierMode], what="tier mode")
BillingMode = one_of(["prepaid", "postpaid"], what="billing mode")
TenantClassName = one_of([c.value for c in TenantClass], what="tenant class")
HubName = one_of([h.value for h in Hub], what="national hub")
Reference = text(128)
DepositFen = bounded_int(1, 10**12)
BudgetFen = bounded_int(1, 10**13)
CapFen = bounded_int(0, 10**13)
MinimumChargeFen = bounded_int(0, 10**10)
DeviceCount = bounded_int(1, MAX_DEVICES)
EnergyWh = bounded_int(0, 10**13)
ProgrammeId = Annotated[str, Field(min_length=2, max_length=40, pattern=r"^[a-z0-9-]+$",
                                   description="a-z 0-9 -")]
Issuer = text(120, min_length=1)


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
    amount_fen: DepositFen
    reference: Reference = Field(default="", description="e.g. the bank transfer's reference")


class DepositOut(BaseModel):
    transfer: TransferOut
    wallet: WalletOut


class BillingModeIn(Strict):
    mode: BillingMode


# -- tariffs and price guidance --------------------------------------------------------------

class TierIn(Strict):
    from_quantity: DecimalText
    unit_price_fen: DecimalText


class TimeOfUseIn(Strict):
    hour_bands: list[BandName] = Field(min_length=24, max_length=24,
                                       description="band of each local hour 0-23 "
                                       "(Asia/Shanghai): critical-peak, peak, flat, valley")
    multipliers: dict[BandName, DecimalText] = Field(max_length=4)


class TariffIn(Strict):
    basis: BasisName = "device-hour"
    base_unit_price_fen: DecimalText
    tiers: list[TierIn] = Field(default_factory=list, max_length=7)
    tier_mode: TierModeName = "graduated"
    time_of_use: TimeOfUseIn | None = None
    spot_discount: DecimalText = "0"
    reserved_unit_price_fen: DecimalText | None = None
    minimum_charge_fen_per_job: MinimumChargeFen = 0


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
    id: ProgrammeId
    name: Name | None = None
    issuer: Issuer
    budget_fen: BudgetFen
    coverage: DecimalText = Field(description="share of an eligible compute line, e.g. \"0.3\"")
    cap_fen_per_tenant: CapFen
    eligible_tenant_classes: list[TenantClassName] = Field(min_length=1, max_length=3)
    valid_from: datetime
    valid_until: datetime
    eligible_hubs: list[HubName] | None = Field(default=None, max_length=8)
    eligible_provinces: list[Province] | None = Field(default=None, max_length=40)
    eligible_provider_ids: list[Token] | None = Field(default=None, max_length=200)
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
    tenant_id: Token
    granted_fen: BudgetFen
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
    id: Token = Field(description="the provider's record id")
    lease_id: Token
    start: datetime
    end: datetime
    device_count: DeviceCount | None = Field(default=None,
                                             description="default: the lease's devices")
    measured_energy_wh: EnergyWh | None = None


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
