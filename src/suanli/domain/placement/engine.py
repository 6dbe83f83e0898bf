"""The placement engine: hard rules, gangs, spot preemption and deferral around a policy."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from suanli.domain.errors import PlacementInfeasible
from suanli.domain.placement.arrays import BoolArray, Devices, FloatArray, IntArray, at, over
from suanli.domain.placement.estimates import (
    lease_cost,
    lease_cost_one,
    lease_timing,
    lease_timing_one,
)
from suanli.domain.placement.explain import infeasible_reason, placement_note
from suanli.domain.placement.model import (
    Allocation,
    JobRequest,
    LatencyClass,
    Placement,
)
from suanli.domain.placement.policies import Policy
from suanli.domain.placement.scoring import CLASS_INDEX, gang_score, job_devices
from suanli.domain.placement.table import INFEASIBLE, PoolTable
from suanli.domain.time import SECONDS_PER_HOUR

MAX_DEFER_H = 48
DEFER_CANDIDATES = 32  # deferral scores hours x this many best-ranked pools
MAX_CACHED_STAGING = 1024
SHORTLIST = 32  # pools priced exactly before bounds prune the rest
GANG_CANDIDATES = 16  # fabrics a gang over pools is scored on, best mean rank first


class Choice(NamedTuple):
    """A decision before its estimates and explanation are worked out."""

    allocations: tuple[Allocation, ...]
    start_s: int
    deferred: bool
    rank: FloatArray | None  # the policy's ranking the choice came from, for the explanation
    breakdown: dict[str, float] | None = None  # set where the choice priced its own terms
    note: str = ""


class PlacementEngine:
    """Chooses pool(s) and a start time for a job; never reserves anything itself.

    The caller (a lease service, or the simulator) reserves the devices of the returned
    allocations on the table; a deferred placement reserves nothing and must be placed again
    at its start time (with `allow_defer=False`).
    """

    def __init__(self, table: PoolTable, policy: Policy, *, preemption: bool = True,
                 max_defer_h: int = 24) -> None:
        assert 0 <= max_defer_h <= MAX_DEFER_H
        self.table = table
        self.policy = policy
        self.preemption = preemption
        self.max_defer_h = max_defer_h
        self._staging_cache: dict[tuple[str | None, float], FloatArray] = {}

    def place(self, job: JobRequest, now_s: int, *, allow_defer: bool = True,
              excluded: BoolArray | None = None) -> Placement:
        """The decision for `job` at `now_s`, with its estimates and score breakdown.

        `excluded` marks pools the caller rules out besides the job's own rules (the live
        scheduler: pools pinned away, lost to a race, or that the wallet cannot cover).
        Raises PlacementInfeasible, with the reason, when no pool can take the job now.
        """
        choice = self.choose(job, now_s, allow_defer=allow_defer, excluded=excluded)
        return self._assemble(job, choice, now_s)

    def choose(self, job: JobRequest, now_s: int, *, allow_defer: bool = True,
               explain_failure: bool = True, excluded: BoolArray | None = None) -> Choice:
        """The decision alone (the fast path): pools, devices and start, no breakdown.

        With `explain_failure` off a refusal skips working out its reason (a simulator
        retrying its queue only needs to know that the job does not fit yet).
        """
        t = self.table
        devices = job.devices if job.devices is not None else job_devices(job, t)
        if allow_defer and self.policy.defers and job.devices is not None \
                and self._may_defer(job):
            choice = self._deferred(job, job.devices, now_s, excluded)
            if choice is not None:
                return choice
        rank = self.policy.rank(job, devices, now_s)
        # Infeasible pools get a penalty rather than a mask: adding is the cheapest NumPy way
        # to take them out of an argmin over ten thousand pools.
        score = rank + t.static_penalty(job)
        score += t.capacity_penalty(devices) if type(devices) is int \
            else (t.free < devices) * INFEASIBLE
        if excluded is not None:
            score[excluded] = INFEASIBLE
        pool = self._best(job, devices, score, now_s)
        if pool is not None:
            return self._one(job, devices, pool, now_s, rank, preempt=False)
        if job.multi_pool or not job.gang:
            static = t.static_mask(job) if excluded is None else t.static_mask(job) & ~excluded
            choice = self._split(job, static, rank, now_s)
            if choice is not None:
                return choice
        if self.preemption and not job.spot_allowed and t.spot_used.any():
            score = rank + t.static_penalty(job)
            score += (t.free + t.spot_used < devices) * INFEASIBLE
            if excluded is not None:
                score[excluded] = INFEASIBLE
            pool = self._best(job, devices, score, now_s)
            if pool is not None:
                return self._one(job, devices, pool, now_s, rank, preempt=True)
        if not explain_failure:
            raise PlacementInfeasible("no pool can take the job now", field="job")
        raise PlacementInfeasible(infeasible_reason(t, job, devices, t.static_mask(job)),
                                  field="job")

    # --- one pool --------------------------------------------------------------------------

    def _best(self, job: JobRequest, devices: Devices, score: FloatArray,
              now_s: int) -> int | None:
        """The best-scored pool that keeps the budget and, if any pool can, the deadline."""
        pool = int(score.argmin())
        if score[pool] >= INFEASIBLE:
            return None
        if job.deadline_s is None and job.budget_fen is None:
            return pool
        # Usually the best pool keeps both: then checking it alone is enough.
        if self._keeps_deadline(job, devices, pool, now_s) \
                and self._keeps_budget(job, devices, pool, now_s):
            return pool
        if job.deadline_s is not None:
            late = self._late(job, devices, now_s)
            on_time = self._within_budget(job, devices, score + late, now_s)
            if on_time is not None or job.deadline_strict:
                return on_time
        # No pool meets the deadline: it is soft, so the best pool within budget runs late.
        return self._within_budget(job, devices, score, now_s)

    def _within_budget(self, job: JobRequest, devices: Devices, score: FloatArray,
                       now_s: int) -> int | None:
        pool = int(np.argmin(score))
        if score[pool] >= INFEASIBLE or job.budget_fen is None:
            return None if score[pool] >= INFEASIBLE else pool
        if self._keeps_budget(job, devices, pool, now_s):
            return pool
        # The best-scored few are priced exactly: if one keeps the budget, no pool outside
        # them can score better.
        shortlist = np.argpartition(score, SHORTLIST)[:SHORTLIST] if len(score) > SHORTLIST \
            else np.arange(len(score))
        shortlist = shortlist[score[shortlist] < INFEASIBLE]
        staging, run = lease_timing(self.table, job, devices, shortlist)
        cost = lease_cost(self.table, job, devices, shortlist, now_s, now_s + staging + run)
        within = shortlist[cost <= job.budget_fen]
        if len(within):
            return int(within[np.argmin(score[within])])
        # Else bound every lease between its pool's cheapest and dearest hour: pools surely within
        # the budget need no pricing, pools surely over it are out, and only the few in
        # between (that could beat the best sure one) are priced hour by hour.
        t = self.table
        index = np.flatnonzero(score < INFEASIBLE)
        d = over(devices, index)
        staging, run = lease_timing(t, job, devices, index)
        device_hours = d * (staging + run) / SECONDS_PER_HOUR
        fen, _ = t.transfer_rows(job.data_region)
        transfer = job.data_gb * fen[index]
        spot = job.spot_allowed
        low = device_hours * (t.spot_price_floor if spot else t.price_floor)[index] + transfer
        high = device_hours * (t.spot_price_ceiling if spot else t.price_ceiling)[index] \
            + transfer + 2.0  # two fen of rounding up, one for the devices, one for the data
        sure = index[high <= job.budget_fen]
        best = sure[np.argmin(score[sure])] if len(sure) else -1
        maybe = index[(high > job.budget_fen) & (low <= job.budget_fen)]
        if best >= 0:
            maybe = maybe[score[maybe] < score[best]]
        if len(maybe):
            m_staging, m_run = lease_timing(t, job, devices, maybe)
            cost = lease_cost(t, job, devices, maybe, now_s, now_s + m_staging + m_run)
            maybe = maybe[cost <= job.budget_fen]
        pick = np.concatenate([maybe, [best]] if best >= 0 else [maybe]).astype(np.int64)
        return int(pick[np.argmin(score[pick])]) if len(pick) else None

    def _late(self, job: JobRequest, devices: Devices, now_s: int) -> FloatArray:
        """INFEASIBLE where the job would end after its deadline, else 0, over every pool.

        The same operations as `lease_timing`, in place, so it agrees with it to the second.
        """
        assert job.deadline_s is not None
        t = self.table
        end = np.multiply(t.inv_units, job.work_units)
        end /= devices
        end *= SECONDS_PER_HOUR
        np.ceil(end, out=end)
        np.maximum(end, 1.0, out=end)
        end += self._staging(job)
        return (end > job.deadline_s - now_s) * INFEASIBLE

    def _staging(self, job: JobRequest) -> FloatArray:
        key = (job.data_region, job.data_gb)
        staging = self._staging_cache.get(key)
        if staging is None:
            _, s_per_gb = self.table.transfer_rows(job.data_region)
            staging = np.ceil(self.table.queue_wait_s + job.data_gb * s_per_gb)
            if len(self._staging_cache) >= MAX_CACHED_STAGING:
                self._staging_cache.clear()
            self._staging_cache[key] = staging
        return staging

    def _keeps_deadline(self, job: JobRequest, devices: Devices, pool: int,
                        now_s: int) -> bool:
        if job.deadline_s is None:
            return True
        d = at(devices, pool)
        staging, run = lease_timing_one(self.table, job, d, pool)
        return now_s + staging + run <= job.deadline_s

    def _keeps_budget(self, job: JobRequest, devices: Devices, pool: int,
                      now_s: int) -> bool:
        if job.budget_fen is None:
            return True
        d = at(devices, pool)
        staging, run = lease_timing_one(self.table, job, d, pool)
        return lease_cost_one(self.table, job, d, pool, now_s, now_s + staging + run) \
            <= job.budget_fen

    def _one(self, job: JobRequest, devices: Devices, pool: int, now_s: int,
             rank: FloatArray, *, preempt: bool) -> Choice:
        t = self.table
        d = at(devices, pool)
        taken = max(0, d - int(t.free[pool])) if preempt else 0
        allocation = Allocation(t.ids[pool], pool, d, spot=self._spot(job, pool),
                                preempt_devices=taken)
        return Choice((allocation,), now_s, False, rank)

    # --- several pools ---------------------------------------------------------------------

    def _split(self, job: JobRequest, static: BoolArray, rank: FloatArray,
               now_s: int) -> Choice | None:
        """Spreads a wide job over pools: one fabric for a gang, anywhere otherwise."""
        t = self.table
        need = int(job.devices or 0)
        usable = static & (t.free > 0)
        if job.gang:
            usable &= t.group_idx >= 0
        index = np.flatnonzero(usable)
        if len(index) == 0 or need == 0:
            return None
        order = index[np.argsort(rank[index], kind="stable")]
        if job.gang:
            groups = t.group_idx[order]
            capacity = np.bincount(groups, weights=t.free[order], minlength=len(t.group_names))
            fitting = np.flatnonzero(capacity >= need)
            if len(fitting) == 0:
                return None
            # The fabric whose free devices rank best on average hosts the gang; a policy with
            # weights compares the best few fabrics by the gang's own score instead (at the
            # pace of its slowest devices, which the pools' ranks do not see).
            mean_rank = np.bincount(groups, weights=rank[order] * t.free[order],
                                    minlength=len(t.group_names)) / np.maximum(capacity, 1)
            fitting = fitting[np.argsort(mean_rank[fitting], kind="stable")]
            best = int(fitting[0])
            weights = self.policy.weights
            if weights is not None and len(fitting) > 1:
                scores = []
                for group in fitting[:GANG_CANDIDATES]:
                    members = order[groups == group]
                    scores.append(gang_score(t, weights, job, members,
                                             _fill(need, t.free[members]), now_s))
                best = int(fitting[int(np.argmin(scores))])
            order = order[groups == best]
        free = t.free[order]
        taken = _fill(need, free)
        if taken.sum() < need:
            return None
        keep = taken > 0
        allocations = tuple(Allocation(t.ids[i], int(i), int(n), spot=self._spot(job, int(i)))
                            for i, n in zip(order[keep], taken[keep]))
        if (job.deadline_s is not None and job.deadline_strict) or job.budget_fen is not None:
            index = order[keep]
            staging, run = lease_timing(self.table, job, need, index)
            end = now_s + int(staging.max()) + int(run.max())
            if job.deadline_strict and job.deadline_s is not None and end > job.deadline_s:
                return None
            if job.budget_fen is not None:
                series = t.spot_price if job.spot_allowed else t.price
                fen_s = int((series.integral(index, now_s, end) * taken[keep]).sum())
                fen, _ = t.transfer_rows(job.data_region)
                transfer = math.ceil(job.data_gb * int(fen[index].max()))
                if -(-fen_s // SECONDS_PER_HOUR) + transfer > job.budget_fen:
                    return None
        return Choice(allocations, now_s, False, rank)

    # --- deferral --------------------------------------------------------------------------

    def _may_defer(self, job: JobRequest) -> bool:
        return (self.policy.defers and self.policy.weights is not None and job.defer_allowed
                and job.latency_class is LatencyClass.BATCH and job.deadline_s is not None
                and job.devices is not None and not job.multi_pool and job.gang)

    def _deferred(self, job: JobRequest, devices: int, now_s: int,
                  excluded: BoolArray | None = None) -> Choice | None:
        """Best (pool, start hour) that meets the deadline, pricing each hour exactly."""
        t, w = self.table, self.policy.weights
        assert w is not None and job.deadline_s is not None
        fits = t.static_mask(job) & (t.device_count >= devices)
        if excluded is not None:
            fits &= ~excluded
        index = np.flatnonzero(fits)
        if len(index) == 0:
            return None
        rank = self.policy.rank(job, devices, now_s)
        if len(index) > DEFER_CANDIDATES:
            index = index[np.argpartition(rank[index], DEFER_CANDIDATES)[:DEFER_CANDIDATES]]
        horizon = min(self.max_defer_h, max(0, (job.deadline_s - now_s) // SECONDS_PER_HOUR))
        first_hour = now_s // SECONDS_PER_HOUR
        starts = np.array([now_s] + [(first_hour + k) * SECONDS_PER_HOUR
                                     for k in range(1, horizon + 1)], dtype=np.int64)[:, None]
        staging, run = lease_timing(self.table, job, devices, index)
        end = starts + staging + run
        cost = lease_cost(self.table, job, devices, index, starts, end)
        kw = devices * t.power_kw[index] * t.pue[index]
        kg = t.carbon.integral(index, starts + staging, end) * kw / SECONDS_PER_HOUR / 1e3
        vot = w.time_fen_per_device_hour[CLASS_INDEX[LatencyClass.BATCH]]
        time_value = vot * devices * (end - now_s) / SECONDS_PER_HOUR
        value = w.price * cost + w.carbon_fen_per_kg * kg + time_value
        valid = end <= job.deadline_s
        valid[0] &= t.free[index] >= devices  # later hours only need the pool to be big enough
        if job.budget_fen is not None:
            valid &= cost <= job.budget_fen
        if not valid.any():
            return None
        value = np.where(valid, value, np.inf)
        k, m = np.unravel_index(np.argmin(value), value.shape)
        pool = int(index[m])
        breakdown = {"price": float(w.price * cost[k, m]),
                     "carbon": float(w.carbon_fen_per_kg * kg[k, m]),
                     "time": float(time_value[k, m])}
        if k == 0:
            note = f"{self.policy.name}: {t.ids[pool]} now; no later hour is cheaper or greener"
        else:
            now_best = value[0].min()
            gain = "" if math.isinf(now_best) else \
                f", saving {now_best - value[k, m]:,.0f} fen-eq over starting now"
            note = (f"{self.policy.name}: {t.ids[pool]} deferred {k} h to a cheaper or "
                    f"greener hour{gain}")
        allocation = Allocation(t.ids[pool], pool, devices, spot=self._spot(job, pool))
        return Choice((allocation,), int(starts[k, 0]), bool(k > 0), None, breakdown, note)

    # --- result ----------------------------------------------------------------------------

    def _spot(self, job: JobRequest, pool: int) -> bool:
        return bool(job.spot_allowed and self.table.spot_offered[pool])

    def _assemble(self, job: JobRequest, choice: Choice, now_s: int) -> Placement:
        t = self.table
        index = np.array([a.pool_index for a in choice.allocations])
        counts = np.array([a.devices for a in choice.allocations])
        total = int(counts.sum())
        staging, run = lease_timing(self.table, job, total, index)
        staging_s, run_s = int(staging.max()), int(run.max())  # a gang runs at its slowest pace
        start = choice.start_s
        end = start + staging_s + run_s
        series = t.spot_price if job.spot_allowed else t.price
        fen, _ = t.transfer_rows(job.data_region)
        transfer_fen = math.ceil(job.data_gb * int(fen[index].max()))
        kw = counts * t.power_kw[index] * t.pue[index]
        fen_s, carbon_g_s = 0, 0.0
        for a, pool_kw in zip(choice.allocations, kw.tolist()):  # plain numbers: few pools
            fen_s += series.integral_one(a.pool_index, start, end) * a.devices
            carbon_g_s += t.carbon.integral_one(a.pool_index, start + staging_s, end) * pool_kw
        breakdown = choice.breakdown
        if breakdown is None:
            terms = self.policy.explain(job, total, index, now_s)
            share = counts / total
            breakdown = {k: float((v * share).sum()) for k, v in terms.items()}
        reason = choice.note or placement_note(t, self.policy.name, job, choice.allocations,
                                               choice.rank, breakdown)
        return Placement(
            job_id=job.id, policy=self.policy.name, allocations=choice.allocations,
            start_s=start, staging_s=staging_s, runtime_s=run_s,
            cost_fen=-(-fen_s // SECONDS_PER_HOUR) + transfer_fen, transfer_fen=transfer_fen,
            energy_kwh=float(kw.sum()) * run_s / SECONDS_PER_HOUR,
            carbon_kg=carbon_g_s / SECONDS_PER_HOUR / 1e3,
            score=float(sum(breakdown.values())), breakdown=breakdown,
            candidates=int(np.count_nonzero(t.static_mask(job) & (t.free > 0))), reason=reason,
            deferred=choice.deferred,
        )


def _fill(need: int, free: IntArray) -> IntArray:
    """Devices taken from each pool in order until `need` are taken."""
    before = np.concatenate(([0], np.cumsum(free)[:-1]))
    taken: IntArray = np.clip(need - before, 0, free)
    return taken
