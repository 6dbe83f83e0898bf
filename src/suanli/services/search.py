"""Pool search over the registry: filtered, sorted, paginated, answered from one table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from suanli.adapters.store.tables import PoolRow
from suanli.domain.geo import rtt_ms, unit_vector
from suanli.domain.resources import PoolState
from suanli.domain.search import PoolQuery, SortKey


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


def _order(query: PoolQuery) -> list[ColumnElement]:
    if query.sort is SortKey.PRICE_PER_UNIT:
        primary = _unit_price(query).asc().nulls_last()
    elif query.sort is SortKey.PRICE:
        primary = PoolRow.price_fen_per_device_hour.asc()
    elif query.sort is SortKey.GREEN:
        primary = PoolRow.green_share.desc()
    elif query.sort is SortKey.FREE:
        primary = PoolRow.free_devices.desc()
    else:
        assert query.near is not None
        x, y, z = unit_vector(*query.near)
        d_x, d_y, d_z = PoolRow.geo_x - x, PoolRow.geo_y - y, PoolRow.geo_z - z
        primary = (d_x * d_x + d_y * d_y + d_z * d_z).asc()
    return [primary, PoolRow.id.asc()]


def search_pools(session: Session, query: PoolQuery) -> PoolPage:
    stmt: Select = (select(PoolRow).where(and_(*_filters(query))).order_by(*_order(query))
                    .limit(query.limit + 1).offset(query.offset))
    rows = list(session.scalars(stmt))
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
