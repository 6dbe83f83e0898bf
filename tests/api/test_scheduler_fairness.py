"""A scheduling pass is fair across tenants and survives a bad job (issue 12, finding 5):
each pass used to look at the 500 oldest pending jobs only, so 520 unplaceable jobs of one
tenant starved everyone, and one job whose placement raised stopped the whole pass."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import insert

from suanli.adapters.store.job_tables import JobRow
from suanli.bootstrap import parse_authority
from suanli.domain.ids import IdKind
from suanli.services.dispatch import agents
from suanli.services.scheduling import placement
from tests.api.conftest import Tenant

SITE = {"name": "Hohhot DC", "province": "CN-NM", "city": "Hohhot", "latitude": 40.8,
        "longitude": 111.7, "pue": "1.2", "electricity_fen_per_kwh": 30, "green_share": "0.6",
        "kind": "hub", "hub": "inner-mongolia"}


def _backlog(database, tenant: Tenant, count: int, clock, **spec) -> None:  # type: ignore[no-untyped-def]
    """`count` pending jobs of one tenant, older than anything submitted after."""
    body = {"name": "stuck", "command": ["true"], "devices": 64, "workload_class": "general",
            "accelerator": None, "vendor": None, "device_kind": None, "min_memory_gb": None,
            "provinces": [], "pool_id": None, "time_limit_s": 3600,
            "max_price_fen_per_device_hour": None, "env": {}, "spot": False, **spec}
    at = clock.now() - timedelta(hours=1)
    with database.unit_of_work() as session:
        session.execute(insert(JobRow), [
            {"id": _job_id(n), "tenant_id": tenant.id, "idempotency_key": f"b{n}",
             "request_sha256": "0" * 64, "name": "stuck", "spec": body, "state": "pending",
             "attempts": 0, "excluded_pools": [], "message": "", "created_at": at,
             "updated_at": at} for n in range(count)])


def _job_id(n: int) -> str:
    return str(parse_authority("CN").child(IdKind.JOB, 900_000 + n))


def _pool(client: TestClient, provider: Tenant, devices: int = 8) -> str:
    p = client.post("/v1/providers", json={"name": "North", "kind": "cloud"},
                    headers=provider.headers).json()
    site = client.post(f"/v1/providers/{p['id']}/sites", json=SITE,
                       headers=provider.headers).json()
    pool = client.post(f"/v1/sites/{site['id']}/pools", headers=provider.headers,
                       json={"name": "cpu", "accelerator": "intel-xeon-8480",
                             "device_count": devices, "engine": "local",
                             "price_fen_per_device_hour": 100})
    assert pool.status_code == 201, pool.text
    return pool.json()["id"]


def _pass(database, clock) -> int:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return agents.tick(session, clock.now())[1]


def test_520_unplaceable_jobs_of_one_tenant_do_not_starve_another(
        client: TestClient, make_tenant, provider: Tenant, database, clock) -> None:  # type: ignore[no-untyped-def]
    hog, other = make_tenant("consumer", "hog"), make_tenant("consumer", "other")
    _backlog(database, hog, 520, clock)
    waiting = [client.post("/v1/jobs", headers={**other.headers, "Idempotency-Key": f"o{n}"},
                           json={"name": "small", "command": ["true"], "devices": 1}).json()
               for n in range(3)]
    assert all(job["state"] == "pending" for job in waiting)  # no pool yet
    _pool(client, provider)
    assert _pass(database, clock) == 3
    for job in waiting:
        seen = client.get(f"/v1/jobs/{job['id']}", headers=other.headers).json()
        assert seen["state"] == "placed", seen


def test_a_job_whose_placement_fails_fails_alone(client: TestClient, make_tenant,  # type: ignore[no-untyped-def]
                                                 provider: Tenant, database, clock) -> None:
    bad, good = make_tenant("consumer", "bad"), make_tenant("consumer", "good")
    _backlog(database, bad, 1, clock, devices=1, written_by_a_newer_version=True)
    job = client.post("/v1/jobs", headers={**good.headers, "Idempotency-Key": "g"},
                      json={"name": "fine", "command": ["true"], "devices": 1}).json()
    _pool(client, provider)
    assert _pass(database, clock) == 1
    assert client.get(f"/v1/jobs/{job['id']}", headers=good.headers).json()["state"] == "placed"
    poisoned = client.get(f"/v1/jobs/{_job_id(0)}", headers=bad.headers).json()
    assert poisoned["state"] == "failed"
    assert poisoned["message"].startswith("could not be scheduled: TypeError")
    assert _pass(database, clock) == 0  # and it is not tried again


def test_many_tenants_are_served_in_turn(make_tenant, database, clock) -> None:  # type: ignore[no-untyped-def]
    rotation = placement.TenantRotation()
    ids = [f"CN.T{n:06d}-0" for n in range(5)]
    assert rotation.order(ids) == ids
    rotation.served(ids[1])
    assert rotation.order(ids) == ids[2:] + ids[:2]
