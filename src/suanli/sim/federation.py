"""The simulated federation: the demo's sites and pools, sized to a trace, with hourly energy.

What comes from where:
    sites, owners, accelerators, base prices   suanli.demo.demo_federation(seed) (illustrative)
    device speed                                SCU rating of the pool's accelerator for the
                                                replay's workload class (suanli.catalog)
    device power                                catalog TDP x BUSY_POWER_SHARE (typical draw
                                                under load); DEFAULT_TDP_W where none is published
    latency to users                            suanli.domain.geo RTT model, site city to home city
    hourly electricity and carbon               suanli.sim.energy (real shapes, provincial levels)
    hourly price                                the pool's demo price, PRICE_ENERGY_SHARE of it
                                                following the site's electricity price shape
                                                (pools pass their time-of-use power cost on)
    spot offer                                  hash(pool) < SPOT_POOL_SHARE, at SPOT_DISCOUNT
    size                                        every pool's demo device count times one factor,
                                                at least one 8-device node for a training pool
                                                and 2 devices for a serving pool, so that the
                                                federation's SCU per hour is the trace's
                                                95th-percentile demand / TARGET_PEAK_LOAD; when
                                                even the minimum sizes give more than that,
                                                a subset of pools in hash order, at least
                                                MIN_POOLS of them, covering every hub
Pools whose accelerator the catalog does not rate (no published throughput: MLU590, DCU K100,
P800) and CPU pools are left out rather than given invented speeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from suanli.catalog import load_catalog, load_cities, units_per_device_hour
from suanli.demo import DemoPool, demo_federation
from suanli.domain.errors import NotFound
from suanli.domain.placement import PoolSnapshot, PoolTable
from suanli.domain.resources import WESTERN_HUBS, Engine, Hub
from suanli.sim.energy import EnergyData, load_energy_data, site_series
from suanli.sim.traces import HOME_CITIES, Trace, unit_hash

BUSY_POWER_SHARE = 0.8
DEFAULT_TDP_W = 400.0  # Ascend 910B: Huawei publishes no TDP; Atlas 800T A2 modules draw ~400 W
PRICE_ENERGY_SHARE = 0.3
SPOT_POOL_SHARE = 0.5
SPOT_DISCOUNT = 0.6  # spot sells at 40% of on-demand
TARGET_PEAK_LOAD = 0.9
MIN_TRAINING_POOL_DEVICES = 8  # one server
MIN_SERVING_POOL_DEVICES = 2
MIN_POOLS = 56
QUEUE_WAIT_S = {Engine.SLURM: 60.0, Engine.KUBERNETES: 20.0, Engine.RAY: 10.0, Engine.LOCAL: 0.0}


@dataclass(frozen=True)
class Federation:
    """Pools ready for a PoolTable, and what the report needs to know about each."""

    pools: tuple[PoolSnapshot, ...]
    hub: tuple[Hub | None, ...]
    site_city: tuple[str, ...]
    workload_class: str
    scale: float

    def table(self) -> PoolTable:
        return PoolTable(self.pools)

    @property
    def devices(self) -> int:
        return sum(p.device_count for p in self.pools)

    @property
    def units_per_hour(self) -> float:
        return sum(p.device_count * p.units_per_device_hour for p in self.pools)


@cache
def rating(key: str, workload_class: str) -> float | None:
    """SCU per device-hour, or None when the catalog does not rate the device."""
    try:
        return float(units_per_device_hour(key, workload_class))
    except NotFound:
        return None


def peak_demand_units(trace: Trace, workload_class: str, quantile: float = 0.95) -> float:
    """The `quantile` of the trace's concurrent demand, in SCU per hour, on its own devices."""
    starts = np.array([j.submit_s for j in trace.jobs], dtype=np.int64)
    ends = starts + np.array([j.duration_s for j in trace.jobs], dtype=np.int64)
    rate = np.array([j.devices * (rating(j.original, workload_class) or 1.0) for j in trace.jobs])
    times = np.concatenate([starts, ends])
    order = np.argsort(times, kind="stable")
    level = np.cumsum(np.concatenate([rate, -rate])[order])
    held = np.diff(times[order], append=times[order][-1])  # how long each level lasts
    by_level = np.argsort(level)
    weight = np.cumsum(held[by_level])
    if weight[-1] == 0:
        return float(rate.sum())
    return float(level[by_level][np.searchsorted(weight, quantile * weight[-1])])


def build_federation(trace: Trace, data_dir: Path | None = None, *,
                     workload_class: str = "training", seed: int = 7,
                     capacity_units: float | None = None,
                     energy: EnergyData | None = None) -> Federation:
    """The demo federation's accelerator pools, sized so the trace's peak load fits.

    Hourly energy comes from `energy`, else from the 2023 files under `data_dir`/energy.
    """
    demo = demo_federation(seed)
    catalog = load_catalog()
    places = load_cities()
    if energy is None:
        if data_dir is None:
            raise ValueError("build_federation needs energy data or the shared data folder")
        energy = load_energy_data(data_dir / "energy")
    users = [city for city, _ in HOME_CITIES]
    candidates = []
    for demo_pool in demo.pools:
        units = rating(demo_pool.accelerator, workload_class)
        if units is None or demo_pool.labels.get("class") == "cpu":
            continue
        candidates.append((demo_pool, units))
    if capacity_units is None:
        capacity_units = peak_demand_units(trace, workload_class) / TARGET_PEAK_LOAD
    candidates = _subset(candidates, capacity_units,
                         [demo.sites[p.site_index].hub for p, _ in candidates])
    scale = _scale_for(capacity_units, [(p, u) for p, u in candidates])
    series: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    pools, hubs, cities = [], [], []
    for n, (demo_pool, units) in enumerate(candidates):
        site = demo.sites[demo_pool.site_index]
        if demo_pool.site_index not in series:
            series[demo_pool.site_index] = site_series(
                energy, site.province, site.electricity_fen_per_kwh, float(site.green_share),
                trace.hour_of_year0)
        electricity, carbon = series[demo_pool.site_index]
        acc = catalog.get(demo_pool.accelerator)
        price = _hourly_price(demo_pool.price_fen_per_device_hour, electricity)
        pool_id = f"pool-{n:03d}"
        spot = unit_hash("spot-pool:" + demo_pool.name) < SPOT_POOL_SHARE
        fabric = demo_pool.interconnect
        pools.append(PoolSnapshot(
            id=pool_id, provider_id=demo.providers[site.provider_index].name,
            site_id=f"site-{demo_pool.site_index:02d}", province=site.province, city=site.city,
            accelerator=acc.key, vendor=acc.vendor.lower(), architecture=acc.architecture,
            memory_gb=float(acc.memory_gb or 0.0), software_stacks=frozenset({acc.software_stack}),
            device_count=_devices(demo_pool, scale),
            free_devices=_devices(demo_pool, scale), units_per_device_hour=units,
            device_power_kw=(acc.tdp_w or DEFAULT_TDP_W) * BUSY_POWER_SHARE / 1000.0,
            pue=float(site.pue), price_fen_per_device_hour=price,
            electricity_fen_per_kwh=tuple(electricity.tolist()),
            carbon_g_per_kwh=tuple(carbon.tolist()),
            spot_price_fen_per_device_hour=tuple(int(v * (1 - SPOT_DISCOUNT)) for v in price)
            if spot else None,
            hub=site.hub, western=site.hub in WESTERN_HUBS,
            interconnect=None if fabric in (None, "pcie")
            else f"site-{demo_pool.site_index}/{fabric}",
            rtt_ms={u: places.rtt_ms_between(site.city, u) for u in users},
            queue_wait_s=QUEUE_WAIT_S.get(demo_pool.engine, 0.0),
        ))
        hubs.append(site.hub)
        cities.append(site.city)
    return Federation(tuple(pools), tuple(hubs), tuple(cities), workload_class, scale)


def _devices(demo_pool: DemoPool, scale: float) -> int:
    least = MIN_TRAINING_POOL_DEVICES if demo_pool.labels.get("class") == "train" \
        else MIN_SERVING_POOL_DEVICES
    return max(least, round(demo_pool.device_count * scale))


def _subset(candidates: list[tuple[DemoPool, float]], capacity_units: float,
            hubs: list[Hub | None]) -> list[tuple[DemoPool, float]]:
    """The pools to keep: all of them, unless their minimum sizes already exceed the target."""
    if sum(_devices(p, 0.0) * u for p, u in candidates) <= capacity_units:
        return candidates
    order = sorted(range(len(candidates)), key=lambda i: unit_hash("keep:" + candidates[i][0].name))
    kept: list[int] = []
    units = 0.0
    every_hub = {h for h in hubs if h is not None}
    for i in order:
        kept.append(i)
        units += _devices(candidates[i][0], 0.0) * candidates[i][1]
        if units >= capacity_units and len(kept) >= MIN_POOLS \
                and every_hub <= {hubs[k] for k in kept}:
            break
    return [candidates[i] for i in sorted(kept)]


def _scale_for(capacity_units: float, pools: Sequence[tuple[DemoPool, float]]) -> float:
    """The factor on demo device counts that gives `capacity_units` SCU per hour (bisection)."""
    low, high = 0.0, 1.0
    while sum(_devices(p, high) * u for p, u in pools) < capacity_units and high < 1e6:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        if sum(_devices(p, mid) * u for p, u in pools) < capacity_units:
            low = mid
        else:
            high = mid
    return high


def _hourly_price(base_fen: int, electricity: np.ndarray) -> tuple[int, ...]:
    shape = electricity / max(float(electricity.mean()), 1e-9)
    price = base_fen * ((1 - PRICE_ENERGY_SHARE) + PRICE_ENERGY_SHARE * shape)
    return tuple(np.rint(price).astype(np.int64).tolist())
