"""Provider agents: register, claim placed work, heartbeat, report; and failover on silence."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as store
from suanli.domain.errors import Conflict, NotFound, ValidationFailed
from suanli.domain.ids import ComputeId
from suanli.domain.job_records import Agent, Job, JobLog, Lease, StoredUsageRecord
from suanli.domain.jobs import MAX_ATTEMPTS, JobState, LeaseState
from suanli.domain.resources import check_name
from suanli.domain.tenants import Principal, Role, may_see, require_owner, require_role
from suanli.services.billing import charging
from suanli.services.billing import wallets as billing
from suanli.services.jobs import lifecycle as jobs
from suanli.services.jobs.leases import release
from suanli.services.metering import usage as metering
from suanli.services.scheduling import placement as scheduling

HEARTBEAT_TTL_S = 30  # a claimed lease without a heartbeat this long is presumed lost
MAX_CLAIM = 16
MAX_LOG_CHARS = 1 << 20
MAX_POOLS_PER_AGENT = 256
MAX_ENGINE_CHARS = 16
MAX_ENGINE_REF_CHARS = 200
REPORTABLE = {JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
              JobState.PREEMPTED}


@dataclass(frozen=True)
class Assignment:
    job_id: str
    lease_id: str
    fence: int
    pool_id: str
    devices: int
    spec: dict[str, Any]


def register(session: Session, principal: Principal, *, name: str, pools: list[str],
             engine: str, now: datetime) -> Agent:
    require_role(principal, Role.PROVIDER)
    if not pools or len(pools) > MAX_POOLS_PER_AGENT:
        raise ValidationFailed(f"list 1..{MAX_POOLS_PER_AGENT} pools", field="pools")
    canonical = []
    for pool_id in pools:
        pool = store.get_pool(session, str(ComputeId.parse(pool_id, field="pools")))
        if pool is None:
            raise NotFound(f"pool {pool_id} does not exist", field="pools")
        require_owner(principal, pool.tenant_id, f"pool {pool.id}")
        canonical.append(pool.id)
    if not 1 <= len(engine) <= MAX_ENGINE_CHARS:
        raise ValidationFailed(f"1-{MAX_ENGINE_CHARS} characters", field="engine")
    agent = Agent(id=f"ag_{secrets.token_hex(8)}", tenant_id=principal.tenant_id,
                  name=check_name(name, "name"), pools=tuple(canonical), engine=engine,
                  last_seen=now, created_at=now)
    store.add_agent(session, agent)
    return agent


def _agent(session: Session, principal: Principal, agent_id: str, now: datetime) -> Agent:
    """The caller's agent, marked as heard from now."""
    agent = store.get_agent(session, agent_id)
    if agent is None or not may_see(principal, agent.tenant_id):
        raise NotFound(f"agent {agent_id} is not registered", field="agent_id")
    store.agent_seen(session, agent.id, now)
    return agent


def claim(session: Session, principal: Principal, agent_id: str, now: datetime,
          max_jobs: int = MAX_CLAIM, ttl_s: int = HEARTBEAT_TTL_S) -> list[Assignment]:
    """Hand the agent the placed jobs of its pools; each claim bumps the lease's fence."""
    agent = _agent(session, principal, agent_id, now)
    out = []
    dispatched: set[str] = set()
    for found, job in store.lock_claimable(session, agent.pools, min(max_jobs, MAX_CLAIM)):
        # Compare-and-set on the fence: if another claim got here first, skip this lease.
        lease = store.claim_lease(session, found, agent.id, now + timedelta(seconds=ttl_s))
        if lease is None:
            continue
        # A gang's later leases find their job dispatched (here, or by an earlier claim).
        if job.state == JobState.PLACED.value and job.id not in dispatched:
            jobs.transition(session, job, JobState.DISPATCHED, now, f"claimed by {agent.id}")
            dispatched.add(job.id)
        out.append(Assignment(job.id, lease.id, lease.fence, lease.pool_id, lease.devices,
                              job.spec))
    return out


def _fenced_lease(session: Session, agent: Agent, lease_id: str, fence: int) -> Lease:
    lease = store.get_lease(session, str(ComputeId.parse(lease_id, field="lease_id")))
    if lease is None:
        raise NotFound(f"lease {lease_id} does not exist", field="lease_id")
    if lease.agent_id != agent.id or lease.fence != fence:
        raise Conflict(f"lease {lease.id} is fenced off: it belongs to another claim "
                       f"(fence {lease.fence}, yours {fence})", field="fence")
    return lease


def heartbeat(session: Session, principal: Principal, agent_id: str,
              leases: list[dict[str, Any]], now: datetime,
              ttl_s: int = HEARTBEAT_TTL_S) -> dict[str, str]:
    """Keep the agent's leases alive; answers per lease: ok, cancel, or lost (stop it)."""
    agent = _agent(session, principal, agent_id, now)
    answers: dict[str, str] = {}
    for item in leases[:MAX_CLAIM * 8]:
        lease_id, fence = str(item.get("lease_id")), int(item.get("fence", -1))
        try:
            lease = _fenced_lease(session, agent, lease_id, fence)
        except (Conflict, NotFound, ValidationFailed):
            answers[lease_id] = "lost"
            continue
        job = store.get_job(session, lease.job_id)
        assert job is not None
        if lease.state != LeaseState.ACTIVE:
            answers[lease.id] = "lost"
        elif job.state == JobState.CANCELLED.value:
            answers[lease.id] = "cancel"
        else:
            lease.heartbeat_deadline = now + timedelta(seconds=ttl_s)
            store.save_lease(session, lease)
            answers[lease.id] = "ok"
    return answers


def report(session: Session, principal: Principal, agent_id: str, lease_id: str, fence: int,
           state: JobState, now: datetime, *, exit_code: int | None = None, message: str = "",
           logs: str | None = None, engine_ref: str | None = None,
           usage: dict[str, Any] | None = None, ttl_s: int = HEARTBEAT_TTL_S) -> Job:
    """Apply an agent's report on its lease; terminal reports end the lease and meter usage."""
    if state not in REPORTABLE:
        raise ValidationFailed(f"one of {', '.join(s.value for s in REPORTABLE)}", field="state")
    agent = _agent(session, principal, agent_id, now)
    lease = _fenced_lease(session, agent, lease_id, fence)
    job = store.get_job(session, lease.job_id)
    assert job is not None
    if engine_ref:
        if len(engine_ref) > MAX_ENGINE_REF_CHARS:
            raise ValidationFailed(f"at most {MAX_ENGINE_REF_CHARS} characters",
                                   field="engine_ref")
        lease.engine_ref = engine_ref
        store.save_lease(session, lease)
    if logs is not None:
        _store_logs(session, job.id, logs, now)
    if lease.state != LeaseState.ACTIVE:
        if lease.state == LeaseState.RELEASED and state.is_terminal and usage is not None:
            # The agent retrying a final report whose answer it lost: the same figures are
            # the same record; different ones are a 409 from record_usage.
            charging.charge(session, record_usage(session, lease, job, usage, now),
                                      now)
            return job
        raise Conflict(f"lease {lease.id} already ended ({lease.state})", field="lease_id")
    if JobState(job.state) != state and job.state != JobState.CANCELLED.value:
        jobs.transition(session, job, state, now, message or f"reported by {agent.id}")
    if state.is_terminal or state is JobState.PREEMPTED:
        job.exit_code = exit_code
        job.message = message[:2000]
        store.save_job(session, job)
        recorded = record_usage(session, lease, job, usage, now) if usage is not None else None
        release(session, lease, now, LeaseState.RELEASED)
        if recorded is not None:
            charging.charge(session, recorded, now)
        else:
            billing.on_lease_ended_without_usage(session, lease, now)
        if state is JobState.PREEMPTED:
            requeue(session, job, now, f"preempted on {lease.pool_id}")
    else:
        lease.heartbeat_deadline = now + timedelta(seconds=ttl_s)
        store.save_lease(session, lease)
    return job


def _store_logs(session: Session, job_id: str, text: str, now: datetime) -> None:
    truncated = len(text) > MAX_LOG_CHARS
    text = text[-MAX_LOG_CHARS:]
    store.save_job_log(session, JobLog(job_id, text, truncated, now))


def record_usage(session: Session, lease: Lease, job: Job, usage: dict[str, Any],
                 now: datetime) -> StoredUsageRecord:
    """The lease's usage record; the same report twice is one record, a different one a 409.
    Built where posted records are (services.metering.usage), under the same lease rules."""
    return metering.record_reported(session, lease, job, usage, now)


def requeue(session: Session, job: Job, now: datetime, reason: str) -> None:
    """Send a job back to be placed elsewhere, or fail it when it is out of attempts."""
    if job.pool_id and job.pool_id not in (job.excluded_pools or []):
        job.excluded_pools = [*(job.excluded_pools or []), job.pool_id]
    if job.attempts >= MAX_ATTEMPTS:
        target = JobState.FAILED
        job.message = f"{reason}; gave up after {job.attempts} attempts"
    else:
        target = JobState.PENDING
        job.message = reason
    jobs.transition(session, job, target, now, reason)
    job.lease_id = None
    store.save_job(session, job)


def expire_leases(session: Session, now: datetime) -> int:
    """Failover: leases whose agent went silent (or never claimed) are ended and their jobs
    placed again elsewhere. The fence makes a late report from the old agent a 409."""
    stale = store.lock_stale_leases(session, now, limit=500)
    for lease in stale:
        job = store.get_job(session, lease.job_id)
        assert job is not None
        release(session, lease, now, LeaseState.EXPIRED)
        billing.on_lease_ended_without_usage(session, lease, now)
        if job.state == JobState.CANCELLED.value or JobState(job.state).is_terminal \
                or job.state == JobState.PENDING.value:  # a gang's sibling lease requeued it
            continue
        silent = "never claimed" if lease.agent_id is None else f"agent {lease.agent_id} silent"
        requeue(session, job, now, f"lease {lease.id} expired: {silent}")
    return len(stale)


def grace_after_restart(session: Session, now: datetime, ttl_s: int = HEARTBEAT_TTL_S) -> int:
    """After the platform was down, agents could not heartbeat: give every lease a fresh TTL
    instead of failing over work that is still running (which would run it twice)."""
    fresh = now + timedelta(seconds=ttl_s)
    return store.extend_active_leases(session, before=fresh, deadline=fresh)


def tick(session: Session, now: datetime,
         claim_timeout_s: int = scheduling.CLAIM_TIMEOUT_S) -> tuple[int, int]:
    """One pass of the platform's background loop: failover, scheduling, then billing's sweep."""
    counts = (expire_leases(session, now), scheduling.place_pending(session, now, claim_timeout_s))
    billing.sweep(session, now)
    return counts
