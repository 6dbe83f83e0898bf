"""Cross-platform jobs (算力漫游): a job accepted at its home platform runs at a host platform.

Home side: placement may choose another platform (`prefers_remote`, the scheduler's hook);
the job is then PLACED at home with no local lease, and the federation loop forwards it. The
host answers each forward attempt once and for all — accepted (placed on one of its pools),
rejected, or withdrawn — and repeats that answer to any retry, so a forward retried after a
timeout is never dispatched twice. The home platform places the job elsewhere only after the
host's final "rejected" or "withdrawn"; while the host cannot be reached the job waits.

Host side (services.roaming_host): the job runs as a job of the guest tenant that stands for
the home platform; its status goes back home, and each usage record becomes a signed roaming
record (services.roaming_records).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import federation as federation_store
from suanli.adapters.store.repositories import jobs as job_store
from suanli.adapters.store.repositories import roaming as store
from suanli.domain.errors import Forbidden, NotFound, ValidationFailed
from suanli.domain.federation_records import ForwardedJob
from suanli.domain.job_records import Job, JobLog
from suanli.domain.ids import ComputeId
from suanli.domain.jobs import JobSpec, JobState
from suanli.domain.roaming import MAX_FORWARD_ATTEMPTS, mirror_path, rank_offers
from suanli.domain.time import aware
from suanli.services.federation import catalog as federated_catalog
from suanli.services.federation import platforms as federation
from suanli.services.jobs import lifecycle as jobs

FORWARDING, ACCEPTED, REJECTED = "forwarding", "accepted", "rejected"
WITHDRAWING, WITHDRAWN, FINISHED = "withdrawing", "withdrawn", "finished"
OPEN_STATES = (FORWARDING, ACCEPTED, WITHDRAWING)
CONFIG = "config"
REJECTED_COOLDOWN_S = 30  # a host that turned a job down is not asked again this soon
MAX_RETRY_DELAY_S = 30
MAX_BATCH = 100
MAX_LOG_CHARS = 64 << 10
MAX_CHARGE_FEN = 10**15


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


def retry_at(now: datetime, tries: int) -> datetime:
    return now + timedelta(seconds=min(MAX_RETRY_DELAY_S, 0.5 * 2 ** min(tries, 8)))


# -- home: choosing a host (the scheduler's hook) --------------------------------------------

def prefers_remote(session: Session, job: Job, ranked: list[Any], now: datetime) -> bool:
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
    attempts = federation_store.forwards_of_job(session, job.id)
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


def _pinned(session: Session, config: RoamingConfig, job: Job, spec: JobSpec,
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
        job_store.save_job(session, job)
        return False
    attempts = federation_store.forwards_of_job(session, job.id)
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
        row = federation_store.get_platform(session, candidate)
        if row is not None and (row.is_self or (row.endpoint and row.state == "active")):
            return candidate
    return None


def _forward(session: Session, job: Job, host: str, attempt: int, now: datetime,
             placement: dict[str, Any]) -> None:
    federation_store.save_forward(session, ForwardedJob(
        job_id=job.id, attempt=attempt, host=host, state=FORWARDING, reason="",
        host_job_id=None, host_pool_id=None, host_state=None, cancel_requested=False, tries=0,
        next_try_at=now, last_error="", created_at=now, updated_at=now))
    job.placement = {"pool_id": None, "attempt": attempt, **placement}
    jobs.transition(session, job, JobState.PLACED, now, f"forwarding to platform {host}")
    job.message = f"forwarding to platform {host}"
    job_store.save_job(session, job)


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
    cancelled = federation_store.forwards_of_cancelled_jobs(
        session, (FORWARDING, ACCEPTED), JobState.CANCELLED.value, MAX_BATCH)
    for row in cancelled:
        federation_store.save_forward(session, replace(
            row, cancel_requested=True, state=WITHDRAWING, next_try_at=now, updated_at=now))
    overdue = federation_store.forwards_created_before(
        session, FORWARDING, now - timedelta(seconds=config.give_up_s), MAX_BATCH)
    for row in overdue:
        federation_store.save_forward(session, replace(
            row, state=WITHDRAWING, updated_at=now,
            reason=f"no answer in {config.give_up_s:.0f} s: withdrawing the forward"))
    rows = federation_store.forwards_due(session, (FORWARDING, WITHDRAWING), now, MAX_BATCH)
    out = []
    for row in rows:
        job = job_store.get_job(session, row.job_id)
        assert job is not None
        base = {"home": config.authority, "home_job_id": job.id, "attempt": row.attempt}
        if row.state == FORWARDING:
            tenant_class = store.tenant_class(session, job.tenant_id)
            out.append(Outbound(job.id, row.attempt, row.host, "forward", {
                **base, "tenant_id": job.tenant_id,
                "tenant_class": tenant_class if tenant_class else "enterprise",
                "spec": job.spec}))
        else:
            out.append(Outbound(job.id, row.attempt, row.host, "withdraw",
                                {**base, "cancel": row.cancel_requested}))
    return out


def record_unreachable(session: Session, item: Outbound, error: str, now: datetime) -> None:
    row = federation_store.get_forward(session, item.job_id, item.attempt)
    assert row is not None
    row = replace(row, tries=row.tries + 1, last_error=error[:500], updated_at=now,
                  next_try_at=retry_at(now, row.tries + 1))
    federation_store.save_forward(session, row)
    job = job_store.get_job(session, item.job_id)
    if job is not None and not JobState(job.state).is_terminal:
        job.message = f"platform {item.host} unreachable, retrying (try {row.tries})"
        job_store.save_job(session, job)


def apply_answer(session: Session, item: Outbound, answer: dict[str, Any],
                 now: datetime) -> None:
    """Take the host's final word on a forward or withdrawal."""
    row = federation_store.get_forward(session, item.job_id, item.attempt)
    job = job_store.get_job(session, item.job_id)
    assert row is not None and job is not None
    outcome = answer.get("outcome")
    row = replace(row, updated_at=now, tries=row.tries + 1)
    if outcome == ACCEPTED:
        row = _accepted(session, row, job, answer, now)
        if row.state == WITHDRAWING:  # a cancellation the host has not finished: ask again
            row = replace(row, next_try_at=retry_at(now, row.tries))
        federation_store.save_forward(session, row)
    elif outcome in (REJECTED, WITHDRAWN):
        row = replace(row, state=outcome, reason=str(answer.get("reason", ""))[:500])
        federation_store.save_forward(session, row)
        if job.state in (JobState.PLACED.value, JobState.DISPATCHED.value) and \
                federation_store.open_forward(session, job.id, OPEN_STATES) is None:
            # Only now, with the host's final word, may the job be placed again.
            jobs.transition(session, job, JobState.PENDING, now,
                            f"platform {row.host} {outcome} the job: {row.reason}")
            job.message = f"platform {row.host} {outcome} it: {row.reason}"
            job.pool_id = None
    else:
        raise ValidationFailed(f"unknown outcome {outcome!r}", field="outcome")
    job_store.save_job(session, job)


def _accepted(session: Session, row: ForwardedJob, job: Job, answer: dict[str, Any],
              now: datetime) -> ForwardedJob:
    """The forward with the host's answer taken in (not saved); the job mirrors it."""
    if row.state == FORWARDING or (row.state == WITHDRAWING and not row.cancel_requested):
        row = replace(row, state=ACCEPTED)  # it runs there after all: follow it
    row = replace(row,
                  host_job_id=str(answer.get("host_job_id") or row.host_job_id or "")[:72]
                  or None,
                  host_pool_id=answer.get("pool_id") or row.host_pool_id)
    declared = answer.get("max_charge_fen")
    if row.max_charge_fen is None and isinstance(declared, int) and \
            not isinstance(declared, bool) and 0 <= declared <= MAX_CHARGE_FEN:
        row = replace(row, max_charge_fen=declared)  # fixed once: a later answer cannot raise it
    if row.host_pool_id and not JobState(job.state).is_terminal:
        job.pool_id = row.host_pool_id
        job.placement = {**(job.placement or {}), "pool_id": row.host_pool_id,
                         "host_job_id": row.host_job_id}
    return _mirror(session, row, job, answer, now)


def _mirror(session: Session, row: ForwardedJob, job: Job, status: dict[str, Any],
            now: datetime) -> ForwardedJob:
    state = JobState(str(status.get("state")))
    row = replace(row, host_state=state.value)
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
        row = replace(row, state=FINISHED)
    return row


def apply_status(session: Session, sender: str, home_job_id: str, attempt: int,
                 status: dict[str, Any], now: datetime) -> None:
    """A host reports the state of a job it runs for us (pushed by its federation loop)."""
    row = federation_store.get_forward(session, home_job_id, attempt)
    if row is None:
        raise NotFound(f"job {home_job_id} attempt {attempt} was not forwarded here",
                       field="home_job_id")
    if row.host != sender:
        raise Forbidden(f"job {home_job_id} attempt {attempt} was forwarded to {row.host}")
    job = job_store.get_job(session, home_job_id)
    assert job is not None
    row = _accepted(session, replace(row, updated_at=now), job, status, now)
    federation_store.save_forward(session, row)
    job_store.save_job(session, job)
    logs = status.get("logs")
    if isinstance(logs, str):
        job_store.save_job_log(session, JobLog(job.id, logs[-MAX_LOG_CHARS:],
                                               bool(status.get("logs_truncated")), now))
