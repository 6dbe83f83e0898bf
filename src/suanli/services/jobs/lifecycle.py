"""Jobs for consumers: submit (idempotent), read, list, cancel, logs; every transition recorded."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.job_tables import JobEventRow, JobLogRow, JobRow, LeaseRow
from suanli.catalog import load_catalog
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.jobs import (
    JobSpec,
    JobState,
    LeaseState,
    check_idempotency_key,
    check_transition,
)
from suanli.domain.tenants import Principal, Role, Scope, may_see, require_role
from suanli.services.jobs.leases import release
from suanli.services.registry.identifiers import allocate_committed

MAX_LIST = 200


def _request_hash(spec: JobSpec) -> str:
    return hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()


def submit(session: Session, principal: Principal, authority: ComputeId, spec: JobSpec,
           idempotency_key: str, now: datetime) -> tuple[JobRow, bool]:
    """Accept a job; the same key again returns the same job. Returns (job, created)."""
    require_role(principal, Role.CONSUMER, Role.PROVIDER)
    if spec.max_price_fen_per_device_hour != 0 and not principal.may(Scope.SPEND):
        # issue 12: a key without `spend` runs only what costs nothing (pools listed at 0)
        raise Forbidden("a job that may cost money needs an API key with the 'spend' scope; "
                        "without it, set max_price_fen_per_device_hour to 0",
                        field="max_price_fen_per_device_hour")
    key = check_idempotency_key(idempotency_key)
    if spec.accelerator is not None:
        try:
            load_catalog().get(spec.accelerator)
        except NotFound as exc:
            raise ValidationFailed(exc.detail, field="accelerator") from None
    digest = _request_hash(spec)
    existing = _by_key(session, principal.tenant_id, key)
    if existing is not None:
        return _same_request(existing, digest), False
    job_id = allocate_committed(session, authority, IdKind.JOB)
    row = JobRow(id=str(job_id), tenant_id=principal.tenant_id, idempotency_key=key,
                 request_sha256=digest, name=spec.name, spec=spec.to_json(),
                 state=JobState.PENDING.value, attempts=0, excluded_pools=[], message="",
                 created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its job.
        existing = _by_key(session, principal.tenant_id, key)
        if existing is None:
            raise
        return _same_request(existing, digest), False
    session.add(JobEventRow(job_id=row.id, from_state=None, to_state=JobState.PENDING.value,
                            at=now, reason="submitted"))
    return row, True


def _by_key(session: Session, tenant_id: str, key: str) -> JobRow | None:
    return session.scalar(select(JobRow).where(JobRow.tenant_id == tenant_id,
                                               JobRow.idempotency_key == key))


def _same_request(existing: JobRow, digest: str) -> JobRow:
    if existing.request_sha256 != digest:
        raise Conflict("this Idempotency-Key was used for a different job request",
                       field="Idempotency-Key")
    return existing


def transition(session: Session, job: JobRow, target: JobState, now: datetime,
               reason: str) -> None:
    """Move a job to `target` if the state machine allows it, and record the event."""
    current = JobState(job.state)
    check_transition(current, target)
    job.state = target.value
    job.updated_at = now
    if target is JobState.RUNNING and job.started_at is None:
        job.started_at = now
    if target.is_terminal:
        job.finished_at = now
    session.add(JobEventRow(job_id=job.id, from_state=current.value, to_state=target.value,
                            at=now, reason=reason[:500]))


def get(session: Session, principal: Principal, job_id: str) -> JobRow:
    row = session.get(JobRow, str(ComputeId.parse(job_id, field="job_id")))
    if row is None or not may_see(principal, row.tenant_id):
        raise NotFound(f"job {job_id} does not exist", field="job_id")
    return row


def list_jobs(session: Session, principal: Principal, *, state: str | None = None,
              limit: int = 50, offset: int = 0) -> list[JobRow]:
    """The caller's own jobs, newest first (an operator sees every tenant's)."""
    stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc())
    if not principal.is_operator:
        stmt = stmt.where(JobRow.tenant_id == principal.tenant_id)
    if state is not None:
        stmt = stmt.where(JobRow.state == JobState(state).value)
    return list(session.scalars(stmt.limit(min(limit, MAX_LIST)).offset(offset)))


def events(session: Session, job: JobRow) -> list[JobEventRow]:
    return list(session.scalars(select(JobEventRow).where(JobEventRow.job_id == job.id)
                                .order_by(JobEventRow.id)))


def cancel(session: Session, principal: Principal, job_id: str, now: datetime) -> JobRow:
    """Cancel a job. Unclaimed devices are freed now; a running job's agent stops it."""
    job = get(session, principal, job_id)
    if JobState(job.state).is_terminal:
        raise Conflict(f"job {job.id} already ended ({job.state})", field="state")
    transition(session, job, JobState.CANCELLED, now, f"cancelled by {principal.tenant_id}")
    lease = session.get(LeaseRow, job.lease_id) if job.lease_id else None
    if lease is not None and lease.state == LeaseState.ACTIVE and lease.agent_id is None:
        # Nobody claimed it yet: the devices go back now. A claimed job's agent learns of the
        # cancellation at its next heartbeat, stops the work and reports its final usage.
        release(session, lease, now, LeaseState.RELEASED)
    return job


def logs(session: Session, principal: Principal, job_id: str) -> JobLogRow | None:
    job = get(session, principal, job_id)
    return session.get(JobLogRow, job.id)
