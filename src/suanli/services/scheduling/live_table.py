"""The platform's pools as the placement domain's PoolTable: what the live scheduler decides on.

One query reads every active pool with its site (repositories.scheduling.pool_states), one
more the tariffs in force; each pool becomes a `PoolSnapshot` priced with its tariff by hour
of day, so the live path and the simulator decide on the same structure with the same engine.

Freshness: a table is built per scheduling pass (and per lone placement, as a submission's)
from one read, so it is consistent: free devices change with every lease, in any process.
What is slow to build (each pool's snapshot priced by the hour) is cached per process, keyed
by everything it is built from but the free devices, so a pass rebuilds only what changed.
Within a pass the scheduler reserves the devices it leases on the table, so later jobs of
the pass see them taken (docs/placement.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from importlib import resources
from types import MappingProxyType

import numpy as np
from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import billing as billing_repo
from suanli.adapters.store.repositories import scheduling as store
from suanli.catalog import load_catalog, load_cities
from suanli.domain.errors import SuanliError
from suanli.domain.job_records import PoolFacts, SiteEnergy
from suanli.domain.placement import PlacementEngine, PoolSnapshot, PoolTable, make_policy
from suanli.domain.placement.arrays import BoolArray
from suanli.domain.resources import WESTERN_HUBS, Hub
from suanli.domain.tariffs import Tariff
from suanli.services.billing import estimates
from suanli.services.billing import tariffs as tariff_store

POLICY = "balanced"
# The catalog's software stack as users name it (domain.jobs.SOFTWARE_STACKS): Hygon's DTK
# is ROCm-compatible (HIP), so it offers both names.
STACK_NAMES = {"DTK/ROCm": ("DTK", "ROCm"), "XPU SDK": ("XPU",)}
# The national average grid factor (2023, gCO2/kWh) for a province missing from the table.
DEFAULT_CARBON_G_PER_KWH = 570.0
DEFAULT_TDP_W = 300.0
# A pool with no published unit rating cannot be compared per unit: it is given this tiny
# rating, so it scores far behind every rated pool and is chosen only when none can take the job.
UNRATED_UNITS_PER_DEVICE_HOUR = 1e-3


@cache
def _carbon_by_province() -> dict[str, float]:
    text = (resources.files("suanli") / "data" / "china_provincial_emissions_2023.json"
            ).read_text(encoding="utf-8")
    return {code: float(entry["emission_factor"])
            for code, entry in json.loads(text)["data"].items()}


@cache
def _rtt_from(city: str) -> Mapping[str, float]:
    """Modelled RTT from `city` to every city of the table (none if the table lacks it); one
    mapping per city, shared by its pools (never changed)."""
    cities = load_cities()
    try:
        home = cities.city(city)
    except SuanliError:
        return MappingProxyType({})
    return MappingProxyType({other.name: cities.rtt_ms_between(home, other) for other in cities})


@cache
def _device(accelerator: str) -> tuple[frozenset[str], float]:
    """(software stacks, power kW) of a catalog accelerator; none known for an unknown key."""
    try:
        device = load_catalog().get(accelerator)
    except SuanliError:
        return frozenset(), DEFAULT_TDP_W / 1000
    stacks = frozenset(STACK_NAMES.get(device.software_stack, (device.software_stack,))) \
        if device.software_stack else frozenset()
    return stacks, (device.tdp_w or DEFAULT_TDP_W) / 1000


def _units(pool: PoolFacts, workload_class: str) -> float:
    units = float(tariff_store.units_rating(pool, workload_class) or 0)
    return units if units > 0 else UNRATED_UNITS_PER_DEVICE_HOUR


def snapshot(pool: PoolFacts, site: SiteEnergy, tariff: Tariff,
             workload_class: str) -> PoolSnapshot:
    """One pool as the placement domain sees it, priced with the tariff in force."""
    stacks, power_kw = _device(pool.accelerator)
    hub = Hub(pool.hub) if pool.hub else None
    prices = estimates.tariff_device_hour_prices(tariff, pool, workload_class, False)
    spot = estimates.tariff_device_hour_prices(tariff, pool, workload_class, True)
    if len(spot) != len(prices):  # one flat and one banded: both by the hour
        prices, spot = (prices * 24)[:24], (spot * 24)[:24]
    return PoolSnapshot(
        id=pool.id, provider_id=pool.provider_id, site_id=pool.site_id, province=pool.province,
        city=pool.city, accelerator=pool.accelerator, vendor=pool.vendor,
        architecture=pool.architecture, memory_gb=float(pool.memory_gb or 0.0),
        software_stacks=stacks, device_count=pool.device_count,
        free_devices=min(max(pool.free_devices, 0), pool.device_count),
        units_per_device_hour=_units(pool, workload_class), device_power_kw=power_kw,
        pue=float(site.pue), price_fen_per_device_hour=prices,
        electricity_fen_per_kwh=(site.electricity_fen_per_kwh,),
        carbon_g_per_kwh=(_carbon_by_province().get(pool.province,
                                                    DEFAULT_CARBON_G_PER_KWH),),
        spot_price_fen_per_device_hour=spot if spot != prices else None,
        hub=hub, western=hub in WESTERN_HUBS, interconnect=pool.interconnect,
        rtt_ms=_rtt_from(pool.city))


@dataclass
class LiveTable:
    """A PoolTable of the platform's active pools, with the pool records behind its rows."""

    table: PoolTable
    pools: tuple[PoolFacts, ...]  # by table index
    workload_class: str
    device_kind: np.ndarray = field(init=False)
    list_price: np.ndarray = field(init=False)
    reference_units: float = field(init=False)
    engine: PlacementEngine = field(init=False)

    def __post_init__(self) -> None:
        # One engine per table, so the policy's per-hour coefficient caches serve the pass.
        self.engine = PlacementEngine(
            self.table, make_policy(POLICY, self.table, np.random.default_rng(0)),
            preemption=False)
        self.device_kind = np.array([p.device_kind for p in self.pools])
        self.list_price = np.array([p.price_fen_per_device_hour for p in self.pools],
                                   dtype=np.int64)
        rated = self.table.units[self.table.units > UNRATED_UNITS_PER_DEVICE_HOUR]
        self.reference_units = float(np.median(rated)) if len(rated) else 1.0

    def none(self) -> BoolArray:
        return np.zeros(self.table.n, dtype=bool)

    def mask_of(self, pool_ids: set[str] | frozenset[str]) -> BoolArray:
        """True at the pools of `pool_ids` that the table holds."""
        mask = self.none()
        for pool_id in pool_ids:
            index = self.table.index.get(pool_id)
            if index is not None:
                mask[index] = True
        return mask

    def reserve(self, pool_id: str, devices: int) -> None:
        """A lease took `devices` of the pool: later decisions of this pass see them gone."""
        index = self.table.index.get(pool_id)
        taken = 0 if index is None else min(devices, int(self.table.free[index]))
        if index is not None and taken > 0:
            self.table.reserve(index, taken)

    def hide(self, pool_id: str) -> None:
        """The pool has nothing left for this pass (a concurrent lease took it)."""
        index = self.table.index.get(pool_id)
        if index is not None and self.table.free[index] > 0:
            self.table.reserve(index, int(self.table.free[index]))


MAX_CACHED_SNAPSHOTS = 200_000
_STATIC_FACTS = tuple(f.name for f in fields(PoolFacts) if f.name != "free_devices")
# Per process, shared by threads: a snapshot is immutable, so a race only builds one twice.
_SNAPSHOTS: dict[tuple[object, ...], PoolSnapshot] = {}


class LiveTables:
    """The tables of one scheduling pass, one per workload class (unit tariffs price per
    class), read from one snapshot of the pools and tariffs and built when first asked for."""

    def __init__(self, session: Session) -> None:
        self._states = store.pool_states(session)
        self._stored = billing_repo.latest_tariffs(session) if self._states else {}
        self._tables: dict[str, LiveTable | None] = {}

    def of(self, workload_class: str) -> LiveTable | None:
        """The table for jobs of `workload_class`; None when the platform has no active pool."""
        if workload_class not in self._tables:
            if not self._states:
                self._tables[workload_class] = None
            else:
                snapshots = [self._snapshot(pool, site, workload_class)
                             for pool, site in self._states]
                self._tables[workload_class] = LiveTable(
                    PoolTable(snapshots), tuple(p for p, _ in self._states), workload_class)
        return self._tables[workload_class]

    def _snapshot(self, pool: PoolFacts, site: SiteEnergy, workload_class: str) -> PoolSnapshot:
        """The pool's snapshot, from the process's cache when nothing but its free devices
        changed since it was built (pricing 10,000 tariffs by the hour takes most of a build)."""
        stored = self._stored.get(pool.id)
        key = (workload_class, site.pue, site.electricity_fen_per_kwh,
               stored.id if stored is not None else None,
               *(getattr(pool, name) for name in _STATIC_FACTS))
        cached = _SNAPSHOTS.get(key)
        if cached is None:
            tariff = tariff_store.stored_tariff(stored.document) if stored is not None \
                else tariff_store.list_price_tariff(pool)
            cached = snapshot(pool, site, tariff, workload_class)
            if len(_SNAPSHOTS) >= MAX_CACHED_SNAPSHOTS:
                _SNAPSHOTS.clear()
            _SNAPSHOTS[key] = cached
        free = min(max(pool.free_devices, 0), pool.device_count)
        return cached if cached.free_devices == free else replace(cached, free_devices=free)

    def reserve(self, pool_id: str, devices: int) -> None:
        for table in self._tables.values():
            if table is not None:
                table.reserve(pool_id, devices)

    def hide(self, pool_id: str) -> None:
        for table in self._tables.values():
            if table is not None:
                table.hide(pool_id)

