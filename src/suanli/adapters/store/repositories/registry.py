"""The registry in the database: providers, sites, pools, identifier counters, delegations
and calibrations; pure records in (`suanli.domain.registry`), pure records out.

Locks: `next_serial` takes the counter's row lock (PostgreSQL) or the write lock (SQLite) with
its UPDATE, held to the end of the caller's transaction; nothing else here locks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    SQLColumnExpression,
    and_,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from suanli.adapters.store.calibration_tables import CalibrationRow
from suanli.adapters.store.database import engine_of
from suanli.adapters.store.tables import (
    DelegationRow,
    IdCounter,
    PoolRow,
    ProviderRow,
    SearchGenerationRow,
    SiteRow,
)
from suanli.domain.geo import unit_vector
from suanli.domain.registry import (
    CalibrationRecord,
    DelegationRecord,
    PoolRecord,
    ProviderRecord,
    SitePosition,
    SiteRecord,
)
from suanli.domain.resources import PoolState
from suanli.domain.search import PoolQuery, SortKey

MAX_ROWS = 10_000  # rows one bounded read returns
MAX_IN_LIST = 5_000  # ids in one IN (...)

R = TypeVar("R")


def _names(record_or_kind: Any) -> list[str]:
    return [f.name for f in fields(record_or_kind)]


def _record(kind: type[R], row: object) -> R:
    """The record of type `kind` made of the row's attributes of the same names."""
    return kind(**{name: getattr(row, name) for name in _names(kind)})


def _values(record: object) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _names(record)}


def _write(row: object, record: object) -> None:
    for name, value in _values(record).items():
        setattr(row, name, value)


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


# -- identifier counters -----------------------------------------------------------------------

def next_serial(session: Session, parent: str, kind: str) -> int | None:
    """Take the counter's next serial (locking its row), or None when it does not exist yet."""
    serial = session.execute(
        update(IdCounter)
        .where(IdCounter.parent == parent, IdCounter.kind == kind)
        .values(next_serial=IdCounter.next_serial + 1)
        .returning(IdCounter.next_serial)
    ).scalar_one_or_none()
    return None if serial is None else serial - 1


def create_counter(session: Session, parent: str, kind: str) -> bool:
    """Create the counter at 2 (serial 1 is the caller's); False if another won the race."""
    dialect = session.get_bind().dialect.name
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(IdCounter) if dialect == "postgresql" else sqlite.insert(IdCounter))
    inserted = session.execute(
        insert
        .values(parent=parent, kind=kind, next_serial=2)
        .on_conflict_do_nothing()
        .returning(IdCounter.next_serial)
    ).scalar_one_or_none()
    return inserted is not None


def last_serial(session: Session, parent: str, kind: str) -> int:
    """The last serial handed out (0: none yet)."""
    value = session.scalar(
        select(IdCounter.next_serial).where(IdCounter.parent == parent, IdCounter.kind == kind))
    return 0 if value is None else value - 1


@contextmanager
def committed_at_once(session: Session) -> Iterator[Session]:
    """A transaction of its own on the session's database that commits when the block ends.

    On SQLite, the session itself: the caller's transaction holds the file's one write lock
    from its BEGIN IMMEDIATE, and a second connection would wait for it until busy_timeout.
    """
    if is_sqlite(session):
        yield session
        return
    with Session(engine_of(session)) as own, own.begin():
        yield own


# -- providers ---------------------------------------------------------------------------------

def insert_provider(session: Session, provider: ProviderRecord) -> None:
    session.add(ProviderRow(**_values(provider)))
    session.flush()


def get_provider(session: Session, provider_id: str) -> ProviderRecord | None:
    row = session.get(ProviderRow, provider_id)
    return None if row is None else _record(ProviderRecord, row)


def save_provider(session: Session, provider: ProviderRecord) -> None:
    """Write a changed provider over its stored row."""
    row = session.get(ProviderRow, provider.id)
    assert row is not None
    _write(row, provider)


def list_providers(session: Session, *, tenant_id: str | None, include_retired: bool,
                   limit: int, offset: int) -> list[ProviderRecord]:
    """Providers in creation order."""
    assert 1 <= limit <= MAX_ROWS
    stmt = select(ProviderRow).order_by(ProviderRow.created_at, ProviderRow.id)
    if tenant_id:
        stmt = stmt.where(ProviderRow.tenant_id == tenant_id)
    if not include_retired:
        stmt = stmt.where(ProviderRow.retired.is_(False))
    return [_record(ProviderRecord, row)
            for row in session.scalars(stmt.limit(limit).offset(offset))]


def first_illustrative_provider_tenant(session: Session) -> str | None:
    """The tenant of the oldest illustrative provider (the demo's)."""
    return session.scalar(select(ProviderRow.tenant_id)
                          .where(ProviderRow.illustrative.is_(True))
                          .order_by(ProviderRow.created_at, ProviderRow.id).limit(1))


# -- sites -------------------------------------------------------------------------------------

def insert_site(session: Session, site: SiteRecord) -> None:
    session.add(SiteRow(**_values(site)))
    session.flush()


def get_site(session: Session, site_id: str) -> SiteRecord | None:
    row = session.get(SiteRow, site_id)
    return None if row is None else _record(SiteRecord, row)


def save_site(session: Session, site: SiteRecord) -> None:
    """Write a changed site over its stored row."""
    row = session.get(SiteRow, site.id)
    assert row is not None
    _write(row, site)


def list_sites(session: Session, *, provider_id: str | None, hub: str | None,
               province: str | None, include_retired: bool, limit: int,
               offset: int) -> list[SiteRecord]:
    """Sites in creation order."""
    assert 1 <= limit <= MAX_ROWS
    stmt = select(SiteRow).order_by(SiteRow.created_at, SiteRow.id)
    if provider_id:
        stmt = stmt.where(SiteRow.provider_id == provider_id)
    if hub:
        stmt = stmt.where(SiteRow.hub == hub)
    if province:
        stmt = stmt.where(SiteRow.province == province)
    if not include_retired:
        stmt = stmt.where(SiteRow.retired.is_(False))
    return [_record(SiteRecord, row) for row in session.scalars(stmt.limit(limit).offset(offset))]


def sites_of_provider(session: Session, provider_id: str) -> list[SiteRecord]:
    """Every site of a provider, retired ones too (a provider has few)."""
    return [_record(SiteRecord, row)
            for row in session.scalars(select(SiteRow).where(SiteRow.provider_id == provider_id))]


def site_positions(session: Session, query: PoolQuery) -> list[SitePosition]:
    """Where each non-retired site is whose own facts pass the query's site filters."""
    site_filters: list[ColumnElement[bool]] = [SiteRow.retired.is_(False)]
    if query.province is not None:
        site_filters.append(SiteRow.province == query.province)
    if query.hub is not None:
        site_filters.append(SiteRow.hub == query.hub)
    if query.provider_id is not None:
        site_filters.append(SiteRow.provider_id == query.provider_id)
    if query.min_green_share is not None:
        site_filters.append(SiteRow.green_share >= query.min_green_share)
    return [SitePosition(s.id, s.latitude, s.longitude) for s in session.execute(
        select(SiteRow.id, SiteRow.latitude, SiteRow.longitude).where(*site_filters)).all()]


# -- pools -------------------------------------------------------------------------------------

def _pool(row: PoolRow) -> PoolRecord:
    values = {f.name: getattr(row, f.name) for f in fields(PoolRecord)}
    values["labels"] = dict(row.labels or {})
    return PoolRecord(**values)


def insert_pool(session: Session, pool: PoolRecord) -> None:
    values = _values(pool)
    values["labels"] = dict(pool.labels)
    session.add(PoolRow(**values))
    session.flush()


def get_pool(session: Session, pool_id: str) -> PoolRecord | None:
    row = session.get(PoolRow, pool_id)
    return None if row is None else _pool(row)


def save_pool(session: Session, pool: PoolRecord) -> None:
    """Write a changed pool over its stored row."""
    row = session.get(PoolRow, pool.id)
    assert row is not None
    values = _values(pool)
    values["labels"] = dict(pool.labels)
    for name, value in values.items():
        setattr(row, name, value)


def pools_of_site(session: Session, site_id: str) -> list[PoolRecord]:
    """Every pool of a site, retired ones too."""
    return [_pool(row)
            for row in session.scalars(select(PoolRow).where(PoolRow.site_id == site_id))]


def get_pools(session: Session, pool_ids: Sequence[str]) -> dict[str, PoolRecord]:
    """The pools of these ids that exist, by id."""
    found: dict[str, PoolRecord] = {}
    for start in range(0, len(pool_ids), MAX_IN_LIST):
        chunk = pool_ids[start:start + MAX_IN_LIST]
        found.update((row.id, _pool(row))
                     for row in session.scalars(select(PoolRow).where(PoolRow.id.in_(chunk))))
    return found


def illustrative_pool_ids(session: Session, limit: int) -> list[str]:
    """The illustrative pools that are not retired, in id order."""
    assert 1 <= limit <= MAX_ROWS
    return list(session.scalars(select(PoolRow.id).where(
        PoolRow.illustrative.is_(True), PoolRow.state != PoolState.RETIRED.value)
        .order_by(PoolRow.id).limit(limit)).all())


# -- pool search -------------------------------------------------------------------------------

def _unit_price(query: PoolQuery) -> ColumnElement:
    return getattr(PoolRow, f"fen_per_unit_hour_{query.workload_class}")


def _filters(query: PoolQuery) -> list[ColumnElement[bool]]:
    unit_price = _unit_price(query)
    conditions: list[ColumnElement[bool]] = []
    if query.available_only:
        conditions += [PoolRow.state == PoolState.ACTIVE.value, PoolRow.free_devices > 0]
    else:
        conditions.append(PoolRow.state != PoolState.RETIRED.value)
    equal = {PoolRow.vendor: query.vendor, PoolRow.architecture: query.architecture,
             PoolRow.accelerator: query.accelerator, PoolRow.device_kind: query.device_kind,
             PoolRow.province: query.province, PoolRow.hub: query.hub,
             PoolRow.provider_id: query.provider_id}
    conditions += [column == value for column, value in equal.items() if value is not None]
    if query.min_memory_gb is not None:
        conditions.append(PoolRow.memory_gb >= query.min_memory_gb)
    if query.max_fen_per_device_hour is not None:
        conditions.append(PoolRow.price_fen_per_device_hour <= query.max_fen_per_device_hour)
    if query.max_fen_per_unit_hour is not None:
        conditions.append(unit_price <= query.max_fen_per_unit_hour)
    if query.min_green_share is not None:
        conditions.append(PoolRow.green_share >= query.min_green_share)
    if query.min_units is not None:
        conditions.append(PoolRow.free_devices * PoolRow.units_per_device_hour
                          >= query.min_units)
    return conditions


def _equality(query: PoolQuery) -> list[ColumnElement[bool]]:
    pairs = {PoolRow.vendor: query.vendor, PoolRow.accelerator: query.accelerator,
             PoolRow.province: query.province, PoolRow.hub: query.hub,
             PoolRow.provider_id: query.provider_id}
    return [column == value for column, value in pairs.items() if value is not None]


def _order(query: PoolQuery, *, unindexed: bool = False) -> list[ColumnElement]:
    def key(column: SQLColumnExpression[Any]) -> SQLColumnExpression[Any]:
        # "+ 0" keeps the value and the order but hides the column from the planner's choice
        # of a sort index (SQLite and PostgreSQL alike), so it reads the filter index instead.
        return column + 0 if unindexed else column

    if query.sort is SortKey.PRICE_PER_UNIT:
        primary = key(_unit_price(query)).asc().nulls_last()
    elif query.sort is SortKey.PRICE:
        primary = key(PoolRow.price_fen_per_device_hour).asc()
    elif query.sort is SortKey.GREEN:
        primary = key(PoolRow.green_share).desc()
    elif query.sort is SortKey.FREE:
        primary = key(PoolRow.free_devices).desc()
    else:
        assert query.near is not None
        x, y, z = unit_vector(*query.near)
        d_x, d_y, d_z = PoolRow.geo_x - x, PoolRow.geo_y - y, PoolRow.geo_z - z
        primary = (d_x * d_x + d_y * d_y + d_z * d_z).asc()
    return [primary, PoolRow.id.asc()]


def count_equal_pools(session: Session, query: PoolQuery, cap: int) -> int | None:
    """How many pools pass the query's equality filters, counted up to `cap + 1`; None when
    the query has no equality filter."""
    equality = _equality(query)
    if not equality:
        return None
    return session.scalar(select(func.count()).select_from(
        select(PoolRow.id).where(*equality).limit(cap + 1).subquery())) or 0


def search_pools(session: Session, query: PoolQuery, *, unindexed: bool) -> list[PoolRecord]:
    """The query's page and one pool more, in its order; `unindexed` sorts without the sort
    index (for queries whose equality filters leave few pools)."""
    stmt: Select = (select(PoolRow).where(and_(*_filters(query)))
                    .order_by(*_order(query, unindexed=unindexed))
                    .limit(query.limit + 1).offset(query.offset))
    return [_pool(row) for row in session.scalars(stmt)]


def search_pools_at_sites(session: Session, query: PoolQuery, site_ids: Sequence[str],
                          limit: int) -> list[PoolRecord]:
    """The first `limit` pools of these sites that pass the query, in its order."""
    stmt = (select(PoolRow).where(and_(*_filters(query)), PoolRow.site_id.in_(site_ids))
            .order_by(*_order(query)).limit(limit))
    return [_pool(row) for row in session.scalars(stmt)]


def pool_ids_passing(session: Session, query: PoolQuery, pool_ids: Sequence[str]) -> set[str]:
    """Those of the ids whose pools pass every filter of the query, free devices included."""
    if not pool_ids:
        return set()
    return set(session.scalars(select(PoolRow.id).where(PoolRow.id.in_(pool_ids),
                                                        *_filters(query))))


def count_pools(session: Session, query: PoolQuery) -> int:
    return session.scalar(select(func.count()).select_from(PoolRow)
                          .where(and_(*_filters(query)))) or 0


def search_generation(session: Session) -> int | None:
    """The value the triggers change whenever a pool's searchable facts change."""
    return session.scalar(select(SearchGenerationRow.generation)
                          .where(SearchGenerationRow.id == 1))


def searchable_columns(session: Session, names: Sequence[str], decimals: Iterable[str]
                       ) -> tuple[list[tuple[Any, ...]], bool]:
    """The named columns of every non-retired pool in id order, and whether the decimal
    columns among them are exact: SQLite stores them as doubles and compares the doubles, so
    there they are read as floats."""
    exact = not is_sqlite(session)
    inexact = set() if exact else set(decimals)

    def column(name: str) -> ColumnElement[Any]:
        attribute = getattr(PoolRow, name)
        return type_coerce(attribute, Float) if name in inexact else attribute

    stmt = (select(*(column(name) for name in names))
            .where(PoolRow.state != PoolState.RETIRED.value).order_by(PoolRow.id))
    return [tuple(row) for row in session.execute(stmt).all()], exact


# -- delegations -------------------------------------------------------------------------------

def get_delegation(session: Session, authority: str) -> DelegationRecord | None:
    row = session.get(DelegationRow, authority)
    return None if row is None else _record(DelegationRecord, row)


def insert_delegation(session: Session, delegation: DelegationRecord) -> None:
    session.add(DelegationRow(**_values(delegation)))


def list_delegations(session: Session, limit: int = MAX_ROWS) -> list[DelegationRecord]:
    """Delegations in authority order."""
    assert 1 <= limit <= MAX_ROWS
    return [_record(DelegationRecord, row) for row in session.scalars(
        select(DelegationRow).order_by(DelegationRow.authority).limit(limit))]


# -- calibrations ------------------------------------------------------------------------------

def insert_calibration(session: Session, calibration: CalibrationRecord) -> CalibrationRecord:
    """Store a calibration; returns it with its id."""
    values = _values(calibration)
    values.pop("id")
    row = CalibrationRow(**values)
    session.add(row)
    session.flush()
    return _record(CalibrationRecord, row)


def list_calibrations(session: Session, pool_id: str, *, limit: int,
                      offset: int) -> list[CalibrationRecord]:
    """A pool's calibrations, latest first."""
    assert 1 <= limit <= MAX_ROWS and offset >= 0
    stmt = (select(CalibrationRow).where(CalibrationRow.pool_id == pool_id)
            .order_by(CalibrationRow.created_at.desc(), CalibrationRow.id.desc())
            .limit(limit).offset(offset))
    return [_record(CalibrationRecord, row) for row in session.scalars(stmt)]


def count_calibrations(session: Session, pool_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(CalibrationRow).where(
        CalibrationRow.pool_id == pool_id)) or 0)
