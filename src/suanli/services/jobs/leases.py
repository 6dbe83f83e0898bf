"""Leases (资源占用): devices of a pool taken atomically for one attempt of a job, and freed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as store
from suanli.domain.errors import Conflict
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.job_records import Job, Lease
from suanli.domain.jobs import LeaseState


def take_devices(session: Session, pool_id: str, devices: int) -> bool:
    """Take `devices` free devices of an active pool, or nothing; never over-commits (one
    conditional UPDATE of the pool row: see repositories.jobs.take_devices)."""
    assert devices > 0
    return store.take_devices(session, pool_id, devices)


def give_back_devices(session: Session, pool_id: str, devices: int) -> None:
    store.give_back_devices(session, pool_id, devices)


def open_lease(session: Session, job: Job, pool_id: str, devices: int, now: datetime,
               claim_timeout_s: int) -> Lease | None:
    """Reserve devices for the job's next attempt; None if the pool has no room now."""
    if not take_devices(session, pool_id, devices):
        return None
    job.attempts += 1
    lease_id = ComputeId.parse(job.id).child(IdKind.LEASE, job.attempts)
    lease = Lease(id=str(lease_id), job_id=job.id, pool_id=pool_id, devices=devices,
                  state=LeaseState.ACTIVE.value, fence=0, agent_id=None, engine_ref=None,
                  heartbeat_deadline=now + timedelta(seconds=claim_timeout_s),
                  created_at=now)
    store.add_lease(session, lease)
    job.lease_id = lease.id
    job.pool_id = pool_id
    store.save_job(session, job)
    return lease


def release(session: Session, lease: Lease, now: datetime, outcome: LeaseState) -> None:
    """End a lease (released normally, or expired) and return its devices to the pool."""
    if lease.state != LeaseState.ACTIVE:
        raise Conflict(f"lease {lease.id} already ended ({lease.state})", field="lease_id")
    assert outcome in (LeaseState.RELEASED, LeaseState.EXPIRED)
    lease.state = outcome.value
    lease.ended_at = now
    store.save_lease(session, lease)
    give_back_devices(session, lease.pool_id, lease.devices)
