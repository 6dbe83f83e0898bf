"""Scheduling (算力调度): places pending jobs on pools and opens their leases."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as job_store
from suanli.domain.errors import InsufficientFunds, ValidationFailed
from suanli.domain.job_records import Job
from suanli.domain.jobs import JobSpec, JobState
from suanli.services.billing import wallets as billing
from suanli.services.jobs import lifecycle as jobs
from suanli.services.jobs.leases import open_lease
from suanli.services.market import reservations as market_reservations
from suanli.services.roaming import home as roaming
from suanli.services.scheduling.decisions import RANKED_DEEP, Candidate, Decider, job_request
from suanli.services.scheduling import quote_ids
from suanli.services.scheduling.live_table import LiveTable, LiveTables

MAX_JOBS_PER_PASS = 500
MAX_TENANTS_PER_PASS = 500  # tenants one pass serves; more wait for the next, in rotation
MAX_TENANTS_SCANNED = 100_000
MAX_TRIES = 8  # decisions one job gets in a pass (pools lost to a race or the wallet)
log = logging.getLogger("suanli.scheduler")
CLAIM_TIMEOUT_S = 120  # an agent must claim a placed job this soon, or it is placed elsewhere


class _PoolTaken(Exception):
    """A concurrent placement took the pool's devices since the table was read."""

    def __init__(self, pool_id: str) -> None:
        super().__init__(pool_id)
        self.pool_id = pool_id


def candidates(session: Session, spec: JobSpec, excluded: list[str],
               now: datetime | None = None, tenant_id: str | None = None,
               tables: LiveTables | None = None, limit: int = RANKED_DEEP) -> list[Candidate]:
    """The placement engine's best decisions for the job now (each leaving out the pools of
    those before it), each with its score breakdown and its estimated cost under the tariff
    in force (for the tenant's month-to-date tiers)."""
    now = now or datetime.now(UTC)
    live = (tables or LiveTables(session)).of(spec.workload_class)
    if live is None:
        return []
    request = job_request(spec, live, "online", tenant_id or "online", now)
    return Decider(session, live, spec, request, now, tenant_id).ranked(
        live.mask_of(set(excluded)), limit)


def place(session: Session, job: Job, now: datetime,
          claim_timeout_s: int = CLAIM_TIMEOUT_S, tables: LiveTables | None = None) -> bool:
    """Try to place one pending job; True when its lease(s) now hold devices for it.

    The placement engine decides over every active pool of the platform (`tables`: the
    pass's, else read now). The job changes in place and is saved (its caller, the API or
    roaming, reads it after)."""
    spec = JobSpec.from_json(job.spec)
    tables = tables or LiveTables(session)
    live = tables.of(spec.workload_class)
    decider = None
    first = None
    avoid = None
    if live is not None:
        request = job_request(spec, live, job.id, job.tenant_id, job.created_at)
        decider = Decider(session, live, spec, request, now, job.tenant_id)
        # Pools that lost this job before are avoided while others can take it; when none
        # can, they get another chance (the attempt limit still bounds the retries).
        avoid = live.mask_of(set(job.excluded_pools or []))
        first = _quoted(session, job, spec, live, decider, now) or decider.decide(avoid)
        if first is None and avoid.any():
            avoid = None
            first = decider.decide()
        # Issue 14: pools where the tenant bought capacity for this hour come first.
        reserved = market_reservations.reserved_pools(session, job.tenant_id, now)
        if first is not None and reserved and first.pool.id not in reserved \
                and "quote" not in first.breakdown:
            outside = ~live.mask_of(set(reserved))
            first = decider.decide(outside if avoid is None else outside | avoid) or first
    # Issue 6 (federation): a job pinned to another platform's pool, or that no local pool
    # fits, may roam to another platform; services/roaming.py decides and records it.
    if roaming.prefers_remote(session, job, [first] if first is not None else [], now):
        job_store.save_job(session, job)  # roaming set its placement and message
        return True
    unfunded = None
    tried = set()
    for _ in range(MAX_TRIES):
        if first is None or decider is None or live is None:
            break
        candidate, first = first, None
        tried |= {pool.id for pool, _ in candidate.allocations}
        outcome = _lease(session, job, candidate, now, claim_timeout_s, tables)
        if outcome is True:
            return True
        unfunded = unfunded or outcome
        rest = live.mask_of(tried)
        first = decider.decide(rest if avoid is None else rest | avoid)
    job.message = unfunded or \
        "waiting for a pool with enough free devices that meets the constraints"
    job_store.save_job(session, job)
    return False


def _quoted(session: Session, job: Job, spec: JobSpec, live: LiveTable, decider: Decider,
            now: datetime) -> Candidate | None:
    """The decision on the pools of the quote the job accepted, while they still fit."""
    try:
        option = quote_ids.read_quote(spec, job.tenant_id, now)
    except ValidationFailed:  # expired while it waited: placed as any job
        return None
    if option is None:
        return None
    quoted = {pool_id for pool_id, _ in option.pools}
    candidate = decider.decide(~live.mask_of(quoted))
    if candidate is None:
        return None
    candidate.breakdown["quote"] = "accepted"
    return candidate


def _lease(session: Session, job: Job, candidate: Candidate, now: datetime,
           claim_timeout_s: int, tables: LiveTables) -> bool | str | None:
    """Open the decision's lease(s) and money hold(s) in one savepoint: True when placed, else
    why not (a funding message, or None when a concurrent placement took a pool)."""
    gang = len(candidate.allocations) > 1
    for pool, devices in candidate.allocations:
        shortfall = billing.hold_shortfall(session, _part(job, devices) if gang else job, pool)
        if shortfall is not None:  # money before devices: the wallet cannot cover this pool
            return shortfall
    before = replace(job)
    leases = []
    try:
        with session.begin_nested():  # the leases and their money holds, or none of them
            for pool, devices in candidate.allocations:
                lease = open_lease(session, job, pool.id, devices, now, claim_timeout_s)
                if lease is None:
                    raise _PoolTaken(pool.id)
                billing.on_lease_opened(session, _part(job, devices) if gang else job, lease,
                                        pool, now)
                leases.append((lease, pool, devices))
    except InsufficientFunds as exc:  # the wallet was spent since the check
        job.restore(before)  # as the savepoint's rollback restored its row
        return f"insufficient funds: {exc.detail}"
    except _PoolTaken as exc:  # taken by a concurrent placement since we read it
        job.restore(before)
        tables.hide(exc.pool_id)
        return None
    for _, pool, devices in leases:
        tables.reserve(pool.id, devices)
    job.lease_id, job.pool_id = leases[0][0].id, leases[0][1].id  # a gang's first lease
    job.placement = {"pool_id": candidate.pool.id, **candidate.breakdown}
    if len(leases) > 1:
        job.placement["allocations"] = [
            {"pool_id": pool.id, "devices": devices, "lease_id": lease.id}
            for lease, pool, devices in leases]
    pools = ", ".join(pool.id for _, pool, _ in leases)
    jobs.transition(session, job, JobState.PLACED, now,
                    f"placed on {pools} ({candidate.pool.accelerator})")
    job.message = ""
    job_store.save_job(session, job)
    return True


def _part(job: Job, devices: int) -> Job:
    """The job as one lease of its gang holds money for: its spec with that lease's devices."""
    return replace(job, spec={**job.spec, "devices": devices})


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
    tables = LiveTables(session)  # one read of the pools for the whole pass
    for job in _round_robin(session, chosen, share):
        if _place_alone(session, job, now, claim_timeout_s, tables):
            placed += 1
    if len(tenants) > len(chosen):
        rotation.served(chosen[-1])
    return placed


def _round_robin(session: Session, tenant_ids: list[str], share: int) -> list[Job]:
    """Up to `share` oldest pending jobs of each tenant, locked (skipping jobs another pass
    holds), ordered by their rank within their tenant, then by priority, then by age."""
    wanted = job_store.oldest_pending(session, tenant_ids, share)
    jobs_found = job_store.lock_pending_jobs(session, wanted)
    assert len(jobs_found) <= MAX_JOBS_PER_PASS + len(tenant_ids)
    # Within a round (every tenant's n-th job), higher priority goes first (issue 13).
    return sorted(jobs_found, key=lambda j: (wanted[j.id], -int(j.spec.get("priority") or 0),
                                             j.created_at, j.id))


def _place_alone(session: Session, job: Job, now: datetime, claim_timeout_s: int,
                 tables: LiveTables) -> bool:
    """Place one job in a savepoint of its own; an error fails that job, not the pass."""
    try:
        with session.begin_nested():
            return place(session, job, now, claim_timeout_s, tables)
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
