"""The live scheduler decides with the placement domain, as the simulator does."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.catalog import load_catalog
from suanli.domain.placement import (
    AcceleratorConstraint,
    JobRequest,
    PlacementEngine,
    PoolTable,
    make_policy,
)
from suanli.adapters.store.repositories import billing as billing_repo
from suanli.domain.jobs import JobSpec
from suanli.domain.tenants import Principal, Role
from suanli.services.billing import wallets as billing
from suanli.domain.time import SECONDS_PER_HOUR
from suanli.services.scheduling import placement as scheduling
from suanli.services.scheduling.live_table import LiveTables
from tests.api.live_world import register

# A job stream: (devices, accelerator, hours, workload class), submitted in this order.
STREAM = [
    (2, None, 1, "general"), (8, "nvidia-a800", 4, "training"), (1, None, 0.5, "inference"),
    (16, None, 8, "training"), (4, "huawei-ascend-910b", 2, "training"),
    (32, None, 24, "training"), (8, None, 1, "general"), (2, "nvidia-rtx-4090", 1, "inference"),
    (16, "nvidia-a800", 12, "training"), (4, None, 2, "hpc"), (64, None, 6, "training"),
    (1, None, 0.25, "general"),
]


def _simulator_engine(snapshots: tuple) -> tuple[PoolTable, PlacementEngine]:
    """The engine as `suanli.sim.simulator.Simulator` builds it, on a table of its own."""
    table = PoolTable(snapshots)
    policy = make_policy("balanced", table, np.random.default_rng(7))
    return table, PlacementEngine(table, policy, preemption=True)


def test_live_decisions_equal_the_simulator_engine_on_the_same_pools_and_jobs(
        client, provider, consumer, database, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, provider)
    with database.unit_of_work() as session:
        tables = LiveTables(session)
        live = {c: tables.of(c) for c in ("general", "training", "inference", "hpc")}
    sims = {c: _simulator_engine(t.table.pools) for c, t in live.items() if t is not None}
    now_s = int(clock.now().timestamp())
    differences = []
    placed = 0
    used: set[str] = set()
    for n, (devices, accelerator, hours, workload) in enumerate(STREAM):
        body = {"name": f"j{n}", "command": ["true"], "devices": devices,
                "time_limit_s": int(hours * SECONDS_PER_HOUR), "workload_class": workload}
        if accelerator:
            body["accelerator"] = accelerator
        job = client.post("/v1/jobs", json=body,
                          headers={**consumer.headers, "Idempotency-Key": f"k{n}"}).json()
        table, engine = sims[workload]
        reference = live[workload].reference_units
        models = frozenset({load_catalog().get(accelerator).key}) if accelerator \
            else frozenset()
        request = JobRequest(
            id=f"j{n}", tenant_id="t", devices=devices,
            work_units=hours * devices * reference,
            accelerator=AcceleratorConstraint(models=models), workload_class=workload,
            defer_allowed=False)
        try:
            choice = engine.choose(request, now_s, allow_defer=False)
            expected = tuple(table.ids[a.pool_index] for a in choice.allocations)
        except Exception:  # noqa: BLE001 - nothing fits: the live job stays pending
            expected = ()
        got = (job["pool_id"],) if job["state"] == "placed" else ()
        if got != expected:
            differences.append((n, got, expected))
        for a in choice.allocations if expected else ():
            for other, _ in sims.values():  # every class's table sees the devices taken
                other.reserve(a.pool_index, a.devices)
        placed += bool(got)
        used.update(got)
    assert differences == []
    assert placed >= len(STREAM) - 2  # the stream fills the federation, not beyond
    assert len(used) >= 4  # the decisions differ by job: not one pool for all


# --- every field of the spec changes a real placement (issue 13) ------------------------------

def _place(client, consumer, key, **fields):  # type: ignore[no-untyped-def]
    body = {"name": key, "command": ["true"], "devices": 2, "workload_class": "training",
            **fields}
    response = client.post("/v1/jobs", json=body,
                           headers={**consumer.headers, "Idempotency-Key": key})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def world(client, provider):  # type: ignore[no-untyped-def]
    return register(client, provider)


def _at(world, job) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(site, accelerator) of the pool the job was placed on."""
    assert job["state"] == "placed", job["message"]
    return next(k for k, ids in world.by_name.items() if job["pool_id"] in ids)


def test_software_stack_keeps_a_cuda_job_off_ascend_without_a_vendor_pin(
        client, consumer, world) -> None:  # type: ignore[no-untyped-def]
    anywhere = _place(client, consumer, "any", devices=10)
    cuda = _place(client, consumer, "cuda", devices=10, software_stack="CUDA")
    cann = _place(client, consumer, "cann", devices=10, software_stack="cann")
    assert _at(world, anywhere)[1] == "huawei-ascend-910b"  # the cheapest 10-device fit
    assert _at(world, cuda)[1] == "nvidia-a800"
    assert _at(world, cann)[1] == "huawei-ascend-910b"
    assert cuda["spec"]["software_stack"] == "CUDA"
    refused = client.post("/v1/jobs", json={"name": "x", "command": ["true"],
                                            "software_stack": "OpenCL"},
                          headers={**consumer.headers, "Idempotency-Key": "bad"})
    assert refused.status_code == 422 and "software_stack" in refused.text


def test_a_realtime_job_runs_near_its_users_and_a_latency_bound_holds(
        client, consumer, world) -> None:  # type: ignore[no-untyped-def]
    batch = _place(client, consumer, "batch", accelerator="nvidia-a800")
    realtime = _place(client, consumer, "rt", accelerator="nvidia-a800",
                      latency_class="realtime", user_city="深圳")
    bounded = _place(client, consumer, "bound", accelerator="nvidia-a800",
                     user_city="Guiyang", max_rtt_ms=15)
    assert _at(world, batch) == ("zhongwei", "nvidia-a800")
    assert _at(world, realtime) == ("shenzhen", "nvidia-a800")
    assert realtime["placement"]["breakdown"]["latency"] > 0
    assert _at(world, bounded) == ("guiyang", "nvidia-a800")
    for wrong in ({"latency_class": "realtime"}, {"user_city": "Atlantis"},
                  {"latency_class": "soon", "user_city": "Shenzhen"}):
        refused = client.post("/v1/jobs", json={"name": "x", "command": ["true"], **wrong},
                              headers={**consumer.headers, "Idempotency-Key": "bad"})
        assert refused.status_code == 422, refused.text
        assert any(e["field"] in ("latency_class", "user_city")
                   for e in refused.json()["errors"])


def test_data_location_and_size_pull_the_job_to_its_data(
        client, consumer, world) -> None:  # type: ignore[no-untyped-def]
    no_size = _place(client, consumer, "d0", accelerator="nvidia-a800", data_province="CN-GD")
    by_province = _place(client, consumer, "d1", accelerator="nvidia-a800",
                         data_province="CN-GD", data_gb=100)
    by_site = _place(client, consumer, "d2", accelerator="nvidia-a800",
                     data_site=world.sites["shenzhen"], data_gb=100)
    assert _at(world, no_size) == ("zhongwei", "nvidia-a800")
    assert _at(world, by_province) == ("shenzhen", "nvidia-a800")
    assert _at(world, by_site) == ("shenzhen", "nvidia-a800")


def test_a_deadline_picks_a_pool_fast_enough_and_a_budget_caps_the_cost(
        client, consumer, world) -> None:  # type: ignore[no-untyped-def]
    common = {"software_stack": "CUDA", "devices": 8, "time_limit_s": 36_000}
    plain = _place(client, consumer, "plain", **common)
    assert _at(world, plain) == ("shenzhen", "nvidia-rtx-4090")  # cheapest, 13.5 h
    client.post(f"/v1/jobs/{plain['id']}/cancel", headers=consumer.headers)
    eleven_h = _place(client, consumer, "11h", deadline_s=11 * 3600, **common)
    assert _at(world, eleven_h) == ("zhongwei", "nvidia-a800")  # 10 h
    seven_h = _place(client, consumer, "7h", deadline_s=7 * 3600, **common)
    assert _at(world, seven_h) == ("beijing", "nvidia-h100-sxm")  # 5.5 h
    client.post(f"/v1/jobs/{seven_h['id']}/cancel", headers=consumer.headers)
    # The H100 lease would cost about 111,000 fen: within 60,000 it runs late, elsewhere.
    capped = _place(client, consumer, "cap", deadline_s=7 * 3600, budget_fen=60_000, **common)
    assert _at(world, capped) == ("shenzhen", "nvidia-rtx-4090")
    broke = _place(client, consumer, "broke", budget_fen=100, **common)
    assert broke["state"] == "pending"


def test_priority_orders_the_jobs_of_one_round(
        client, provider, make_tenant, database, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, provider, [("zhongwei", "nvidia-a800", 2, 900, None)])
    first, second = make_tenant("consumer", "a"), make_tenant("consumer", "b")
    blocker = _place(client, first, "block")
    low = _place(client, first, "low")
    high = _place(client, second, "high", priority=9)
    assert (low["state"], high["state"]) == ("pending", "pending")
    client.post(f"/v1/jobs/{blocker['id']}/cancel", headers=first.headers)
    with database.unit_of_work() as session:
        assert scheduling.place_pending(session, clock.now()) == 1
    got = {j: client.get(f"/v1/jobs/{j}", headers=t.headers).json()["state"]
           for j, t in ((low["id"], first), (high["id"], second))}
    assert got == {low["id"]: "pending", high["id"]: "placed"}


def test_specs_stored_before_the_new_fields_still_read() -> None:
    old = {"name": "x", "command": ["true"], "devices": 1, "workload_class": "general",
           "accelerator": None, "vendor": None, "device_kind": None, "min_memory_gb": None,
           "provinces": [], "pool_id": None, "time_limit_s": 60,
           "max_price_fen_per_device_hour": None, "env": {}, "spot": False}
    spec = JobSpec.from_json(old)
    assert (spec.latency_class, spec.data_gb, spec.deadline_s, spec.priority) == \
        ("batch", 0.0, None, 0)
    assert JobSpec.from_json(spec.to_json()) == spec


# --- a gang over the pools of one interconnect domain --------------------------------------

ASCEND_FABRIC = [("zhongwei", "huawei-ascend-910b", n, 700 + i, "fabric-nx")
                 for i, n in enumerate((839, 800, 700, 600))] + \
    [("beijing", "huawei-ascend-910b", 839, 650, "fabric-bj"),
     ("guiyang", "huawei-ascend-910b", 839, 600, None)]


def test_a_2500_device_ascend_job_starts_as_a_gang_over_interconnected_pools(
        client, provider, consumer, operator, database, clock) -> None:  # type: ignore[no-untyped-def]
    world = register(client, provider, ASCEND_FABRIC)
    with database.unit_of_work() as session:  # prepaid: every lease holds its own money
        billing.deposit(session, Principal(operator.id, Role.OPERATOR), consumer.id,
                        10**10, "funds", clock.now())
        billing.set_billing_mode(session, Principal(operator.id, Role.OPERATOR), consumer.id,
                                 "prepaid", clock.now())
    big = {"devices": 2500, "accelerator": "huawei-ascend-910b", "time_limit_s": 3600}
    alone = _place(client, consumer, "alone", **big)
    assert alone["state"] == "pending"  # no pool holds 2,500 and it may not span pools
    gang = _place(client, consumer, "gang", multi_pool=True, **big)
    assert gang["state"] == "placed", gang["message"]
    parts = gang["placement"]["allocations"]
    fabric = {world.pools[i] for i in range(4)}
    assert len(parts) >= 3 and sum(p["devices"] for p in parts) == 2500
    assert {p["pool_id"] for p in parts} <= fabric  # one interconnect domain
    got = client.get(f"/v1/jobs/{gang['id']}", headers=consumer.headers).json()
    assert got["placement"]["allocations"] == parts and got["lease_id"] == parts[0]["lease_id"]
    with database.unit_of_work() as session:
        holds = [billing_repo.get_hold(session, p["lease_id"]) for p in parts]
    assert all(h is not None and h.amount_fen > 0 for h in holds)
    # Each pool's agent claims its own lease of the gang.
    agents = [client.post("/v1/agents", json={"name": f"a{i}", "pools": [p["pool_id"]]},
                          headers=provider.headers).json()["id"] for i, p in enumerate(parts)]
    claimed = []
    for agent in agents:
        response = client.post(f"/v1/agents/{agent}/claim", json={}, headers=provider.headers)
        assert response.status_code == 200, response.text
        claimed += [(a["lease_id"], a["devices"]) for a in response.json()["assignments"]]
    assert sorted(claimed) == sorted((p["lease_id"], p["devices"]) for p in parts)
    got = client.get(f"/v1/jobs/{gang['id']}", headers=consumer.headers).json()
    assert got["state"] == "dispatched"


def test_cancelling_a_gang_before_any_claim_frees_every_pool_of_it(
        client, provider, consumer, operator, database, clock) -> None:  # type: ignore[no-untyped-def]
    world = register(client, provider, ASCEND_FABRIC)
    with database.unit_of_work() as session:
        billing.deposit(session, Principal(operator.id, Role.OPERATOR), consumer.id,
                        10**10, "funds", clock.now())
    free = {p: client.get(f"/v1/pools/{p}", headers=consumer.headers).json()["free_devices"]
            for p in world.pools}
    gang = _place(client, consumer, "gang", multi_pool=True, devices=2500,
                  accelerator="huawei-ascend-910b", time_limit_s=3600)
    assert gang["state"] == "placed" and len(gang["placement"]["allocations"]) >= 3
    cancelled = client.post(f"/v1/jobs/{gang['id']}/cancel", headers=consumer.headers)
    assert cancelled.status_code == 200, cancelled.text
    after = {p: client.get(f"/v1/pools/{p}", headers=consumer.headers).json()["free_devices"]
             for p in world.pools}
    assert after == free  # every lease of the gang gave its devices back, not only the first


# --- quotes: the same decisions, and a submission that accepts one --------------------------

def test_a_quote_gives_options_with_start_energy_carbon_latency_and_can_be_accepted(
        client, consumer, world, clock) -> None:  # type: ignore[no-untyped-def]
    spec = {"name": "q", "command": ["true"], "devices": 2, "workload_class": "training",
            "accelerator": "nvidia-a800", "latency_class": "interactive",
            "user_city": "Guiyang"}
    response = client.post("/v1/quotes", json=spec, headers=consumer.headers)
    assert response.status_code == 200, response.text
    options = response.json()["options"]
    assert len(options) == 3 and len({o["pool_id"] for o in options}) == 3
    for option in options:
        p = option["placement"]
        assert p["estimated_start"] <= p["estimated_finish"] and p["rtt_ms"] > 0
        assert p["estimated_energy_kwh"] > 0 and p["estimated_carbon_kg"] > 0
        assert p["breakdown"]["latency"] > 0 and option["estimate"]["estimated_cost_fen"] > 0
        assert option["quote_id"].startswith("q1.") and option["allocations"]
    second = options[1]
    # The quote is the decision a submission gets: without accepting, the first option.
    plain = client.post("/v1/jobs", json=spec,
                        headers={**consumer.headers, "Idempotency-Key": "plain"}).json()
    assert plain["pool_id"] == options[0]["pool_id"]
    accepted = client.post("/v1/jobs", json={**spec, "quote_id": second["quote_id"]},
                           headers={**consumer.headers, "Idempotency-Key": "accept"}).json()
    assert accepted["pool_id"] == second["pool_id"]
    assert accepted["placement"]["quote"] == "accepted"
    other_spec = client.post("/v1/jobs", json={**spec, "devices": 1,
                                               "quote_id": second["quote_id"]},
                             headers={**consumer.headers, "Idempotency-Key": "other"})
    assert other_spec.status_code == 422
    assert other_spec.json()["errors"][0]["field"] == "quote_id"
    clock.advance(3600)
    expired = client.post("/v1/jobs", json={**spec, "quote_id": second["quote_id"]},
                          headers={**consumer.headers, "Idempotency-Key": "late"})
    assert expired.status_code == 422 and "expired" in expired.text
    listed = client.get("/v1/jobs", headers=consumer.headers).json()
    assert len(listed["items"]) == 2  # the refused submissions stored nothing
