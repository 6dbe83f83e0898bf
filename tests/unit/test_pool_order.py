"""The in-memory pool ordering: ties by id rank, NULL unit prices last, exact decimal bounds."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import numpy as np

import suanli
from suanli.domain import pool_order
from suanli.domain.search import PoolQuery, SortKey
from suanli.services.registry.pool_index import INDEXED_COLUMNS


def test_first_n_breaks_ties_by_position_even_across_the_cut() -> None:
    keys = np.array([5, 1, 3, 1, 3, 3, 0], dtype=np.int64)
    ordering = pool_order.Ordering(np.arange(7), keys)
    assert ordering.first(7).tolist() == [6, 1, 3, 2, 4, 5, 0]
    for n in range(8):
        assert ordering.first(n).tolist() == [6, 1, 3, 2, 4, 5, 0][:n]


def test_exact_decimal_bounds_keep_the_boundary_pool_and_only_it() -> None:
    keys = pool_order.DecimalKeys(np.array([1234567, 1234568, np.iinfo(np.int64).max]), 4)
    assert keys.at_most(Decimal("123.4567")).tolist() == [True, False, False]
    assert keys.at_most(Decimal("123.45679")).tolist() == [True, False, False]
    assert keys.at_most(Decimal("123.45681")).tolist() == [True, True, False]
    assert keys.at_least(Decimal("123.45671")).tolist() == [False, True, True]


def _columns(unit_prices: list[float | None]) -> pool_order.PoolColumns:
    n = len(unit_prices)
    codes = {c: np.zeros(n, dtype=np.int32) for c in pool_order.CATEGORIES}
    vocabulary = {c: {"active" if c == "state" else "x": 0} for c in pool_order.CATEGORIES}
    prices = pool_order.DecimalKeys(
        np.array([np.inf if p is None else p for p in unit_prices]), None)
    return pool_order.PoolColumns(
        ids=[f"p{i}" for i in range(n)], codes=codes, vocabulary=vocabulary,
        memory_gb=np.full(n, np.nan), price_fen_per_device_hour=np.zeros(n, dtype=np.int64),
        capacity_units=np.ones(n), unit_price={"general": prices}, green_share=prices,
        geo=np.zeros((n, 3)))


def test_pools_without_a_unit_price_sort_last_in_id_order() -> None:
    columns = _columns([None, 2.5, None, 1.0])
    query = PoolQuery(sort=SortKey.PRICE_PER_UNIT)
    matches = pool_order.matches(columns, query)
    assert pool_order.ordering(columns, query, matches).first(4).tolist() == [3, 1, 0, 2]
    # Unknown memory fails a memory floor, as NULL does in SQL; an unknown value matches nothing.
    assert pool_order.matches(columns, PoolQuery(min_memory_gb=1)).size == 0
    assert pool_order.matches(columns, PoolQuery(vendor="nobody")).size == 0


def test_every_indexed_column_is_watched_by_the_generation_triggers() -> None:
    path = (Path(suanli.__file__).parent / "migrations" / "versions"
            / "0006_search_generation.py")
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert set(INDEXED_COLUMNS) <= set(migration.WATCHED_COLUMNS)
