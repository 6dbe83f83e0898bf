"""Roaming in the database: roaming records, entitlements and disputes, and what roaming
reads of usage (with its pool) and tenants, as pure records
(`suanli.domain.federation_records`). Jobs, their logs and pools come from
`repositories.jobs`; vouchers and usage charges from `repositories.billing`.

Locks (as billing takes them): ledger accounts first (the ledger store), then voucher
programme rows and voucher rows (`repositories.billing`), then entitlement rows
(`lock_drawable_entitlements`); the forward attempt a record is for is locked by
`repositories.federation.lock_forward`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.federation_tables import (
    ClearingDisputeRow,
    EntitlementRow,
    GuestJobRow,
    RoamingRecordRow,
)
from suanli.adapters.store.job_tables import UsageRecordRow
from suanli.adapters.store.tables import PoolRow, TenantRow
from suanli.domain.federation_records import (
    Dispute,
    Entitlement,
    GuestJob,
    NewDispute,
    RoamingRecord,
    UsageView,
)

R = TypeVar("R")
MAX_ROWS = 10_000  # rows one read returns


def _record(cls: type[R], row: Any) -> R:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _set(row: Any, record: Any) -> None:
    for name, value in _values(record).items():
        if getattr(row, name) != value:
            setattr(row, name, value)


# -- roaming records -------------------------------------------------------------------------

def get_record(session: Session, record_id: str) -> RoamingRecord | None:
    row = session.get(RoamingRecordRow, record_id)
    return None if row is None else _record(RoamingRecord, row)


def add_record(session: Session, record: RoamingRecord) -> None:
    """Write a new roaming record (not flushed)."""
    session.add(RoamingRecordRow(**_values(record)))


def save_record(session: Session, record: RoamingRecord) -> None:
    """Write the changed fields of a roaming record held here."""
    row = session.get(RoamingRecordRow, record.id)
    assert row is not None
    _set(row, record)


def records_due(session: Session, role: str, state: str, now: datetime,
                limit: int) -> list[RoamingRecord]:
    """Records of one role and state whose next try is due, earliest first."""
    return [_record(RoamingRecord, row) for row in session.scalars(
        select(RoamingRecordRow)
        .where(RoamingRecordRow.role == role, RoamingRecordRow.state == state,
               RoamingRecordRow.next_try_at <= now)
        .order_by(RoamingRecordRow.next_try_at).limit(limit))]


def records_by_ids(session: Session, record_ids: Sequence[str], role: str,
                   limit: int = MAX_ROWS) -> list[RoamingRecord]:
    return [_record(RoamingRecord, row) for row in session.scalars(
        select(RoamingRecordRow).where(RoamingRecordRow.id.in_(record_ids),
                                       RoamingRecordRow.role == role).limit(limit))]


def records_with_peer(session: Session, peer: str, *, home: str, host: str,
                      since: str | None, through: str | None, after: str | None,
                      limit: int) -> list[RoamingRecord]:
    """Records between this platform and `peer`: those of role `home` it hosted and those of
    role `host` it is home of; business dates within [since, through], ids after `after`."""
    stmt = select(RoamingRecordRow).where(or_(
        and_(RoamingRecordRow.role == home, RoamingRecordRow.host == peer),
        and_(RoamingRecordRow.role == host, RoamingRecordRow.home == peer)))
    if since:
        stmt = stmt.where(RoamingRecordRow.business_date >= since)
    if through:
        stmt = stmt.where(RoamingRecordRow.business_date <= through)
    if after:
        stmt = stmt.where(RoamingRecordRow.id > after)
    return [_record(RoamingRecord, row) for row in session.scalars(
        stmt.order_by(RoamingRecordRow.id).limit(limit))]


def records_of_home_job(session: Session, job_id: str,
                        limit: int = MAX_ROWS) -> list[RoamingRecord]:
    return [_record(RoamingRecord, row) for row in session.scalars(
        select(RoamingRecordRow).where(RoamingRecordRow.home_job_id == job_id)
        .order_by(RoamingRecordRow.id).limit(limit))]


def list_records(session: Session, *, tenant_id: str | None, home_role: str,
                 peer: str | None, role: str | None, since: str | None,
                 through: str | None, limit: int) -> list[RoamingRecord]:
    """Records held here, newest first; with `tenant_id` only that tenant's of `home_role`."""
    stmt = select(RoamingRecordRow)
    if tenant_id is not None:
        stmt = stmt.where(RoamingRecordRow.tenant_id == tenant_id,
                          RoamingRecordRow.role == home_role)
    if peer:
        stmt = stmt.where((RoamingRecordRow.home == peer) | (RoamingRecordRow.host == peer))
    if role:
        stmt = stmt.where(RoamingRecordRow.role == role)
    if since:
        stmt = stmt.where(RoamingRecordRow.business_date >= since)
    if through:
        stmt = stmt.where(RoamingRecordRow.business_date <= through)
    return [_record(RoamingRecord, row) for row in session.scalars(
        stmt.order_by(RoamingRecordRow.created_at.desc(), RoamingRecordRow.id).limit(limit))]


def amount_issued_for_host_job(session: Session, host_role: str, host_job_id: str) -> int:
    """Fen of the records of `host_role` already issued for one local (guest) job."""
    return int(session.scalar(select(func.coalesce(func.sum(RoamingRecordRow.amount_fen), 0))
                              .where(RoamingRecordRow.role == host_role,
                                     RoamingRecordRow.host_job_id == host_job_id)) or 0)


def amount_charged_for_attempt(session: Session, home_role: str, home_job_id: str,
                               host_job_id: str) -> int:
    """Fen of the records of `home_role` taken in for one job's run at a host."""
    return int(session.scalar(select(func.coalesce(func.sum(RoamingRecordRow.amount_fen), 0))
                              .where(RoamingRecordRow.role == home_role,
                                     RoamingRecordRow.home_job_id == home_job_id,
                                     RoamingRecordRow.host_job_id == host_job_id)) or 0)


# -- what roaming reads of usage, jobs, pools and tenants ------------------------------------

def _usage(usage: UsageRecordRow, pool: PoolRow) -> UsageView:
    return UsageView(
        id=usage.id, job_id=usage.job_id, lease_id=usage.lease_id, pool_id=usage.pool_id,
        provider_tenant_id=usage.provider_tenant_id, accelerator=usage.accelerator,
        devices=usage.devices, started_at=usage.started_at, ended_at=usage.ended_at,
        wall_s=usage.wall_s, device_seconds=usage.device_seconds, energy_wh=usage.energy_wh,
        provider_id=pool.provider_id, province=pool.province, hub=pool.hub,
        price_fen_per_device_hour=pool.price_fen_per_device_hour,
        units_per_device_hour=Decimal(pool.units_per_device_hour))


def unsigned_guest_usage(session: Session, limit: int) -> list[tuple[UsageView, GuestJob]]:
    """Usage records of guest jobs with no roaming record yet, oldest first, each with the
    guest job it belongs to."""
    pending = session.execute(
        select(UsageRecordRow, GuestJobRow)
        .join(GuestJobRow, GuestJobRow.job_id == UsageRecordRow.job_id)
        .outerjoin(RoamingRecordRow, RoamingRecordRow.id == UsageRecordRow.id)
        .where(RoamingRecordRow.id.is_(None))
        .order_by(UsageRecordRow.created_at).limit(limit)).all()
    out = []
    for usage, guest in pending:
        pool = session.get(PoolRow, usage.pool_id)
        assert pool is not None
        out.append((_usage(usage, pool), _record(GuestJob, guest)))
    return out


def tenant_class(session: Session, tenant_id: str) -> str | None:
    """A tenant's class, or None when the tenant does not exist here."""
    row = session.get(TenantRow, tenant_id)
    return None if row is None else row.tenant_class


# -- entitlements ----------------------------------------------------------------------------

def get_entitlement(session: Session, entitlement_id: str) -> Entitlement | None:
    row = session.get(EntitlementRow, entitlement_id)
    return None if row is None else _record(Entitlement, row)


def add_entitlement(session: Session, entitlement: Entitlement) -> bool:
    """Write a new entitlement in a savepoint; False when one with its id or key exists."""
    try:
        with session.begin_nested():
            session.add(EntitlementRow(**_values(entitlement)))
            session.flush()
    except IntegrityError:
        return False
    return True


def lock_drawable_entitlements(session: Session, tenant_id: str, now: datetime,
                               limit: int) -> list[Entitlement]:
    """A tenant's entitlements with units left and valid now, soonest to expire first, rows
    locked FOR UPDATE."""
    return [_record(Entitlement, row) for row in session.scalars(
        select(EntitlementRow)
        .where(EntitlementRow.tenant_id == tenant_id, EntitlementRow.remaining_units_micro > 0,
               or_(EntitlementRow.valid_until.is_(None), EntitlementRow.valid_until > now))
        .order_by(EntitlementRow.valid_until.is_(None), EntitlementRow.valid_until,
                  EntitlementRow.created_at, EntitlementRow.id)
        .limit(limit).with_for_update())]


def save_entitlement(session: Session, entitlement: Entitlement) -> None:
    row = session.get(EntitlementRow, entitlement.id)
    assert row is not None
    _set(row, entitlement)


def list_entitlements(session: Session, tenant_id: str,
                      limit: int = MAX_ROWS) -> list[Entitlement]:
    """A tenant's entitlements, oldest first."""
    return [_record(Entitlement, row) for row in session.scalars(
        select(EntitlementRow).where(EntitlementRow.tenant_id == tenant_id)
        .order_by(EntitlementRow.created_at, EntitlementRow.id).limit(limit))]


# -- disputes --------------------------------------------------------------------------------

def find_open_dispute(session: Session, dispute: NewDispute) -> Dispute | None:
    """The open dispute that says the same (kind, counterparty, record, cycle, detail)."""
    row = session.scalar(select(ClearingDisputeRow).where(
        ClearingDisputeRow.state == "open", ClearingDisputeRow.kind == dispute.kind,
        ClearingDisputeRow.counterparty == dispute.counterparty,
        ClearingDisputeRow.record_id == dispute.record_id if dispute.record_id else
        ClearingDisputeRow.record_id.is_(None),
        ClearingDisputeRow.cycle_id == dispute.cycle_id if dispute.cycle_id else
        ClearingDisputeRow.cycle_id.is_(None), ClearingDisputeRow.detail == dispute.detail))
    return None if row is None else _record(Dispute, row)


def add_dispute(session: Session, dispute: NewDispute) -> Dispute:
    """Open a dispute (flushed, so it has its id)."""
    row = ClearingDisputeRow(cycle_id=dispute.cycle_id, record_id=dispute.record_id,
                             raised_by=dispute.raised_by, counterparty=dispute.counterparty,
                             kind=dispute.kind, detail=dispute.detail,
                             amount_fen=dispute.amount_fen, state="open", resolution="",
                             created_at=dispute.created_at)
    session.add(row)
    session.flush()
    return _record(Dispute, row)


def get_dispute(session: Session, dispute_id: int) -> Dispute | None:
    row = session.get(ClearingDisputeRow, dispute_id)
    return None if row is None else _record(Dispute, row)


def save_dispute(session: Session, dispute: Dispute) -> None:
    row = session.get(ClearingDisputeRow, dispute.id)
    assert row is not None
    _set(row, dispute)


def list_disputes(session: Session, state: str | None, limit: int) -> list[Dispute]:
    """Disputes, newest first, of one state when given."""
    stmt = select(ClearingDisputeRow)
    if state:
        stmt = stmt.where(ClearingDisputeRow.state == state)
    return [_record(Dispute, row) for row in session.scalars(
        stmt.order_by(ClearingDisputeRow.id.desc()).limit(limit))]

