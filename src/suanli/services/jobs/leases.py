"""Leases (资源占用): devices of a pool taken atomically for one attempt of a job, and freed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from suanli.adapters.store import rows_matched
from suanli.adapters.store.job_tables import JobRow, LeaseRow
from suanli.adapters.store.tables import PoolRow
from suanli.domain.errors import Conflict
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.jobs import LeaseState
from suanli.domain.resources import PoolState


def take_devices(session: Session, pool_id: str, devices: int) -> bool:
    """Take `devices` free devices of an active pool, or nothing; never over-commits.

    One conditional UPDATE: PostgreSQL row-locks the pool, SQLite holds its write lock, so two
    placements can never both take the last devices.
    """
    assert devices > 0
    taken = rows_matched(session.execute(
        update(PoolRow)
        .where(PoolRow.id == pool_id, PoolRow.state == PoolState.ACTIVE.value,
               PoolRow.free_devices >= devices)
        .values(free_devices=PoolRow.free_devices - devices)
        .execution_options(synchronize_session=False)
    ))
    return taken == 1


def give_back_devices(session: Session, pool_id: str, devices: int) -> None:
    session.execute(
        update(PoolRow).where(PoolRow.id == pool_id)
        .values(free_devices=PoolRow.free_devices + devices)
        .execution_options(synchronize_session=False))
    # A pool never holds more free devices than it has, even if it shrank meanwhile.
    session.execute(
        update(PoolRow).where(PoolRow.id == pool_id,
                              PoolRow.free_devices > PoolRow.device_count)
        .values(free_devices=PoolRow.device_count)
        .execution_options(synchronize_session=False))


def open_lease(session: Session, job: JobRow, pool_id: str, devices: int, now: datetime,
               claim_timeout_s: int) -> LeaseRow | None:
    """Reserve devices for the job's next attempt; None if the pool has no room now."""
    if not take_devices(session, pool_id, devices):
        return None
    job.attempts += 1
    lease_id = ComputeId.parse(job.id).child(IdKind.LEASE, job.attempts)
    lease = LeaseRow(id=str(lease_id), job_id=job.id, pool_id=pool_id, devices=devices,
                     state=LeaseState.ACTIVE.value, fence=0, agent_id=None, engine_ref=None,
                     heartbeat_deadline=now + timedelta(seconds=claim_timeout_s),
                     created_at=now)
    session.add(lease)
    job.lease_id = lease.id
    job.pool_id = pool_id
    return lease


def release(session: Session, lease: LeaseRow, now: datetime, outcome: LeaseState) -> None:
    """End a lease (released normally, or expired) and return its devices to the pool."""
    if lease.state != LeaseState.ACTIVE:
        raise Conflict(f"lease {lease.id} already ended ({lease.state})", field="lease_id")
    assert outcome in (LeaseState.RELEASED, LeaseState.EXPIRED)
    lease.state = outcome.value
    lease.ended_at = now
    give_back_devices(session, lease.pool_id, lease.devices)
