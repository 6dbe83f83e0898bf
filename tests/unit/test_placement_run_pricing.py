"""Pricing a job's planned run hour by hour, and scoring gangs at their slowest pool's pace."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from suanli.domain.placement import JobRequest, PlacementEngine, PoolSnapshot, PoolTable
from suanli.domain.placement.policies import LEAN, LinearPolicy, make_policy
from suanli.domain.placement.scoring import LinearScorer, Weights, gang_score
from suanli.domain.resources import Hub

HOUR = 3600
# 24 hourly prices: dear (1,000 fen) from 00:00 to 01:00, cheap (400) for the rest of the day
DEAR_FIRST_HOUR = (1000,) + (400,) * 23
CHEAP_FIRST_HOUR = (400,) + (1000,) * 23


def pool(id: str, **overrides) -> PoolSnapshot:
    fields = {
        "id": id, "provider_id": "p1", "site_id": f"site-{id}", "province": "CN-SH",
        "city": "Shanghai", "accelerator": "nvidia-a100-80gb", "vendor": "nvidia",
        "architecture": "ampere", "memory_gb": 80.0, "software_stacks": frozenset({"cuda"}),
        "device_count": 8, "free_devices": 8, "units_per_device_hour": 1.0,
        "device_power_kw": 0.4, "pue": 1.2, "price_fen_per_device_hour": (1000,),
        "electricity_fen_per_kwh": (60,), "carbon_g_per_kwh": (500.0,), "hub": Hub.YANGTZE,
        "rtt_ms": {"Shanghai": 2.0},
    }
    fields.update(overrides)
    return PoolSnapshot(**fields)


def job(**overrides) -> JobRequest:
    fields = {"id": "j1", "tenant_id": "t1", "work_units": 10.0, "devices": 1}
    fields.update(overrides)
    return JobRequest(**fields)


def choose(pools: list[PoolSnapshot], weights: Weights, request: JobRequest) -> str:
    table = PoolTable(pools)
    engine = PlacementEngine(table, LinearPolicy("balanced", table, weights))
    return engine.place(request, 0).pool_ids[0]


def test_lean_prices_the_whole_run_not_the_hour_it_is_placed_in():
    # a ten-hour run: pool a is dear only in its first hour, pool b cheap only in its first
    pools = [pool("a", price_fen_per_device_hour=DEAR_FIRST_HOUR),
             pool("b", price_fen_per_device_hour=CHEAP_FIRST_HOUR)]
    now_priced = dataclasses.replace(LEAN, price_over_run=False)
    assert choose(pools, now_priced, job()) == "b"  # looks cheaper at 00:00
    assert LEAN.price_over_run
    assert choose(pools, LEAN, job()) == "a"  # is cheaper over the ten hours
    placement = PlacementEngine(PoolTable(pools), make_policy(
        "lean", PoolTable(pools), np.random.default_rng(7))).place(job(), 0)
    assert placement.cost_fen == 1000 + 9 * 400


def test_run_priced_terms_add_up_to_the_score_and_price_the_lease():
    pools = [pool("a", price_fen_per_device_hour=DEAR_FIRST_HOUR), pool("b")]
    table = PoolTable(pools)
    engine = PlacementEngine(table, make_policy("lean", table, np.random.default_rng(7)))
    request = job(devices=2, work_units=12.0, data_gb=100.0, data_province="CN-BJ")
    placement = engine.place(request, 1800)
    assert placement.score == pytest.approx(sum(placement.breakdown.values()))
    # staging: 100 GB at 1 Gbit/s = 800 s, then six hours on two devices from 00:43:20
    run = sum(DEAR_FIRST_HOUR[(1800 + 800 + s) // HOUR % 24] for s in range(6 * HOUR))
    expected = 2 * (1000 * 800 / HOUR + run / HOUR)
    assert placement.breakdown["price"] == pytest.approx(expected, rel=1e-6)


def test_run_pricing_scores_every_pool_as_the_one_pool_terms_do():
    pools = [pool(str(i), price_fen_per_device_hour=tuple(int(v) for v in
                                                           np.random.default_rng(i).integers(
                                                               100, 2000, 24)),
                  units_per_device_hour=0.5 + i / 4, queue_wait_s=10.0 * i)
             for i in range(6)]
    table = PoolTable(pools)
    scorer = LinearScorer(table, LEAN)
    request = job(devices=3, work_units=7.5, data_gb=20.0, data_province="CN-GD")
    score = scorer.score(request, 3, 5 * HOUR + 17)
    terms = scorer.terms(request, 3, np.arange(6), 5 * HOUR + 17)
    assert score == pytest.approx(sum(terms.values()), rel=1e-9)


def test_a_gang_is_scored_at_the_pace_of_its_slowest_pool():
    # fabric x: two fast pools; fabric y: a fast and a slow pool that look good on average
    pools = [pool("x1", interconnect="x", units_per_device_hour=2.0,
                  price_fen_per_device_hour=(2000,)),
             pool("x2", interconnect="x", units_per_device_hour=2.0,
                  price_fen_per_device_hour=(2000,)),
             pool("y1", interconnect="y", units_per_device_hour=4.0,
                  price_fen_per_device_hour=(2400,)),
             pool("y2", interconnect="y", units_per_device_hour=0.5,
                  price_fen_per_device_hour=(200,))]
    table = PoolTable(pools)
    wide = job(devices=16, work_units=320.0, multi_pool=True)
    mixed = gang_score(table, LEAN, wide, np.array([2, 3]), np.array([8, 8]), 0)
    even = gang_score(table, LEAN, wide, np.array([0, 1]), np.array([8, 8]), 0)
    assert even < mixed  # y runs at 0.5 SCU/h per device while billing the fast devices
    engine = PlacementEngine(table, make_policy("lean", table, np.random.default_rng(7)))
    placement = engine.place(wide, 0)
    assert {a.pool_id for a in placement.allocations} == {"x1", "x2"}
