"""Compute roaming, host side: answering forwarded jobs once and for all, and pushing their
status back to the home platform (see services.roaming for the home side)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import federation as federation_store
from suanli.adapters.store.repositories import jobs as job_store
from suanli.domain import federation as fed
from suanli.domain.errors import Conflict, Forbidden, ValidationFailed
from suanli.domain.federation_records import GuestJob
from suanli.domain.ids import ComputeId
from suanli.domain.jobs import JobSpec, JobState
from suanli.domain.roaming import MAX_FORWARD_ATTEMPTS
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.domain.time import aware
from suanli.services.billing import wallets as billing
from suanli.services.federation import platforms as federation
from suanli.services.jobs import lifecycle as jobs
from suanli.services.roaming.home import (
    ACCEPTED,
    MAX_BATCH,
    MAX_LOG_CHARS,
    REJECTED,
    WITHDRAWN,
    retry_at,
)

# -- host: answering forwards ----------------------------------------------------------------

def _spec_digest(spec: dict[str, Any]) -> str:
    return fed.document_digest({"spec": spec})


class LocalScheduler(Protocol):
    """What the host needs of its own scheduler (services.scheduling.placement), passed in by
    the caller: scheduling sits above roaming, since its placement may choose to roam."""

    def candidates(self, session: Session, spec: JobSpec, excluded: list[str],
                   now: datetime | None = None) -> list[Any]: ...

    def place(self, session: Session, job: Any, now: datetime, claim_timeout_s: int) -> bool: ...


def accept_forward(session: Session, own: ComputeId, sender: str, body: dict[str, Any],
                   now: datetime, claim_timeout_s: int,
                   scheduling: LocalScheduler) -> dict[str, Any]:
    """Answer a forwarded job attempt, once: the same attempt again gets the same answer."""
    home, home_job_id, attempt = _attempt_key(sender, body)
    spec_json = body.get("spec")
    if not isinstance(spec_json, dict):
        raise ValidationFailed("must be a job spec", field="spec")
    digest = _spec_digest(spec_json)
    held = federation_store.get_guest_job(session, home, home_job_id, attempt)
    if held is not None:
        if held.outcome != WITHDRAWN and held.spec_sha256 != digest:
            raise Conflict(f"attempt {attempt} of {home_job_id} was forwarded with another spec",
                           field="spec")
        return answer_of(session, held)
    tenant_id = str(ComputeId.parse(str(body.get("tenant_id", "")), field="tenant_id"))
    try:
        spec = JobSpec.from_json(spec_json)
    except (TypeError, KeyError) as exc:
        raise ValidationFailed(f"not a job spec: {exc}", field="spec") from None
    guest = federation.guest_tenant(session, own, home, now)
    principal = Principal(guest, Role.CONSUMER, TenantClass.ENTERPRISE)
    key = hashlib.sha256(f"{home}\n{home_job_id}\n{attempt}".encode()).hexdigest()[:48]
    outcome, reason = REJECTED, "no pool here can take the job now"
    job_id: str | None = None
    max_charge: int | None = None
    # Accept only what a local pool can take now; a job accepted here is this platform's to
    # run (its scheduler places it again if the pool is taken meanwhile). A rejection leaves
    # no job behind, only the answer.
    fitting = scheduling.candidates(session, spec, [])
    if fitting:
        job, _ = jobs.submit(session, principal, own, spec, f"roam-{key}", now)
        if job.state == JobState.PENDING.value:
            scheduling.place(session, job, now, claim_timeout_s)
        outcome, reason, job_id = ACCEPTED, "", job.id
        pool = job_store.get_pool(session, job.pool_id) if job.pool_id else fitting[0].pool
        assert pool is not None
        # What this platform may charge for the attempt, all records together (issue 12):
        # the hold a local tenant would be asked for on this pool. It is told home now.
        max_charge = billing.plan_hold(session, job, pool).amount_fen
    row = GuestJob(home=home, home_job_id=home_job_id, attempt=attempt, job_id=job_id,
                   outcome=outcome, reason=reason[:500], home_tenant_id=tenant_id,
                   spec_sha256=digest, pushed_state=None, pushed_digest=None,
                   next_push_at=now if outcome == ACCEPTED else None, tries=0,
                   created_at=now, updated_at=now, max_charge_fen=max_charge)
    federation_store.save_guest_job(session, row)
    session.flush()
    return answer_of(session, row)


def withdraw(session: Session, own: ComputeId, sender: str, body: dict[str, Any],
             now: datetime) -> dict[str, Any]:
    """The home platform takes a forward back: a tombstone if it never arrived (so a late
    copy is refused), a cancellation if it runs here."""
    home, home_job_id, attempt = _attempt_key(sender, body)
    held = federation_store.get_guest_job(session, home, home_job_id, attempt)
    if held is None:
        held = GuestJob(home=home, home_job_id=home_job_id, attempt=attempt, job_id=None,
                        outcome=WITHDRAWN, reason="withdrawn by the home platform",
                        home_tenant_id="", spec_sha256="", pushed_state=None,
                        pushed_digest=None, next_push_at=None, tries=0, created_at=now,
                        updated_at=now)
        federation_store.save_guest_job(session, held)
        session.flush()
    elif held.outcome == ACCEPTED and held.job_id:
        job = job_store.get_job(session, held.job_id)
        assert job is not None
        if body.get("cancel") is True and not JobState(job.state).is_terminal:
            guest = federation.guest_tenant(session, own, home, now)
            jobs.cancel(session, Principal(guest, Role.CONSUMER), job.id, now)
            held = replace(held, next_push_at=now)
            federation_store.save_guest_job(session, held)
    return answer_of(session, held)


def _attempt_key(sender: str, body: dict[str, Any]) -> tuple[str, str, int]:
    home = fed.check_authority(str(body.get("home", "")), field="home")
    if home != sender:
        raise Forbidden(f"{sender} may not act for platform {home}")
    home_job_id = str(ComputeId.parse(str(body.get("home_job_id", "")), field="home_job_id"))
    if ComputeId.parse(home_job_id).authority_id.body != home:
        raise Forbidden(f"job {home_job_id} was not issued by {home}")
    attempt = body.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or \
            not 1 <= attempt <= MAX_FORWARD_ATTEMPTS:
        raise ValidationFailed(f"must be 1..{MAX_FORWARD_ATTEMPTS}", field="attempt")
    return home, home_job_id, attempt


def answer_of(session: Session, row: GuestJob) -> dict[str, Any]:
    if row.outcome != ACCEPTED or row.job_id is None:
        return {"outcome": row.outcome, "reason": row.reason}
    return {"outcome": ACCEPTED, **status_of(session, row)}


def status_of(session: Session, row: GuestJob) -> dict[str, Any]:
    assert row.job_id is not None
    job = job_store.get_job(session, row.job_id)
    assert job is not None
    logs = job_store.get_job_log(session, job.id)
    return {"home_job_id": row.home_job_id, "attempt": row.attempt, "host_job_id": job.id,
            "pool_id": job.pool_id, "max_charge_fen": row.max_charge_fen,
            "state": job.state, "exit_code": job.exit_code,
            "message": job.message,
            "started_at": aware(job.started_at).isoformat() if job.started_at else None,
            "finished_at": aware(job.finished_at).isoformat() if job.finished_at else None,
            "logs": logs.text[-MAX_LOG_CHARS:] if logs else None,
            "logs_truncated": bool(logs and (logs.truncated or len(logs.text) > MAX_LOG_CHARS))}


# -- host: pushing status home ---------------------------------------------------------------

@dataclass(frozen=True)
class StatusPush:
    home: str
    home_job_id: str
    attempt: int
    status: dict[str, Any]
    digest: str


def due_status(session: Session, now: datetime) -> list[StatusPush]:
    """Status of guest jobs that changed since the home platform last acknowledged it."""
    rows = federation_store.guest_jobs_to_push(session, ACCEPTED, MAX_BATCH * 4)
    out = []
    for row in rows:
        assert row.next_push_at is not None  # the query asked for rows that have one
        if aware(row.next_push_at) > now:
            continue
        status = status_of(session, row)
        digest = fed.document_digest(status)
        if digest == row.pushed_digest:
            # acknowledged as it is; mark_status_changes wakes it
            federation_store.save_guest_job(session, replace(row, next_push_at=None))
            continue
        out.append(StatusPush(row.home, row.home_job_id, row.attempt, status, digest))
        if len(out) >= MAX_BATCH:
            break
    return out


def status_pushed(session: Session, push: StatusPush, now: datetime, *, ok: bool) -> None:
    row = federation_store.get_guest_job(session, push.home, push.home_job_id, push.attempt)
    assert row is not None
    if ok:
        row = replace(row, updated_at=now, pushed_digest=push.digest,
                      pushed_state=push.status["state"], tries=0, next_push_at=now)
    else:
        row = replace(row, updated_at=now, tries=row.tries + 1,
                      next_push_at=retry_at(now, row.tries + 1))
    federation_store.save_guest_job(session, row)


def mark_status_changes(session: Session, now: datetime) -> int:
    """Wake the pushes of guest jobs whose state moved since their last push."""
    stale = federation_store.guest_jobs_moved(session, ACCEPTED, MAX_BATCH * 4)
    for row in stale:
        federation_store.save_guest_job(session, replace(row, next_push_at=now))
    return len(stale)
