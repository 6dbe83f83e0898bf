"""Pool search over the registry: filtered, sorted, paginated, answered from one table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import registry as repo
from suanli.domain import pool_order
from suanli.domain.geo import rtt_ms, unit_vector
from suanli.domain.registry import PoolRecord
from suanli.domain.search import PoolQuery, SortKey
from suanli.services.registry.pool_index import PoolIndex


@dataclass(frozen=True)
class PoolHit:
    pool: PoolRecord
    fen_per_unit_hour: Decimal | None
    latency_ms: float | None


@dataclass(frozen=True)
class PoolPage:
    items: list[PoolHit]
    next_offset: int | None


# When the equality filters leave at most this many pools, reading them through their own
# index and sorting them beats walking the sort index past rows that fail the filters.
SELECTIVE_MATCHES = 4_000


def _selective(session: Session, query: PoolQuery) -> bool:
    matches = repo.count_equal_pools(session, query, SELECTIVE_MATCHES)
    return matches is not None and matches <= SELECTIVE_MATCHES


# Nearest sites tried per round of a latency search: small first, then wider.
SITE_ROUNDS = (16, 128, 1024)


def _rows_by_latency(session: Session, query: PoolQuery) -> list[PoolRecord]:
    """Pools in order of distance, found by widening rings of nearest sites.

    Sorting every matching pool by distance costs a full scan; instead the sites (far fewer
    than pools) are ranked in Python and pools are fetched, by the site index, from the
    nearest sites first. A round is complete when it holds a whole page, because every pool
    of a farther site is at least as far as the farthest site already searched.
    """
    assert query.near is not None
    x, y, z = unit_vector(*query.near)
    # Filters that are facts of the site narrow the rings before any pool is read.
    sites = repo.site_positions(session, query)
    distances = sorted((_chord2(unit_vector(s.latitude, s.longitude), x, y, z), s.id)
                       for s in sites)
    wanted = query.offset + query.limit + 1
    for size in (*SITE_ROUNDS, len(distances)):
        # A ring ends between two distances, never inside a tie: sites in one city share a
        # distance, and a pool of a left-out one could sort (by id) before a chosen one's.
        while 0 < size < len(distances) and distances[size][0] == distances[size - 1][0]:
            size += 1
        chosen = [site_id for _, site_id in distances[:size]]
        rows = repo.search_pools_at_sites(session, query, chosen, wanted)
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


def _rows_from_index(session: Session, query: PoolQuery,
                     index: PoolIndex) -> list[PoolRecord] | None:
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
        passed = repo.pool_ids_passing(session, query, ids)
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
    rows = repo.get_pools(session, page)
    return [rows[pool_id] for pool_id in page if pool_id in rows]


def _rows_from_sql(session: Session, query: PoolQuery) -> list[PoolRecord]:
    if query.sort is SortKey.LATENCY:
        return _rows_by_latency(session, query)
    return repo.search_pools(session, query, unindexed=_selective(session, query))


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
    return repo.count_pools(session, query)
