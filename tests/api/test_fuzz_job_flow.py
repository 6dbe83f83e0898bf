"""The whole job and money path, fuzzed through the HTTP API (issue 12: the endpoint fuzz in
test_openapi_fuzz.py sends one request at a time, so it never reaches charging, rating, the
agents' protocol or a scheduling pass with a lease behind it).

A hypothesis state machine plays a consumer, a provider's agent and an operator at once:
jobs submitted with generated specs, claims, heartbeats and reports with generated states,
fences and usage (some wrong, some out of range), usage records, tariffs with tiers and
time-of-use bands, voucher grants, cancels, clock jumps and background passes. After every
step: no answer is a 5xx, every refusal is a problem, and the ledger balances.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from suanli.domain.tenants import Principal, Role
from suanli.services.billing import wallets
from suanli.services.dispatch import agents as agent_service

SITE = {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}
BANDS = ("critical-peak", "peak", "flat", "valley")
STATES = ("running", "succeeded", "failed", "cancelled", "pending", "placed", "nonsense")
STEPS = 40       # steps in one run of the machine
RUNS = 25        # runs, each on the same node (state accumulates, as on a real one)

decimal_text = st.one_of(
    st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False).map(str),
    st.sampled_from(["-1", "1e400", "0", "abc", "0.0000001", "NaN"]))
tiers = st.lists(st.tuples(st.integers(0, 500), decimal_text), max_size=4).map(
    lambda ts: [{"from_quantity": str(q), "unit_price_fen": p} for q, p in ts])
time_of_use = st.one_of(st.none(), st.builds(
    lambda hours, mult: {"hour_bands": hours, "multipliers": mult},
    st.lists(st.sampled_from(BANDS), min_size=24, max_size=24),
    st.dictionaries(st.sampled_from(BANDS), decimal_text, max_size=4)))
# mostly figures a lease can hold (the clock moves in steps of these), sometimes not
seconds = st.one_of(st.sampled_from([0, 0.5, 1, 29, 30, 60]),
                    st.floats(min_value=-5, max_value=200_000, allow_nan=False,
                              allow_infinity=False), st.integers(0, 10**12))


def _problem_or_success(response: Any, what: str) -> Any:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), what
        problem = response.json()
        assert problem["status"] == response.status_code and problem["detail"], what
    return response


@pytest.fixture
def node(client, make_tenant, operator, database, clock):  # type: ignore[no-untyped-def]
    provider = make_tenant("provider", "fuzz provider")
    consumer = make_tenant("consumer", "fuzz consumer")
    poor = make_tenant("consumer", "fuzz consumer with little money")
    with database.unit_of_work() as session:
        for tenant, fen in ((consumer, 5_000_000), (poor, 2_000)):
            wallets.deposit(session, Principal(operator.id, Role.OPERATOR), tenant.id, fen,
                            "fuzz-funds", clock.now())
    p = client.post("/v1/providers", json={"name": "West", "kind": "cloud"},
                    headers=provider.headers).json()
    s = client.post(f"/v1/providers/{p['id']}/sites", json=SITE,
                    headers=provider.headers).json()
    pools = []
    for accelerator, count, price in (("nvidia-a800", 8, 900), ("nvidia-a800", 4, 1200),
                                      ("huawei-ascend-910b", 16, 700)):
        pool = client.post(f"/v1/sites/{s['id']}/pools",
                           json={"name": f"{accelerator} {price}", "accelerator": accelerator,
                                 "device_count": count, "engine": "local",
                                 "price_fen_per_device_hour": price},
                           headers=provider.headers)
        assert pool.status_code == 201, pool.text
        pools.append(pool.json()["id"])
    agent = client.post("/v1/agents", json={"name": "fuzz agent", "pools": pools},
                        headers=provider.headers)
    assert agent.status_code == 201, agent.text
    start = clock.now()
    programme = client.post("/v1/programmes", headers=operator.headers, json={
        "id": "fuzz-programme", "issuer": "fuzz bureau", "budget_fen": 2_000_000,
        "coverage": "0.3", "cap_fen_per_tenant": 500_000,
        "eligible_tenant_classes": ["start-up"],
        "valid_from": (start - timedelta(days=1)).isoformat(),
        "valid_until": (start + timedelta(days=400)).isoformat()})
    assert programme.status_code == 201, programme.text
    return {"client": client, "database": database, "clock": clock, "operator": operator,
            "provider": provider, "consumer": consumer, "poor": poor, "pools": pools,
            "agent": agent.json()["id"]}


def test_the_job_and_money_path_never_fails_and_the_books_balance(node) -> None:  # type: ignore[no-untyped-def]
    client, clock, database = node["client"], node["clock"], node["database"]
    consumer, provider, operator = node["consumer"], node["provider"], node["operator"]
    agent, pools = node["agent"], node["pools"]

    class JobAndMoneyPath(RuleBasedStateMachine):
        jobs = Bundle("jobs")
        assignments = Bundle("assignments")

        def __init__(self) -> None:
            super().__init__()
            self.submitted = 0

        @rule(target=jobs, devices=st.integers(-1, 20),
              time_limit_s=st.sampled_from([0, 30, 600, 3600, 86_400, 10**9]),
              accelerator=st.sampled_from([None, "nvidia-a800", "huawei-ascend-910b",
                                           "A800", "no-such-card"]),
              cap=st.one_of(st.none(), st.integers(-5, 10**7), st.just(10**30)),
              spot=st.booleans(),
              workload=st.sampled_from(["general", "training", "inference", "gaming"]),
              constraints=st.one_of(st.just({}), st.just({}), st.fixed_dictionaries({}, optional={
                  "vendor": st.sampled_from(["nvidia", "Huawei", "amd", "nobody"]),
                  "device_kind": st.sampled_from(["gpu", "npu", "cpu", "tpu"]),
                  "min_memory_gb": st.sampled_from([16, 80, 1000, -1]),
                  "provinces": st.sampled_from([["CN-NX"], ["CN-GD"], ["XX"]]),
                  "pool_id": st.sampled_from([0, 2, "CN.bogus"])})),
              poor=st.sampled_from([False, False, False, True]),
              quote_only=st.sampled_from([False, False, True]))
        def submit(self, devices: int, time_limit_s: int, accelerator: str | None,
                   cap: int | None, spot: bool, workload: str, constraints: dict[str, Any],
                   poor: bool, quote_only: bool) -> str:
            self.submitted += 1
            body: dict[str, Any] = {"name": "fuzz", "command": ["true"], "devices": devices,
                                    "time_limit_s": time_limit_s, "spot": spot,
                                    "workload_class": workload, **constraints}
            if isinstance(body.get("pool_id"), int):
                body["pool_id"] = pools[body["pool_id"]]
            if accelerator:
                body["accelerator"] = accelerator
            if cap is not None:
                body["max_price_fen_per_device_hour"] = cap
            who = node["poor"] if poor else consumer
            if quote_only:
                _problem_or_success(client.post("/v1/quotes", json=body, headers=who.headers),
                                    "quote")
                return "CN.none"
            response = _problem_or_success(client.post(
                "/v1/jobs", json=body,
                headers={**who.headers, "Idempotency-Key": f"fz-{id(self)}-{self.submitted}"}),
                "submit")
            return response.json()["id"] if response.status_code == 201 else "CN.none"

        @rule(target=assignments, max_jobs=st.integers(-1, 6))
        def claim(self, max_jobs: int) -> dict[str, Any]:
            response = _problem_or_success(client.post(
                f"/v1/agents/{agent}/claim", json={"max_jobs": max_jobs},
                headers=provider.headers), "claim")
            if response.status_code == 200 and response.json()["assignments"]:
                return response.json()["assignments"][0]
            return {"lease_id": "CN.none", "fence": 1}

        @rule(assignment=assignments, state=st.sampled_from(STATES),
              stale=st.booleans(), wall_s=seconds,
              cpu_s=st.one_of(st.none(), seconds),
              energy_wh=st.one_of(st.none(), seconds),
              utilisation=st.sampled_from([0, 0.5, 1.0, 1.5, -1]),
              exit_code=st.one_of(st.none(), st.integers(-300, 300)),
              with_usage=st.booleans())
        def report(self, assignment: dict[str, Any], state: str, stale: bool, wall_s: float,
                   cpu_s: float | None, energy_wh: float | None, utilisation: float,
                   exit_code: int | None, with_usage: bool) -> None:
            body: dict[str, Any] = {"fence": assignment["fence"] + (1 if stale else 0),
                                    "state": state, "logs": "out\n"}
            if exit_code is not None:
                body["exit_code"] = exit_code
            if with_usage:
                body["usage"] = {"wall_s": wall_s, "cpu_s": cpu_s, "energy_wh": energy_wh,
                                 "energy_estimated": energy_wh is None,
                                 "utilisation": utilisation}
            _problem_or_success(client.post(
                f"/v1/agents/{agent}/leases/{assignment['lease_id']}/report", json=body,
                headers=provider.headers), "report")

        @rule(assignment=assignments, stale=st.booleans())
        def heartbeat(self, assignment: dict[str, Any], stale: bool) -> None:
            _problem_or_success(client.post(
                f"/v1/agents/{agent}/heartbeat",
                json={"leases": [{"lease_id": assignment["lease_id"],
                                  "fence": assignment["fence"] + (1 if stale else 0)}]},
                headers=provider.headers), "heartbeat")

        @rule(assignment=assignments, record=st.integers(0, 3),
              offset_s=st.integers(-3600, 7200), duration_s=st.integers(-10, 90_000),
              devices=st.one_of(st.none(), st.integers(-1, 20)),
              energy_wh=st.one_of(st.none(), st.integers(-1, 10**7)))
        def usage_record(self, assignment: dict[str, Any], record: int, offset_s: int,
                         duration_s: int, devices: int | None, energy_wh: int | None) -> None:
            start = clock.now() + timedelta(seconds=offset_s)
            body: dict[str, Any] = {
                "id": f"rec-{assignment['lease_id']}-{record}", "lease_id": assignment["lease_id"],
                "start": start.isoformat(),
                "end": (start + timedelta(seconds=duration_s)).isoformat()}
            if devices is not None:
                body["device_count"] = devices
            if energy_wh is not None:
                body["measured_energy_wh"] = energy_wh
            _problem_or_success(client.post("/v1/usage-records", json=body,
                                            headers=provider.headers), "usage record")

        @rule(pool=st.integers(0, 2), base=decimal_text, tiers=tiers,
              mode=st.sampled_from(["graduated", "volume", "stepwise"]),
              tou=time_of_use, spot_discount=st.sampled_from(["0", "0.3", "1", "2"]),
              minimum=st.integers(-1, 5_000))
        def tariff(self, pool: int, base: str, tiers: list[dict[str, str]], mode: str,
                   tou: dict[str, Any] | None, spot_discount: str, minimum: int) -> None:
            body: dict[str, Any] = {"base_unit_price_fen": base, "tiers": tiers,
                                    "tier_mode": mode, "spot_discount": spot_discount,
                                    "minimum_charge_fen_per_job": minimum}
            if tou is not None:
                body["time_of_use"] = tou
            _problem_or_success(client.put(f"/v1/pools/{pools[pool]}/tariff", json=body,
                                           headers=provider.headers), "tariff")

        @rule(amount=st.integers(-1, 400_000))
        def grant(self, amount: int) -> None:
            _problem_or_success(client.post(
                "/v1/programmes/fuzz-programme/grants",
                json={"tenant_id": consumer.id, "granted_fen": amount},
                headers=operator.headers), "grant")

        @rule(target=jobs, devices=st.integers(1, 8),
              accelerator=st.sampled_from(["nvidia-a800", "huawei-ascend-910b"]),
              time_limit_s=st.sampled_from([600, 3600, 86_400]), spot=st.booleans())
        def submit_plain(self, devices: int, accelerator: str, time_limit_s: int,
                         spot: bool) -> str:
            """A job that fits: the way in to the lease, metering and charging paths."""
            self.submitted += 1
            response = _problem_or_success(client.post("/v1/jobs", json={
                "name": "plain", "command": ["true"], "devices": devices,
                "accelerator": accelerator, "time_limit_s": time_limit_s, "spot": spot},
                headers={**consumer.headers, "Idempotency-Key": f"fz-{id(self)}-{self.submitted}"}),
                "submit")
            return response.json()["id"] if response.status_code == 201 else "CN.none"

        @rule(seconds_run=st.sampled_from([1, 30, 600, 4000]),
              share=st.sampled_from(["0", "0.5", "1"]), energy=st.booleans(),
              end=st.sampled_from(["succeeded", "failed", "cancelled", "preempted"]))
        def run_to_the_end(self, seconds_run: int, share: str, energy: bool, end: str) -> None:
            """A well-behaved agent: claims a job, runs it, time passes, a final report with
            usage that fits the lease — the path that meters, rates and charges."""
            claimed = _problem_or_success(client.post(
                f"/v1/agents/{agent}/claim", json={"max_jobs": 1}, headers=provider.headers),
                "claim").json()["assignments"]
            if not claimed:
                return
            assignment = claimed[0]
            path = f"/v1/agents/{agent}/leases/{assignment['lease_id']}/report"
            _problem_or_success(client.post(path, json={
                "fence": assignment["fence"], "state": "running"}, headers=provider.headers),
                "running")
            clock.advance(seconds_run)
            wall_s = float(Decimal(seconds_run) * Decimal(share))
            usage: dict[str, Any] = {"wall_s": wall_s, "cpu_s": wall_s / 2}
            if energy:
                usage.update(energy_wh=wall_s * 0.3, energy_estimated=False)
            _problem_or_success(client.post(path, json={
                "fence": assignment["fence"], "state": end, "exit_code": 0, "usage": usage},
                headers=provider.headers), "final report")

        @rule(job=jobs)
        def cancel(self, job: str) -> None:
            _problem_or_success(client.post(f"/v1/jobs/{job}/cancel",
                                            headers=consumer.headers), "cancel")

        @rule(seconds=st.sampled_from([1, 30, agent_service.HEARTBEAT_TTL_S + 1, 3600,
                                       86_400]))
        def time_passes(self, seconds: int) -> None:
            clock.advance(seconds)

        @rule()
        def background_pass(self) -> None:
            with database.unit_of_work() as session:
                agent_service.tick(session, clock.now())

        @rule(job=jobs)
        def read(self, job: str) -> None:
            for path in (f"/v1/jobs/{job}", f"/v1/jobs/{job}/usage", f"/v1/jobs/{job}/logs",
                         "/v1/wallet", "/v1/vouchers"):
                _problem_or_success(client.get(path, headers=consumer.headers), path)
            period = clock.now().strftime("%Y-%m")
            _problem_or_success(client.get(f"/v1/bills/{period}", headers=consumer.headers),
                                "bill")
            _problem_or_success(client.get(f"/v1/payouts/{period}", headers=provider.headers),
                                "payout")

        @invariant()
        def books_balance(self) -> None:
            check = client.get("/v1/ledger/check", headers=operator.headers)
            assert check.status_code == 200, check.text
            assert check.json()["ok"], check.json()["problems"]

    JobAndMoneyPath.TestCase.settings = settings(
        max_examples=RUNS, stateful_step_count=STEPS, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck))
    run_state_machine_as_test(JobAndMoneyPath, settings=JobAndMoneyPath.TestCase.settings)
    # the money path was reached, not only refused at the edge: jobs were charged
    bill = client.get(f"/v1/bills/{clock.now().strftime('%Y-%m')}", headers=consumer.headers)
    assert bill.status_code == 200 and "CN." in bill.text, bill.text[:500]
