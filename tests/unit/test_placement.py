"""Placement engine behaviour, one rule per test, on small hand-built federations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from suanli.domain.errors import PlacementInfeasible, ValidationFailed
from suanli.domain.placement import (
    AcceleratorConstraint,
    HourlySeries,
    JobRequest,
    LatencyClass,
    PlacementEngine,
    PoolSnapshot,
    PoolTable,
    make_policy,
)
from suanli.domain.resources import Hub

HOUR = 3600


def pool(id: str, **overrides) -> PoolSnapshot:
    fields = {
        "id": id, "provider_id": "p1", "site_id": f"site-{id}", "province": "CN-SH",
        "city": "Shanghai", "accelerator": "nvidia-a100-80gb", "vendor": "nvidia",
        "architecture": "ampere", "memory_gb": 80.0, "software_stacks": frozenset({"cuda"}),
        "device_count": 8, "free_devices": 8, "units_per_device_hour": 1.0,
        "device_power_kw": 0.4, "pue": 1.2, "price_fen_per_device_hour": (1000,),
        "electricity_fen_per_kwh": (60,), "carbon_g_per_kwh": (500.0,), "hub": Hub.YANGTZE,
        "rtt_ms": {"Shanghai": 2.0, "Beijing": 25.0},
    }
    fields.update(overrides)
    return PoolSnapshot(**fields)


def job(**overrides) -> JobRequest:
    fields = {"id": "j1", "tenant_id": "t1", "work_units": 10.0, "devices": 1}
    fields.update(overrides)
    return JobRequest(**fields)


def engine(pools: list[PoolSnapshot], policy: str = "balanced", **kwargs) -> PlacementEngine:
    table = PoolTable(pools)
    return PlacementEngine(table, make_policy(policy, table, np.random.default_rng(7)), **kwargs)


def test_balanced_prefers_the_cheaper_run_not_the_cheaper_hour():
    slow = pool("slow", price_fen_per_device_hour=(400,), units_per_device_hour=0.3)
    fast = pool("fast", price_fen_per_device_hour=(1000,), units_per_device_hour=1.0)
    assert engine([slow, fast], "cheapest").place(job(), 0).pool_ids == ("slow",)
    placement = engine([slow, fast], "balanced").place(job(), 0)
    assert placement.pool_ids == ("fast",)
    assert placement.cost_fen == 10_000  # ten device-hours at 10 CNY
    assert placement.runtime_s == 10 * HOUR


def test_breakdown_terms_add_up_to_the_score_and_the_reason_names_the_pool():
    placement = engine([pool("a"), pool("b", price_fen_per_device_hour=(900,))]).place(
        job(data_gb=100.0, data_province="CN-BJ"), 0)
    assert placement.pool_ids == ("b",)
    assert set(placement.breakdown) >= {"price", "time", "carbon", "transfer"}
    assert placement.score == pytest.approx(sum(placement.breakdown.values()))
    # ten device-hours, plus the device held while 100 GB cross at 1 Gbit/s (800 s)
    assert placement.breakdown["price"] == pytest.approx(9000.0 + 900 * 800 / 3600)
    assert placement.breakdown["transfer"] == pytest.approx(1400.0)  # 100 GB at 14 fen
    assert placement.transfer_fen == 1400
    assert "b" in placement.reason


@pytest.mark.parametrize(("request_", "reason"), [
    ({"accelerator": AcceleratorConstraint(vendors=frozenset({"huawei"}))}, "accelerators"),
    ({"residency_provinces": frozenset({"CN-GZ"})}, "residency"),
    ({"latency_class": LatencyClass.REALTIME, "user_city": "Beijing"}, "round-trip"),
    ({"devices": 16}, "largest suitable pool has 8"),
    ({"budget_fen": 100}, "budget"),
])
def test_infeasible_job_is_refused_with_the_rule_that_ruled_out_every_pool(request_, reason):
    with pytest.raises(PlacementInfeasible, match=reason):
        engine([pool("a"), pool("b")]).place(job(**request_), 0)


def test_no_free_capacity_is_reported_as_such():
    with pytest.raises(PlacementInfeasible, match="no capacity now"):
        engine([pool("a", free_devices=0)]).place(job(), 0)


def test_residency_keeps_the_job_in_its_province_even_when_dearer():
    sh = pool("sh", price_fen_per_device_hour=(3000,))
    gz = pool("gz", province="CN-GZ", city="Gui'an", hub=Hub.GUIZHOU, western=True,
              price_fen_per_device_hour=(500,))
    assert engine([sh, gz]).place(job(), 0).pool_ids == ("gz",)
    assert engine([sh, gz]).place(job(residency_provinces=frozenset({"CN-SH"})), 0).pool_ids \
        == ("sh",)


def test_realtime_inference_stays_near_its_user():
    near = pool("near", price_fen_per_device_hour=(2000,))
    far = pool("far", price_fen_per_device_hour=(200,), rtt_ms={"Shanghai": 35.0})
    realtime = job(latency_class=LatencyClass.REALTIME, user_city="Shanghai")
    assert engine([near, far]).place(realtime, 0).pool_ids == ("near",)
    assert engine([near, far]).place(job(), 0).pool_ids == ("far",)


def test_batch_work_moves_west_unless_its_data_is_too_big_to_move():
    east = pool("east", price_fen_per_device_hour=(1500,))
    west = pool("west", province="CN-NX", city="Zhongwei", hub=Hub.NINGXIA, western=True,
                price_fen_per_device_hour=(900,), carbon_g_per_kwh=(300.0,))
    small = job(work_units=40.0, data_gb=50.0, data_province="CN-SH")
    placement = engine([east, west], "east-west").place(small, 0)
    assert placement.pool_ids == ("west",)
    assert "east-to-west" in placement.reason
    huge = job(work_units=40.0, data_gb=50_000.0, data_province="CN-SH")
    assert engine([east, west], "east-west").place(huge, 0).pool_ids == ("east",)


def test_a_gang_spans_pools_only_on_one_fabric():
    pools = [pool("a1", interconnect="ib-a"), pool("a2", interconnect="ib-a"),
             pool("b1", interconnect="ib-b", free_devices=6),
             pool("b2", interconnect="ib-b", free_devices=6)]
    wide = job(devices=12, work_units=120.0, multi_pool=True)
    placement = engine(pools).place(wide, 0)
    assert placement.devices == 12
    assert {a.pool_id[0] for a in placement.allocations} == {"a"}
    with pytest.raises(PlacementInfeasible):
        engine(pools).place(job(devices=12, work_units=120.0), 0)  # no multi_pool: one pool


def test_a_non_gang_job_spreads_over_any_pools():
    pools = [pool("a", free_devices=3), pool("b", free_devices=2, interconnect="x")]
    placement = engine(pools).place(job(devices=5, gang=False), 0)
    assert sorted((a.pool_id, a.devices) for a in placement.allocations) == [("a", 3), ("b", 2)]


def test_on_demand_work_preempts_spot_leases_but_spot_work_does_not():
    full = pool("full", free_devices=0, spot_devices_in_use=4,
                spot_price_fen_per_device_hour=(400,))
    placement = engine([full]).place(job(devices=2), 0)
    assert placement.allocations[0].preempt_devices == 2
    assert "preempts 2 spot devices" in placement.reason
    with pytest.raises(PlacementInfeasible):
        engine([full]).place(job(devices=2, spot_allowed=True), 0)
    with pytest.raises(PlacementInfeasible):
        engine([full], preemption=False).place(job(devices=2), 0)


def test_spot_work_pays_the_spot_price():
    p = pool("p", spot_price_fen_per_device_hour=(400,))
    assert engine([p]).place(job(spot_allowed=True), 0).cost_fen == 4000
    assert engine([p]).place(job(spot_allowed=True), 0).allocations[0].spot


def test_deadline_policy_defers_to_the_night_valley_when_the_deadline_allows():
    day_night = tuple(600 if h < 8 else 1500 for h in range(24))  # cheap from 00:00 to 08:00
    p = pool("p", price_fen_per_device_hour=day_night, electricity_fen_per_kwh=(60,) * 24,
             carbon_g_per_kwh=(500.0,) * 24)
    now = 14 * HOUR  # 14:00
    relaxed = job(work_units=4.0, deadline_s=now + 30 * HOUR)
    placement = engine([p], "deadline").place(relaxed, now)
    assert placement.deferred and placement.start_s == 24 * HOUR
    assert placement.cost_fen == 2400
    assert placement.finish_s <= relaxed.deadline_s
    tight = job(work_units=4.0, deadline_s=now + 6 * HOUR)
    placement = engine([p], "deadline").place(tight, now)
    assert not placement.deferred and placement.start_s == now
    assert not engine([p], "balanced").place(relaxed, now).deferred


def test_deadline_picks_the_pool_that_meets_it_even_if_it_scores_worse():
    slow = pool("slow", price_fen_per_device_hour=(100,), units_per_device_hour=0.5)
    fast = pool("fast", price_fen_per_device_hour=(3000,), units_per_device_hour=2.0)
    urgent = job(work_units=10.0, deadline_s=8 * HOUR)
    assert engine([slow, fast]).place(job(work_units=10.0), 0).pool_ids == ("slow",)
    assert engine([slow, fast]).place(urgent, 0).pool_ids == ("fast",)
    strict = job(work_units=10.0, deadline_s=HOUR, deadline_strict=True)
    with pytest.raises(PlacementInfeasible, match="deadline"):
        engine([slow, fast]).place(strict, 0)


def test_elastic_width_takes_enough_devices_for_the_throughput_asked():
    p = pool("p", units_per_device_hour=2.5)
    placement = engine([p]).place(job(devices=None, units_per_hour=6.0), 0)
    assert placement.devices == 3


def test_least_loaded_spreads_and_first_fit_packs():
    pools = [pool("a", free_devices=2), pool("b", free_devices=7)]
    assert engine(pools, "least-loaded").place(job(), 0).pool_ids == ("b",)
    assert engine(pools, "first-fit").place(job(), 0).pool_ids == ("a",)


def test_green_prefers_the_cleaner_grid():
    coal = pool("coal", carbon_g_per_kwh=(800.0,), price_fen_per_device_hour=(900,))
    hydro = pool("hydro", carbon_g_per_kwh=(100.0,), price_fen_per_device_hour=(1000,))
    assert engine([coal, hydro], "green").place(job(), 0).pool_ids == ("hydro",)
    assert engine([coal, hydro], "cheapest").place(job(), 0).pool_ids == ("coal",)


def test_provider_balance_steers_work_to_the_idle_owner():
    busy_owner = [pool(f"a{i}", provider_id="busy", free_devices=1) for i in range(3)]
    idle_owner = pool("b", provider_id="idle", price_fen_per_device_hour=(1010,))
    assert engine([*busy_owner, idle_owner], "provider-balance").place(job(), 0).pool_ids \
        == ("b",)


def test_hourly_integral_matches_a_second_by_second_sum():
    values = np.array([[3, 5, 7], [11, 13, 17]], dtype=np.int64)
    series = HourlySeries(values)
    for t0, t1 in [(0, 1), (100, 7300), (3599, 3601), (5000, 40_000), (0, 3 * HOUR * 5 + 17)]:
        brute = sum(int(values[1, (s // HOUR) % 3]) for s in range(t0, t1))
        assert int(series.integral(1, t0, t1)) == brute
        assert series.integral_one(1, t0, t1) == brute


def test_requests_out_of_range_are_refused():
    with pytest.raises(ValidationFailed):
        job(devices=None)
    with pytest.raises(ValidationFailed):
        job(work_units=0.0)
    with pytest.raises(ValidationFailed):
        pool("p", free_devices=9)
    with pytest.raises(ValidationFailed):
        PoolTable([pool("a"), pool("a")])
    with pytest.raises(ValidationFailed):
        make_policy("nope", PoolTable([pool("a")]), np.random.default_rng(0))


def test_reservations_update_scores_and_capacity():
    pools = [pool("a"), pool("b", price_fen_per_device_hour=(1001,))]
    eng = engine(pools)
    first = eng.place(job(devices=8), 0)
    assert first.pool_ids == ("a",)
    eng.table.reserve(first.allocations[0].pool_index, 8)
    assert eng.place(job(devices=8), 60).pool_ids == ("b",)
    eng.table.release(first.allocations[0].pool_index, 8)
    assert eng.place(job(devices=8), 120).pool_ids == ("a",)
    assert dataclasses.replace(first, job_id="x").job_id == "x"
