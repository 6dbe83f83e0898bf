"""Usage records (话单): posted by a provider (its own meters, a peer platform) or made from an
agent's final report. Both are built by one pure function (domain.metering.
build_usage_record) under the lease's rules, stored once, and charged."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as job_store
from suanli.adapters.store.repositories import usage as usage_store
from suanli.domain.billing_records import UsageCharge
from suanli.domain.errors import Conflict, NotFound, ValidationFailed
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.job_records import (
    Job,
    Lease,
    PoolFacts,
    RecordCharge,
    StoredUsageRecord,
)
from suanli.domain.jobs import JobSpec
from suanli.domain.metering import (
    IngestOutcome,
    LeaseTerms,
    MeteredSpan,
    NewUsageRecord,
    PostedUsage,
    ReportedUsage,
    UsageRecord,
    build_usage_record,
    content_digest,
    ingest_decision,
    require_aware,
    usage_content,
)
from suanli.domain.tenants import Principal, Role, may_see, require_owner, require_role
from suanli.domain.time import aware, utc
from suanli.services.billing import charging
from suanli.services.billing import tariffs as tariff_store

# Fits the usage_records id column and the ledger's transfer ids derived from it.
_RECORD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/*-]{0,71}$")


@dataclass(frozen=True)
class Ingested:
    record: StoredUsageRecord
    outcome: IngestOutcome
    charge: RecordCharge | UsageCharge | None  # a stored charge, or what charging.charge made


def ingest(session: Session, principal: Principal, *, record_id: str, lease_id: str,
           start: datetime, end: datetime, now: datetime, device_count: int | None = None,
           measured_energy_wh: int | None = None) -> Ingested:
    """Store and charge a usage record of a lease of the caller's pools.

    Same id and content again: `duplicate`, nothing changes. Same id, other content: 409.
    Outside the lease, overlapping another record of it, beyond the job's time limit, or a
    second record after the lease ended: 422 or 409 naming the field (build_usage_record).
    Outside the late window after its billing period: 422 (RecordTooLate, field `end`).
    """
    require_role(principal, Role.PROVIDER)
    if not isinstance(record_id, str) or not _RECORD_ID_RE.match(record_id):
        raise ValidationFailed("1-72 characters of A-Z a-z 0-9 . _ : / * -", field="id")
    lease = job_store.get_lease(session, str(ComputeId.parse(lease_id, field="lease_id")))
    pool = None if lease is None else job_store.get_pool(session, lease.pool_id)
    if lease is None or pool is None or not may_see(principal, pool.tenant_id):
        raise NotFound(f"lease {lease_id} does not exist", field="lease_id")
    require_owner(principal, pool.tenant_id, f"lease {lease.id}")
    start, end = require_aware(start, "start"), require_aware(end, "end")
    terms, earlier = _lock_lease(session, lease, pool)
    posted = PostedUsage(record_id, utc(start), utc(end), device_count, measured_energy_wh)
    existing = usage_store.get_usage_record(session, record_id)
    if existing is not None:
        if existing.content_sha256 != content_digest(usage_content(terms, posted)):
            raise Conflict(f"usage record {record_id} exists with different fields", field="id")
        return Ingested(existing, IngestOutcome.DUPLICATE,
                        usage_store.charge_of_record(session, existing.id))
    built = build_usage_record(terms, posted, earlier, now)
    ingest_decision(UsageRecord(record_id, lease.id, terms.job_id, terms.tenant_id, pool.id,
                                built.devices, built.started_at, built.ended_at,
                                measured_energy_wh=measured_energy_wh), None, now)
    record = _stored(built, now)
    if not usage_store.insert_usage_record(session, record):  # pragma: no cover
        # the lease lock serialises its records: another one cannot be stored meanwhile
        raise Conflict(f"usage record {record_id} was stored meanwhile; retry", field="id")
    return Ingested(record, IngestOutcome.ACCEPTED, charging.charge(session, record, now))


def record_reported(session: Session, lease: Lease, job: Job, usage: dict[str, Any],
                    now: datetime) -> StoredUsageRecord:
    """The usage record of an agent's final report on its lease (id `<lease>.R1`): the same
    report twice is one record, a different one a 409."""
    record_id = str(ComputeId.parse(lease.id).child(IdKind.RECORD, 1))
    pool = job_store.get_pool(session, lease.pool_id)
    assert pool is not None
    terms, earlier = _lock_lease(session, lease, pool)
    estimated = usage.get("energy_wh") is None or bool(usage.get("energy_estimated", True))
    reported = ReportedUsage(record_id, _number(usage.get("wall_s", 0.0), "usage.wall_s"),
                             usage.get("cpu_s"), usage.get("max_rss_mb"), usage.get("energy_wh"),
                             estimated, _number(usage.get("utilisation", 1.0),
                                                "usage.utilisation"))
    existing = usage_store.get_usage_record(session, record_id)
    if existing is not None:
        if existing.content_sha256 != content_digest(usage_content(terms, reported)):
            raise Conflict(f"usage record {record_id} exists with different figures",
                           field="usage")
        return existing
    record = _stored(build_usage_record(terms, reported, earlier, now), now)
    usage_store.add_usage_record(session, record)
    return record


def _number(value: Any, field: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailed("must be a number", field=field)
    return float(value)


def _lock_lease(session: Session, lease: Lease, pool: PoolFacts
                ) -> tuple[LeaseTerms, list[MeteredSpan]]:
    """The lease's terms and its records so far, with the lease row locked: two records of
    one lease are judged one after the other, never side by side."""
    job_store.lock_lease(session, lease.id)
    job = job_store.get_job(session, lease.job_id)
    assert job is not None
    terms = LeaseTerms(lease.id, job.id, job.tenant_id, pool.tenant_id, pool.id,
                       pool.accelerator, lease.devices, aware(lease.created_at),
                       aware(lease.ended_at) if lease.ended_at else None,
                       JobSpec.from_json(job.spec).time_limit_s,
                       tariff_store.device_power_kw(pool.accelerator))
    return terms, usage_store.spans_of_lease(session, lease.id)


def _stored(built: NewUsageRecord, now: datetime) -> StoredUsageRecord:
    return StoredUsageRecord(**asdict(built), created_at=now)


def records_of_job(session: Session, job_id: str) -> list[StoredUsageRecord]:
    """The usage records reported for one job, oldest first (the caller checked access)."""
    return usage_store.records_of_job(session, job_id)
