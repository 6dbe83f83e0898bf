"""Jobs for consumers: submit (idempotent), read, list, cancel, logs; every transition recorded."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as store
from suanli.catalog import load_catalog
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.job_records import Job, JobEvent, JobLog
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
           idempotency_key: str, now: datetime) -> tuple[Job, bool]:
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
    existing = store.job_by_idempotency_key(session, principal.tenant_id, key)
    if existing is not None:
        return _same_request(existing, digest), False
    job_id = allocate_committed(session, authority, IdKind.JOB)
    job, created = store.add_job(session, Job(
        id=str(job_id), tenant_id=principal.tenant_id, idempotency_key=key,
        request_sha256=digest, name=spec.name, spec=spec.to_json(),
        state=JobState.PENDING.value, attempts=0, excluded_pools=[], message="",
        created_at=now, updated_at=now))
    if not created:
        # A concurrent request with the same key won the race: answer with its job.
        return _same_request(job, digest), False
    store.add_job_event(session, JobEvent(job.id, None, JobState.PENDING.value, now,
                                          "submitted"))
    return job, True


def _same_request(existing: Job, digest: str) -> Job:
    if existing.request_sha256 != digest:
        raise Conflict("this Idempotency-Key was used for a different job request",
                       field="Idempotency-Key")
    return existing


def transition(session: Session, job: Job, target: JobState, now: datetime,
               reason: str) -> None:
    """Move a job to `target` if the state machine allows it, save it and record the event.

    The job changes in place (as the API and roaming, which hold it, expect)."""
    current = JobState(job.state)
    check_transition(current, target)
    job.state = target.value
    job.updated_at = now
    if target is JobState.RUNNING and job.started_at is None:
        job.started_at = now
    if target.is_terminal:
        job.finished_at = now
    store.save_job(session, job)
    store.add_job_event(session, JobEvent(job.id, current.value, target.value, now,
                                          reason[:500]))


def get(session: Session, principal: Principal, job_id: str) -> Job:
    job = store.get_job(session, str(ComputeId.parse(job_id, field="job_id")))
    if job is None or not may_see(principal, job.tenant_id):
        raise NotFound(f"job {job_id} does not exist", field="job_id")
    return job


def list_jobs(session: Session, principal: Principal, *, state: str | None = None,
              limit: int = 50, offset: int = 0) -> list[Job]:
    """The caller's own jobs, newest first (an operator sees every tenant's)."""
    return store.list_jobs(session,
                           tenant_id=None if principal.is_operator else principal.tenant_id,
                           state=None if state is None else JobState(state).value,
                           limit=min(limit, MAX_LIST), offset=offset)


def events(session: Session, job: Job) -> list[JobEvent]:
    return store.job_events(session, job.id)


def cancel(session: Session, principal: Principal, job_id: str, now: datetime) -> Job:
    """Cancel a job. Unclaimed devices are freed now; a running job's agent stops it."""
    job = get(session, principal, job_id)
    if JobState(job.state).is_terminal:
        raise Conflict(f"job {job.id} already ended ({job.state})", field="state")
    transition(session, job, JobState.CANCELLED, now, f"cancelled by {principal.tenant_id}")
    for lease_id in lease_ids(job):
        lease = store.get_lease(session, lease_id)
        if lease is not None and lease.state == LeaseState.ACTIVE and lease.agent_id is None:
            # Nobody claimed it yet: the devices go back now. A claimed job's agent learns of
            # the cancellation at its next heartbeat, stops the work and reports its usage.
            release(session, lease, now, LeaseState.RELEASED)
    return job


def lease_ids(job: Job) -> list[str]:
    """The job's current lease, and for a gang over several pools every lease of the gang."""
    ids = [job.lease_id] if job.lease_id else []
    for part in (job.placement or {}).get("allocations", []):
        if part.get("lease_id") and part["lease_id"] not in ids:
            ids.append(part["lease_id"])
    return ids


def logs(session: Session, principal: Principal, job_id: str) -> JobLog | None:
    job = get(session, principal, job_id)
    return store.get_job_log(session, job.id)
