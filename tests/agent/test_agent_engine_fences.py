"""The provider agent against an in-process platform and a real sandboxed local engine:
an engine refusal fails the one job and the agent goes on (issue 12, finding 4), and a
returning agent whose lease was failed over kills its copy at once and reports nothing more
for it (finding 13)."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from suanli.adapters.engines.base import EngineJobRef, EngineState
from suanli.adapters.engines.local import LocalEngine
from suanli.adapters.store.job_tables import JobRow
from suanli.agent.runner import PlatformClient, ProviderAgent
from suanli.agent.state import LeaseState, StateFile
from suanli.domain.tenants import Principal, Role
from suanli.services.billing import wallets as billing
from suanli.services.dispatch import agents as agent_service
from tests.agent.conftest import SITE
from tests.asgi_transport import TestClientTransport
from tests.engines.conftest import processes_running

URL = "http://testserver"
STEP_DEADLINE_S = 30


@pytest.fixture
def funded(consumer, operator, database, clock):  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        billing.deposit(session, Principal(operator.id, Role.OPERATOR), consumer.id, 1_000_000,
                        "initial-funds", clock.now())
    return consumer


@pytest.fixture
def cpu_pools(client, provider) -> list[str]:  # type: ignore[no-untyped-def]
    """Two CPU pools of one provider, the cheaper first."""
    made = client.post("/v1/providers", json={"name": "West", "kind": "cloud"},
                       headers=provider.headers).json()
    site = client.post(f"/v1/providers/{made['id']}/sites", json=SITE,
                       headers=provider.headers).json()
    ids = []
    for price in (50, 80):
        pool = client.post(f"/v1/sites/{site['id']}/pools",
                           json={"name": f"cpu {price}", "accelerator": "intel-xeon-8480",
                                 "device_count": 2, "engine": "local",
                                 "price_fen_per_device_hour": price},
                           headers=provider.headers)
        assert pool.status_code == 201, pool.text
        ids.append(pool.json()["id"])
    return ids


@pytest.fixture
def make_agent(client, provider, tmp_path: Path  # type: ignore[no-untyped-def]
               ) -> Iterator[Callable[..., ProviderAgent]]:
    engines: list[LocalEngine] = []

    def make(name: str, pools: list[str]) -> ProviderAgent:
        engine = LocalEngine(tmp_path / name / "engine", cpus=2, memory_mb=2048,
                             kill_grace_s=1.0)
        engines.append(engine)
        http = PlatformClient(URL, provider.key, transport=TestClientTransport(client))
        agent = ProviderAgent(http, engine, pools, tmp_path / name, name=name, platform_url=URL)
        agent.register()
        return agent

    yield make
    for engine in engines:  # nothing of a failed test keeps running
        for job_dir in engine.state_dir.iterdir():
            if (job_dir / "spec.json").exists():
                engine.cancel(EngineJobRef("local", job_dir.name))


def submit(client, consumer, command: list[str],  # type: ignore[no-untyped-def]
           key: str) -> dict[str, Any]:
    response = client.post("/v1/jobs", json={"name": key, "command": command, "devices": 1},
                           headers={**consumer.headers, "Idempotency-Key": key})
    assert response.status_code == 201, response.text
    return response.json()


def job(client, consumer, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return client.get(f"/v1/jobs/{job_id}", headers=consumer.headers).json()


def step_until(agent: ProviderAgent, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + STEP_DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, "the agent never got there"
        agent.step()
        time.sleep(0.1)


# -- finding 4: an engine refusal ---------------------------------------------------------


@pytest.mark.parametrize("poison", ["nul-in-command", "oversized-env"])
def test_an_engine_refusal_fails_that_job_and_the_agent_goes_on(
        client, funded, cpu_pools, make_agent, database, poison: str) -> None:
    if poison == "nul-in-command" and database.dialect == "postgresql":
        pytest.skip("PostgreSQL cannot even store a NUL in JSON: nothing to hand an agent")
    bad = submit(client, funded, ["echo", "fine"], "poisoned")
    with database.unit_of_work() as session:  # a spec stored before the API refused such input
        row = session.get(JobRow, bad["id"])
        spec = dict(row.spec)
        if poison == "nul-in-command":
            spec["command"] = ["echo", "a\x00b"]
        else:
            spec["env"] = {"BIG": "x" * (300 << 10)}
        row.spec = spec
    agent = make_agent("a", cpu_pools)
    agent.step()  # claims, is refused by the engine, reports; does not raise
    failed = job(client, funded, bad["id"])
    assert failed["state"] == "failed" and "engine refused the job" in failed["message"], failed
    assert agent.state.leases == {}
    pool = client.get(f"/v1/pools/{cpu_pools[0]}", headers=funded.headers).json()
    assert pool["free_devices"] == 2  # the lease was released
    good = submit(client, funded, [sys.executable, "-c", "print('after the bad one')"], "good")
    step_until(agent, lambda: job(client, funded, good["id"])["state"] == "succeeded")


def test_a_lease_a_crash_left_unstarted_is_failed_not_kept_forever(
        client, funded, cpu_pools, provider, make_agent, tmp_path: Path) -> None:
    agent_id = make_agent("crashy", cpu_pools).state.agent_id
    submitted = submit(client, funded, ["true"], "orphaned")
    [claimed] = client.post(f"/v1/agents/{agent_id}/claim", json={},
                            headers=provider.headers).json()["assignments"]
    # the agent wrote the lease down, then died before its engine started anything
    store = StateFile(tmp_path / "crashy")
    state = store.load()
    state.leases[claimed["lease_id"]] = LeaseState(claimed["lease_id"], claimed["job_id"],
                                                   claimed["fence"], claimed["pool_id"])
    store.save(state)
    restarted = make_agent("crashy", cpu_pools)
    restarted.step()
    failed = job(client, funded, submitted["id"])
    assert failed["state"] == "failed" and "never started" in failed["message"], failed
    assert restarted.state.leases == {} and store.load().leases == {}


# -- finding 13: failover runs a job twice ------------------------------------------------


def test_a_returning_agent_kills_its_copy_at_once_and_reports_nothing_more(
        client, funded, cpu_pools, make_agent, database, clock) -> None:
    marker = f"{secrets.randbelow(10**6)}.75"
    command = ["sh", "-c", f"setsid sleep {marker} & exec sleep {marker}"]
    first = make_agent("first", cpu_pools[:1])
    second = make_agent("second", cpu_pools[1:])
    submitted = submit(client, funded, command, "twice")
    step_until(first, lambda: job(client, funded, submitted["id"])["state"] == "running")
    step_until(first, lambda: len(processes_running(marker, "sleep")) == 2)
    [first_lease] = first.state.leases.values()
    # the first agent goes silent past the heartbeat TTL: the job fails over
    clock.advance(agent_service.HEARTBEAT_TTL_S + 1)
    with database.unit_of_work() as session:
        assert agent_service.tick(session, clock.now()) == (1, 1)
    step_until(second, lambda: job(client, funded, submitted["id"])["state"] == "running")
    step_until(second, lambda: len(processes_running(marker, "sleep")) == 4)  # both copies run now
    events_before = len(job(client, funded, submitted["id"])["events"])
    first.step()  # it comes back: the heartbeat answers "lost"
    assert first.state.leases == {}
    ref = EngineJobRef.parse(first_lease.engine_ref or "")
    assert first._engine.status(ref).state is EngineState.CANCELLED
    assert len(processes_running(marker, "sleep")) == 2, "the first copy or its daemon lives on"
    for _ in range(3):
        first.step()
    after = job(client, funded, submitted["id"])
    assert after["state"] == "running" and after["attempts"] == 2
    assert len(after["events"]) == events_before  # the first agent reported nothing more
    usage = client.get(f"/v1/jobs/{submitted['id']}/usage", headers=funded.headers).json()
    assert usage == []
