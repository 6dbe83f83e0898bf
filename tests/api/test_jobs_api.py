"""The job lifecycle over HTTP, with the test acting as the provider's agent."""

from __future__ import annotations

import pytest

from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.tenants import Principal, Role
from suanli.services.billing import wallets as billing
from suanli.services.dispatch import agents as agent_service

SITE = {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}
JOB = {"name": "hello", "command": ["echo", "hello"], "devices": 2,
       "accelerator": "nvidia-a800"}


@pytest.fixture
def consumer(make_tenant, operator, database, clock):  # type: ignore[no-untyped-def]
    """A consumer with a prepaid wallet: placing its jobs takes a money hold (docs/billing.md)."""
    tenant = make_tenant("consumer", "consumer one")
    with database.unit_of_work() as session:
        billing.deposit(session, Principal(operator.id, Role.OPERATOR), tenant.id, 1_000_000,
                        "initial-funds", clock.now())
    return tenant


@pytest.fixture
def pools(client, provider):  # type: ignore[no-untyped-def]
    """Two A800 pools of one provider: the cheaper is chosen first."""
    p = client.post("/v1/providers", json={"name": "West", "kind": "cloud"},
                    headers=provider.headers).json()
    s = client.post(f"/v1/providers/{p['id']}/sites", json=SITE, headers=provider.headers).json()
    ids = []
    for price in (900, 1200):
        pool = client.post(f"/v1/sites/{s['id']}/pools",
                           json={"name": f"a800 {price}", "accelerator": "nvidia-a800",
                                 "device_count": 4, "engine": "local",
                                 "price_fen_per_device_hour": price},
                           headers=provider.headers).json()
        ids.append(pool["id"])
    return ids


@pytest.fixture
def agent(client, provider, pools):  # type: ignore[no-untyped-def]
    response = client.post("/v1/agents", json={"name": "a1", "pools": pools},
                           headers=provider.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _submit(client, consumer, key="k1", **changes):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", json={**JOB, **changes},
                       headers={**consumer.headers, "Idempotency-Key": key})


def _free(client, tenant, pool_id):  # type: ignore[no-untyped-def]
    return client.get(f"/v1/pools/{pool_id}", headers=tenant.headers).json()["free_devices"]


def _claim(client, provider, agent):  # type: ignore[no-untyped-def]
    response = client.post(f"/v1/agents/{agent}/claim", json={}, headers=provider.headers)
    assert response.status_code == 200, response.text
    return response.json()["assignments"]


def _report(client, provider, agent, assignment, **body):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/agents/{agent}/leases/{assignment['lease_id']}/report",
                       json={"fence": assignment["fence"], **body}, headers=provider.headers)


def test_submit_places_on_the_cheapest_pool_and_holds_devices(client, consumer, pools) -> None:
    response = _submit(client, consumer)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "placed" and job["pool_id"] == pools[0]
    assert job["placement"]["policy"] == "balanced" and job["events"][0]["to_state"] == "pending"
    terms = job["placement"]["breakdown"]
    assert terms and sum(terms.values()) == pytest.approx(job["placement"]["score"], abs=0.1)
    assert _free(client, consumer, pools[0]) == 2


def test_same_idempotency_key_gives_the_same_job(client, consumer, pools) -> None:
    first = _submit(client, consumer).json()
    again = _submit(client, consumer)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert _free(client, consumer, pools[0]) == 2  # placed once, not twice
    different = _submit(client, consumer, command=["echo", "other"])
    assert different.status_code == 409
    missing = client.post("/v1/jobs", json=JOB, headers=consumer.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "Idempotency-Key"


def test_full_lifecycle_with_logs_and_usage(client, consumer, provider, agent, pools,
                                            clock) -> None:
    job = _submit(client, consumer).json()
    [assignment] = _claim(client, provider, agent)
    assert assignment["job_id"] == job["id"] and assignment["spec"]["command"] == ["echo", "hello"]
    assert _report(client, provider, agent, assignment, state="running").status_code == 200
    clock.advance(10)  # the run the agent reports fits in the lease's time
    done = _report(client, provider, agent, assignment, state="succeeded", exit_code=0,
                   logs="hello\n", usage={"wall_s": 10.0, "cpu_s": 0.5})
    assert done.status_code == 200, done.text
    final = client.get(f"/v1/jobs/{job['id']}", headers=consumer.headers).json()
    states = [e["to_state"] for e in final["events"]]
    assert states == ["pending", "placed", "dispatched", "running", "succeeded"]
    assert client.get(f"/v1/jobs/{job['id']}/logs", headers=consumer.headers).text == "hello\n"
    [usage] = client.get(f"/v1/jobs/{job['id']}/usage", headers=consumer.headers).json()
    assert usage["device_seconds"] == 20.0 and usage["energy_estimated"]
    assert usage["energy_wh"] > 0
    assert _free(client, consumer, pools[0]) == 4
    # the agent retries its final report: the same figures are the same record
    retry = _report(client, provider, agent, assignment, state="succeeded", exit_code=0,
                    usage={"wall_s": 10.0, "cpu_s": 0.5})
    assert retry.status_code == 200
    conflicting = _report(client, provider, agent, assignment, state="succeeded", exit_code=0,
                          usage={"wall_s": 99.0})
    assert conflicting.status_code == 409


def test_invalid_transition_is_rejected(client, consumer, provider, agent) -> None:
    _submit(client, consumer)
    [assignment] = _claim(client, provider, agent)
    _report(client, provider, agent, assignment, state="succeeded", usage={"wall_s": 1})
    again = _report(client, provider, agent, assignment, state="running")
    assert again.status_code == 409


def test_missed_heartbeats_fail_over_to_another_pool(client, consumer, provider, agent, pools,
                                                     database, clock) -> None:
    job = _submit(client, consumer).json()
    [first] = _claim(client, provider, agent)
    clock.advance(agent_service.HEARTBEAT_TTL_S + 1)
    with database.unit_of_work() as session:
        expired, placed = agent_service.tick(session, clock.now())
    assert (expired, placed) == (1, 1)
    moved = client.get(f"/v1/jobs/{job['id']}", headers=consumer.headers).json()
    assert moved["state"] == "placed" and moved["pool_id"] == pools[1] and moved["attempts"] == 2
    assert _free(client, consumer, pools[0]) == 4
    # the old agent comes back: its fence is stale, its report is refused
    late = _report(client, provider, agent, first, state="succeeded", usage={"wall_s": 5})
    assert late.status_code == 409
    beat = client.post(f"/v1/agents/{agent}/heartbeat",
                       json={"leases": [{"lease_id": first["lease_id"],
                                         "fence": first["fence"]}]},
                       headers=provider.headers).json()
    assert beat["leases"][first["lease_id"]] == "lost"
    [second] = _claim(client, provider, agent)
    assert second["pool_id"] == pools[1] and second["lease_id"] != first["lease_id"]


def test_failover_gives_up_after_max_attempts(client, consumer, provider, agent,
                                              database, clock) -> None:
    job = _submit(client, consumer).json()
    pools_tried = []
    for _ in range(3):
        [assignment] = _claim(client, provider, agent)
        pools_tried.append(assignment["pool_id"])
        clock.advance(agent_service.HEARTBEAT_TTL_S + 1)
        with database.unit_of_work() as session:
            agent_service.tick(session, clock.now())
    final = client.get(f"/v1/jobs/{job['id']}", headers=consumer.headers).json()
    assert final["state"] == "failed" and final["attempts"] == 3
    assert "gave up after 3 attempts" in final["message"]
    # both pools were tried before one was tried again
    assert len(set(pools_tried[:2])) == 2
    assert _claim(client, provider, agent) == []


def test_cancel_before_claim_frees_devices_and_running_job_is_told(client, consumer, provider,
                                                                   agent, pools) -> None:
    job = _submit(client, consumer).json()
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=consumer.headers)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert _free(client, consumer, pools[0]) == 4
    assert _claim(client, provider, agent) == []
    running = _submit(client, consumer, key="k2").json()
    [assignment] = _claim(client, provider, agent)
    client.post(f"/v1/jobs/{running['id']}/cancel", headers=consumer.headers)
    beat = client.post(f"/v1/agents/{agent}/heartbeat",
                       json={"leases": [{"lease_id": assignment["lease_id"],
                                         "fence": assignment["fence"]}]},
                       headers=provider.headers).json()
    assert beat["leases"][assignment["lease_id"]] == "cancel"
    _report(client, provider, agent, assignment, state="cancelled", usage={"wall_s": 3})
    assert _free(client, consumer, pools[0]) == 4
    assert client.post(f"/v1/jobs/{running['id']}/cancel",
                       headers=consumer.headers).status_code == 409


def test_jobs_are_private_to_their_tenant(client, consumer, make_tenant, pools) -> None:
    job = _submit(client, consumer).json()
    mine = ComputeId.parse(job["id"])
    gone = str(mine.parent.child(IdKind.JOB, 999_999))  # an id nobody holds
    other = make_tenant("consumer", "other")
    for path in ("", "/logs", "/usage", "/cancel"):
        method = "POST" if path == "/cancel" else "GET"
        theirs = client.request(method, f"/v1/jobs/{job['id']}{path}", headers=other.headers)
        missing = client.request(method, f"/v1/jobs/{gone}{path}", headers=other.headers)
        # Another tenant's job is answered exactly like one that does not exist.
        assert theirs.status_code == missing.status_code == 404, theirs.text
        assert theirs.text.replace(job["id"], "ID") == missing.text.replace(gone, "ID")
    assert client.get("/v1/jobs", headers=other.headers).json()["items"] == []
    assert len(client.get("/v1/jobs", headers=consumer.headers).json()["items"]) == 1


def test_another_providers_agent_cannot_claim_my_pools(client, make_tenant, pools) -> None:
    other = make_tenant("provider", "other provider")
    response = client.post("/v1/agents", json={"name": "x", "pools": pools},
                           headers=other.headers)
    assert response.status_code == 403


def test_job_that_fits_nowhere_waits_pending(client, consumer, pools) -> None:
    job = _submit(client, consumer, devices=64).json()
    assert job["state"] == "pending" and "waiting" in job["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"command": []}, "command"),
    ({"devices": 0}, "devices"),
    ({"workload_class": "mining"}, "workload_class"),
    ({"accelerator": "nvidia-zz"}, "accelerator"),
    ({"time_limit_s": 0}, "time_limit_s"),
    ({"env": {"1BAD": "x"}}, "env"),
])
def test_bad_job_input_is_4xx_naming_the_field(client, consumer, pools, body, field) -> None:
    response = _submit(client, consumer, **body)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
