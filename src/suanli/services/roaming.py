"""Cross-platform jobs (算力漫游): a job accepted at its home platform runs at a host platform.

Home side: placement may choose another platform (`prefers_remote`, the scheduler's hook);
the job is then PLACED at home with no local lease, and the federation loop forwards it. The
host answers each forward attempt once and for all — accepted (placed on one of its pools),
rejected, or withdrawn — and repeats that answer to any retry, so a forward retried after a
timeout is never dispatched twice. The home platform places the job elsewhere only after the
host's final "rejected" or "withdrawn"; while the host cannot be reached the job waits.

Host side: the job runs as a job of the guest tenant that stands for the home platform; its
status goes back to the home platform, and each usage record becomes a signed roaming record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from suanli.adapters.store.federation_tables import (
    FederationPlatformRow,
    GuestJobRow,
    RoamingJobRow,
)
from suanli.adapters.store.job_tables import JobLogRow, JobRow
from suanli.adapters.store.tables import TenantRow
from suanli.domain import federation as fed
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.ids import ComputeId
from suanli.domain.jobs import JobSpec, JobState
from suanli.domain.roaming import MAX_FORWARD_ATTEMPTS, mirror_path, rank_offers
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.services import federated_catalog, federation, jobs
from suanli.services.federation import aware

FORWARDING, ACCEPTED, REJECTED = "forwarding", "accepted", "rejected"
WITHDRAWING, WITHDRAWN, FINISHED = "withdrawing", "withdrawn", "finished"
OPEN_STATES = (FORWARDING, ACCEPTED, WITHDRAWING)
CONFIG = "config"
REJECTED_COOLDOWN_S = 30  # a host that turned a job down is not asked again this soon
MAX_RETRY_DELAY_S = 30
MAX_BATCH = 100
MAX_LOG_CHARS = 64 << 10


@dataclass(frozen=True)
class RoamingConfig:
    authority: str
    policy: str = "local-first"
    price_margin: float = 0.10
    give_up_s: float = 120.0  # unanswered this long: withdraw the forward

    @classmethod
    def load(cls, session: Session) -> RoamingConfig | None:
        value = federation.get_state(session, CONFIG)
        return None if value is None else cls(**value)


def _retry_at(now: datetime, tries: int) -> datetime:
    return now + timedelta(seconds=min(MAX_RETRY_DELAY_S, 0.5 * 2 ** min(tries, 8)))


# -- home: choosing a host (the scheduler's hook) --------------------------------------------

def prefers_remote(session: Session, job: JobRow, ranked: list[Any], now: datetime) -> bool:
    """Whether the job goes to another platform instead of a local pool; if so it is PLACED
    here now, with the host in its placement, and the federation loop forwards it.

    Decision: a job pinned to another platform's pool goes there; otherwise local pools come
    first (no clearing, data stays at home) unless none fits, when the cheapest fresh remote
    summary that fits wins. Policy "cheapest" also lets a remote pool win when its unit price
    is lower than the best local one by more than the configured margin.
    """
    config = RoamingConfig.load(session)
    if config is None or federation.is_guest_tenant(session, job.tenant_id):
        return False  # federation off here, or a guest job: guests never roam on
    spec = JobSpec.from_json(job.spec)
    if spec.pool_id:
        return _pinned(session, config, job, spec, now)
    if ranked and config.policy == "local-first":
        return False
    attempts = session.scalars(select(RoamingJobRow).where(RoamingJobRow.job_id == job.id)).all()
    if len(attempts) >= MAX_FORWARD_ATTEMPTS:
        return False
    cooling = frozenset(a.host for a in attempts if a.state in (REJECTED, WITHDRAWN)
                        and (now - aware(a.updated_at)).total_seconds() < REJECTED_COOLDOWN_S)
    offers = rank_offers(federated_catalog.remote_offers(session, config.authority, spec, now),
                         devices=spec.devices,
                         max_price_fen_per_device_hour=spec.max_price_fen_per_device_hour,
                         excluded=cooling)
    if not offers:
        return False
    best = offers[0]
    if ranked:
        local = ranked[0].pool
        local_price = getattr(local, f"fen_per_unit_hour_{spec.workload_class}")
        if best.unit_price_fen is None or local_price is None or \
                float(best.unit_price_fen) * (1 + config.price_margin) >= float(local_price):
            return False
        policy = f"roaming: {best.origin} is cheaper than the best local pool"
    else:
        policy = "roaming: no local pool fits"
    _forward(session, job, best.origin, len(attempts) + 1, now, {
        "policy": policy, "platform": best.origin, "accelerator": best.accelerator,
        "province": best.province, "hub": best.hub or None,
        "fen_per_unit_hour": str(best.unit_price_fen) if best.unit_price_fen else None,
        "min_price_fen_per_device_hour": best.min_price_fen_per_device_hour,
        "summary_age_s": round(best.age_s, 3), "candidates": len(offers)})
    return True


def _pinned(session: Session, config: RoamingConfig, job: JobRow, spec: JobSpec,
            now: datetime) -> bool:
    try:
        pool = ComputeId.parse(spec.pool_id or "", field="pool_id")
    except ValidationFailed:
        return False
    issuer = pool.authority_id.body
    if issuer == config.authority:
        return False
    host = _known_platform(session, issuer)
    if host is None or host == config.authority:
        job.message = f"pool {pool} belongs to {issuer}, a platform not known here (yet)"
        return False
    attempts = session.scalars(select(RoamingJobRow).where(RoamingJobRow.job_id == job.id)).all()
    if len(attempts) >= MAX_FORWARD_ATTEMPTS or any(
            a.state in OPEN_STATES or (now - aware(a.updated_at)).total_seconds()
            < REJECTED_COOLDOWN_S for a in attempts):
        return False
    _forward(session, job, host, len(attempts) + 1, now,
             {"policy": "roaming: the job pins a pool of another platform", "platform": host,
              "pool_id": str(pool)})
    return True


def _known_platform(session: Session, authority: str) -> str | None:
    """The longest known platform authority covering `authority`."""
    parts = authority.split(".")
    for depth in range(len(parts), 0, -1):
        candidate = ".".join(parts[:depth])
        row = session.get(FederationPlatformRow, candidate)
        if row is not None and (row.is_self or (row.endpoint and row.state == "active")):
            return candidate
    return None


def _forward(session: Session, job: JobRow, host: str, attempt: int, now: datetime,
             placement: dict[str, Any]) -> None:
    session.add(RoamingJobRow(job_id=job.id, attempt=attempt, host=host, state=FORWARDING,
                              reason="", tries=0, next_try_at=now, last_error="",
                              created_at=now, updated_at=now))
    job.placement = {"pool_id": None, "attempt": attempt, **placement}
    jobs.transition(session, job, JobState.PLACED, now, f"forwarding to platform {host}")
    job.message = f"forwarding to platform {host}"


# -- home: the loop's work -------------------------------------------------------------------

@dataclass(frozen=True)
class Outbound:
    job_id: str
    attempt: int
    host: str
    kind: str  # forward or withdraw
    body: dict[str, Any]


def due_outbound(session: Session, config: RoamingConfig, now: datetime) -> list[Outbound]:
    """Forwards and withdrawals to send now. A forward whose job was cancelled meanwhile, or
    that no host answered in time, turns into a withdrawal first."""
    cancelled = session.scalars(
        select(RoamingJobRow).join(JobRow, JobRow.id == RoamingJobRow.job_id)
        .where(RoamingJobRow.state.in_((FORWARDING, ACCEPTED)),
               RoamingJobRow.cancel_requested.is_(False),
               JobRow.state == JobState.CANCELLED.value).limit(MAX_BATCH)).all()
    for row in cancelled:
        row.cancel_requested = True
        row.state, row.next_try_at, row.updated_at = WITHDRAWING, now, now
    overdue = session.scalars(
        select(RoamingJobRow).where(RoamingJobRow.state == FORWARDING,
                                    RoamingJobRow.created_at
                                    < now - timedelta(seconds=config.give_up_s))
        .limit(MAX_BATCH)).all()
    for row in overdue:
        row.state, row.updated_at = WITHDRAWING, now
        row.reason = f"no answer in {config.give_up_s:.0f} s: withdrawing the forward"
    rows = session.scalars(select(RoamingJobRow)
                           .where(RoamingJobRow.state.in_((FORWARDING, WITHDRAWING)),
                                  RoamingJobRow.next_try_at <= now)
                           .order_by(RoamingJobRow.next_try_at).limit(MAX_BATCH)).all()
    out = []
    for row in rows:
        job = session.get(JobRow, row.job_id)
        assert job is not None
        base = {"home": config.authority, "home_job_id": job.id, "attempt": row.attempt}
        if row.state == FORWARDING:
            tenant = session.get(TenantRow, job.tenant_id)
            out.append(Outbound(job.id, row.attempt, row.host, "forward", {
                **base, "tenant_id": job.tenant_id,
                "tenant_class": tenant.tenant_class if tenant else "enterprise",
                "spec": job.spec}))
        else:
            out.append(Outbound(job.id, row.attempt, row.host, "withdraw",
                                {**base, "cancel": row.cancel_requested}))
    return out


def record_unreachable(session: Session, item: Outbound, error: str, now: datetime) -> None:
    row = session.get(RoamingJobRow, (item.job_id, item.attempt))
    assert row is not None
    row.tries += 1
    row.last_error, row.updated_at = error[:500], now
    row.next_try_at = _retry_at(now, row.tries)
    job = session.get(JobRow, item.job_id)
    if job is not None and not JobState(job.state).is_terminal:
        job.message = f"platform {item.host} unreachable, retrying (try {row.tries})"


def apply_answer(session: Session, item: Outbound, answer: dict[str, Any],
                 now: datetime) -> None:
    """Take the host's final word on a forward or withdrawal."""
    row = session.get(RoamingJobRow, (item.job_id, item.attempt))
    job = session.get(JobRow, item.job_id)
    assert row is not None and job is not None
    outcome = answer.get("outcome")
    row.updated_at, row.tries = now, row.tries + 1
    if outcome == ACCEPTED:
        _accepted(session, row, job, answer, now)
        if row.state == WITHDRAWING:  # a cancellation the host has not finished: ask again
            row.next_try_at = _retry_at(now, row.tries)
    elif outcome in (REJECTED, WITHDRAWN):
        row.state, row.reason = outcome, str(answer.get("reason", ""))[:500]
        if job.state in (JobState.PLACED.value, JobState.DISPATCHED.value) and \
                _open_attempt(session, job.id) is None:
            # Only now, with the host's final word, may the job be placed again.
            jobs.transition(session, job, JobState.PENDING, now,
                            f"platform {row.host} {outcome} the job: {row.reason}")
            job.message = f"platform {row.host} {outcome} it: {row.reason}"
            job.pool_id = None
    else:
        raise ValidationFailed(f"unknown outcome {outcome!r}", field="outcome")


def _open_attempt(session: Session, job_id: str) -> RoamingJobRow | None:
    return session.scalar(select(RoamingJobRow).where(RoamingJobRow.job_id == job_id,
                                                      RoamingJobRow.state.in_(OPEN_STATES)))


def _accepted(session: Session, row: RoamingJobRow, job: JobRow, answer: dict[str, Any],
              now: datetime) -> None:
    if row.state == FORWARDING or (row.state == WITHDRAWING and not row.cancel_requested):
        row.state = ACCEPTED  # it runs there after all: follow it
    row.host_job_id = str(answer.get("host_job_id") or row.host_job_id or "")[:72] or None
    row.host_pool_id = answer.get("pool_id") or row.host_pool_id
    if row.host_pool_id and not JobState(job.state).is_terminal:
        job.pool_id = row.host_pool_id
        job.placement = {**(job.placement or {}), "pool_id": row.host_pool_id,
                         "host_job_id": row.host_job_id}
    _mirror(session, row, job, answer, now)


def _mirror(session: Session, row: RoamingJobRow, job: JobRow, status: dict[str, Any],
            now: datetime) -> None:
    state = JobState(str(status.get("state")))
    row.host_state = state.value
    steps = mirror_path(JobState(job.state), state)
    if state.is_terminal and status.get("started_at") and JobState.RUNNING not in steps:
        # It ran there: the home copy shows that too, even if it learns only of the end.
        through = mirror_path(JobState(job.state), JobState.RUNNING)
        if through:
            steps = through + mirror_path(JobState.RUNNING, state)
    for step in steps:
        jobs.transition(session, job, step, now, f"at platform {row.host}: {step.value}")
    if not JobState(job.state).is_terminal or state.is_terminal:
        if status.get("message") is not None:
            job.message = str(status["message"])[:2000]
        if status.get("exit_code") is not None:
            job.exit_code = int(status["exit_code"])
    if state.is_terminal and row.state in (ACCEPTED, WITHDRAWING):
        row.state = FINISHED


def apply_status(session: Session, sender: str, home_job_id: str, attempt: int,
                 status: dict[str, Any], now: datetime) -> None:
    """A host reports the state of a job it runs for us (pushed by its federation loop)."""
    row = session.get(RoamingJobRow, (home_job_id, attempt))
    if row is None:
        raise NotFound(f"job {home_job_id} attempt {attempt} was not forwarded here",
                       field="home_job_id")
    if row.host != sender:
        raise Forbidden(f"job {home_job_id} attempt {attempt} was forwarded to {row.host}")
    job = session.get(JobRow, home_job_id)
    assert job is not None
    row.updated_at = now
    _accepted(session, row, job, status, now)
    logs = status.get("logs")
    if isinstance(logs, str):
        text = logs[-MAX_LOG_CHARS:]
        held = session.get(JobLogRow, job.id)
        if held is None:
            session.add(JobLogRow(job_id=job.id, text=text, truncated=bool(
                status.get("logs_truncated")), updated_at=now))
        else:
            held.text, held.truncated, held.updated_at = text, bool(
                status.get("logs_truncated")), now


# -- host: answering forwards ----------------------------------------------------------------

def _spec_digest(spec: dict[str, Any]) -> str:
    return fed.document_digest({"spec": spec})


def accept_forward(session: Session, own: ComputeId, sender: str, body: dict[str, Any],
                   now: datetime, claim_timeout_s: int) -> dict[str, Any]:
    """Answer a forwarded job attempt, once: the same attempt again gets the same answer."""
    from suanli.services import scheduling

    home, home_job_id, attempt = _attempt_key(sender, body)
    spec_json = body.get("spec")
    if not isinstance(spec_json, dict):
        raise ValidationFailed("must be a job spec", field="spec")
    digest = _spec_digest(spec_json)
    held = session.get(GuestJobRow, (home, home_job_id, attempt))
    if held is not None:
        if held.outcome != WITHDRAWN and held.spec_sha256 != digest:
            raise Conflict(f"attempt {attempt} of {home_job_id} was forwarded with another spec",
                           field="spec")
        return answer_of(session, held)
    try:
        spec = JobSpec.from_json(spec_json)
    except (TypeError, KeyError) as exc:
        raise ValidationFailed(f"not a job spec: {exc}", field="spec") from None
    guest = federation.guest_tenant(session, own, home, now)
    principal = Principal(guest, Role.CONSUMER, TenantClass.ENTERPRISE)
    key = hashlib.sha256(f"{home}\n{home_job_id}\n{attempt}".encode()).hexdigest()[:48]
    outcome, reason, job_id = REJECTED, "no pool here can take the job now", None
    # Accept only what a local pool can take now; a job accepted here is this platform's to
    # run (its scheduler places it again if the pool is taken meanwhile). A rejection leaves
    # no job behind, only the answer.
    if scheduling.candidates(session, spec, []):
        job, _ = jobs.submit(session, principal, own, spec, f"roam-{key}", now)
        if job.state == JobState.PENDING.value:
            scheduling.place(session, job, now, claim_timeout_s)
        outcome, reason, job_id = ACCEPTED, "", job.id
    row = GuestJobRow(home=home, home_job_id=home_job_id, attempt=attempt, job_id=job_id,
                      outcome=outcome, reason=reason[:500], home_tenant_id=str(
                          body.get("tenant_id", ""))[:72], spec_sha256=digest,
                      next_push_at=now if outcome == ACCEPTED else None, tries=0,
                      created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return answer_of(session, row)


def withdraw(session: Session, own: ComputeId, sender: str, body: dict[str, Any],
             now: datetime) -> dict[str, Any]:
    """The home platform takes a forward back: a tombstone if it never arrived (so a late
    copy is refused), a cancellation if it runs here."""
    home, home_job_id, attempt = _attempt_key(sender, body)
    held = session.get(GuestJobRow, (home, home_job_id, attempt))
    if held is None:
        held = GuestJobRow(home=home, home_job_id=home_job_id, attempt=attempt, job_id=None,
                           outcome=WITHDRAWN, reason="withdrawn by the home platform",
                           home_tenant_id="", spec_sha256="", tries=0, created_at=now,
                           updated_at=now)
        session.add(held)
        session.flush()
    elif held.outcome == ACCEPTED and held.job_id:
        job = session.get(JobRow, held.job_id)
        assert job is not None
        if body.get("cancel") is True and not JobState(job.state).is_terminal:
            guest = federation.guest_tenant(session, own, home, now)
            jobs.cancel(session, Principal(guest, Role.CONSUMER), job.id, now)
            held.next_push_at = now
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


def answer_of(session: Session, row: GuestJobRow) -> dict[str, Any]:
    if row.outcome != ACCEPTED or row.job_id is None:
        return {"outcome": row.outcome, "reason": row.reason}
    return {"outcome": ACCEPTED, **status_of(session, row)}


def status_of(session: Session, row: GuestJobRow) -> dict[str, Any]:
    job = session.get(JobRow, row.job_id)
    assert job is not None
    logs = session.get(JobLogRow, job.id)
    return {"home_job_id": row.home_job_id, "attempt": row.attempt, "host_job_id": job.id,
            "pool_id": job.pool_id, "state": job.state, "exit_code": job.exit_code,
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
    rows = session.scalars(select(GuestJobRow).where(GuestJobRow.outcome == ACCEPTED,
                                                     GuestJobRow.next_push_at.is_not(None))
                           .order_by(GuestJobRow.next_push_at).limit(MAX_BATCH * 4)).all()
    out = []
    for row in rows:
        if aware(row.next_push_at) > now:
            continue
        status = status_of(session, row)
        digest = fed.document_digest(status)
        if digest == row.pushed_digest:
            row.next_push_at = None  # acknowledged as it is; mark_status_changes wakes it
            continue
        out.append(StatusPush(row.home, row.home_job_id, row.attempt, status, digest))
        if len(out) >= MAX_BATCH:
            break
    return out


def status_pushed(session: Session, push: StatusPush, now: datetime, *, ok: bool) -> None:
    row = session.get(GuestJobRow, (push.home, push.home_job_id, push.attempt))
    assert row is not None
    row.updated_at = now
    if ok:
        row.pushed_digest, row.pushed_state, row.tries = push.digest, push.status["state"], 0
        row.next_push_at = now
    else:
        row.tries += 1
        row.next_push_at = _retry_at(now, row.tries)


def mark_status_changes(session: Session, now: datetime) -> int:
    """Wake the pushes of guest jobs whose state moved since their last push."""
    stale = session.scalars(
        select(GuestJobRow).join(JobRow, JobRow.id == GuestJobRow.job_id)
        .where(GuestJobRow.outcome == ACCEPTED, GuestJobRow.next_push_at.is_(None),
               or_(GuestJobRow.pushed_state.is_(None), JobRow.state != GuestJobRow.pushed_state))
        .limit(MAX_BATCH * 4)).all()
    for row in stale:
        row.next_push_at = now
    return len(stale)
