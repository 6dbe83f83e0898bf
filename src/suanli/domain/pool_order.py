"""Pool search's ordering over columns held in memory: static filters and the sort, no I/O.

The columns are the pools' searchable facts that only registry writes change. What a lease
changes (free devices) is not here: the caller checks those filters against the database.
So `matches` may keep a pool the database will reject, but never drops one it would accept,
and `Ordering.first` lists pools exactly as SQL's `ORDER BY <key>, id` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
from numpy.typing import NDArray

from suanli.domain.geo import unit_vector
from suanli.domain.resources import PoolState
from suanli.domain.search import PoolQuery, SortKey

CATEGORIES = ("state", "vendor", "architecture", "accelerator", "device_kind", "province", "hub",
              "provider_id")
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class DecimalKeys:
    """A decimal column as order keys: exact integers (value * 10**scale) where the database
    compares decimals exactly (PostgreSQL), or the stored doubles where it compares doubles
    (SQLite); None is the largest key."""

    keys: np.ndarray
    scale: int | None  # None: keys are the database's doubles

    @classmethod
    def of(cls, values: Sequence[Decimal | float | None], scale: int | None) -> DecimalKeys:
        """Keys of a column's values as the database returned them (None for NULL)."""
        keys: NDArray[np.float64] | NDArray[np.int64]
        if scale is None:
            keys = np.array([np.inf if v is None else float(v) for v in values],
                            dtype=np.float64)
        else:
            keys = np.array([_INT64_MAX if v is None else _scaled(v, scale) for v in values],
                            dtype=np.int64)
        return cls(keys, scale)

    def at_most(self, value: Decimal) -> np.ndarray:
        if self.scale is None:
            return self.keys <= float(value)
        bound = (value.scaleb(self.scale)).to_integral_value(ROUND_FLOOR)
        return self.keys <= min(int(bound), _INT64_MAX - 1)

    def at_least(self, value: Decimal) -> np.ndarray:
        if self.scale is None:
            return self.keys >= float(value)
        bound = (value.scaleb(self.scale)).to_integral_value(ROUND_CEILING)
        return self.keys >= min(int(bound), _INT64_MAX - 1)


def _scaled(value: Decimal | float, scale: int) -> int:
    assert isinstance(value, Decimal), "exact keys come from a database that returns decimals"
    scaled = value.scaleb(scale)
    assert scaled == scaled.to_integral_value(), f"{value} has more than {scale} decimals"
    return int(scaled)


@dataclass(frozen=True)
class PoolColumns:
    """Every non-retired pool, one array element each, in the database's `ORDER BY id` order,
    so an element's position is its tie-break rank."""

    ids: list[str]
    codes: dict[str, np.ndarray]  # category -> int32 code per pool
    vocabulary: dict[str, dict[str | None, int]]  # category -> value -> code
    memory_gb: np.ndarray  # float64, NaN where unknown
    price_fen_per_device_hour: np.ndarray  # int64
    capacity_units: np.ndarray  # float64: device_count * units_per_device_hour
    unit_price: dict[str, DecimalKeys]  # workload class -> fen per unit-hour
    green_share: DecimalKeys
    geo: np.ndarray  # (n, 3) float64 unit vectors

    def __len__(self) -> int:
        return len(self.ids)

    def nbytes(self) -> int:
        """Memory held, ids included (a str object and a list slot each)."""
        arrays = [*self.codes.values(), self.memory_gb, self.price_fen_per_device_hour,
                  self.capacity_units, self.green_share.keys, self.geo,
                  *(k.keys for k in self.unit_price.values())]
        ids = sum(len(i) + 49 + 8 for i in self.ids)  # CPython compact ASCII str + pointer
        return sum(a.nbytes for a in arrays) + ids


def matches(columns: PoolColumns, query: PoolQuery) -> np.ndarray:
    """Positions of pools that may match: every filter on a fact held here, a superset of the
    rest. Ascending, so ties in a stable sort stay in id order."""
    mask = np.ones(len(columns), dtype=bool)
    wanted = {"state": PoolState.ACTIVE.value if query.available_only else None,
              "vendor": query.vendor, "architecture": query.architecture,
              "accelerator": query.accelerator, "device_kind": query.device_kind,
              "province": query.province, "hub": query.hub, "provider_id": query.provider_id}
    for category, value in wanted.items():
        if value is None:
            continue
        code = columns.vocabulary[category].get(value)
        if code is None:
            return np.empty(0, dtype=np.int64)
        mask &= columns.codes[category] == code
    if query.min_memory_gb is not None:
        mask &= columns.memory_gb >= query.min_memory_gb  # NaN (unknown) fails, as NULL does
    if query.max_fen_per_device_hour is not None:
        mask &= columns.price_fen_per_device_hour <= query.max_fen_per_device_hour
    if query.max_fen_per_unit_hour is not None:
        mask &= columns.unit_price[query.workload_class].at_most(query.max_fen_per_unit_hour)
    if query.min_green_share is not None:
        mask &= columns.green_share.at_least(query.min_green_share)
    if query.min_units is not None and query.min_units > 0:
        # Free devices never exceed the device count (the Pool checks it, a lease's give-back
        # clamps it), so a pool whose whole capacity falls short can never match. Loosened
        # a little against float rounding: the database applies the exact test.
        need = float(query.min_units)
        mask &= columns.capacity_units >= need - need * 1e-9 - 1e-9
    return np.flatnonzero(mask)


@dataclass(frozen=True)
class Ordering:
    """Matching positions with their sort keys, ready to yield the first n in order."""

    positions: np.ndarray
    keys: np.ndarray

    def first(self, n: int) -> np.ndarray:
        """Positions of the first n matches by (key, id)."""
        keys, positions = self.keys, self.positions
        if n <= 0:
            return positions[:0]
        if n < len(keys):
            kth = np.partition(keys, n - 1)[n - 1]
            keep = keys <= kth  # every key tied with the n-th, so ties stay whole
            keys, positions = keys[keep], positions[keep]
        # Positions ascend, so the stable sort breaks ties by id.
        return positions[np.argsort(keys, kind="stable")[:n]]


def ordering(columns: PoolColumns, query: PoolQuery, positions: np.ndarray) -> Ordering:
    """Sort keys of the matching positions, smallest first. Not for FREE (dynamic)."""
    if query.sort is SortKey.PRICE_PER_UNIT:
        keys = columns.unit_price[query.workload_class].keys[positions]
    elif query.sort is SortKey.PRICE:
        keys = columns.price_fen_per_device_hour[positions]
    elif query.sort is SortKey.GREEN:
        keys = -columns.green_share.keys[positions]
    elif query.sort is SortKey.LATENCY:
        assert query.near is not None
        x, y, z = unit_vector(*query.near)
        geo = columns.geo[positions]
        d_x, d_y, d_z = geo[:, 0] - x, geo[:, 1] - y, geo[:, 2] - z
        # The same operations in the same order as the SQL expression, so the same doubles.
        keys = d_x * d_x + d_y * d_y + d_z * d_z
    else:
        raise ValueError(f"sort {query.sort} depends on free devices; the database orders it")
    return Ordering(positions, keys)
