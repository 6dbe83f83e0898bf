"""Jobs, their events and logs, leases, agents, and the pools they run on, in the database:
pure records (`suanli.domain.job_records`) in and out.

Writes go through the session's rows (the identity map), so a row another context still
holds stays the same object as the one saved here, and flush order is the ORM's as before.
Locks are in the names: `lock_*` reads take row locks (`FOR UPDATE`, some `SKIP LOCKED`),
`take_devices` a conditional UPDATE of the pool row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.database import rows_matched
from suanli.adapters.store.job_tables import AgentRow, JobEventRow, JobLogRow, JobRow, LeaseRow
from suanli.adapters.store.tables import PoolRow, SiteRow
from suanli.domain.job_records import (
    Agent,
    Job,
    JobEvent,
    JobLog,
    Lease,
    PoolFacts,
    SiteEnergy,
)
from suanli.domain.jobs import JobState, LeaseState
from suanli.domain.resources import PoolState

MAX_ROWS = 10_000  # rows one unbounded-looking read returns at most
LOCK_CHUNK = 500  # ids in one locking IN (...)

_JOB_FIELDS = ("tenant_id", "idempotency_key", "request_sha256", "name", "spec", "state",
               "attempts", "pool_id", "lease_id", "excluded_pools", "placement", "exit_code",
               "message", "created_at", "updated_at", "started_at", "finished_at")
_LEASE_FIELDS = ("job_id", "pool_id", "devices", "state", "fence", "agent_id", "engine_ref",
                 "heartbeat_deadline", "created_at", "ended_at")


# -- jobs ------------------------------------------------------------------------------------

def _job(row: JobRow) -> Job:
    return Job(id=row.id, tenant_id=row.tenant_id, idempotency_key=row.idempotency_key,
               request_sha256=row.request_sha256, name=row.name, spec=row.spec, state=row.state,
               created_at=row.created_at, updated_at=row.updated_at, attempts=row.attempts,
               pool_id=row.pool_id, lease_id=row.lease_id,
               excluded_pools=row.excluded_pools if row.excluded_pools is not None else [],
               placement=row.placement, exit_code=row.exit_code, message=row.message,
               started_at=row.started_at, finished_at=row.finished_at)


def _copy(record: object, row: object, names: Sequence[str]) -> None:
    """Set the row's attributes that differ from the record's (unchanged ones stay clean)."""
    for name in names:
        value = getattr(record, name)
        if getattr(row, name) != value:
            setattr(row, name, value)


def get_job(session: Session, job_id: str) -> Job | None:
    row = session.get(JobRow, job_id)
    return None if row is None else _job(row)


def refresh_job(session: Session, job_id: str) -> Job:
    """The job as the database has it now (its row re-read, dropping unsaved changes)."""
    row = session.get(JobRow, job_id)
    assert row is not None
    session.refresh(row)
    return _job(row)


def job_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    row = session.scalar(select(JobRow).where(JobRow.tenant_id == tenant_id,
                                              JobRow.idempotency_key == key))
    return None if row is None else _job(row)


def add_job(session: Session, job: Job) -> tuple[Job, bool]:
    """Insert a new job in a savepoint: (job, True); when a concurrent request with the same
    tenant and idempotency key won the race, (that job, False)."""
    row = JobRow(id=job.id, **{name: getattr(job, name) for name in _JOB_FIELDS})
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = job_by_idempotency_key(session, job.tenant_id, job.idempotency_key)
        if existing is None:
            raise
        return existing, False
    return job, True


def save_job(session: Session, job: Job) -> None:
    """Write the job's fields to its row (which exists)."""
    row = session.get(JobRow, job.id)
    assert row is not None
    _copy(job, row, _JOB_FIELDS)


def list_jobs(session: Session, *, tenant_id: str | None, state: str | None, limit: int,
              offset: int) -> list[Job]:
    """Jobs newest first; of one tenant, or of all when `tenant_id` is None."""
    assert 0 <= limit <= MAX_ROWS
    stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc())
    if tenant_id is not None:
        stmt = stmt.where(JobRow.tenant_id == tenant_id)
    if state is not None:
        stmt = stmt.where(JobRow.state == state)
    return [_job(row) for row in session.scalars(stmt.limit(limit).offset(offset))]


def pending_tenants(session: Session, limit: int) -> list[str]:
    """Tenants with pending jobs, in id order."""
    return list(session.scalars(
        select(JobRow.tenant_id).where(JobRow.state == JobState.PENDING.value).distinct()
        .order_by(JobRow.tenant_id).limit(limit)))


def oldest_pending(session: Session, tenant_ids: Sequence[str], share: int) -> dict[str, int]:
    """Up to `share` oldest pending jobs of each tenant: job id -> its rank in its tenant."""
    rank = func.row_number().over(partition_by=JobRow.tenant_id,
                                  order_by=(JobRow.created_at, JobRow.id)).label("rank")
    ranked = (select(JobRow.id, rank)
              .where(JobRow.state == JobState.PENDING.value, JobRow.tenant_id.in_(tenant_ids))
              .subquery())
    return {job_id: int(position) for job_id, position in session.execute(
        select(ranked.c.id, ranked.c.rank).where(ranked.c.rank <= share))}


def lock_pending_jobs(session: Session, job_ids: Iterable[str]) -> list[Job]:
    """The jobs among `job_ids` still pending, row-locked; jobs another pass holds are skipped
    (FOR UPDATE SKIP LOCKED), in chunks of LOCK_CHUNK ids."""
    ids = sorted(job_ids)
    found: list[Job] = []
    for start in range(0, len(ids), LOCK_CHUNK):
        found += [_job(row) for row in session.scalars(
            select(JobRow).where(JobRow.id.in_(ids[start:start + LOCK_CHUNK]),
                                 JobRow.state == JobState.PENDING.value)
            .with_for_update(skip_locked=True)).all()]
    return found


# -- job events and logs ---------------------------------------------------------------------

def _event(row: JobEventRow) -> JobEvent:
    return JobEvent(job_id=row.job_id, from_state=row.from_state, to_state=row.to_state,
                    at=row.at, reason=row.reason, id=row.id)


def add_job_event(session: Session, event: JobEvent) -> None:
    session.add(JobEventRow(job_id=event.job_id, from_state=event.from_state,
                            to_state=event.to_state, at=event.at, reason=event.reason))


def job_events(session: Session, job_id: str, limit: int = MAX_ROWS) -> list[JobEvent]:
    """The job's transitions, oldest first."""
    return [_event(row) for row in session.scalars(
        select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        .limit(limit))]


def get_job_log(session: Session, job_id: str) -> JobLog | None:
    row = session.get(JobLogRow, job_id)
    return None if row is None else JobLog(row.job_id, row.text, row.truncated, row.updated_at)


def save_job_log(session: Session, log: JobLog) -> None:
    """Store the job's log tail, replacing the one before."""
    row = session.get(JobLogRow, log.job_id)
    if row is None:
        session.add(JobLogRow(job_id=log.job_id, text=log.text, truncated=log.truncated,
                              updated_at=log.updated_at))
    else:
        row.text, row.truncated, row.updated_at = log.text, log.truncated, log.updated_at


# -- leases ----------------------------------------------------------------------------------

def _lease(row: LeaseRow) -> Lease:
    return Lease(id=row.id, job_id=row.job_id, pool_id=row.pool_id, devices=row.devices,
                 state=row.state, fence=row.fence, heartbeat_deadline=row.heartbeat_deadline,
                 created_at=row.created_at, agent_id=row.agent_id, engine_ref=row.engine_ref,
                 ended_at=row.ended_at)


def get_lease(session: Session, lease_id: str) -> Lease | None:
    row = session.get(LeaseRow, lease_id)
    return None if row is None else _lease(row)


def add_lease(session: Session, lease: Lease) -> None:
    session.add(LeaseRow(id=lease.id, **{name: getattr(lease, name) for name in _LEASE_FIELDS}))


def save_lease(session: Session, lease: Lease) -> None:
    """Write the lease's fields to its row (which exists)."""
    row = session.get(LeaseRow, lease.id)
    assert row is not None
    _copy(lease, row, _LEASE_FIELDS)


def lock_lease(session: Session, lease_id: str) -> None:
    """Row-lock a lease (SELECT ... FOR UPDATE): its records are judged one at a time."""
    session.execute(select(LeaseRow.id).where(LeaseRow.id == lease_id).with_for_update())


_CLAIMABLE_JOB_STATES = (JobState.PLACED.value, JobState.DISPATCHED.value,
                         JobState.RUNNING.value)


def lock_claimable(session: Session, pool_ids: Sequence[str], limit: int
                   ) -> list[tuple[Lease, Job]]:
    """Unclaimed active leases of placed jobs on these pools, oldest first, row-locked; those
    another claim holds are skipped (FOR UPDATE SKIP LOCKED). A gang over several pools has
    one lease per pool, each claimed on its own: its job may be dispatched or running by then."""
    stmt = (select(LeaseRow, JobRow).join(JobRow, JobRow.id == LeaseRow.job_id)
            .where(LeaseRow.pool_id.in_(pool_ids), LeaseRow.state == LeaseState.ACTIVE.value,
                   LeaseRow.agent_id.is_(None),
                   JobRow.state.in_(_CLAIMABLE_JOB_STATES))
            .order_by(LeaseRow.created_at).limit(limit)
            .with_for_update(skip_locked=True))
    return [(_lease(lease), _job(job)) for lease, job in session.execute(stmt).all()]


def claim_lease(session: Session, lease: Lease, agent_id: str, deadline: datetime
                ) -> Lease | None:
    """Compare-and-set on the fence: give the unclaimed lease to the agent with the next fence.
    None when another claim got there first; else the lease as stored now."""
    claimed = rows_matched(session.execute(
        update(LeaseRow).where(LeaseRow.id == lease.id, LeaseRow.fence == lease.fence,
                               LeaseRow.agent_id.is_(None))
        .values(fence=lease.fence + 1, agent_id=agent_id, heartbeat_deadline=deadline)
        .execution_options(synchronize_session=False)))
    if claimed != 1:
        return None
    row = session.get(LeaseRow, lease.id)
    assert row is not None
    session.refresh(row)
    return _lease(row)


def lock_stale_leases(session: Session, now: datetime, limit: int) -> list[Lease]:
    """Active leases past their heartbeat deadline, row-locked (FOR UPDATE SKIP LOCKED)."""
    return [_lease(row) for row in session.scalars(
        select(LeaseRow).where(LeaseRow.state == LeaseState.ACTIVE.value,
                               LeaseRow.heartbeat_deadline < now)
        .limit(limit).with_for_update(skip_locked=True)).all()]


def extend_active_leases(session: Session, before: datetime, deadline: datetime) -> int:
    """Move every active lease's heartbeat deadline earlier than `before` to `deadline`."""
    return rows_matched(session.execute(
        update(LeaseRow).where(LeaseRow.state == LeaseState.ACTIVE.value,
                               LeaseRow.heartbeat_deadline < before)
        .values(heartbeat_deadline=deadline)
        .execution_options(synchronize_session=False)))


# -- devices of pools ------------------------------------------------------------------------

def take_devices(session: Session, pool_id: str, devices: int) -> bool:
    """Take `devices` free devices of an active pool, or nothing; never over-commits.

    One conditional UPDATE: PostgreSQL row-locks the pool, SQLite holds its write lock, so two
    placements can never both take the last devices.
    """
    taken = rows_matched(session.execute(
        update(PoolRow)
        .where(PoolRow.id == pool_id, PoolRow.state == PoolState.ACTIVE.value,
               PoolRow.free_devices >= devices)
        .values(free_devices=PoolRow.free_devices - devices)
        .execution_options(synchronize_session=False)
    ))
    return taken == 1


def give_back_devices(session: Session, pool_id: str, devices: int) -> None:
    """Return devices to the pool, never above its device count."""
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


# -- pools and sites as scheduling reads them ------------------------------------------------

def pool_facts(row: PoolRow) -> PoolFacts:
    """The pool row as a record (also used by repositories.scheduling)."""
    return PoolFacts(
        id=row.id, site_id=row.site_id, provider_id=row.provider_id, tenant_id=row.tenant_id,
        name=row.name, accelerator=row.accelerator, vendor=row.vendor,
        architecture=row.architecture, device_kind=row.device_kind, memory_gb=row.memory_gb,
        device_count=row.device_count, free_devices=row.free_devices,
        interconnect=row.interconnect, engine=row.engine, state=row.state,
        price_fen_per_device_hour=row.price_fen_per_device_hour,
        units_per_device_hour=row.units_per_device_hour,
        fen_per_unit_hour_general=row.fen_per_unit_hour_general,
        fen_per_unit_hour_training=row.fen_per_unit_hour_training,
        fen_per_unit_hour_inference=row.fen_per_unit_hour_inference,
        fen_per_unit_hour_hpc=row.fen_per_unit_hour_hpc, province=row.province, city=row.city,
        hub=row.hub, site_kind=row.site_kind, green_share=row.green_share)


def get_pool(session: Session, pool_id: str) -> PoolFacts | None:
    row = session.get(PoolRow, pool_id)
    return None if row is None else pool_facts(row)


def site_energy(session: Session, site_ids: Iterable[str]) -> dict[str, SiteEnergy]:
    """PUE and electricity price of these sites, by id."""
    return {row.id: SiteEnergy(row.id, row.pue, row.electricity_fen_per_kwh)
            for row in session.scalars(select(SiteRow).where(SiteRow.id.in_(set(site_ids))))}


# -- agents ----------------------------------------------------------------------------------

def _agent(row: AgentRow) -> Agent:
    return Agent(id=row.id, tenant_id=row.tenant_id, name=row.name, pools=tuple(row.pools),
                 engine=row.engine, last_seen=row.last_seen, created_at=row.created_at)


def add_agent(session: Session, agent: Agent) -> None:
    session.add(AgentRow(id=agent.id, tenant_id=agent.tenant_id, name=agent.name,
                         pools=list(agent.pools), engine=agent.engine,
                         last_seen=agent.last_seen, created_at=agent.created_at))


def get_agent(session: Session, agent_id: str) -> Agent | None:
    row = session.get(AgentRow, agent_id)
    return None if row is None else _agent(row)


def agent_seen(session: Session, agent_id: str, now: datetime) -> None:
    """Record that the agent was heard from now."""
    row = session.get(AgentRow, agent_id)
    assert row is not None
    row.last_seen = now

