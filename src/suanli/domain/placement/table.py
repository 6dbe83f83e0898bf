"""The federation's pools as a structure of arrays, so one decision scores every pool at once."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from suanli.domain.errors import ValidationFailed
from suanli.domain.placement.arrays import (
    BoolArray,
    FloatArray,
    IndexArray,
    IntArray,
)
from suanli.domain.placement.model import (
    MAX_RTT_MS,
    JobRequest,
    LatencyClass,
    PoolSnapshot,
)
from suanli.domain.time import SECONDS_PER_HOUR

MAX_POOLS = 1_000_000
MAX_SOFTWARE_STACKS = 62  # one bit each in an int64 mask
MAX_CACHED_MASKS = 4096
MAX_CACHED_CAPACITIES = 64
MAX_CHANGE_LOG = 4096
# Added to the score of a pool that cannot take the job; real scores stay far below it.
INFEASIBLE = 1e30


class Network(Protocol):
    """What moving a job's data from one region (province code) to another costs and takes."""

    def fen_per_gb(self, source: str, target: str) -> int: ...

    def gbps(self, source: str, target: str) -> float: ...


@dataclass(frozen=True, slots=True)
class UniformNetwork:
    """One rate for every cross-region hop; moving data inside a region is free and fast.

    Defaults: 14 fen/GB is the median AWS inter-region egress (0.02 USD/GB, shared/data/network/
    aws_transmission_cost_matrix.csv) at 7 CNY/USD; 1 Gbit/s is what one job's bulk copy gets
    on a shared backbone, 10 Gbit/s inside a region.
    """

    cross_region_fen_per_gb: int = 14
    cross_region_gbps: float = 1.0
    same_region_gbps: float = 10.0

    def fen_per_gb(self, source: str, target: str) -> int:
        return 0 if source == target else self.cross_region_fen_per_gb

    def gbps(self, source: str, target: str) -> float:
        return self.same_region_gbps if source == target else self.cross_region_gbps


Value = TypeVar("Value", np.int64, np.float64)


class HourlySeries(Generic[Value]):
    """Per-pool hourly values with exact integrals over any interval (value x seconds)."""

    def __init__(self, values: NDArray[Value]) -> None:
        assert values.ndim == 2 and values.shape[1] >= 1
        self.values: NDArray[Value] = values
        self.period_h: int = values.shape[1]
        cum: NDArray[Value] = np.zeros((values.shape[0], self.period_h + 1), dtype=values.dtype)
        np.cumsum(values, axis=1, out=cum[:, 1:])
        self.cum: NDArray[Value] = cum

    def at(self, hour: int) -> NDArray[Value]:
        column: NDArray[Value] = self.values[:, hour % self.period_h]
        return column

    def integral(self, index: IndexArray | int, t0_s: IntArray | int,
                 t1_s: IntArray | int) -> NDArray[Value]:
        """Sum over [t0, t1) of value(hour(t)) dt, in value-seconds; broadcasts its arguments."""
        return self._antiderivative(index, t1_s) - self._antiderivative(index, t0_s)

    @overload
    def integral_one(self: HourlySeries[np.int64], index: int, t0_s: int, t1_s: int) -> int: ...

    @overload
    def integral_one(self: HourlySeries[np.float64], index: int, t0_s: int,
                     t1_s: int) -> float: ...

    def integral_one(self, index: int, t0_s: int, t1_s: int) -> int | float:
        """`integral` for one pool and interval, in plain Python numbers (the fast path)."""
        return self._antiderivative_one(index, t1_s) - self._antiderivative_one(index, t0_s)

    def _antiderivative_one(self, index: int, t_s: int) -> int | float:
        hour = t_s // SECONDS_PER_HOUR
        periods, h = divmod(hour, self.period_h)
        cum: int | float = self.cum[index, self.period_h].item()
        cum_h: int | float = self.cum[index, h].item()
        value: int | float = self.values[index, h].item()
        full = cum * periods + cum_h
        into_hour = t_s - hour * SECONDS_PER_HOUR
        return full * SECONDS_PER_HOUR + value * into_hour

    def _antiderivative(self, index: IndexArray | int, t_s: IntArray | int) -> NDArray[Value]:
        t = np.asarray(t_s, dtype=np.int64)
        hour = t // SECONDS_PER_HOUR
        periods, h = np.divmod(hour, self.period_h)
        into_hour = t - hour * SECONDS_PER_HOUR
        full = self.cum[index, self.period_h] * periods + self.cum[index, h]
        value_s: NDArray[Value] = full * SECONDS_PER_HOUR + self.values[index, h] * into_hour
        return value_s


def _series(pools: Sequence[PoolSnapshot], name: str, period_h: int,
            dtype: type[Value]) -> NDArray[Value]:
    out: NDArray[Value] = np.empty((len(pools), period_h), dtype=dtype)
    for i, pool in enumerate(pools):
        values = getattr(pool, name)
        if values is None:
            values = pool.price_fen_per_device_hour
        out[i] = values if len(values) == period_h else values[0]
    return out


class PoolTable:
    """Pools as parallel NumPy arrays, plus the counters placement changes as it reserves devices.

    Not thread-safe: one engine (or the simulator) owns a table and mutates it in turn.
    """

    def __init__(self, pools: Sequence[PoolSnapshot], network: Network | None = None) -> None:
        if not 1 <= len(pools) <= MAX_POOLS:
            raise ValidationFailed(f"a pool table holds 1..{MAX_POOLS} pools", field="pools")
        self.network: Network = network or UniformNetwork()
        self.pools = tuple(pools)
        self.ids = tuple(p.id for p in pools)
        self.index = {pool_id: i for i, pool_id in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise ValidationFailed("pool ids must be unique", field="pools")
        self.n = len(pools)
        self._init_static(pools)
        self._init_series(pools)
        self._init_latency(pools)
        self.version = 0  # bumped by every reserve/release, so callers can cache per state
        self._log_start = 0
        self.coefficient_version = 0  # bumped when a pool's fixed figures (queue wait) change
        self._mask_cache: dict[tuple[object, ...], tuple[BoolArray, FloatArray]] = {}
        self._rule_cache: dict[tuple[object, ...], BoolArray] = {}
        self._transfer_cache: dict[str | None, tuple[IntArray, FloatArray]] = {}
        self._capacity_cache: dict[int, FloatArray] = {}
        self.changes: list[int] = []  # pools whose counters changed, in order (see `changed_since`)

    # --- construction ----------------------------------------------------------------------

    def _init_static(self, pools: Sequence[PoolSnapshot]) -> None:
        def encode(values: list[str]) -> tuple[list[str], IntArray]:
            names = sorted(set(values))
            lookup = {v: i for i, v in enumerate(names)}
            return names, np.array([lookup[v] for v in values], dtype=np.int64)

        self.provider_names, self.provider_idx = encode([p.provider_id for p in pools])
        self.region_names, self.region_idx = encode([p.province for p in pools])
        self.country_names, self.country_idx = encode([p.country for p in pools])
        self.accel_names, self.accel_idx = encode([p.accelerator for p in pools])
        groups = [p.interconnect or "" for p in pools]
        self.group_names, self.group_idx = encode(groups)
        self.group_idx = np.where(np.array(groups) == "", -1, self.group_idx)
        self.vendor = np.array([p.vendor for p in pools])
        self.architecture = np.array([p.architecture for p in pools])
        self.hub = [p.hub for p in pools]
        self.western = np.array([p.western for p in pools], dtype=bool)
        self.active = np.array([p.active for p in pools], dtype=bool)
        self.memory_gb = np.array([p.memory_gb for p in pools], dtype=np.float64)
        stacks = sorted({s for p in pools for s in p.software_stacks})
        if len(stacks) > MAX_SOFTWARE_STACKS:
            raise ValidationFailed(f"at most {MAX_SOFTWARE_STACKS} software stacks",
                                   field="software_stacks")
        self.stack_bit = {s: 1 << i for i, s in enumerate(stacks)}
        self.stack_mask = np.array(
            [sum(self.stack_bit[s] for s in p.software_stacks) for p in pools], dtype=np.int64)
        self.device_count = np.array([p.device_count for p in pools], dtype=np.int64)
        self.free = np.array([p.free_devices for p in pools], dtype=np.int64)
        self.spot_used = np.array([p.spot_devices_in_use for p in pools], dtype=np.int64)
        self.units = np.array([p.units_per_device_hour for p in pools], dtype=np.float64)
        self.inv_units = 1.0 / self.units
        self.power_kw = np.array([p.device_power_kw for p in pools], dtype=np.float64)
        self.pue = np.array([p.pue for p in pools], dtype=np.float64)
        self.queue_wait_s = np.array([p.queue_wait_s for p in pools], dtype=np.float64)
        self.spot_offered = np.array(
            [p.spot_price_fen_per_device_hour is not None for p in pools], dtype=bool)
        n_providers = len(self.provider_names)
        self.provider_total = np.bincount(self.provider_idx, weights=self.device_count,
                                          minlength=n_providers)
        self.provider_busy = np.bincount(self.provider_idx, weights=self.device_count - self.free,
                                         minlength=n_providers)

    def _init_series(self, pools: Sequence[PoolSnapshot]) -> None:
        lengths = {len(p.price_fen_per_device_hour) for p in pools}
        lengths |= {len(p.electricity_fen_per_kwh) for p in pools}
        lengths |= {len(p.carbon_g_per_kwh) for p in pools}
        period = max(lengths)
        if lengths - {1, period}:
            raise ValidationFailed("hourly series must all have one length (or a single value)",
                                   field="price_fen_per_device_hour")
        self.period_h = period
        self.price = HourlySeries(_series(pools, "price_fen_per_device_hour", period, np.int64))
        self.spot_price = HourlySeries(
            _series(pools, "spot_price_fen_per_device_hour", period, np.int64))
        # Each pool's cheapest and dearest hour bound any lease's price (for pruning).
        self.price_floor = self.price.values.min(axis=1).astype(np.float64)
        self.price_ceiling = self.price.values.max(axis=1).astype(np.float64)
        self.spot_price_floor = self.spot_price.values.min(axis=1).astype(np.float64)
        self.spot_price_ceiling = self.spot_price.values.max(axis=1).astype(np.float64)
        self.electricity = HourlySeries(_series(pools, "electricity_fen_per_kwh", period, np.int64))
        self.carbon = HourlySeries(_series(pools, "carbon_g_per_kwh", period, np.float64))

    def _init_latency(self, pools: Sequence[PoolSnapshot]) -> None:
        # Pools of one city usually share one RTT mapping: fill each distinct one once.
        shared: dict[int, tuple[Mapping[str, float], list[int]]] = {}
        for j, pool in enumerate(pools):
            shared.setdefault(id(pool.rtt_ms), (pool.rtt_ms, []))[1].append(j)
        cities = sorted({c for mapping, _ in shared.values() for c in mapping})
        self.city_index = {c: i for i, c in enumerate(cities)}
        rtt = np.full((len(cities), self.n), math.inf)
        for mapping, members in shared.values():
            column = np.full(len(cities), math.inf)
            for c, ms in mapping.items():
                column[self.city_index[c]] = ms
            rtt[:, members] = column[:, None]
        self.rtt_ms = rtt

    # --- derived views ---------------------------------------------------------------------

    def rtt_row(self, city: str | None) -> FloatArray | None:
        """RTT from `city` to every pool, or None when the table does not know the city."""
        i = self.city_index.get(city) if city is not None else None
        return None if i is None else self.rtt_ms[i]

    def transfer_rows(self, region: str | None) -> tuple[IntArray, FloatArray]:
        """(fen per GB, seconds per GB) to move data from `region` to each pool."""
        rows = self._transfer_cache.get(region)
        if rows is None:
            fen = np.zeros(len(self.region_names), dtype=np.int64)
            s_per_gb = np.zeros(len(self.region_names))
            if region is not None:
                for k, target in enumerate(self.region_names):
                    fen[k] = self.network.fen_per_gb(region, target)
                    s_per_gb[k] = 8.0 / self.network.gbps(region, target)
            rows = (fen[self.region_idx], s_per_gb[self.region_idx])
            self._transfer_cache[region] = rows
        return rows

    def static_mask(self, job: JobRequest) -> BoolArray:
        """Pools whose kind, place and distance suit the job, whatever their load."""
        return self._static(job)[0]

    def static_penalty(self, job: JobRequest) -> FloatArray:
        """0 where `static_mask` holds, INFEASIBLE elsewhere (to add to scores)."""
        return self._static(job)[1]

    def _static(self, job: JobRequest) -> tuple[BoolArray, FloatArray]:
        latency_city = job.user_city if job.latency_class is not LatencyClass.BATCH else None
        key = (job.accelerator, job.residency_provinces, job.residency_countries,
               job.latency_class, latency_city)
        entry = self._mask_cache.get(key)
        if entry is None:
            # Each rule's mask is cached on its own too: jobs share them far more often than
            # they share the whole combination.
            mask = self.active & self._cached(("a", job.accelerator), self.accelerator_mask, job)
            mask &= self._cached(("r", job.residency_provinces, job.residency_countries),
                                 self.residency_mask, job)
            mask &= self._cached(("l", job.latency_class, latency_city), self.latency_mask, job)
            penalty = np.where(mask, 0.0, INFEASIBLE)
            mask.setflags(write=False)
            penalty.setflags(write=False)
            if len(self._mask_cache) >= MAX_CACHED_MASKS:
                self._mask_cache.clear()
            entry = self._mask_cache[key] = (mask, penalty)
        return entry

    def _cached(self, key: tuple[object, ...], rule: Callable[[JobRequest], BoolArray],
                job: JobRequest) -> BoolArray:
        mask = self._rule_cache.get(key)
        if mask is None:
            if len(self._rule_cache) >= MAX_CACHED_MASKS:
                self._rule_cache.clear()
            mask = self._rule_cache[key] = rule(job)
        return mask

    def accelerator_mask(self, job: JobRequest) -> BoolArray:
        c = job.accelerator
        mask = self.memory_gb >= c.min_memory_gb
        if c.vendors:
            mask &= np.isin(self.vendor, list(c.vendors))
        if c.architectures:
            mask &= np.isin(self.architecture, list(c.architectures))
        if c.models:
            wanted = [i for i, name in enumerate(self.accel_names) if name in c.models]
            mask &= np.isin(self.accel_idx, wanted)
        if c.software_stacks:
            if any(s not in self.stack_bit for s in c.software_stacks):
                return np.zeros(self.n, dtype=bool)
            need = sum(self.stack_bit[s] for s in c.software_stacks)
            mask &= (self.stack_mask & need) == need
        return mask

    def residency_mask(self, job: JobRequest) -> BoolArray:
        mask = np.ones(self.n, dtype=bool)
        if job.residency_provinces:
            ok = [i for i, r in enumerate(self.region_names) if r in job.residency_provinces]
            mask &= np.isin(self.region_idx, ok)
        if job.residency_countries:
            ok = [i for i, r in enumerate(self.country_names) if r in job.residency_countries]
            mask &= np.isin(self.country_idx, ok)
        return mask

    def latency_mask(self, job: JobRequest) -> BoolArray:
        bound = MAX_RTT_MS[job.latency_class]
        if math.isinf(bound):
            return np.ones(self.n, dtype=bool)
        row = self.rtt_row(job.user_city)
        if row is None:
            return np.zeros(self.n, dtype=bool)
        return row <= bound

    def capacity_penalty(self, devices: int) -> FloatArray:
        """INFEASIBLE where fewer than `devices` are free, else 0; kept up to date on reserve."""
        penalty = self._capacity_cache.get(devices)
        if penalty is None:
            if len(self._capacity_cache) >= MAX_CACHED_CAPACITIES:
                self._capacity_cache.clear()
            penalty = self._capacity_cache[devices] = (self.free < devices) * INFEASIBLE
        return penalty

    def changed_since(self, position: int) -> list[int] | None:
        """Pools changed since `position` in the change log, or None if the log was trimmed."""
        if position < self._log_start:
            return None
        return self.changes[position - self._log_start:]

    @property
    def log_position(self) -> int:
        return self._log_start + len(self.changes)

    def _changed(self, index: int) -> None:
        free = self.free[index]
        for devices, penalty in self._capacity_cache.items():
            penalty[index] = INFEASIBLE if free < devices else 0.0
        if len(self.changes) >= MAX_CHANGE_LOG:
            self._log_start += len(self.changes)
            self.changes.clear()
        self.changes.append(index)
        self.version += 1

    def used_fraction(self) -> FloatArray:
        return 1.0 - self.free / self.device_count

    def provider_excess(self) -> FloatArray:
        """Each pool's provider busy share minus the federation's, so busy owners score worse."""
        overall = self.provider_busy.sum() / self.provider_total.sum()
        excess: FloatArray = (self.provider_busy / self.provider_total - overall)[self.provider_idx]
        return excess

    # --- capacity --------------------------------------------------------------------------

    def reserve(self, index: int, devices: int, *, spot: bool = False) -> None:
        """Holds `devices` free devices of pool `index` (spot leases are counted apart)."""
        assert 0 < devices <= self.free[index], (self.ids[index], devices, int(self.free[index]))
        self.free[index] -= devices
        if spot:
            self.spot_used[index] += devices
        self.provider_busy[self.provider_idx[index]] += devices
        self._changed(index)

    def release(self, index: int, devices: int, *, spot: bool = False) -> None:
        """Gives back devices a lease held."""
        assert 0 < devices <= self.device_count[index] - self.free[index]
        self.free[index] += devices
        if spot:
            assert devices <= self.spot_used[index]
            self.spot_used[index] -= devices
        self.provider_busy[self.provider_idx[index]] -= devices
        self._changed(index)

    def set_queue_wait(self, index: int, wait_s: float) -> None:
        assert wait_s >= 0
        self.queue_wait_s[index] = wait_s
        self.coefficient_version += 1
        self._changed(index)
