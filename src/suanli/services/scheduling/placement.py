"""Scheduling (算力调度): places pending jobs on pools and opens their leases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from suanli.adapters.store.job_tables import JobRow
from suanli.adapters.store.tables import PoolRow
from suanli.catalog import load_catalog
from suanli.domain.errors import InsufficientFunds
from suanli.domain.jobs import JobSpec, JobState
from suanli.domain.resources import PoolState
from suanli.services.billing import estimates
from suanli.services.billing import wallets as billing
from suanli.services.jobs import lifecycle as jobs
from suanli.services.jobs.leases import open_lease
from suanli.services.market import reservations as market_reservations
from suanli.services.roaming import home as roaming
from suanli.services.scheduling import ranking

MAX_CANDIDATES = 50
MAX_JOBS_PER_PASS = 500
CLAIM_TIMEOUT_S = 120  # an agent must claim a placed job this soon, or it is placed elsewhere


@dataclass(frozen=True)
class Candidate:
    pool: PoolRow
    score: float
    breakdown: dict[str, Any]


def candidates(session: Session, spec: JobSpec, excluded: list[str],
               now: datetime | None = None, tenant_id: str | None = None) -> list[Candidate]:
    """Pools that can take the job now, best first, each with the reason for its rank and
    its estimated cost under the tariff in force (for the tenant's month-to-date tiers)."""
    now = now or datetime.now(UTC)
    unit_price = getattr(PoolRow, f"fen_per_unit_hour_{spec.workload_class}")
    conditions = [PoolRow.state == PoolState.ACTIVE.value, PoolRow.free_devices >= spec.devices]
    if spec.accelerator:
        conditions.append(PoolRow.accelerator == load_catalog().get(spec.accelerator).key)
    if spec.vendor:
        conditions.append(PoolRow.vendor == spec.vendor)
    if spec.device_kind:
        conditions.append(PoolRow.device_kind == spec.device_kind)
    if spec.min_memory_gb is not None:
        conditions.append(PoolRow.memory_gb >= spec.min_memory_gb)
    if spec.provinces:
        conditions.append(PoolRow.province.in_(spec.provinces))
    if spec.pool_id:
        conditions.append(PoolRow.id == spec.pool_id)
    if spec.max_price_fen_per_device_hour is not None:
        conditions.append(PoolRow.price_fen_per_device_hour <= spec.max_price_fen_per_device_hour)
    if excluded:
        conditions.append(PoolRow.id.not_in(excluded))
    rows = session.scalars(select(PoolRow).where(and_(*conditions))
                           .order_by(unit_price.asc().nulls_last(),
                                     PoolRow.price_fen_per_device_hour, PoolRow.id)
                           .limit(MAX_CANDIDATES)).all()
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


def place(session: Session, job: JobRow, now: datetime,
          claim_timeout_s: int = CLAIM_TIMEOUT_S) -> bool:
    """Try to place one pending job; True when a lease now holds devices for it."""
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
        return True
    unfunded = None
    for candidate in ranked:
        shortfall = billing.hold_shortfall(session, job, candidate.pool)
        if shortfall is not None:  # money before devices: the wallet cannot cover this pool
            unfunded = unfunded or shortfall
            continue
        try:
            with session.begin_nested():  # the lease and its money hold, or neither
                lease = open_lease(session, job, candidate.pool.id, spec.devices, now,
                                   claim_timeout_s)
                if lease is not None:
                    billing.on_lease_opened(session, job, lease, candidate.pool, now)
        except InsufficientFunds as exc:  # the wallet was spent since the check
            unfunded = unfunded or f"insufficient funds: {exc.detail}"
            continue
        if lease is None:
            continue  # taken by a concurrent placement since we read it: try the next
        job.placement = {"pool_id": candidate.pool.id, **candidate.breakdown}
        jobs.transition(session, job, JobState.PLACED, now,
                        f"placed on {candidate.pool.id} ({candidate.pool.accelerator})")
        job.message = ""
        return True
    job.message = unfunded or \
        "waiting for a pool with enough free devices that meets the constraints"
    return False


def place_pending(session: Session, now: datetime,
                  claim_timeout_s: int = CLAIM_TIMEOUT_S) -> int:
    """One scheduling pass over pending jobs, oldest first; returns how many were placed."""
    pending = session.scalars(select(JobRow).where(JobRow.state == JobState.PENDING.value)
                              .order_by(JobRow.created_at, JobRow.id)
                              .limit(MAX_JOBS_PER_PASS)
                              .with_for_update(skip_locked=True)).all()
    return sum(1 for job in pending if place(session, job, now, claim_timeout_s))
