"""Usage records (话单) in the database, and the sums of their charges that quotes and
estimates read: pure records (`suanli.domain.job_records`) in and out."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.billing_tables import UsageChargeRow
from suanli.adapters.store.job_tables import UsageRecordRow
from suanli.domain.job_records import ChargeTotals, RecordCharge, StoredUsageRecord
from suanli.domain.metering import MeteredSpan
from suanli.domain.time import aware

MAX_ROWS = 10_000


def _record(row: UsageRecordRow) -> StoredUsageRecord:
    return StoredUsageRecord(
        id=row.id, lease_id=row.lease_id, job_id=row.job_id, pool_id=row.pool_id,
        tenant_id=row.tenant_id, provider_tenant_id=row.provider_tenant_id,
        accelerator=row.accelerator, devices=row.devices, started_at=row.started_at,
        ended_at=row.ended_at, wall_s=row.wall_s, device_seconds=row.device_seconds,
        cpu_s=row.cpu_s, max_rss_mb=row.max_rss_mb, energy_wh=row.energy_wh,
        energy_estimated=row.energy_estimated, content_sha256=row.content_sha256,
        created_at=row.created_at)


def get_usage_record(session: Session, record_id: str) -> StoredUsageRecord | None:
    row = session.get(UsageRecordRow, record_id)
    return None if row is None else _record(row)


def add_usage_record(session: Session, record: StoredUsageRecord) -> None:
    session.add(UsageRecordRow(**asdict(record)))


def insert_usage_record(session: Session, record: StoredUsageRecord) -> bool:
    """Insert in a savepoint, flushed now; False when a record with its id was stored
    meanwhile (the savepoint rolled back)."""
    try:
        with session.begin_nested():
            session.add(UsageRecordRow(**asdict(record)))
            session.flush()
    except IntegrityError:
        return False
    return True


def spans_of_lease(session: Session, lease_id: str) -> list[MeteredSpan]:
    """The times of every record of the lease so far (all of them: overlap is judged on all)."""
    rows = session.execute(select(UsageRecordRow.id, UsageRecordRow.started_at,
                                  UsageRecordRow.ended_at, UsageRecordRow.created_at)
                           .where(UsageRecordRow.lease_id == lease_id)).all()
    return [MeteredSpan(r.id, aware(r.started_at), aware(r.ended_at), aware(r.created_at))
            for r in rows]


def records_of_job(session: Session, job_id: str, limit: int = MAX_ROWS
                   ) -> list[StoredUsageRecord]:
    """The job's usage records, oldest first."""
    return [_record(row) for row in session.scalars(
        select(UsageRecordRow).where(UsageRecordRow.job_id == job_id)
        .order_by(UsageRecordRow.created_at).limit(limit))]


def charge_of_record(session: Session, record_id: str) -> RecordCharge | None:
    row = session.get(UsageChargeRow, record_id)
    if row is None:
        return None
    return RecordCharge(row.usage_record_id, row.period, row.tariff_id, row.amount_fen,
                        row.discount_fen, row.payable_fen, row.collected_fen, row.unpaid_fen,
                        row.fee_fen, row.provider_fen)


def charge_totals_of_job(session: Session, job_id: str) -> ChargeTotals:
    """The job's charges summed: count, device-hours, unit-hours (millionths), money."""
    row = session.execute(select(
        func.count(), func.coalesce(func.sum(UsageChargeRow.device_hours_micro), 0),
        func.coalesce(func.sum(UsageChargeRow.compute_unit_hours_micro), 0),
        func.coalesce(func.sum(UsageChargeRow.amount_fen), 0),
        func.coalesce(func.sum(UsageChargeRow.discount_fen), 0),
        func.coalesce(func.sum(UsageChargeRow.payable_fen), 0))
        .where(UsageChargeRow.job_id == job_id)).one()
    return ChargeTotals(*(int(v) for v in row))


def quantity_used_micro(session: Session, *, tenant_id: str, pool_id: str, period: str,
                        basis: str) -> int:
    """The tenant's charged quantity on the pool in a billing period and basis (millionths)."""
    return int(session.scalar(
        select(func.coalesce(func.sum(UsageChargeRow.quantity_micro), 0))
        .where(UsageChargeRow.tenant_id == tenant_id, UsageChargeRow.pool_id == pool_id,
               UsageChargeRow.period == period, UsageChargeRow.basis == basis)) or 0)
