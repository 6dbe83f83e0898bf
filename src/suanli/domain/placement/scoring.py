"""Vectorised scoring: every pool's score for one job as a few fused NumPy operations.

Every score term is linear in the job's size: work W (compute units), devices D, data G (GB).
So a policy's weights fold into a handful of per-pool coefficient vectors, recomputed once per
clock hour, and a decision costs O(pools) multiply-adds:

    score = W * a[class, spot] + D * d[class] + G * (t_fen + D * t_time[class]) + l[class] * rtt

Terms, each in fen-equivalents (lower is better):
    price     what the pool charges for the lease: the run, and the devices held while the
              data moves in and the provider's queue clears (or, SkyPilot-style `hourly`,
              for one hour of the devices)
    carbon    kg CO2 of the run at `carbon_fen_per_kg`
    time      hours until the job is done (wait, data transfer, run) at the value of time
    transfer  money to move the job's data to the pool
    latency   round-trip time to the user's city
    load      how full the pool is (spreading, as Kubernetes' LeastAllocated)
    provider  how much busier the pool's owner is than the federation (balances owners)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanli.domain.placement.arrays import Devices, FloatArray, IndexArray, IntArray, over
from suanli.domain.placement.model import JobRequest, LatencyClass
from suanli.domain.placement.table import HourlySeries, PoolTable
from suanli.domain.time import SECONDS_PER_HOUR

CLASS_ORDER = (LatencyClass.REALTIME, LatencyClass.INTERACTIVE, LatencyClass.BATCH)
CLASS_INDEX = {c: i for i, c in enumerate(CLASS_ORDER)}
TERMS = ("price", "carbon", "time", "transfer", "latency", "load", "provider")

# US EPA (2023) social cost of carbon, 190 USD/t at a 2% discount rate, at 7.2 CNY/USD.
SOCIAL_COST_OF_CARBON_FEN_PER_KG = 137.0


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each term counts; per-class values are (realtime, interactive, batch)."""

    price: float = 1.0
    carbon_fen_per_kg: float = 0.0
    time_fen_per_device_hour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    latency_fen_per_ms: tuple[float, float, float] = (0.0, 0.0, 0.0)
    transfer: float = 1.0
    load_fen_per_device: float = 0.0
    provider_fen_per_device: float = 0.0
    hourly: bool = False  # price one hour of the devices, not the run (SkyPilot's default)
    # Price the planned run hour by hour at each pool's hourly prices (the hours it would run,
    # after its staging), rather than all of it at the price of the hour it is placed in.
    price_over_run: bool = False
    west_discount: float = 0.0  # share of the price term a western hub waives for batch work


def job_devices(job: JobRequest, table: PoolTable) -> Devices:
    """Devices the job takes on each pool: its fixed width, or enough for its units per hour."""
    if job.devices is not None:
        return job.devices
    assert job.units_per_hour is not None  # a request names exactly one of the two
    return np.maximum(1, np.ceil(job.units_per_hour * table.inv_units - 1e-9)).astype(np.int64)


class _FlatSeries:
    """HourlySeries.integral with one interval per pool, by flat indexing: the same integer
    arithmetic, in half the array operations and without two-dimensional fancy indexing."""

    def __init__(self, series: HourlySeries[np.int64]) -> None:
        n, period = series.values.shape
        self.period_h = period
        self.total = series.cum[:, period]
        self.cum = series.cum.ravel()
        self.values = series.values.ravel()
        self.cum_row = np.arange(n, dtype=np.int64) * (period + 1)
        self.value_row = np.arange(n, dtype=np.int64) * period

    def integral(self, index: IndexArray | slice, t0: IntArray, t1: IntArray) -> IntArray:
        """Value-seconds over [t0, t1) at pools `index` (one interval per pool)."""
        t = np.stack((t1, t0))  # both ends in one pass of array operations
        hour = t // SECONDS_PER_HOUR
        periods, h = np.divmod(hour, self.period_h)
        full = self.total[index] * periods + self.cum[self.cum_row[index] + h]
        ends = full * SECONDS_PER_HOUR \
            + self.values[self.value_row[index] + h] * (t - hour * SECONDS_PER_HOUR)
        out: IntArray = ends[0] - ends[1]
        return out


MAX_CACHED_VECTORS = 1024
INCREMENTAL_LIMIT = 64  # more changed pools than this: recompute the whole vector


class LinearScorer:
    """Scores all pools of a table for a job under one set of weights.

    Coefficient vectors are cached per clock hour; the load term follows the table's change
    log, so a reservation costs one scalar update rather than a pass over every pool.
    """

    def __init__(self, table: PoolTable, weights: Weights) -> None:
        self.table = table
        self.weights = weights
        self._key: tuple[int, int] | None = None
        self._a: dict[tuple[int, bool], FloatArray] = {}
        self._p: dict[tuple[int, bool], FloatArray] = {}  # weighted price, fen/device-hour
        self._d: list[FloatArray] = []
        self._dvec: dict[tuple[int, bool], tuple[int, FloatArray]] = {}
        self._vectors: dict[tuple[object, ...], FloatArray] = {}
        self._nonzero: dict[tuple[int, bool], bool] = {}  # whether the static vector is non-zero
        self._scratch = np.empty(table.n)
        self._flat: dict[bool, _FlatSeries] = {}

    def refresh(self, now_s: int) -> None:
        """Recomputes the per-pool coefficients when the clock enters a new hour."""
        hour = now_s // SECONDS_PER_HOUR
        key = (hour, self.table.coefficient_version)
        if key == self._key:
            return
        t, w = self.table, self.weights
        kg_per_unit = t.power_kw * t.pue * t.carbon.at(hour) * t.inv_units / 1000.0
        self._a.clear()
        self._p.clear()
        self._dvec.clear()
        self._vectors.clear()
        self._nonzero.clear()
        self._d = []
        for ci, _cls in enumerate(CLASS_ORDER):
            vot = w.time_fen_per_device_hour[ci]
            base = w.carbon_fen_per_kg * kg_per_unit + vot * t.inv_units
            for spot in (False, True):
                price = self._price_now(hour, spot) * w.price
                if ci == CLASS_INDEX[LatencyClass.BATCH] and w.west_discount:
                    price = price * np.where(t.western, 1.0 - w.west_discount, 1.0)
                self._p[(ci, spot)] = price
                self._a[(ci, spot)] = base if (w.hourly or w.price_over_run) \
                    else base + price * t.inv_units
            self._d.append(vot * t.queue_wait_s / SECONDS_PER_HOUR)
        self._hour = hour
        self._key = key

    def _price_now(self, hour: int, spot: bool) -> FloatArray:
        t = self.table
        now = t.price.at(hour).astype(np.float64)
        if spot:
            now = np.where(t.spot_offered, t.spot_price.at(hour), now)
        return now

    def _per_device(self, ci: int, spot: bool) -> FloatArray | None:
        """The per-device coefficient: queue wait, hourly price, load and provider terms."""
        w, t = self.weights, self.table
        cached = self._dvec.get((ci, spot))
        if cached is not None:
            position, vec = cached
            changed = t.changed_since(position)
            if changed is not None and not changed:
                return vec
            if changed is not None and len(changed) <= INCREMENTAL_LIMIT \
                    and not w.provider_fen_per_device:
                index = np.fromiter(set(changed), dtype=np.int64)
                used = 1.0 - t.free[index] / t.device_count[index]
                vec[index] = self._static_d(ci, spot)[index] + w.load_fen_per_device * used
                self._dvec[(ci, spot)] = (t.log_position, vec)
                return vec
        static = self._static_d(ci, spot)
        if not (w.load_fen_per_device or w.provider_fen_per_device):
            return static if self._nonzero[(ci, spot)] else None
        vec = static.copy()
        if w.load_fen_per_device:
            vec += w.load_fen_per_device * t.used_fraction()
        if w.provider_fen_per_device:
            vec += w.provider_fen_per_device * t.provider_excess()
        self._dvec[(ci, spot)] = (t.log_position, vec)
        return vec

    def _static_d(self, ci: int, spot: bool) -> FloatArray:
        key = ("d", ci, spot)
        vec = self._vectors.get(key)
        if vec is None:
            vec = self._d[ci]
            if self.weights.hourly:
                vec = vec + self._p[(ci, spot)]
            else:  # devices held (and billed) while the provider's queue clears
                vec = vec + self._p[(ci, spot)] * self.table.queue_wait_s / SECONDS_PER_HOUR
            self._vectors[key] = vec
            self._nonzero[(ci, spot)] = bool(vec.any())
        return vec

    def _run_price(self, job: JobRequest, ci: int, devices: Devices, now_s: int,
                   index: IndexArray | slice = slice(None)) -> FloatArray:
        """Weighted price of the planned run at pools `index`: devices x the integral of the
        pool's hourly price from the end of staging to the end of the run."""
        t, w = self.table, self.weights
        key = ("s", job.data_region, job.data_gb)
        staging = self._vectors.get(key)
        if staging is None:
            _, s_per_gb = t.transfer_rows(job.data_region)
            staging = self._remember(key, np.ceil(t.queue_wait_s + job.data_gb * s_per_gb))
        t0 = (now_s + staging[index]).astype(np.int64)
        d = over(devices, index)
        run = np.maximum(1.0, np.ceil(job.work_units * t.inv_units[index] / d * SECONDS_PER_HOUR))
        flat = self._flat_series(job.spot_allowed)
        fen_s = flat.integral(index, t0, t0 + run.astype(np.int64)).astype(np.float64)
        price: FloatArray = fen_s * (w.price * d / SECONDS_PER_HOUR)
        if ci == CLASS_INDEX[LatencyClass.BATCH] and w.west_discount:
            price = price * np.where(t.western[index], 1.0 - w.west_discount, 1.0)
        return price

    def _flat_series(self, spot: bool) -> _FlatSeries:
        flat = self._flat.get(spot)
        if flat is None:
            flat = self._flat[spot] = _FlatSeries(
                self.table.spot_price if spot else self.table.price)
        return flat

    def _transfer(self, job: JobRequest, ci: int, devices: Devices) -> FloatArray:
        """Per-GB transfer money and staging time for the job's data region."""
        scalar = np.isscalar(devices)
        key = ("t", job.data_region, ci, job.spot_allowed, devices if scalar else None)
        vec = self._vectors.get(key) if scalar else None
        if vec is None:
            fen, s_per_gb = self.table.transfer_rows(job.data_region)
            vec = self.weights.transfer * fen
            # Each device-hour of staging is worth its value of time and, unless pricing one
            # hour only, is billed: the devices are held while the data moves in.
            per_device_hour: float | FloatArray = self.weights.time_fen_per_device_hour[ci]
            if not self.weights.hourly:
                per_device_hour = per_device_hour + self._p[(ci, job.spot_allowed)]
            vec = vec + (devices * s_per_gb / SECONDS_PER_HOUR) * per_device_hour
            if scalar:
                self._remember(key, vec)
        return vec

    def _latency(self, job: JobRequest, ci: int) -> FloatArray | None:
        lat = self.weights.latency_fen_per_ms[ci]
        if not lat or job.user_city is None:
            return None
        key = ("l", job.user_city, ci)
        vec = self._vectors.get(key)
        if vec is None:
            row = self.table.rtt_row(job.user_city)
            if row is None:
                return None
            vec = self._remember(key, lat * row)
        return vec

    def _remember(self, key: tuple[object, ...], vec: FloatArray) -> FloatArray:
        if len(self._vectors) >= MAX_CACHED_VECTORS:
            for k in [k for k in self._vectors if k[0] != "d"]:
                del self._vectors[k]
        self._vectors[key] = vec
        return vec

    def score(self, job: JobRequest, devices: Devices, now_s: int) -> FloatArray:
        """Score of every pool (lower is better); feasibility is the caller's business."""
        self.refresh(now_s)
        ci = CLASS_INDEX[job.latency_class]
        s = job.work_units * self._a[(ci, job.spot_allowed)]
        tmp = self._scratch  # temporaries go here: allocating 10,000 floats costs as much
        d = self._per_device(ci, job.spot_allowed)
        if d is not None:
            s += np.multiply(d, devices, out=tmp)
        if job.data_gb:
            s += np.multiply(self._transfer(job, ci, devices), job.data_gb, out=tmp)
        lat = self._latency(job, ci)
        if lat is not None:
            s += lat
        if self.weights.price_over_run and not self.weights.hourly:
            s += self._run_price(job, ci, devices, now_s)
        return s

    def terms(self, job: JobRequest, devices: Devices, index: IndexArray,
              now_s: int) -> dict[str, FloatArray]:
        """Each term's contribution at pools `index`; they add up to `score` there."""
        self.refresh(now_s)
        t, w = self.table, self.weights
        hour = now_s // SECONDS_PER_HOUR
        ci = CLASS_INDEX[job.latency_class]
        d = over(devices, index)
        price_now = self._p[(ci, job.spot_allowed)][index]
        inv_u = t.inv_units[index]
        run_h = job.work_units * inv_u / d
        kg = job.work_units * inv_u * t.power_kw[index] * t.pue[index] \
            * t.carbon.at(hour)[index] / 1000.0
        fen, s_per_gb = t.transfer_rows(job.data_region)
        stage_h = (t.queue_wait_s[index] + job.data_gb * s_per_gb[index]) / SECONDS_PER_HOUR
        vot = w.time_fen_per_device_hour[ci]
        if w.hourly:
            price = price_now * d
        elif w.price_over_run:
            price = price_now * d * stage_h + self._run_price(job, ci, devices, now_s, index)
        else:
            price = price_now * (job.work_units * inv_u + d * stage_h)
        row = t.rtt_row(job.user_city)
        lat = w.latency_fen_per_ms[ci]
        zero = np.zeros(len(index))
        used = 1.0 - t.free[index] / t.device_count[index]
        load = w.load_fen_per_device * d * used if w.load_fen_per_device else zero
        provider = w.provider_fen_per_device * d * t.provider_excess()[index] \
            if w.provider_fen_per_device else zero
        return {
            "price": price,
            "carbon": w.carbon_fen_per_kg * kg,
            "time": vot * d * (run_h + stage_h),
            "transfer": w.transfer * job.data_gb * fen[index].astype(np.float64),
            "latency": lat * row[index] if (lat and row is not None) else zero,
            "load": load,
            "provider": provider,
        }


def gang_score(table: PoolTable, weights: Weights, job: JobRequest, index: IndexArray,
               taken: IntArray, now_s: int) -> float:
    """A gang over pools `index` (`taken` devices on each), scored as it would run: every device
    is held, billed and powered until the slowest pool's devices finish their share.

    Pool-by-pool scores assume each pool runs at its own speed, which makes a fabric mixing a
    fast and a slow pool look as good as the mean of the two; the gang in fact runs at the slow
    pace while paying for the fast devices. Terms as LinearScorer (price now; one hour of the
    devices under `hourly`), load and provider terms left out.
    """
    t, w = table, weights
    hour = now_s // SECONDS_PER_HOUR
    ci = CLASS_INDEX[job.latency_class]
    need = float(taken.sum())
    price = t.price.at(hour)[index].astype(np.float64)
    if job.spot_allowed:
        price = np.where(t.spot_offered[index], t.spot_price.at(hour)[index], price)
    price = price * w.price
    if ci == CLASS_INDEX[LatencyClass.BATCH] and w.west_discount:
        price = price * np.where(t.western[index], 1.0 - w.west_discount, 1.0)
    fen, s_per_gb = t.transfer_rows(job.data_region)
    stage_h = float((t.queue_wait_s[index] + job.data_gb * s_per_gb[index]).max()) \
        / SECONDS_PER_HOUR
    run_h = job.work_units * float(t.inv_units[index].max()) / need
    held_h = 1.0 if w.hourly else stage_h + run_h
    billed = float((taken * price).sum()) * held_h
    kw = taken * t.power_kw[index] * t.pue[index]
    kg = float((kw * t.carbon.at(hour)[index]).sum()) * run_h / 1000.0
    vot = w.time_fen_per_device_hour[ci]
    latency = 0.0
    row = t.rtt_row(job.user_city)
    if w.latency_fen_per_ms[ci] and row is not None:
        latency = w.latency_fen_per_ms[ci] * float(row[index].max())
    return (billed + w.carbon_fen_per_kg * kg + vot * need * (stage_h + run_h)
            + w.transfer * job.data_gb * float(fen[index].max()) + latency)

