"""Usage records arriving from elsewhere (a provider's own meters, a peer platform): ingest,
idempotently, and charge. Records reported by an agent take the same charging path."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.billing_tables import UsageChargeRow
from suanli.adapters.store.job_tables import JobRow, LeaseRow, UsageRecordRow
from suanli.adapters.store.tables import PoolRow
from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.ids import ComputeId
from suanli.domain.metering import IngestOutcome, UsageRecord, ingest_decision
from suanli.domain.tenants import Principal, Role, may_see, require_role
from suanli.domain.time import aware, utc
from suanli.services.billing import charging
from suanli.services.billing import tariffs as tariff_store

# Fits the usage_records id column and the ledger's transfer ids derived from it.
_RECORD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/*-]{0,71}$")


@dataclass(frozen=True)
class Ingested:
    record: UsageRecordRow
    outcome: IngestOutcome
    charge: UsageChargeRow | None


def _stored(row: UsageRecordRow) -> UsageRecord:
    energy = None if row.energy_estimated else round(row.energy_wh)
    return UsageRecord(row.id, row.lease_id, row.job_id, row.tenant_id, row.pool_id, row.devices,
                       aware(row.started_at), aware(row.ended_at), measured_energy_wh=energy)


def ingest(session: Session, principal: Principal, *, record_id: str, lease_id: str,
           start: datetime, end: datetime, now: datetime, device_count: int | None = None,
           measured_energy_wh: int | None = None) -> Ingested:
    """Store and charge a usage record of a lease of the caller's pools.

    Same id and content again: `duplicate`, nothing changes. Same id, other content: 409.
    Outside the late window after its billing period: 422 (RecordTooLate, field `end`).
    """
    require_role(principal, Role.PROVIDER)
    if not isinstance(record_id, str) or not _RECORD_ID_RE.match(record_id):
        raise ValidationFailed("1-72 characters of A-Z a-z 0-9 . _ : / * -", field="id")
    lease = session.get(LeaseRow, str(ComputeId.parse(lease_id, field="lease_id")))
    pool = None if lease is None else session.get(PoolRow, lease.pool_id)
    if lease is None or pool is None or not may_see(principal, pool.tenant_id):
        raise NotFound(f"lease {lease_id} does not exist", field="lease_id")
    job = session.get(JobRow, lease.job_id)
    assert job is not None
    devices = lease.devices if device_count is None else device_count
    if not 1 <= devices <= lease.devices:
        raise ValidationFailed(f"must be 1..{lease.devices} (the lease's devices)",
                               field="device_count")
    record = UsageRecord(record_id, lease.id, job.id, job.tenant_id, pool.id, devices, start,
                         end, measured_energy_wh=measured_energy_wh)
    record = replace(record, start=utc(start), end=utc(end))  # validated aware above
    if start < aware(lease.created_at):
        raise ValidationFailed(f"before the lease began ({aware(lease.created_at).isoformat()})",
                               field="start")
    existing = session.get(UsageRecordRow, record_id)
    outcome = ingest_decision(record, None if existing is None else _stored(existing), now)
    if outcome == IngestOutcome.DUPLICATE:
        assert existing is not None
        return Ingested(existing, outcome, session.get(UsageChargeRow, existing.id))
    row = _row(record, pool, now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # A concurrent post of the same id won: judge ours against it.
        session.expire_all()
        winner = session.get(UsageRecordRow, record_id)
        if winner is None:
            raise
        ingest_decision(record, _stored(winner), now)
        return Ingested(winner, IngestOutcome.DUPLICATE, session.get(UsageChargeRow, winner.id))
    return Ingested(row, outcome, charging.charge(session, row, now))


def _row(record: UsageRecord, pool: PoolRow, now: datetime) -> UsageRecordRow:
    wall_s = (record.end - record.start).total_seconds()
    if record.measured_energy_wh is not None:
        energy_wh = float(record.measured_energy_wh)
    else:
        kw = tariff_store.device_power_kw(pool.accelerator)
        energy_wh = float(kw * 1000 * record.device_count * Decimal(repr(wall_s)) / 3600)
    content = {"lease_id": record.lease_id, "devices": record.device_count,
               "start": record.start.isoformat(), "end": record.end.isoformat(),
               "measured_energy_wh": record.measured_energy_wh}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return UsageRecordRow(id=record.id, lease_id=record.lease_id, job_id=record.job_id,
                          pool_id=pool.id, tenant_id=record.tenant_id,
                          provider_tenant_id=pool.tenant_id, accelerator=pool.accelerator,
                          devices=record.device_count, started_at=record.start,
                          ended_at=record.end, wall_s=wall_s,
                          device_seconds=wall_s * record.device_count, cpu_s=None,
                          max_rss_mb=None, energy_wh=energy_wh,
                          energy_estimated=record.measured_energy_wh is None,
                          content_sha256=digest, created_at=now)


def records_of_job(session: Session, job_id: str) -> list[UsageRecordRow]:
    """The usage records reported for one job, oldest first (the caller checked access)."""
    return list(session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job_id)
                                .order_by(UsageRecordRow.created_at)))
