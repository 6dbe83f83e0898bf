"""The batch optimiser finds the true optimum on instances small enough to enumerate."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.domain.placement import (
    JobRequest,
    LatencyClass,
    PlacementEngine,
    PoolTable,
    make_policy,
)
from suanli.domain.placement.batch import (
    assign_batch,
    objective_of,
    score_matrix,
    solve,
)
from suanli.domain.placement.policies import BALANCED
from suanli.domain.placement.table import INFEASIBLE
from suanli.sim.synthetic import random_job, random_pools

from .test_placement import job, pool


def brute_force(scores: np.ndarray, devices: np.ndarray, free: np.ndarray) -> float:
    n_jobs, n_pools = scores.shape
    options = [[None] + [p for p in range(n_pools) if scores[j, p] < INFEASIBLE]
               for j in range(n_jobs)]
    best = np.inf
    for pools in itertools.product(*options):
        used = np.zeros(n_pools, dtype=np.int64)
        for j, p in enumerate(pools):
            if p is not None:
                used[p] += devices[j]
        if (used <= free).all():
            best = min(best, objective_of(scores, pools))
    return best


@st.composite
def instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_jobs = draw(st.integers(1, 6))
    n_pools = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scores = rng.uniform(1.0, 1000.0, size=(n_jobs, n_pools))
    scores[rng.random((n_jobs, n_pools)) < 0.25] = INFEASIBLE
    devices = rng.choice([1, 2, 4, 8], size=n_jobs)
    free = rng.choice([0, 1, 2, 4, 8, 12], size=n_pools)
    return scores, devices, free


@settings(max_examples=150, deadline=None)
@given(instance=instances())
def test_milp_matches_the_brute_force_optimum_on_small_instances(instance):
    scores, devices, free = instance
    result = solve(scores, devices, free, mip_rel_gap=0.0)
    used = np.zeros(len(free), dtype=np.int64)
    for j, p in enumerate(result.pools):
        if p is not None:
            assert scores[j, p] < INFEASIBLE
            used[p] += devices[j]
    assert (used <= free).all()
    assert objective_of(scores, result.pools) == np.float64(result.objective) or \
        abs(objective_of(scores, result.pools) - result.objective) < 1e-6
    assert abs(result.objective - brute_force(scores, devices, free)) < 1e-6 * max(
        1.0, abs(result.objective))


def test_batch_beats_greedy_when_an_early_job_would_take_the_only_pool_a_later_one_fits():
    big = pool("big", device_count=8, free_devices=8, price_fen_per_device_hour=(1000,))
    small = pool("small", device_count=4, free_devices=4, price_fen_per_device_hour=(1100,))
    table = PoolTable([big, small])
    first = job(id="a", devices=4, work_units=4.0)
    second = job(id="b", devices=8, work_units=8.0)
    engine = PlacementEngine(table, make_policy("balanced", table, np.random.default_rng(0)))
    greedy_first = engine.place(first, 0)
    assert greedy_first.pool_ids == ("big",)  # cheaper, so greedy takes it and strands "b"
    result = assign_batch([first, second], table, BALANCED, 0, mip_rel_gap=0.0)
    assert result.pools == (1, 0)
    assert result.assigned == 2 and result.gap < 1e-9


def test_batch_keeps_the_hard_rules_of_online_placement():
    rng = np.random.default_rng(3)
    table = PoolTable(random_pools(40, rng))
    jobs = [random_job(i, rng) for i in range(30)]
    jobs = [j for j in jobs if j.devices is not None]
    scores = score_matrix(jobs, table, BALANCED, 3600)
    result = assign_batch(jobs, table, BALANCED, 3600, mip_rel_gap=0.0)
    used = np.zeros(table.n, dtype=np.int64)
    for j, p in zip(jobs, result.pools):
        if p is None:
            continue
        assert table.static_mask(j)[p]
        if j.residency_provinces:
            assert table.pools[p].province in j.residency_provinces
        used[p] += j.devices
    assert (used <= table.free).all()
    assert result.objective <= objective_of(scores, [None] * len(jobs))


def test_top_candidates_shrink_the_model():
    rng = np.random.default_rng(5)
    table = PoolTable(random_pools(60, rng, busy=0.0))
    jobs = [JobRequest(id=f"j{i}", tenant_id="t", work_units=10.0, devices=1,
                       latency_class=LatencyClass.BATCH) for i in range(20)]
    full = assign_batch(jobs, table, BALANCED, 0)
    top = assign_batch(jobs, table, BALANCED, 0, candidates_per_job=5)
    assert top.variables < full.variables
    assert top.assigned == full.assigned == 20
    assert abs(top.objective - full.objective) <= 1e-6 * full.objective


@settings(max_examples=100, deadline=None)
@given(instance=instances())
def test_lp_rounding_is_feasible_and_its_bound_is_a_true_lower_bound(instance):
    scores, devices, free = instance
    rounded = solve(scores, devices, free, exact=False)
    used = np.zeros(len(free), dtype=np.int64)
    for j, p in enumerate(rounded.pools):
        if p is not None:
            assert scores[j, p] < INFEASIBLE
            used[p] += devices[j]
    assert (used <= free).all()
    optimum = brute_force(scores, devices, free)
    assert rounded.bound <= optimum + 1e-6 * max(1.0, optimum)
    assert rounded.objective >= optimum - 1e-6 * max(1.0, optimum)
