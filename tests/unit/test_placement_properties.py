"""Property tests: whatever the pools and the job, placement keeps the hard rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanli.domain.errors import PlacementInfeasible
from suanli.domain.placement import (
    MAX_RTT_MS,
    POLICIES,
    AcceleratorConstraint,
    JobRequest,
    LatencyClass,
    PlacementEngine,
    PoolSnapshot,
    PoolTable,
    make_policy,
)
from suanli.sim.synthetic import PLACES, USER_CITIES, random_pools

NOW_S = 5 * 3600 + 600
PROVINCES = sorted({p[0] for p in PLACES})
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tables(draw: st.DrawFn) -> PoolTable:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 60))
    busy = draw(st.sampled_from([0.0, 0.3, 0.6, 0.9]))
    return PoolTable(random_pools(n, np.random.default_rng(seed), busy=busy))


@st.composite
def jobs(draw: st.DrawFn) -> JobRequest:
    devices = draw(st.sampled_from([1, 1, 2, 4, 8, 16, 48]))
    multi = devices >= 16 and draw(st.booleans())
    return JobRequest(
        id="job", tenant_id="t",
        work_units=draw(st.floats(0.01, 500.0)),
        devices=devices,
        accelerator=AcceleratorConstraint(
            vendors=draw(st.sampled_from([frozenset(), frozenset({"nvidia"}),
                                          frozenset({"huawei"})])),
            min_memory_gb=draw(st.sampled_from([0.0, 24.0, 64.0]))),
        gang=not (multi and draw(st.booleans())),
        multi_pool=multi,
        latency_class=draw(st.sampled_from([LatencyClass.BATCH] * 4 + list(LatencyClass))),
        user_city=draw(st.sampled_from(USER_CITIES)),
        data_province=draw(st.sampled_from(PROVINCES)),
        data_gb=draw(st.sampled_from([0.0, 5.0, 800.0])),
        residency_provinces=frozenset() if draw(st.booleans()) else frozenset(
            draw(st.lists(st.sampled_from(PROVINCES), max_size=6))),
        deadline_s=draw(st.one_of(st.none(), st.integers(NOW_S, NOW_S + 72 * 3600))),
        budget_fen=draw(st.one_of(st.none(), st.none(), st.integers(0, 2_000_000))),
        spot_allowed=draw(st.booleans()),
    )


def statically_ok(pool: PoolSnapshot, job: JobRequest) -> bool:
    c = job.accelerator
    if not pool.active or pool.memory_gb < c.min_memory_gb:
        return False
    if c.vendors and pool.vendor not in c.vendors:
        return False
    if job.residency_provinces and pool.province not in job.residency_provinces:
        return False
    bound = MAX_RTT_MS[job.latency_class]
    return math.isinf(bound) or pool.rtt_ms.get(job.user_city or "", math.inf) <= bound


def timing(pool: PoolSnapshot, job: JobRequest, devices: int) -> tuple[int, int]:
    gbps = 10.0 if pool.province == job.data_region else 1.0
    staging = math.ceil(pool.queue_wait_s + job.data_gb * (8.0 / gbps))
    run = max(1, math.ceil(job.work_units * (1.0 / pool.units_per_device_hour) / devices * 3600))
    return staging, run


def lease_cost(pool: PoolSnapshot, job: JobRequest, devices: int, start: int, end: int) -> int:
    """Hour by hour, independently of the engine's cumulative sums."""
    prices = pool.price_fen_per_device_hour
    if job.spot_allowed and pool.spot_price_fen_per_device_hour is not None:
        prices = pool.spot_price_fen_per_device_hour
    fen_s, t = 0, start
    while t < end:
        edge = min(end, (t // 3600 + 1) * 3600)
        fen_s += prices[(t // 3600) % len(prices)] * (edge - t)
        t = edge
    fen_per_gb = 0 if pool.province == job.data_region else 14
    return -(-fen_s * devices // 3600) + math.ceil(job.data_gb * fen_per_gb)


def single_pool_options(table: PoolTable, job: JobRequest) -> list[tuple[int, bool]]:
    """(pool, meets deadline) for every pool that could take the whole job right now."""
    out = []
    for i, pool in enumerate(table.pools):
        if not statically_ok(pool, job) or int(table.free[i]) < (job.devices or 0):
            continue
        staging, run = timing(pool, job, job.devices or 1)
        end = NOW_S + staging + run
        if job.budget_fen is not None and \
                lease_cost(pool, job, job.devices or 1, NOW_S, end) > job.budget_fen:
            continue
        meets = job.deadline_s is None or NOW_S + staging + run <= job.deadline_s
        out.append((i, meets))
    return out


def place(table: PoolTable, job: JobRequest, policy: str):
    rng = np.random.default_rng(0)
    engine = PlacementEngine(table, make_policy(policy, table, rng))
    return engine.place(job, NOW_S)


@SETTINGS
@given(table=tables(), job=jobs(), policy=st.sampled_from(sorted(POLICIES)))
def test_placement_never_picks_an_unsuitable_pool_nor_more_than_is_free(table, job, policy):
    try:
        placement = place(table, job, policy)
    except PlacementInfeasible:
        return
    assert placement.devices == job.devices
    for a in placement.allocations:
        pool = table.pools[a.pool_index]
        assert statically_ok(pool, job), (a, job)
        if job.residency_provinces:
            assert pool.province in job.residency_provinces
        if placement.deferred:
            assert a.devices <= pool.device_count
        else:
            assert a.devices <= int(table.free[a.pool_index]) + a.preempt_devices
            assert a.preempt_devices <= int(table.spot_used[a.pool_index])
    if len(placement.allocations) > 1 and job.gang:
        fabrics = {table.pools[a.pool_index].interconnect for a in placement.allocations}
        assert len(fabrics) == 1 and None not in fabrics
    if job.budget_fen is not None and not placement.deferred:
        assert placement.cost_fen <= job.budget_fen


def with_tight_deadline(job: JobRequest, factor: float) -> JobRequest:
    """The job with a deadline some pools meet and others miss: a multiple of its run time
    on a device of 1 unit per hour (the synthetic devices rate 0.4 to 4.5)."""
    run_s = job.work_units / (job.devices or 1) * 3600
    fields = {f: getattr(job, f) for f in job.__slots__}
    return JobRequest(**{**fields, "deadline_s": NOW_S + int(factor * run_s) + 1})


@SETTINGS
@given(table=tables(), job=jobs(), factor=st.floats(0.2, 3.0),
       policy=st.sampled_from(sorted(POLICIES)))
def test_deadline_is_met_whenever_some_pool_can_meet_it(table, job, factor, policy):
    job = with_tight_deadline(job, factor)
    options = single_pool_options(table, job)
    try:
        placement = place(table, job, policy)
    except PlacementInfeasible:
        assert not options, "a pool could take the job, yet the engine refused"
        return
    if placement.deferred or job.deadline_s is None:
        if placement.deferred:
            assert placement.finish_s <= job.deadline_s
        return
    if any(meets for _, meets in options) and len(placement.allocations) == 1 \
            and not placement.allocations[0].preempt_devices:
        assert placement.finish_s <= job.deadline_s


@SETTINGS
@given(table=tables(), policy=st.sampled_from(sorted(POLICIES)), data=st.data())
def test_reserving_placements_in_turn_never_exceeds_capacity(table, policy, data):
    rng = np.random.default_rng(1)
    engine = PlacementEngine(table, make_policy(policy, table, rng), preemption=False)
    capacity = table.device_count.copy()
    for k in range(20):
        job = data.draw(jobs())
        try:
            placement = engine.place(job, NOW_S + 60 * k, allow_defer=False)
        except PlacementInfeasible:
            continue
        for a in placement.allocations:
            table.reserve(a.pool_index, a.devices, spot=a.spot)
        assert (table.free >= 0).all() and (table.free <= capacity).all()
        assert (table.spot_used <= capacity - table.free).all()


@SETTINGS
@given(table=tables(), job=jobs(), policy=st.sampled_from(
    ["balanced", "cheapest", "east-west", "provider-balance", "green"]))
def test_linear_policy_picks_the_best_scored_admissible_pool(table, job, policy):
    job = JobRequest(**{**{f: getattr(job, f) for f in job.__slots__},
                        "deadline_s": None, "budget_fen": None, "multi_pool": False,
                        "gang": True})
    try:
        placement = place(table, job, policy)
    except PlacementInfeasible:
        return
    if placement.deferred or placement.allocations[0].preempt_devices:
        return
    engine = PlacementEngine(table, make_policy(policy, table, np.random.default_rng(0)))
    rank = engine.policy.rank(job, job.devices, NOW_S)
    admissible = [i for i, _ in single_pool_options(table, job)]
    chosen = placement.allocations[0].pool_index
    assert rank[chosen] == pytest.approx(min(rank[i] for i in admissible))
    assert sum(placement.breakdown.values()) == pytest.approx(rank[chosen], rel=1e-9, abs=1e-6)
