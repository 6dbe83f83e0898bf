"""Transactions are real on both databases: a failed request stores nothing, and a request
writing beside the scheduler's pass neither fails nor stops it (issue 12, finding 3)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from suanli.adapters.store.job_tables import JobRow
from suanli.bootstrap import parse_authority
from suanli.domain.jobs import JobSpec
from suanli.domain.tenants import Principal, Role
from suanli.services.billing import wallets as billing
from suanli.services.dispatch import agents
from suanli.services.jobs import lifecycle as jobs

SITE = {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}
JOB = {"name": "hello", "command": ["echo", "hello"], "accelerator": "nvidia-a800"}
SUBMITS = 24
PASSES = 12


def _jobs_stored(database) -> int:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(JobRow))


@pytest.fixture
def funded(make_tenant, operator, database, clock):  # type: ignore[no-untyped-def]
    tenant = make_tenant("consumer", "consumer one")
    with database.unit_of_work() as session:
        billing.deposit(session, Principal(operator.id, Role.OPERATOR), tenant.id, 10_000_000,
                        "initial-funds", clock.now())
    return tenant


@pytest.fixture
def pool(client, provider) -> str:  # type: ignore[no-untyped-def]
    p = client.post("/v1/providers", json={"name": "West", "kind": "cloud"},
                    headers=provider.headers).json()
    s = client.post(f"/v1/providers/{p['id']}/sites", json=SITE, headers=provider.headers).json()
    return client.post(f"/v1/sites/{s['id']}/pools",
                       json={"name": "a800", "accelerator": "nvidia-a800", "device_count": 8,
                             "engine": "local", "price_fen_per_device_hour": 900},
                       headers=provider.headers).json()["id"]


def test_an_error_after_a_savepoint_rolls_back_the_whole_unit_of_work(
        database, funded, clock) -> None:  # type: ignore[no-untyped-def]
    # jobs.submit stores the job inside session.begin_nested(); with pysqlite's own
    # transaction handling that SAVEPOINT began the transaction and its RELEASE committed it.
    spec = JobSpec(name="hello", command=("echo", "hello"))
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        jobs.submit(session, Principal(funded.id, Role.CONSUMER), parse_authority("CN"), spec,
                    "k1", clock.now())
        raise RuntimeError("a later step of the request failed")
    assert _jobs_stored(database) == 0


def test_a_rejected_submit_stores_nothing_and_the_scheduler_still_runs(
        client, database, funded, pool, clock) -> None:  # type: ignore[no-untyped-def]
    for price in (1e30, 2**63, 10**12):
        response = client.post("/v1/jobs", json={**JOB, "max_price_fen_per_device_hour": price},
                               headers={**funded.headers, "Idempotency-Key": f"k{price}"})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "max_price_fen_per_device_hour"
    assert _jobs_stored(database) == 0
    with database.unit_of_work() as session:
        agents.tick(session, clock.now())
    ok = client.post("/v1/jobs", json=JOB, headers={**funded.headers, "Idempotency-Key": "ok"})
    assert ok.status_code == 201 and ok.json()["state"] == "placed"


def test_submits_beside_scheduler_passes_all_succeed(
        client, database, funded, pool, clock) -> None:  # type: ignore[no-untyped-def]
    # Each pass reads the pending jobs, then writes leases: a transaction that began without
    # the write lock would fail ("database is locked") whenever a submit committed meanwhile.
    done = threading.Event()
    failures: list[BaseException] = []

    def passes() -> int:
        count = 0
        while not done.is_set() or count < PASSES:
            try:
                with database.unit_of_work() as session:
                    agents.tick(session, clock.now())
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)
                return count
            count += 1
        return count

    def submit(n: int) -> int:
        return client.post("/v1/jobs", json={**JOB, "name": f"job {n}"},
                           headers={**funded.headers, "Idempotency-Key": f"k{n}"}).status_code

    with ThreadPoolExecutor(max_workers=5) as pool_of_threads:
        scheduler = pool_of_threads.submit(passes)
        codes = list(pool_of_threads.map(submit, range(SUBMITS)))
        done.set()
        assert scheduler.result(timeout=120) >= PASSES
    assert not failures, failures
    assert codes == [201] * SUBMITS
    assert _jobs_stored(database) == SUBMITS
