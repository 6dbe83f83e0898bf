"""Online placement throughput: decisions per second against 10,000 pools on one core.

Usage: .venv/bin/python bench/placement_online.py [--pools 10000] [--jobs 20000] [--policy balanced]

Data: synthetic pools (suanli.sim.synthetic: 7 accelerator kinds, 15 sites over the 8 hubs,
daily price and carbon profiles, half of them busy) and a mixed job stream (batch and
latency-bound, vendor and memory constraints, residency for a fifth, deadlines for 40% and
budgets for 20%, both scaled to the job's size, data in a random province). Every decision
reserves its devices and the oldest lease is released once 2,000 are held, so the table
changes under every decision as it does in service. Timings are wall-clock on this machine, single thread; the baseline is
a plain NumPy loop that only takes the argmin of a precomputed score vector, in the same
process, to show what the rules and the state changes cost on top of that.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import deque

import numpy as np

from suanli.domain.errors import PlacementInfeasible
from suanli.domain.placement import PlacementEngine, PoolTable, make_policy
from suanli.sim.synthetic import random_job, random_pools

HELD_LEASES = 2000


def run(engine: PlacementEngine, jobs: list, *, full: bool) -> tuple[float, np.ndarray, int]:
    """(seconds, per-decision seconds, refusals) placing every job once, in order."""
    table = engine.table
    held: deque[tuple[int, int, bool]] = deque()
    per = np.empty(len(jobs))
    refused = 0
    clock = time.perf_counter
    started = clock()
    for i, job in enumerate(jobs):
        now = 3600 * 8 + i  # one decision per simulated second
        t0 = clock()
        try:
            decision = engine.place(job, now) if full else engine.choose(job, now)
        except PlacementInfeasible:
            refused += 1
            per[i] = clock() - t0
            continue
        per[i] = clock() - t0
        if not decision.deferred:
            for a in decision.allocations:
                if a.preempt_devices == 0:
                    table.reserve(a.pool_index, a.devices, spot=a.spot)
                    held.append((a.pool_index, a.devices, a.spot))
        while len(held) > HELD_LEASES:
            _release(table, held.popleft())
    return clock() - started, per, refused


def _release(table: PoolTable, lease: tuple[int, int, bool]) -> None:
    pool, devices, spot = lease
    table.release(pool, devices, spot=spot)


def baseline(n_pools: int, n: int) -> float:
    """Decisions/s of `argmin(score + penalty)` over a fixed vector: NumPy's floor."""
    rng = np.random.default_rng(0)
    score = rng.random(n_pools)
    penalty = np.where(rng.random(n_pools) < 0.3, 1e30, 0.0)
    started = time.perf_counter()
    for _ in range(n):
        int((score + penalty).argmin())
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--policy", default="balanced")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pools = random_pools(args.pools, rng)
    jobs = [random_job(i, rng) for i in range(args.jobs)]
    print(f"{args.pools:,} pools, {args.jobs:,} jobs, policy {args.policy}; "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"NumPy {np.__version__}")
    floor = baseline(args.pools, 20_000)
    print(f"baseline argmin(score + penalty) over {args.pools:,} pools: {floor:,.0f} /s")
    for label, full in (("decision (choose)", False), ("decision + breakdown (place)", True)):
        table = PoolTable(pools)  # fresh state for each run
        engine = PlacementEngine(table, make_policy(args.policy, table, rng))
        run(engine, jobs[:500], full=full)  # warm the mask and coefficient caches
        seconds, per, refused = run(engine, jobs, full=full)
        print(f"{label:<30} {len(jobs) / seconds:>9,.0f} decisions/s   "
              f"p50 {np.percentile(per, 50) * 1e6:6.1f} us   "
              f"p99 {np.percentile(per, 99) * 1e6:7.1f} us   "
              f"({refused:,} refused, {len(jobs) / seconds / floor:.3f} x baseline)")
        if not full:
            by_kind(jobs, per)


def by_kind(jobs: list, per: np.ndarray) -> None:
    """The same run split by the rules a job carries (the loop's own overhead excluded)."""
    kinds = {"no deadline, no budget": (False, False), "deadline": (True, False),
             "budget": (False, True), "deadline and budget": (True, True)}
    for name, (deadline, budget) in kinds.items():
        mask = np.array([(j.deadline_s is not None) == deadline
                         and (j.budget_fen is not None) == budget for j in jobs])
        chosen = per[mask]
        print(f"    {name:<24} {mask.mean():5.0%} of jobs  {1 / chosen.mean():>9,.0f} /s   "
              f"p50 {np.percentile(chosen, 50) * 1e6:6.1f} us   "
              f"p99 {np.percentile(chosen, 99) * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
