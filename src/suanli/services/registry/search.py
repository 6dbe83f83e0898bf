"""Pool search over the registry: filtered, sorted, paginated, answered from one table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, func, select
from sqlalchemy.orm import Session

from suanli.adapters.store.tables import PoolRow, SiteRow
from suanli.domain import pool_order
from suanli.domain.geo import rtt_ms, unit_vector
from suanli.domain.resources import PoolState
from suanli.domain.search import PoolQuery, SortKey
from suanli.services.registry.pool_index import PoolIndex


@dataclass(frozen=True)
class PoolHit:
    pool: PoolRow
    fen_per_unit_hour: Decimal | None
    latency_ms: float | None


@dataclass(frozen=True)
class PoolPage:
    items: list[PoolHit]
    next_offset: int | None


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


# When the equality filters leave at most this many pools, reading them through their own
# index and sorting them beats walking the sort index past rows that fail the filters.
SELECTIVE_MATCHES = 4_000


def _equality(query: PoolQuery) -> list[ColumnElement[bool]]:
    pairs = {PoolRow.vendor: query.vendor, PoolRow.accelerator: query.accelerator,
             PoolRow.province: query.province, PoolRow.hub: query.hub,
             PoolRow.provider_id: query.provider_id}
    return [column == value for column, value in pairs.items() if value is not None]


def _selective(session: Session, query: PoolQuery) -> bool:
    equality = _equality(query)
    if not equality:
        return False
    matches = session.scalar(select(func.count()).select_from(
        select(PoolRow.id).where(*equality).limit(SELECTIVE_MATCHES + 1).subquery()))
    return (matches or 0) <= SELECTIVE_MATCHES


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


# Nearest sites tried per round of a latency search: small first, then wider.
SITE_ROUNDS = (16, 128, 1024)


def _rows_by_latency(session: Session, query: PoolQuery) -> list[PoolRow]:
    """Pools in order of distance, found by widening rings of nearest sites.

    Sorting every matching pool by distance costs a full scan; instead the sites (far fewer
    than pools) are ranked in Python and pools are fetched, by the site index, from the
    nearest sites first. A round is complete when it holds a whole page, because every pool
    of a farther site is at least as far as the farthest site already searched.
    """
    assert query.near is not None
    x, y, z = unit_vector(*query.near)
    site_filters: list[ColumnElement[bool]] = [SiteRow.retired.is_(False)]
    # Filters that are facts of the site narrow the rings before any pool is read.
    if query.province is not None:
        site_filters.append(SiteRow.province == query.province)
    if query.hub is not None:
        site_filters.append(SiteRow.hub == query.hub)
    if query.provider_id is not None:
        site_filters.append(SiteRow.provider_id == query.provider_id)
    if query.min_green_share is not None:
        site_filters.append(SiteRow.green_share >= query.min_green_share)
    sites = session.execute(select(SiteRow.id, SiteRow.latitude, SiteRow.longitude)
                            .where(*site_filters)).all()
    distances = sorted((_chord2(unit_vector(s.latitude, s.longitude), x, y, z), s.id)
                       for s in sites)
    wanted = query.offset + query.limit + 1
    for size in (*SITE_ROUNDS, len(distances)):
        # A ring ends between two distances, never inside a tie: sites in one city share a
        # distance, and a pool of a left-out one could sort (by id) before a chosen one's.
        while 0 < size < len(distances) and distances[size][0] == distances[size - 1][0]:
            size += 1
        chosen = [site_id for _, site_id in distances[:size]]
        stmt = (select(PoolRow).where(and_(*_filters(query)), PoolRow.site_id.in_(chosen))
                .order_by(*_order(query)).limit(wanted))
        rows = list(session.scalars(stmt))
        if len(rows) >= wanted or size >= len(distances):
            return rows[query.offset:]
    return []


def _chord2(point: tuple[float, float, float], x: float, y: float, z: float) -> float:
    # The SQL sort's arithmetic exactly, so a site's pools and the site rank alike.
    d_x, d_y, d_z = point[0] - x, point[1] - y, point[2] - z
    return d_x * d_x + d_y * d_y + d_z * d_z


# The index path checks candidates against the database in at most this many rounds of at
# most this many ids; a search whose dynamic filters reject more than that goes to SQL.
INDEX_ROUNDS = 4
INDEX_ROUND_IDS = 5_000


def _rows_from_index(session: Session, query: PoolQuery, index: PoolIndex) -> list[PoolRow] | None:
    """The page (from the offset, up to limit + 1 rows) in the order the index computes, each
    candidate checked by the database against every filter, free devices included; None when
    the rounds run out first."""
    columns = index.columns(session)
    if columns is None:
        return None
    ordering = pool_order.ordering(columns, query, pool_order.matches(columns, query))
    wanted = query.offset + query.limit + 1
    valid: list[str] = []
    examined = 0
    batch = min(INDEX_ROUND_IDS, wanted + wanted // 2 + 16)
    for _ in range(INDEX_ROUNDS):
        ids = [columns.ids[p] for p in ordering.first(examined + batch)[examined:]]
        checked = select(PoolRow.id).where(PoolRow.id.in_(ids), *_filters(query))
        passed = set(session.scalars(checked)) if ids else set()
        valid += [pool_id for pool_id in ids if pool_id in passed]
        examined += len(ids)
        if len(valid) >= wanted or examined >= len(ordering.positions):
            break
        # Size the next round by the share of candidates that passed so far.
        needed = (wanted - len(valid)) * examined / max(len(valid), 1)
        batch = min(INDEX_ROUND_IDS, int(needed * 1.5) + 16)
    else:
        return None
    page = valid[query.offset:wanted]
    rows = {row.id: row for row in session.scalars(select(PoolRow).where(PoolRow.id.in_(page)))}
    return [rows[pool_id] for pool_id in page if pool_id in rows]


def _rows_from_sql(session: Session, query: PoolQuery) -> list[PoolRow]:
    if query.sort is SortKey.LATENCY:
        return _rows_by_latency(session, query)
    order = _order(query, unindexed=_selective(session, query))
    stmt: Select = (select(PoolRow).where(and_(*_filters(query))).order_by(*order)
                    .limit(query.limit + 1).offset(query.offset))
    return list(session.scalars(stmt))


def search_pools(session: Session, query: PoolQuery, index: PoolIndex | None = None) -> PoolPage:
    """A page of matching pools. With an index, its order is computed in memory and only the
    free-device filters are checked by the database; sorting by free devices always uses SQL."""
    rows = None
    if index is not None and query.sort is not SortKey.FREE:
        rows = _rows_from_index(session, query, index)
    if rows is None:
        rows = _rows_from_sql(session, query)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    hits = [PoolHit(row, getattr(row, f"fen_per_unit_hour_{query.workload_class}"),
                    None if query.near is None
                    else round(rtt_ms(query.near[0], query.near[1], row.latitude, row.longitude),
                               1))
            for row in rows]
    return PoolPage(hits, query.offset + query.limit if more else None)


def count_pools(session: Session, query: PoolQuery) -> int:
    return session.scalar(select(func.count()).select_from(PoolRow)
                          .where(and_(*_filters(query)))) or 0
