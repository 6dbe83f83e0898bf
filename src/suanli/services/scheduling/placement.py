"""Scheduling (算力调度): places pending jobs on pools and opens their leases."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as job_store
from suanli.adapters.store.repositories import scheduling as store
from suanli.catalog import load_catalog
from suanli.domain.errors import InsufficientFunds
from suanli.domain.job_records import Job, PoolFacts
from suanli.domain.jobs import JobSpec, JobState
from suanli.services.billing import estimates
from suanli.services.billing import wallets as billing
from suanli.services.jobs import lifecycle as jobs
from suanli.services.jobs.leases import open_lease
from suanli.services.market import reservations as market_reservations
from suanli.services.roaming import home as roaming
from suanli.services.scheduling import ranking

MAX_CANDIDATES = 50
MAX_JOBS_PER_PASS = 500
MAX_TENANTS_PER_PASS = 500  # tenants one pass serves; more wait for the next, in rotation
MAX_TENANTS_SCANNED = 100_000
log = logging.getLogger("suanli.scheduler")
CLAIM_TIMEOUT_S = 120  # an agent must claim a placed job this soon, or it is placed elsewhere


@dataclass(frozen=True)
class Candidate:
    pool: PoolFacts
    score: float
    breakdown: dict[str, Any]


def candidates(session: Session, spec: JobSpec, excluded: list[str],
               now: datetime | None = None, tenant_id: str | None = None) -> list[Candidate]:
    """Pools that can take the job now, best first, each with the reason for its rank and
    its estimated cost under the tariff in force (for the tenant's month-to-date tiers)."""
    now = now or datetime.now(UTC)
    accelerator_key = load_catalog().get(spec.accelerator).key if spec.accelerator else None
    rows = store.candidate_pools(session, spec, accelerator_key, excluded, MAX_CANDIDATES)
    ranked = []
    for row, breakdown in ranking.rank(session, spec, list(rows), now):
        price = getattr(row, f"fen_per_unit_hour_{spec.workload_class}")
        ranked.append(Candidate(row, float(breakdown["rank"]), {
            **breakdown,
            "estimated_cost_fen": estimates.estimate(session, row, spec, now,
                                                     tenant_id).amount_fen,
            "fen_per_unit_hour": str(price) if price is not None else None,
            "price_fen_per_device_hour": row.price_fen_per_device_hour,
            "free_devices": row.free_devices,
            "candidates": len(rows),
        }))
    return ranked


def place(session: Session, job: Job, now: datetime,
          claim_timeout_s: int = CLAIM_TIMEOUT_S) -> bool:
    """Try to place one pending job; True when a lease now holds devices for it.

    The job changes in place and is saved (its caller, the API or roaming, reads it after)."""
    spec = JobSpec.from_json(job.spec)
    excluded = list(job.excluded_pools or [])
    # Pools that lost this job before are avoided while others can take it; when none can,
    # they get another chance (the attempt limit still bounds the retries).
    ranked = candidates(session, spec, excluded, now, job.tenant_id) or (
        candidates(session, spec, [], now, job.tenant_id) if excluded else [])
    # Issue 14: pools where the tenant bought capacity for this hour come first (stable sort).
    reserved = market_reservations.reserved_pools(session, job.tenant_id, now)
    ranked.sort(key=lambda candidate: candidate.pool.id not in reserved)
    # Issue 6 (federation): a job pinned to another platform's pool, or that no local pool
    # fits, may roam to another platform; services/roaming.py decides and records it.
    if roaming.prefers_remote(session, job, ranked, now):
        job_store.save_job(session, job)  # roaming set its placement and message
        return True
    unfunded = None
    for candidate in ranked:
        shortfall = billing.hold_shortfall(session, job, candidate.pool)
        if shortfall is not None:  # money before devices: the wallet cannot cover this pool
            unfunded = unfunded or shortfall
            continue
        before = replace(job)
        try:
            with session.begin_nested():  # the lease and its money hold, or neither
                lease = open_lease(session, job, candidate.pool.id, spec.devices, now,
                                   claim_timeout_s)
                if lease is not None:
                    billing.on_lease_opened(session, job, lease, candidate.pool, now)
        except InsufficientFunds as exc:  # the wallet was spent since the check
            job.restore(before)  # as the savepoint's rollback restored its row
            unfunded = unfunded or f"insufficient funds: {exc.detail}"
            continue
        if lease is None:
            continue  # taken by a concurrent placement since we read it: try the next
        job.placement = {"pool_id": candidate.pool.id, **candidate.breakdown}
        jobs.transition(session, job, JobState.PLACED, now,
                        f"placed on {candidate.pool.id} ({candidate.pool.accelerator})")
        job.message = ""
        job_store.save_job(session, job)
        return True
    job.message = unfunded or \
        "waiting for a pool with enough free devices that meets the constraints"
    job_store.save_job(session, job)
    return False


class TenantRotation:
    """Where the next pass starts among tenants with pending jobs, when there are more than
    one pass takes (per process: each scheduler rotates on its own)."""

    def __init__(self) -> None:
        self._after: str | None = None
        self._lock = threading.Lock()

    def order(self, tenant_ids: list[str]) -> list[str]:
        """The tenants in id order, starting after the last one served."""
        with self._lock:
            after = self._after
        if after is None:
            return tenant_ids
        later = [t for t in tenant_ids if t > after]
        return later + [t for t in tenant_ids if t <= after]

    def served(self, tenant_id: str) -> None:
        with self._lock:
            self._after = tenant_id


ROTATION = TenantRotation()


def place_pending(session: Session, now: datetime, claim_timeout_s: int = CLAIM_TIMEOUT_S,
                  rotation: TenantRotation = ROTATION) -> int:
    """One scheduling pass, fair across tenants; returns how many jobs were placed.

    Each tenant with pending jobs gets an equal share of the pass (its oldest jobs), and the
    pass goes round the tenants: every tenant's oldest job first, then every tenant's second,
    and so on, so no tenant's backlog fills the pass for the others (docs/decisions.md). When
    more tenants wait than one pass takes, the next pass starts where this one ended. A job
    whose placement fails with an error fails alone: it is rolled back to its savepoint,
    logged and marked failed, and the pass goes on.
    """
    tenants = job_store.pending_tenants(session, MAX_TENANTS_SCANNED)
    if not tenants:
        return 0
    chosen = rotation.order(tenants)[:MAX_TENANTS_PER_PASS]
    share = max(1, MAX_JOBS_PER_PASS // len(chosen))
    placed = 0
    for job in _round_robin(session, chosen, share):
        if _place_alone(session, job, now, claim_timeout_s):
            placed += 1
    if len(tenants) > len(chosen):
        rotation.served(chosen[-1])
    return placed


def _round_robin(session: Session, tenant_ids: list[str], share: int) -> list[Job]:
    """Up to `share` oldest pending jobs of each tenant, locked (skipping jobs another pass
    holds), ordered by their rank within their tenant, then by age."""
    wanted = job_store.oldest_pending(session, tenant_ids, share)
    jobs_found = job_store.lock_pending_jobs(session, wanted)
    assert len(jobs_found) <= MAX_JOBS_PER_PASS + len(tenant_ids)
    return sorted(jobs_found, key=lambda j: (wanted[j.id], j.created_at, j.id))


def _place_alone(session: Session, job: Job, now: datetime, claim_timeout_s: int) -> bool:
    """Place one job in a savepoint of its own; an error fails that job, not the pass."""
    try:
        with session.begin_nested():
            return place(session, job, now, claim_timeout_s)
    except DBAPIError:
        # The database itself failed (a lost connection, a deadlock): not the job's fault.
        log.exception("scheduling job %s hit a database error; it stays pending", job.id)
        return False
    except Exception as exc:  # one bad job must not stop scheduling for everyone
        log.exception("scheduling job %s failed; marking it failed", job.id)
        _mark_failed(session, job, exc, now)
        return False


def _mark_failed(session: Session, job: Job, error: Exception, now: datetime) -> None:
    reason = "".join(ch for ch in f"{type(error).__name__}: {error}" if ch.isprintable())
    try:
        with session.begin_nested():
            job.restore(job_store.refresh_job(session, job.id))
            if job.state == JobState.PENDING.value:
                jobs.transition(session, job, JobState.FAILED, now,
                                f"could not be scheduled: {reason}"[:500])
                job.message = f"could not be scheduled: {reason}"[:2000]
                job_store.save_job(session, job)
    except Exception:  # even marking it failed: it stays pending, the pass goes on
        log.exception("could not mark job %s failed", job.id)
