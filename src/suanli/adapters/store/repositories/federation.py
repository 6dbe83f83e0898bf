"""The federation in the database: platforms, keys, enrolments, nonces, the loop's small state,
catalog summaries and both sides of forwarded jobs, as pure records
(`suanli.domain.federation_records`).

Writes go through the ORM session (get, then set or add), so a record saved here and a row
another part of the same unit of work holds stay one object; nothing is flushed unless the
function says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.database import rows_matched
from suanli.adapters.store.federation_tables import (
    CatalogOriginRow,
    CatalogSummaryRow,
    FederationEnrolmentRow,
    FederationKeyRow,
    FederationNonceRow,
    FederationPlatformRow,
    FederationStateRow,
    GuestJobRow,
    RoamingJobRow,
)
from suanli.adapters.store.job_tables import JobRow
from suanli.adapters.store.tables import DelegationRow, PoolRow
from suanli.domain.federation_records import (
    CatalogGroup,
    CatalogOffer,
    CatalogOrigin,
    Enrolment,
    ForwardedJob,
    GuestJob,
    Platform,
    PlatformKey,
)
from suanli.domain.resources import PoolState
from suanli.domain.units import WORKLOAD_CLASSES

R = TypeVar("R")
MAX_ROWS = 20_000  # rows one read returns
_CLASSES = tuple(WORKLOAD_CLASSES)


def _record(cls: type[R], row: Any) -> R:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _save(session: Session, row_class: type[Any], key: Any, record: Any) -> None:
    """Insert the record's row, or set every field of the row held (unchanged fields are not
    written: the ORM writes what differs)."""
    row = session.get(row_class, key)
    if row is None:
        session.add(row_class(**_values(record)))
        return
    for name, value in _values(record).items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def decimal_text(value: Any) -> str:
    """A stored decimal as plain text without trailing zeros ("0.5", "12")."""
    return format(Decimal(str(value)).normalize(), "f")


# -- platforms -------------------------------------------------------------------------------

def get_platform(session: Session, authority: str) -> Platform | None:
    row = session.get(FederationPlatformRow, authority)
    return None if row is None else _record(Platform, row)


def self_platform(session: Session) -> Platform | None:
    """This platform's own row (the one marked is_self), if it was recorded."""
    row = session.scalar(select(FederationPlatformRow).where(FederationPlatformRow.is_self))
    return None if row is None else _record(Platform, row)


def save_platform(session: Session, platform: Platform) -> None:
    _save(session, FederationPlatformRow, platform.authority, platform)


def count_platforms(session: Session) -> int:
    return session.query(FederationPlatformRow).count()


def list_platforms(session: Session, limit: int = MAX_ROWS) -> list[Platform]:
    """Every platform known here, by authority."""
    return [_record(Platform, row) for row in session.scalars(
        select(FederationPlatformRow).order_by(FederationPlatformRow.authority).limit(limit))]


def set_last_seen(session: Session, authority: str, now: datetime) -> None:
    """Note that a platform was heard from (nothing when it is not known here)."""
    row = session.get(FederationPlatformRow, authority)
    if row is not None:
        row.last_seen_at = now


def set_guest_tenant(session: Session, authority: str, tenant_id: str) -> None:
    row = session.get(FederationPlatformRow, authority)
    assert row is not None
    row.guest_tenant_id = tenant_id


def platform_of_guest_tenant(session: Session, tenant_id: str) -> str | None:
    """The home platform a guest tenant stands for, or None for an ordinary tenant."""
    return session.scalar(select(FederationPlatformRow.authority)
                          .where(FederationPlatformRow.guest_tenant_id == tenant_id))


def save_delegation(session: Session, *, authority: str, name: str, level: str,
                    endpoint: str, now: datetime) -> None:
    """Write the identifier delegation of a platform (created_at is kept on an update)."""
    row = session.get(DelegationRow, authority)
    if row is None:
        session.add(DelegationRow(authority=authority, name=name, level=level,
                                  endpoint=endpoint, created_at=now))
    else:
        row.name, row.level, row.endpoint = name, level, endpoint


# -- keys ------------------------------------------------------------------------------------

def get_key(session: Session, key_id: str) -> PlatformKey | None:
    row = session.get(FederationKeyRow, key_id)
    return None if row is None else _record(PlatformKey, row)


def save_key(session: Session, key: PlatformKey) -> None:
    _save(session, FederationKeyRow, key.key_id, key)


def list_keys(session: Session, limit: int = MAX_ROWS * 4) -> list[PlatformKey]:
    """Every key known here, by key id."""
    return [_record(PlatformKey, row) for row in session.scalars(
        select(FederationKeyRow).order_by(FederationKeyRow.key_id).limit(limit))]


def newest_active_key(session: Session, authority: str) -> PlatformKey | None:
    row = session.scalars(select(FederationKeyRow)
                          .where(FederationKeyRow.authority == authority,
                                 FederationKeyRow.revoked_at.is_(None))
                          .order_by(FederationKeyRow.created_at.desc())).first()
    return None if row is None else _record(PlatformKey, row)


# -- enrolment -------------------------------------------------------------------------------

def get_enrolment(session: Session, authority: str) -> Enrolment | None:
    row = session.get(FederationEnrolmentRow, authority)
    return None if row is None else _record(Enrolment, row)


def save_enrolment(session: Session, enrolment: Enrolment) -> None:
    _save(session, FederationEnrolmentRow, enrolment.authority, enrolment)


# -- nonces ----------------------------------------------------------------------------------

def add_nonce(session: Session, key_id: str, nonce: str, expires_at: datetime) -> bool:
    """Remember a nonce, in a savepoint; False when it was seen before (a replay)."""
    try:
        with session.begin_nested():
            session.add(FederationNonceRow(key_id=key_id, nonce=nonce, expires_at=expires_at))
            session.flush()
    except IntegrityError:
        return False
    return True


def purge_nonces(session: Session, before: datetime) -> int:
    """Forget nonces that expired before `before`; returns how many."""
    return rows_matched(session.execute(
        delete(FederationNonceRow)
        .where(FederationNonceRow.expires_at < before)
        .execution_options(synchronize_session=False)))


# -- the loop's small persistent state -------------------------------------------------------

def get_state(session: Session, name: str) -> dict[str, Any] | None:
    row = session.get(FederationStateRow, name)
    return None if row is None else dict(row.value)


def put_state(session: Session, name: str, value: dict[str, Any], now: datetime) -> None:
    row = session.get(FederationStateRow, name)
    if row is None:
        session.add(FederationStateRow(name=name, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now


# -- catalog summaries -----------------------------------------------------------------------

def active_pool_groups(session: Session, limit: int) -> list[CatalogGroup]:
    """This platform's active pools grouped per accelerator, province and hub (origin "")."""
    unit_columns = [func.min(getattr(PoolRow, f"fen_per_unit_hour_{c}")) for c in _CLASSES]
    hub = func.coalesce(PoolRow.hub, "")
    rows = session.execute(
        select(PoolRow.accelerator, PoolRow.province, hub, func.min(PoolRow.vendor),
               func.min(PoolRow.device_kind), func.count(), func.sum(PoolRow.device_count),
               func.sum(PoolRow.free_devices), func.max(PoolRow.free_devices),
               func.min(PoolRow.price_fen_per_device_hour), *unit_columns)
        .where(PoolRow.state == PoolState.ACTIVE.value)
        .group_by(PoolRow.accelerator, PoolRow.province, hub)
        .order_by(PoolRow.accelerator, PoolRow.province, hub)
        .limit(limit)).all()
    groups = []
    for row in rows:
        (accelerator, province, hub_name, vendor, kind, pools, devices, free, max_free,
         price, *units) = row
        groups.append(CatalogGroup(
            origin="", accelerator=accelerator, province=province, hub=hub_name or "",
            vendor=vendor, device_kind=kind, pools=int(pools), devices=int(devices or 0),
            free_devices=int(free or 0), max_free_in_pool=int(max_free or 0),
            min_price_fen_per_device_hour=int(price or 0),
            min_unit_prices={c: decimal_text(u) for c, u in zip(_CLASSES, units, strict=True)
                             if u is not None}))
    return groups


def get_origin(session: Session, origin: str) -> CatalogOrigin | None:
    row = session.get(CatalogOriginRow, origin)
    return None if row is None else _record(CatalogOrigin, row)


def save_origin(session: Session, origin: CatalogOrigin) -> None:
    _save(session, CatalogOriginRow, origin.origin, origin)


def list_origins(session: Session, limit: int = MAX_ROWS) -> list[CatalogOrigin]:
    """Every origin whose summary is held here."""
    return [_record(CatalogOrigin, row) for row in session.scalars(
        select(CatalogOriginRow).limit(limit))]


def replace_groups(session: Session, origin: str, groups: Sequence[CatalogGroup]) -> None:
    """Drop an origin's groups and write these instead."""
    session.execute(delete(CatalogSummaryRow).where(CatalogSummaryRow.origin == origin))
    if groups:
        session.execute(insert(CatalogSummaryRow), [_values(g) for g in groups])


def groups_of(session: Session, origin: str, limit: int = MAX_ROWS) -> list[CatalogGroup]:
    """One origin's groups, by accelerator, province and hub."""
    return [_record(CatalogGroup, row) for row in session.scalars(
        select(CatalogSummaryRow).where(CatalogSummaryRow.origin == origin)
        .order_by(CatalogSummaryRow.accelerator, CatalogSummaryRow.province,
                  CatalogSummaryRow.hub).limit(limit))]


def delete_origin(session: Session, origin: str) -> None:
    """Forget an origin: its groups and its freshness."""
    session.execute(delete(CatalogSummaryRow).where(CatalogSummaryRow.origin == origin))
    session.execute(delete(CatalogOriginRow).where(CatalogOriginRow.origin == origin))


def query_groups(session: Session, *, accelerator: str | None, vendor: str | None,
                 device_kind: str | None, province: str | None, hub: str | None,
                 platform: str | None, min_free_devices: int, limit: int
                 ) -> list[tuple[CatalogGroup, CatalogOrigin]]:
    """Groups over the whole tree held here, cheapest first, each with its origin's freshness;
    `platform` takes that platform and its subtree, `vendor` is matched without case."""
    stmt = (select(CatalogSummaryRow, CatalogOriginRow)
            .join(CatalogOriginRow, CatalogOriginRow.origin == CatalogSummaryRow.origin))
    if accelerator:
        stmt = stmt.where(CatalogSummaryRow.accelerator == accelerator)
    if vendor:
        stmt = stmt.where(func.lower(CatalogSummaryRow.vendor) == vendor.lower())
    if device_kind:
        stmt = stmt.where(CatalogSummaryRow.device_kind == device_kind)
    if province:
        stmt = stmt.where(CatalogSummaryRow.province == province)
    if hub:
        stmt = stmt.where(CatalogSummaryRow.hub == hub)
    if platform:
        stmt = stmt.where((CatalogSummaryRow.origin == platform)
                          | CatalogSummaryRow.origin.startswith(platform + "."))
    if min_free_devices:
        stmt = stmt.where(CatalogSummaryRow.free_devices >= min_free_devices)
    stmt = stmt.order_by(CatalogSummaryRow.min_price_fen_per_device_hour,
                         CatalogSummaryRow.origin, CatalogSummaryRow.accelerator,
                         CatalogSummaryRow.province, CatalogSummaryRow.hub)
    return [(_record(CatalogGroup, row), _record(CatalogOrigin, origin))
            for row, origin in session.execute(stmt.limit(limit)).all()]


def remote_groups(session: Session, own: str, *, min_free_in_pool: int,
                  accelerators: list[str] | None, provinces: Sequence[str] | None,
                  limit: int) -> list[CatalogOffer]:
    """Other active platforms' groups (with an endpoint) whose largest pool has
    `min_free_in_pool` free devices, of these accelerators and provinces when given."""
    stmt = (select(CatalogSummaryRow, CatalogOriginRow.generated_at)
            .join(CatalogOriginRow, CatalogOriginRow.origin == CatalogSummaryRow.origin)
            .join(FederationPlatformRow,
                  FederationPlatformRow.authority == CatalogSummaryRow.origin)
            .where(CatalogSummaryRow.origin != own, FederationPlatformRow.state == "active",
                   FederationPlatformRow.endpoint.is_not(None),
                   CatalogSummaryRow.max_free_in_pool >= min_free_in_pool))
    if accelerators is not None:
        stmt = stmt.where(CatalogSummaryRow.accelerator.in_(accelerators))
    if provinces:
        stmt = stmt.where(CatalogSummaryRow.province.in_(provinces))
    return [CatalogOffer(_record(CatalogGroup, row), generated_at)
            for row, generated_at in session.execute(stmt.limit(limit)).all()]


# -- forwarded jobs: the home side -----------------------------------------------------------

def get_forward(session: Session, job_id: str, attempt: int) -> ForwardedJob | None:
    row = session.get(RoamingJobRow, (job_id, attempt))
    return None if row is None else _record(ForwardedJob, row)


def lock_forward(session: Session, job_id: str, attempt: int) -> ForwardedJob | None:
    """One forward attempt, its row locked FOR UPDATE (records of it are judged in turn)."""
    row = session.get(RoamingJobRow, (job_id, attempt), with_for_update=True)
    return None if row is None else _record(ForwardedJob, row)


def save_forward(session: Session, forward: ForwardedJob) -> None:
    _save(session, RoamingJobRow, (forward.job_id, forward.attempt), forward)


def forwards_of_job(session: Session, job_id: str, limit: int = 1000) -> list[ForwardedJob]:
    """A job's forward attempts, by attempt."""
    return [_record(ForwardedJob, row) for row in session.scalars(
        select(RoamingJobRow).where(RoamingJobRow.job_id == job_id)
        .order_by(RoamingJobRow.attempt).limit(limit))]


def open_forward(session: Session, job_id: str, states: Sequence[str]) -> ForwardedJob | None:
    """A forward attempt of the job in one of `states`, if any."""
    row = session.scalar(select(RoamingJobRow).where(RoamingJobRow.job_id == job_id,
                                                     RoamingJobRow.state.in_(states)))
    return None if row is None else _record(ForwardedJob, row)


def forwards_of_cancelled_jobs(session: Session, states: Sequence[str], cancelled: str,
                               limit: int) -> list[ForwardedJob]:
    """Forwards in `states` not asked to cancel yet whose job is in state `cancelled`."""
    return [_record(ForwardedJob, row) for row in session.scalars(
        select(RoamingJobRow).join(JobRow, JobRow.id == RoamingJobRow.job_id)
        .where(RoamingJobRow.state.in_(states), RoamingJobRow.cancel_requested.is_(False),
               JobRow.state == cancelled).limit(limit))]


def forwards_created_before(session: Session, state: str, before: datetime,
                            limit: int) -> list[ForwardedJob]:
    return [_record(ForwardedJob, row) for row in session.scalars(
        select(RoamingJobRow).where(RoamingJobRow.state == state,
                                    RoamingJobRow.created_at < before).limit(limit))]


def forwards_due(session: Session, states: Sequence[str], now: datetime,
                 limit: int) -> list[ForwardedJob]:
    """Forwards in `states` whose next try is due, earliest first."""
    return [_record(ForwardedJob, row) for row in session.scalars(
        select(RoamingJobRow).where(RoamingJobRow.state.in_(states),
                                    RoamingJobRow.next_try_at <= now)
        .order_by(RoamingJobRow.next_try_at).limit(limit))]


# -- forwarded jobs: the host side -----------------------------------------------------------

def get_guest_job(session: Session, home: str, home_job_id: str,
                  attempt: int) -> GuestJob | None:
    row = session.get(GuestJobRow, (home, home_job_id, attempt))
    return None if row is None else _record(GuestJob, row)


def save_guest_job(session: Session, guest: GuestJob) -> None:
    _save(session, GuestJobRow, (guest.home, guest.home_job_id, guest.attempt), guest)


def guest_jobs_to_push(session: Session, accepted: str, limit: int) -> list[GuestJob]:
    """Accepted guest jobs with a push planned, soonest first."""
    return [_record(GuestJob, row) for row in session.scalars(
        select(GuestJobRow).where(GuestJobRow.outcome == accepted,
                                  GuestJobRow.next_push_at.is_not(None))
        .order_by(GuestJobRow.next_push_at).limit(limit))]


def guest_jobs_moved(session: Session, accepted: str, limit: int) -> list[GuestJob]:
    """Accepted guest jobs with no push planned whose job's state is not the one pushed."""
    return [_record(GuestJob, row) for row in session.scalars(
        select(GuestJobRow).join(JobRow, JobRow.id == GuestJobRow.job_id)
        .where(GuestJobRow.outcome == accepted, GuestJobRow.next_push_at.is_(None),
               or_(GuestJobRow.pushed_state.is_(None), JobRow.state != GuestJobRow.pushed_state))
        .limit(limit))]
