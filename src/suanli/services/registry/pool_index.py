"""The per-process search index: the pools' static columns in memory, reloaded when stale.

Freshness: triggers (migration 0006) change `search_generation` in every transaction that
writes a searchable pool column, in any process. Each search reads that row (one primary-key
read) and uses the columns only if they were loaded at the same value; otherwise it reloads
them first. Free devices are never held here (see domain.pool_order).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from suanli.adapters.store.database import READS_ONLY, engine_of
from suanli.adapters.store.repositories import registry as repo
from suanli.domain.pool_order import CATEGORIES, DecimalKeys, PoolColumns
from suanli.domain.units import WORKLOAD_CLASSES

log = logging.getLogger(__name__)

# After a failed background reload, searches use SQL for this long before it is tried again.
RELOAD_RETRY_S = 10.0

# Numeric(18, 4) and Numeric(5, 4): four decimal places, so value * 10**4 is an exact integer.
DECIMAL_SCALE = 4

# The columns read; migration 0006's triggers watch each of them (a unit test checks).
INDEXED_COLUMNS = (*CATEGORIES, "id", "memory_gb", "price_fen_per_device_hour", "device_count",
                   "units_per_device_hour", *(f"fen_per_unit_hour_{c}" for c in WORKLOAD_CLASSES),
                   "green_share", "geo_x", "geo_y", "geo_z")


@dataclass(frozen=True)
class _Loaded:
    generation: int | None
    columns: PoolColumns


class PoolIndex:
    """Shared by the threads of one process; a loaded set of columns is never modified.

    `background=True` (what a serving node uses): a stale index is reloaded by a thread of its
    own while searches are answered in SQL, so no request waits for a reload (about 1.2 s at
    100,000 pools). `background=False` reloads in the search that finds it stale (tests and
    benchmarks, which want the index used at once).
    """

    def __init__(self, *, background: bool = False) -> None:
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._background = background
        self._retry_at = 0.0
        self.loads = 0  # how many times the columns were (re)loaded, for tests and benchmarks
        self.served = 0  # searches ordered by the index (approximate under threads)

    def columns(self, session: Session) -> PoolColumns | None:
        """The columns as of the generation this session sees, loaded first if need be; None
        while they are being loaded (that search is answered in SQL meanwhile)."""
        generation = _generation(session)
        loaded = self._loaded
        if loaded is not None and loaded.generation == generation:
            self.served += 1
            return loaded.columns
        if time.monotonic() < self._retry_at or not self._lock.acquire(blocking=False):
            return None
        if self._background:
            self._start_reload(engine_of(session))
            return None
        try:
            loaded = self._loaded
            if loaded is None or loaded.generation != generation:
                # Read after the generation, so the columns are at least as new as the label;
                # a write in between only causes one more reload.
                loaded = _Loaded(generation, load_columns(session))
                self._loaded = loaded
                self.loads += 1
            self.served += 1
            return loaded.columns
        finally:
            self._lock.release()

    def warm(self, engine: Engine) -> None:
        """Start loading in the background now (a node's start), if nobody is loading yet."""
        if self._lock.acquire(blocking=False):
            self._start_reload(engine)

    def _start_reload(self, engine: Engine) -> None:
        """With the lock held: reload in a thread of its own, which releases the lock."""
        threading.Thread(target=self._reload, args=(engine,), name="suanli-search-index",
                         daemon=True).start()

    def _reload(self, engine: Engine) -> None:
        try:
            with Session(engine) as session, session.begin():
                # A snapshot without the write lock: writers go on while it loads (SQLite).
                session.connection(execution_options={READS_ONLY: True})
                generation = _generation(session)
                self._loaded = _Loaded(generation, load_columns(session))
                self.loads += 1
        except Exception:  # noqa: BLE001 - a failed reload must not take searches down
            log.exception("reloading the search index failed; searches use SQL meanwhile")
            self._retry_at = time.monotonic() + RELOAD_RETRY_S
        finally:
            self._lock.release()


def _generation(session: Session) -> int | None:
    return repo.search_generation(session)


def load_columns(session: Session) -> PoolColumns:
    """Every non-retired pool's searchable facts, in the database's id order."""
    decimals = {"units_per_device_hour", "green_share",
                *(f"fen_per_unit_hour_{c}" for c in WORKLOAD_CLASSES)}
    # SQLite stores these decimals as doubles and compares the doubles: they come as such.
    rows, exact = repo.searchable_columns(session, INDEXED_COLUMNS, decimals)
    values = dict(zip(INDEXED_COLUMNS, zip(*rows), strict=True)) if rows else \
        {name: () for name in INDEXED_COLUMNS}
    codes, vocabulary = {}, {}
    for category in CATEGORIES:
        codes[category], vocabulary[category] = _encode(values[category])
    units = np.array([float(u) for u in values["units_per_device_hour"]], dtype=np.float64)
    scale = DECIMAL_SCALE if exact else None
    return PoolColumns(
        ids=list(values["id"]), codes=codes, vocabulary=vocabulary,
        memory_gb=np.array([np.nan if m is None else m for m in values["memory_gb"]],
                           dtype=np.float64),
        price_fen_per_device_hour=np.array(values["price_fen_per_device_hour"], dtype=np.int64),
        capacity_units=np.array(values["device_count"], dtype=np.float64) * units,
        unit_price={c: DecimalKeys.of(values[f"fen_per_unit_hour_{c}"], scale)
                    for c in WORKLOAD_CLASSES},
        green_share=DecimalKeys.of(values["green_share"], scale),
        geo=np.array([values["geo_x"], values["geo_y"], values["geo_z"]],
                     dtype=np.float64).reshape(3, -1).T.copy(),
    )


def _encode(values: tuple) -> tuple[np.ndarray, dict[str | None, int]]:
    vocabulary: dict[str | None, int] = {}
    codes = np.fromiter((vocabulary.setdefault(v, len(vocabulary)) for v in values),
                        dtype=np.int32, count=len(values))
    return codes, vocabulary
