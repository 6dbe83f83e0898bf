"""Batch optimiser: gap to the exact optimum on small instances, and time at 1,000 x 1,000.

Usage: .venv/bin/python bench/batch_optimizer.py [--instances 200] [--jobs 1000] [--pools 1000]

Small instances: 3-5 synthetic pools with few free devices and 4-7 jobs each (contention is
the point), scored by the balanced weights; the exact optimum is found by enumerating every
assignment. Jobs carry no deadline here: the batch model holds a job to its deadline when some
pool can meet it at the start of the round, while the greedy decides that job by job, so with
deadlines the two would not be solving the same problem. For each instance the MILP (HiGHS,
mip_rel_gap 0), its LP relaxation rounded, and the online greedy engine (one job at a time
in arrival order, reserving as it goes) are compared with it on the same objective.
Large instance: 1,000 synthetic jobs x 1,000 synthetic pools, timed (model + solve; the
score matrix apart) with each job's 32 best pools as candidates and with all of them, by
LP + rounding and by MILP. Wall-clock on this machine, one thread.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

import numpy as np
import scipy

from suanli.domain.errors import PlacementInfeasible
from suanli.domain.placement import JobRequest, PlacementEngine, PoolTable, make_policy
from suanli.domain.placement.batch import objective_of, score_matrix, solve
from suanli.domain.placement.policies import BALANCED
from suanli.domain.placement.table import INFEASIBLE
from suanli.sim.synthetic import random_job, random_pools

NOW_S = 8 * 3600


def exact(scores: np.ndarray, devices: np.ndarray, free: np.ndarray) -> float:
    options = [[None] + [p for p in range(scores.shape[1]) if scores[j, p] < INFEASIBLE]
               for j in range(scores.shape[0])]
    best = np.inf
    for pools in itertools.product(*options):
        used = np.zeros(len(free), dtype=np.int64)
        for j, p in enumerate(pools):
            if p is not None:
                used[p] += devices[j]
        if (used <= free).all():
            best = min(best, objective_of(scores, pools))
    return best


def greedy(jobs: list[JobRequest], table: PoolTable) -> list[int | None]:
    engine = PlacementEngine(table, make_policy("balanced", table, np.random.default_rng(0)),
                             preemption=False)
    pools: list[int | None] = []
    for job in jobs:
        try:
            choice = engine.choose(job, NOW_S, allow_defer=False)
        except PlacementInfeasible:
            pools.append(None)
            continue
        a = choice.allocations[0]
        if len(choice.allocations) > 1:
            pools.append(None)
            continue
        table.reserve(a.pool_index, a.devices, spot=a.spot)
        pools.append(a.pool_index)
    return pools


def without_deadline(job: JobRequest) -> JobRequest:
    fields = {f: getattr(job, f) for f in job.__slots__}
    return JobRequest(**{**fields, "multi_pool": False, "deadline_s": None})


def small(instances: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    milp_gaps, greedy_gaps, rounded_gaps, solve_s = [], [], [], []
    for _ in range(instances):
        pools = random_pools(int(rng.integers(3, 6)), rng, busy=0.7)
        jobs = [without_deadline(random_job(i, rng, NOW_S))
                for i in range(int(rng.integers(4, 8)))]
        table = PoolTable(pools)
        scores = score_matrix(jobs, table, BALANCED, NOW_S)
        devices = np.array([j.devices for j in jobs])
        best = exact(scores, devices, table.free)
        started = time.perf_counter()
        result = solve(scores, devices, table.free.copy(), mip_rel_gap=0.0)
        solve_s.append(time.perf_counter() - started)
        milp_gaps.append((result.objective - best) / best)
        rounded = solve(scores, devices, table.free.copy(), exact=False)
        rounded_gaps.append((rounded.objective - best) / best)
        greedy_gaps.append((objective_of(scores, greedy(jobs, table)) - best) / best)
    milp, grd, rnd = np.array(milp_gaps), np.array(greedy_gaps), np.array(rounded_gaps)
    print(f"small instances: {instances} (3-5 pools, 4-7 jobs), exact optimum by enumeration")
    print(f"  MILP   gap to optimum: mean {milp.mean():.2e}, max {milp.max():.2e}; "
          f"solve {np.median(solve_s) * 1e3:.1f} ms median")
    print(f"  LP + rounding gap:     mean {rnd.mean():.3%}, max {rnd.max():.3%}, "
          f"suboptimal in {(rnd > 1e-9).mean():.1%} of instances")
    print(f"  greedy gap to optimum: mean {grd.mean():.3%}, max {grd.max():.3%}, "
          f"suboptimal in {(grd > 1e-9).mean():.1%} of instances")


def large(n_jobs: int, n_pools: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = PoolTable(random_pools(n_pools, rng, busy=0.5))
    jobs = [without_deadline(random_job(i, rng, NOW_S)) for i in range(n_jobs)]
    started = time.perf_counter()
    scores = score_matrix(jobs, table, BALANCED, NOW_S)
    matrix_s = time.perf_counter() - started
    devices = np.array([j.devices for j in jobs])
    feasible = int((scores < INFEASIBLE).sum())
    print(f"large: {n_jobs:,} jobs x {n_pools:,} pools ({feasible:,} feasible pairs, "
          f"{int(table.free.sum()):,} free devices, {int(devices.sum()):,} asked); "
          f"score matrix {matrix_s:.2f} s")
    greedy_obj = objective_of(scores, greedy(jobs, PoolTable(table.pools)))
    runs = (("LP + rounding, top-32", 32, False), ("LP + rounding, all", None, False),
            ("MILP, top-32", 32, True), ("MILP, all", None, True))
    for label, k, exact_ in runs:
        started = time.perf_counter()
        result = solve(scores, devices, table.free.copy(), candidates_per_job=k,
                       time_limit_s=300.0, mip_rel_gap=1e-4, exact=exact_)
        seconds = time.perf_counter() - started
        print(f"  {label:<22} {seconds:7.2f} s  {result.variables:>9,} variables  "
              f"assigned {result.assigned:,}  proven gap {result.gap:.2e}  "
              f"objective {result.objective:,.0f} (greedy "
              f"{(greedy_obj - result.objective) / result.objective:+.2%} worse)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SciPy {scipy.__version__} (HiGHS)")
    small(args.instances, args.seed)
    large(args.jobs, args.pools, args.seed)


if __name__ == "__main__":
    main()
