"""Billing's stored records as the services see them: tariff versions, voucher programmes and
grants, lease holds, usage charges and their lines; and the facts of pools, jobs and usage
records that billing reads.

Plain values, no database: `suanli.adapters.store.repositories.billing` reads and writes them.
Field names are those of the stored columns, so a record reads like the row it came from.
Money is int fen; quantities are int micro-units; unit prices int 1/10,000 fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

# -- what billing reads of other contexts' records -------------------------------------------


class PricedPool(Protocol):
    """What pricing needs of a pool (a registry pool, or billing's `PoolFacts`)."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def accelerator(self) -> str: ...
    @property
    def price_fen_per_device_hour(self) -> int: ...
    @property
    def units_per_device_hour(self) -> Decimal: ...


class HeldJob(Protocol):
    """What a hold needs of a job: its id, its tenant and its spec (the stored JSON)."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def spec(self) -> dict[str, Any]: ...


class Identified(Protocol):
    """Anything with an id (a lease)."""

    @property
    def id(self) -> str: ...


class ChargeableUsage(Protocol):
    """What charging needs of a usage record."""

    @property
    def id(self) -> str: ...
    @property
    def lease_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def provider_tenant_id(self) -> str: ...
    @property
    def pool_id(self) -> str: ...
    @property
    def devices(self) -> int: ...
    @property
    def ended_at(self) -> datetime: ...
    @property
    def wall_s(self) -> float: ...
    @property
    def energy_wh(self) -> float: ...
    @property
    def energy_estimated(self) -> bool: ...


@dataclass(frozen=True)
class PoolFacts:
    """A pool as billing reads it."""

    id: str
    tenant_id: str
    site_id: str
    provider_id: str
    accelerator: str
    device_kind: str
    hub: str | None
    province: str
    state: str
    price_fen_per_device_hour: int
    units_per_device_hour: Decimal


@dataclass(frozen=True)
class SiteCosts:
    """What a site adds to a device-hour: its PUE and its electricity price."""

    id: str
    pue: Decimal
    electricity_fen_per_kwh: int


# -- billing's own records -------------------------------------------------------------------


@dataclass(frozen=True)
class StoredTariff:
    """A version of a pool's tariff as stored: the document (prices as decimal strings)."""

    id: str
    pool_id: str
    version: int
    document: dict[str, Any]
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class ProgrammeRecord:
    """A voucher programme as stored (shares x 10^4, eligibility as sorted lists)."""

    id: str
    name: str
    issuer: str
    budget_fen: int
    coverage_e4: int
    western_extra_coverage_e4: int
    cap_fen_per_tenant: int
    eligible_tenant_classes: list[str]
    eligible_hubs: list[str] | None
    eligible_provinces: list[str] | None
    eligible_provider_ids: list[str] | None
    valid_from: datetime
    valid_until: datetime
    fund_account_id: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class VoucherRecord:
    """One tenant's grant from a programme and what remains of it."""

    id: str
    programme_id: str
    tenant_id: str
    idempotency_key: str
    granted_fen: int
    remaining_fen: int
    valid_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class HoldRecord:
    """The money held for one lease and the tariff (document) it was priced with."""

    lease_id: str
    job_id: str
    tenant_id: str
    pool_id: str
    transfer_id: str | None
    amount_fen: int
    tariff: dict[str, Any]
    state: str
    created_at: datetime
    settled_at: datetime | None = None


@dataclass(frozen=True)
class ChargeLine:
    """One rated line of a charge, with the vouchers applied to it."""

    usage_record_id: str
    seq: int
    kind: str
    tier: int | None
    band: str | None
    quantity_micro: int
    unit_price_fen_e4: int
    amount_fen: int
    discount_fen: int
    payable_fen: int
    vouchers: list[dict[str, Any]]  # [{voucher_id, programme_id, discount_fen}]


@dataclass(frozen=True)
class UsageCharge:
    """What one usage record was charged: metered, rated, discounted, posted."""

    usage_record_id: str
    job_id: str
    lease_id: str
    tenant_id: str
    provider_tenant_id: str
    pool_id: str
    provider_id: str
    accelerator: str
    hub: str | None
    province: str
    tariff_id: str
    basis: str
    spot: bool
    period: str
    started_at: datetime
    ended_at: datetime
    device_hours_micro: int
    compute_unit_hours_micro: int
    quantity_micro: int
    it_energy_wh: int
    facility_energy_wh: int
    amount_fen: int
    discount_fen: int
    payable_fen: int
    collected_fen: int
    unpaid_fen: int
    fee_fen: int
    provider_fen: int
    held_fen: int
    released_fen: int
    transfer_ids: list[str]
    created_at: datetime
