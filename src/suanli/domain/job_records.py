"""Jobs, leases, agents and usage records as the services see them (issue 11): pure records,
filled and written by `adapters/store/repositories/jobs.py` and `usage.py`.

`Job` and `Lease` are entities: a service changes them in place (a transition, a claim, the
end of a lease) and hands them to the repository to save, as the row once was changed; the
repository writes them in the same transaction. The rest are values, frozen. The attribute
names are the table's, so a record answers wherever a row did (the API's `from_attributes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(eq=False)
class Job:
    """A consumer's job (entity): its spec, state, attempts and where it runs."""

    id: str
    tenant_id: str
    idempotency_key: str
    request_sha256: str
    name: str
    spec: dict[str, Any]
    state: str
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    pool_id: str | None = None
    lease_id: str | None = None
    excluded_pools: list[str] = field(default_factory=list)
    placement: dict[str, Any] | None = None
    exit_code: int | None = None
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def restore(self, saved: Job) -> None:
        """Take back every field of `saved` (a copy made before a savepoint that rolled back)."""
        assert saved.id == self.id
        for item in fields(self):
            setattr(self, item.name, getattr(saved, item.name))


@dataclass(eq=False)
class Lease:
    """Devices of a pool held by one attempt of a job (entity); its fence rejects stale agents."""

    id: str
    job_id: str
    pool_id: str
    devices: int
    state: str  # active, released, expired
    fence: int
    heartbeat_deadline: datetime
    created_at: datetime
    agent_id: str | None = None
    engine_ref: str | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class JobEvent:
    """One state transition of a job, with its time and reason."""

    job_id: str
    from_state: str | None
    to_state: str
    at: datetime
    reason: str
    id: int | None = None  # given by the database when stored


@dataclass(frozen=True)
class JobLog:
    """The tail of a job's output, as last reported by its agent."""

    job_id: str
    text: str
    truncated: bool
    updated_at: datetime


@dataclass(frozen=True)
class Agent:
    """A provider agent: pulls work for its pools over outbound HTTP."""

    id: str
    tenant_id: str
    name: str
    pools: tuple[str, ...]
    engine: str
    last_seen: datetime
    created_at: datetime


@dataclass(frozen=True)
class StoredUsageRecord:
    """A usage record (话单) as stored: metered consumption of one lease, idempotent by id."""

    id: str
    lease_id: str
    job_id: str
    pool_id: str
    tenant_id: str
    provider_tenant_id: str
    accelerator: str
    devices: int
    started_at: datetime
    ended_at: datetime
    wall_s: float
    device_seconds: float
    cpu_s: float | None
    max_rss_mb: float | None
    energy_wh: float
    energy_estimated: bool
    content_sha256: str
    created_at: datetime


@dataclass(frozen=True)
class RecordCharge:
    """What one usage record was charged, as its poster is told."""

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


@dataclass(frozen=True)
class ChargeTotals:
    """A job's charges summed (zero before any usage); quantities in millionths."""

    records: int
    device_hours_micro: int
    compute_unit_hours_micro: int
    amount_fen: int
    discount_fen: int
    payable_fen: int


@dataclass(frozen=True, eq=False)
class PoolFacts:
    """A pool as scheduling, leases and metering read it: the registry's searchable copy."""

    id: str
    site_id: str
    provider_id: str
    tenant_id: str
    name: str
    accelerator: str
    vendor: str
    architecture: str
    device_kind: str
    memory_gb: float | None
    device_count: int
    free_devices: int
    interconnect: str | None
    engine: str
    state: str
    price_fen_per_device_hour: int
    units_per_device_hour: Decimal
    fen_per_unit_hour_general: Decimal | None
    fen_per_unit_hour_training: Decimal | None
    fen_per_unit_hour_inference: Decimal | None
    fen_per_unit_hour_hpc: Decimal | None
    province: str
    city: str
    hub: str | None
    site_kind: str
    green_share: Decimal


@dataclass(frozen=True)
class SiteEnergy:
    """What placement weighs of a pool's site: its PUE and electricity price."""

    id: str
    pue: Decimal
    electricity_fen_per_kwh: int
