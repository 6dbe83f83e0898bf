"""The jobs, leases, agents and usage repositories round-trip their records on a real
database (SQLite, or PostgreSQL with SUANLI_TEST_DATABASE_URL), locks included."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from suanli.adapters.store.repositories import jobs as store
from suanli.adapters.store.repositories import scheduling
from suanli.adapters.store.repositories import usage as usage_store
from suanli.bootstrap import parse_authority
from suanli.domain.job_records import Agent, Job, JobEvent, JobLog, Lease, StoredUsageRecord
from suanli.domain.jobs import JobSpec, JobState, LeaseState
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.services import tenants
from suanli.services.registry import inventory

SITE = {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}


@pytest.fixture
def world(database, clock):  # type: ignore[no-untyped-def]
    """A consumer, and a provider with one pool of 8 A800s: (consumer id, provider id, pool id)."""
    now = clock.now()
    with database.unit_of_work() as session:
        authority = parse_authority("CN")
        consumer = tenants.create_tenant(session, authority, "consumer", Role.CONSUMER,
                                         TenantClass("start-up"), now).tenant_id
        provider = tenants.create_tenant(session, authority, "provider", Role.PROVIDER,
                                         TenantClass("start-up"), now).tenant_id
        owner = Principal(provider, Role.PROVIDER)
        p = inventory.create_provider(session, owner, authority, name="West", kind="cloud",
                                      now=now)
        s = inventory.create_site(session, owner, p.id, SITE, now)
        pool = inventory.create_pool(session, owner, s.id, accelerator="nvidia-a800",
                                     fields={"name": "a800", "device_count": 8,
                                             "engine": "local",
                                             "price_fen_per_device_hour": 900}, now=now)
        return consumer, provider, pool.id


def _job(consumer: str, now, key: str = "k1") -> Job:  # type: ignore[no-untyped-def]
    return Job(id=f"{consumer}.J{key}", tenant_id=consumer, idempotency_key=key,
               request_sha256="0" * 64, name="hello",
               spec=JobSpec(name="hello", command=("true",)).to_json(),
               state=JobState.PENDING.value, created_at=now, updated_at=now)


def test_a_job_its_events_and_log_round_trip(database, clock, world) -> None:  # type: ignore[no-untyped-def]
    consumer, _, _ = world
    now = clock.now()
    job = _job(consumer, now)
    with database.unit_of_work() as session:
        stored, created = store.add_job(session, job)
        assert created and stored is job
        store.add_job_event(session, JobEvent(job.id, None, JobState.PENDING.value, now,
                                              "submitted"))
        again, created = store.add_job(session, replace(job, id=f"{consumer}.Jother"))
        assert not created and again.id == job.id  # same tenant and key: the first job
    with database.unit_of_work() as session:
        loaded = store.get_job(session, job.id)
        assert loaded is not None
        assert (loaded.tenant_id, loaded.state, loaded.spec, loaded.excluded_pools,
                loaded.attempts, loaded.message) == (consumer, "pending", job.spec, [], 0, "")
        assert store.job_by_idempotency_key(session, consumer, "k1").id == job.id  # type: ignore[union-attr]
        loaded.state, loaded.message, loaded.excluded_pools = "failed", "gave up", ["p1"]
        loaded.placement = {"pool_id": "p1", "rank": 1}
        store.save_job(session, loaded)
        store.save_job_log(session, JobLog(job.id, "out", False, now))
        store.save_job_log(session, JobLog(job.id, "more out", True, now))
    with database.unit_of_work() as session:
        saved = store.get_job(session, job.id)
        assert saved is not None
        assert (saved.state, saved.message, saved.excluded_pools, saved.placement) == \
            ("failed", "gave up", ["p1"], {"pool_id": "p1", "rank": 1})
        assert [(e.from_state, e.to_state, e.reason) for e in store.job_events(session, job.id)] \
            == [(None, "pending", "submitted")]
        log = store.get_job_log(session, job.id)
        assert log is not None and (log.text, log.truncated) == ("more out", True)
        assert [j.id for j in store.list_jobs(session, tenant_id=consumer, state="failed",
                                              limit=10, offset=0)] == [job.id]
        assert store.list_jobs(session, tenant_id=consumer, state="pending", limit=10,
                               offset=0) == []


def test_leases_devices_and_agents_round_trip(database, clock, world) -> None:  # type: ignore[no-untyped-def]
    consumer, provider, pool_id = world
    now = clock.now()
    job = _job(consumer, now)
    lease = Lease(id=f"{job.id}.L1", job_id=job.id, pool_id=pool_id, devices=2,
                  state=LeaseState.ACTIVE.value, fence=0,
                  heartbeat_deadline=now + timedelta(seconds=60), created_at=now)
    with database.unit_of_work() as session:
        store.add_job(session, job)
        assert store.take_devices(session, pool_id, 2)
        assert not store.take_devices(session, pool_id, 7)  # never over-commits
        store.add_lease(session, lease)
        job.state, job.lease_id, job.pool_id = JobState.PLACED.value, lease.id, pool_id
        store.save_job(session, job)
        store.add_agent(session, Agent("ag_1", provider, "edge", (pool_id,), "local", now, now))
    with database.unit_of_work() as session:
        pool = store.get_pool(session, pool_id)
        assert pool is not None and pool.free_devices == 6
        agent = store.get_agent(session, "ag_1")
        assert agent is not None and agent.pools == (pool_id,)
        [(claimable, placed)] = store.lock_claimable(session, agent.pools, 16)
        assert (claimable.id, placed.id) == (lease.id, job.id)
        claimed = store.claim_lease(session, claimable, "ag_1", now + timedelta(seconds=30))
        assert claimed is not None and (claimed.fence, claimed.agent_id) == (1, "ag_1")
        assert store.claim_lease(session, claimable, "ag_2", now) is None  # fence moved on
        store.agent_seen(session, "ag_1", now + timedelta(seconds=5))
    later = now + timedelta(seconds=31)
    with database.unit_of_work() as session:
        [stale] = store.lock_stale_leases(session, later, limit=10)
        assert stale.id == lease.id
        assert store.extend_active_leases(session, before=later + timedelta(seconds=30),
                                          deadline=later + timedelta(seconds=30)) == 1
        assert store.lock_stale_leases(session, later, limit=10) == []
        stale.state, stale.ended_at = LeaseState.RELEASED.value, later
        store.save_lease(session, stale)
        store.give_back_devices(session, pool_id, 2)
    with database.unit_of_work() as session:
        ended = store.get_lease(session, lease.id)
        assert ended is not None and (ended.state, ended.fence) == ("released", 1)
        pool = store.get_pool(session, pool_id)
        assert pool is not None and pool.free_devices == 8
        [(state, site)] = scheduling.pool_states(session)
        assert state.id == pool_id and state.free_devices == 8 and site.id == state.site_id


def test_usage_records_round_trip(database, clock, world) -> None:  # type: ignore[no-untyped-def]
    consumer, provider, pool_id = world
    now = clock.now()
    job = _job(consumer, now)
    lease = Lease(id=f"{job.id}.L1", job_id=job.id, pool_id=pool_id, devices=1,
                  state=LeaseState.ACTIVE.value, fence=0, heartbeat_deadline=now,
                  created_at=now)
    record = StoredUsageRecord(
        id=f"{lease.id}.R1", lease_id=lease.id, job_id=job.id, pool_id=pool_id,
        tenant_id=consumer, provider_tenant_id=provider, accelerator="nvidia-a800", devices=1,
        started_at=now, ended_at=now + timedelta(hours=1), wall_s=3600.0,
        device_seconds=3600.0, cpu_s=None, max_rss_mb=12.5, energy_wh=400.0,
        energy_estimated=True, content_sha256="a" * 64, created_at=now)
    with database.unit_of_work() as session:
        store.add_job(session, job)
        store.add_lease(session, lease)
        assert usage_store.insert_usage_record(session, record)
        assert not usage_store.insert_usage_record(session, record)  # the same id: refused
        store.lock_lease(session, lease.id)
    with database.unit_of_work() as session:
        loaded = usage_store.get_usage_record(session, record.id)
        assert loaded is not None
        assert replace(loaded, started_at=record.started_at, ended_at=record.ended_at,
                       created_at=record.created_at) == record
        assert [r.id for r in usage_store.records_of_job(session, job.id)] == [record.id]
        [span] = usage_store.spans_of_lease(session, lease.id)
        assert (span.record_id, span.end - span.start) == (record.id,
                                                                    timedelta(hours=1))
        assert usage_store.charge_of_record(session, record.id) is None
        totals = usage_store.charge_totals_of_job(session, job.id)
        assert (totals.records, totals.amount_fen, totals.payable_fen) == (0, 0, 0)
        assert usage_store.quantity_used_micro(session, tenant_id=consumer, pool_id=pool_id,
                                               period="2026-11", basis="device_hour") == 0
