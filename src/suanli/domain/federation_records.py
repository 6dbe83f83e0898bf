"""Records of the federation, roaming and clearing as the store holds them: pure values the
repositories (`adapters/store/repositories/federation.py`, `roaming.py`, `clearing.py`) hand
out and take back. A service changes one with `dataclasses.replace` and saves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


# -- platforms, keys, enrolment --------------------------------------------------------------

@dataclass(frozen=True)
class Platform:
    """A platform of the federation this node knows: itself, its parent, peers, children."""

    authority: str
    name: str
    level: str
    parent: str | None
    endpoint: str | None
    is_self: bool
    guest_tenant_id: str | None
    state: str  # active, suspended
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class PlatformKey:
    key_id: str  # "CN.GD:<fingerprint>"
    authority: str
    public_key: str  # base64url of the 32 raw bytes
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Enrolment:
    """A one-time token an operator issued for a direct sub-platform's first start."""

    authority: str
    token_sha256: str
    level: str
    name: str
    created_by: str
    created_at: datetime
    used_at: datetime | None = None
    key_id: str | None = None


# -- the aggregated catalog ------------------------------------------------------------------

@dataclass(frozen=True)
class CatalogOrigin:
    """How fresh one platform's catalog summary is, and by which way it came."""

    origin: str
    generated_at: datetime
    received_at: datetime
    via: str
    digest: str
    groups: int


@dataclass(frozen=True)
class CatalogGroup:
    """One origin's active pools of one accelerator, province and hub, summarised."""

    origin: str
    accelerator: str
    province: str
    hub: str  # "" for none
    vendor: str
    device_kind: str
    pools: int
    devices: int
    free_devices: int
    max_free_in_pool: int
    min_price_fen_per_device_hour: int
    min_unit_prices: dict[str, str]  # workload class -> decimal text


@dataclass(frozen=True)
class CatalogOffer:
    """A catalog group of another (active, reachable) platform and when it was generated."""

    group: CatalogGroup
    generated_at: datetime


# -- roaming jobs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ForwardedJob:
    """Home side: one attempt to run a local job on another platform (the host)."""

    job_id: str
    attempt: int
    host: str
    state: str  # forwarding -> accepted -> finished | rejected | withdrawing -> withdrawn
    reason: str
    host_job_id: str | None
    host_pool_id: str | None
    host_state: str | None
    cancel_requested: bool
    tries: int
    next_try_at: datetime
    last_error: str
    created_at: datetime
    updated_at: datetime
    max_charge_fen: int | None = None


@dataclass(frozen=True)
class GuestJob:
    """Host side: what this platform decided about one forwarded job attempt."""

    home: str
    home_job_id: str
    attempt: int
    job_id: str | None
    outcome: str  # accepted, rejected, withdrawn
    reason: str
    home_tenant_id: str
    spec_sha256: str
    pushed_state: str | None
    pushed_digest: str | None
    next_push_at: datetime | None
    tries: int
    created_at: datetime
    updated_at: datetime
    max_charge_fen: int | None = None


@dataclass(frozen=True)
class UsageView:
    """A usage record of a guest job, with the pool it ran on, as the host signs it."""

    id: str
    job_id: str
    lease_id: str
    pool_id: str
    provider_tenant_id: str
    accelerator: str
    devices: int
    started_at: datetime
    ended_at: datetime
    wall_s: float
    device_seconds: float
    energy_wh: float
    provider_id: str
    province: str
    hub: str | None
    price_fen_per_device_hour: int
    units_per_device_hour: Decimal


# -- roaming records, entitlements, disputes -------------------------------------------------

@dataclass(frozen=True)
class RoamingRecord:
    """A usage record that crossed platforms (漫游话单), signed by the host; held by both."""

    id: str
    role: str  # home or host: this platform's side
    home: str
    host: str
    home_job_id: str
    host_job_id: str
    tenant_id: str  # the home tenant
    business_date: str
    amount_fen: int
    units_micro: int
    document: dict[str, Any]
    signature: str
    key_id: str
    digest: str
    state: str  # host: issued, delivered; home: charged
    tries: int
    next_try_at: datetime | None
    charge: dict[str, Any] | None
    cycle_id: str | None
    settled_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Entitlement:
    """Prepaid compute (算力权益) a tenant bought at home, in compute-unit hours."""

    id: str
    tenant_id: str
    idempotency_key: str
    units_micro: int
    remaining_units_micro: int
    price_fen: int
    remaining_fen: int
    valid_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Dispute:
    id: int
    cycle_id: str | None
    record_id: str | None
    raised_by: str
    counterparty: str
    kind: str  # missing, mismatch, statement, bound, other
    detail: str
    amount_fen: int | None
    state: str  # open, resolved
    resolution: str
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class NewDispute:
    """A dispute to open (the store gives it its id)."""

    cycle_id: str | None
    record_id: str | None
    raised_by: str
    counterparty: str
    kind: str
    detail: str
    amount_fen: int | None
    created_at: datetime


# -- clearing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClearingCycle:
    id: str  # "2026-11-02.01"
    through_date: str
    state: str
    summary: dict[str, Any]
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class ClearingStatement:
    cycle_id: str
    platform: str
    role: str  # issued, received
    document: dict[str, Any]
    signature: str
    key_id: str
    net_fen: int
    state: str  # issued, delivered, accepted, disputed
    tries: int
    next_try_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RecordSide:
    """One platform's side of a record, as it reports it to the clearing house."""

    id: str
    role: str
    home: str
    host: str
    amount_fen: int
    digest: str
