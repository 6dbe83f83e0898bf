"""A job spec as the placement domain's request, and the engine's ranked decisions for it.

Every rule a job states is the domain's: its static mask (accelerator, software stack, memory,
residency, latency class and user city), capacity, gangs over one interconnect, deadline and
budget. A few rules only the live platform has are a mask beside it over the same table: the
device kind, a pinned pool, a cap on the list price and a user's own round-trip bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from suanli.catalog import load_catalog
from suanli.domain.errors import PlacementInfeasible
from suanli.domain.job_records import PoolFacts
from suanli.domain.jobs import JobSpec
from suanli.domain.placement import AcceleratorConstraint, JobRequest, LatencyClass, Placement
from suanli.domain.placement.arrays import BoolArray
from suanli.domain.time import SECONDS_PER_HOUR
from suanli.services.billing import estimates
from suanli.services.scheduling.live_table import POLICY, LiveTable

RANKED_DEEP = 3  # decisions worked out for a quote or a candidate list


@dataclass(frozen=True)
class Candidate:
    """One decision of the engine: the pools, with the score breakdown that explains it."""

    pool: PoolFacts  # the first (or only) pool
    score: float
    breakdown: dict[str, Any]
    allocations: tuple[tuple[PoolFacts, int], ...]
    placement: Placement


def job_request(spec: JobSpec, live: LiveTable, job_id: str, tenant_id: str,
                submitted: datetime) -> JobRequest:
    """The spec as the domain's request; its work is its devices for its time limit on a
    pool of the platform's median speed, so faster pools finish (and cost) less."""
    models = frozenset({load_catalog().get(spec.accelerator).key}) if spec.accelerator \
        else frozenset()
    hours = spec.time_limit_s / SECONDS_PER_HOUR
    deadline = None if spec.deadline_s is None else \
        int(submitted.timestamp()) + spec.deadline_s
    return JobRequest(
        id=job_id, tenant_id=tenant_id, devices=spec.devices,
        work_units=hours * spec.devices * live.reference_units,
        accelerator=AcceleratorConstraint(
            vendors=frozenset({spec.vendor}) if spec.vendor else frozenset(),
            models=models, min_memory_gb=spec.min_memory_gb or 0.0,
            software_stacks=frozenset({spec.software_stack}) if spec.software_stack
            else frozenset()),
        multi_pool=spec.multi_pool, latency_class=LatencyClass(spec.latency_class),
        user_city=spec.user_city, data_province=_data_province(spec, live),
        data_gb=spec.data_gb, residency_provinces=frozenset(spec.provinces),
        deadline_s=deadline, budget_fen=spec.budget_fen, workload_class=spec.workload_class,
        spot_allowed=spec.spot, defer_allowed=False)


def _data_province(spec: JobSpec, live: LiveTable) -> str | None:
    """Where the job's data lies: its province, or its site's (a site with no active pool
    here is not known to the table: the data is then taken to need no transfer)."""
    if spec.data_site is None:
        return spec.data_province
    return next((p.province for p in live.pools if p.site_id == spec.data_site), None)


def rule_mask(spec: JobSpec, live: LiveTable) -> BoolArray:
    """Pools the spec's platform-only rules exclude: device kind, pinned pool, price cap."""
    excluded = live.none()
    if spec.device_kind:
        excluded |= live.device_kind != spec.device_kind
    if spec.pool_id:
        excluded |= ~live.mask_of({spec.pool_id})
    if spec.max_price_fen_per_device_hour is not None:
        excluded |= live.list_price > spec.max_price_fen_per_device_hour
    if spec.max_rtt_ms is not None:
        rtt = live.table.rtt_row(spec.user_city)
        if rtt is None:  # a city the table cannot place: no pool is known to be near
            excluded[:] = True
        else:
            excluded |= rtt > spec.max_rtt_ms
    if spec.min_memory_gb is not None:  # a pool that publishes no memory size is not taken
        excluded |= np.array([p.memory_gb is None for p in live.pools])
    return excluded


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


class Decider:
    """Decisions for one job over one table: the best, then the best of the rest."""

    def __init__(self, session: Session, live: LiveTable, spec: JobSpec, request: JobRequest,
                 now: datetime, tenant_id: str | None) -> None:
        self.session, self.live, self.spec, self.request = session, live, spec, request
        self.now, self.tenant_id = now, tenant_id
        self.rules = rule_mask(spec, live)

    def feasible(self) -> int:
        """Pools that could take the job alone now."""
        t = self.live.table
        return int((t.static_mask(self.request) & ~self.rules
                    & (t.free >= self.spec.devices)).sum())

    def decide(self, avoid: BoolArray | None = None, rank: int = 1) -> Candidate | None:
        """The engine's decision with `avoid` pools left out too; None when nothing fits."""
        excluded = self.rules if avoid is None else self.rules | avoid
        try:
            placement = self.live.engine.place(self.request, int(self.now.timestamp()),
                                               allow_defer=False, excluded=excluded)
        except PlacementInfeasible:
            return None
        t = self.live.table
        allocations = tuple((self.live.pools[a.pool_index], a.devices)
                            for a in placement.allocations)
        pool = allocations[0][0]
        price = getattr(pool, f"fen_per_unit_hour_{self.spec.workload_class}")
        breakdown: dict[str, Any] = {
            "policy": POLICY, "rank": rank, "score": round(float(placement.score), 2),
            "breakdown": {k: round(float(v), 2) for k, v in placement.breakdown.items()},
            "estimated_energy_kwh": round(placement.energy_kwh, 3),
            "estimated_carbon_kg": round(placement.carbon_kg, 3),
            "reason": placement.reason,
            "estimated_cost_fen": estimates.estimate(self.session, pool, self.spec, self.now,
                                                     self.tenant_id).amount_fen,
            "fen_per_unit_hour": str(price) if price is not None else None,
            "price_fen_per_device_hour": pool.price_fen_per_device_hour,
            "free_devices": int(t.free[t.index[pool.id]]),
            "candidates": self.feasible(),
            "estimated_start": _iso(placement.start_s + placement.staging_s),
            "estimated_finish": _iso(placement.finish_s),
        }
        rtt = t.rtt_row(self.spec.user_city)
        if rtt is not None:
            breakdown["rtt_ms"] = round(float(max(rtt[a.pool_index]
                                                   for a in placement.allocations)), 1)
        return Candidate(pool, float(placement.score), breakdown, allocations, placement)

    def ranked(self, avoid: BoolArray | None = None, limit: int = RANKED_DEEP
               ) -> list[Candidate]:
        """Up to `limit` decisions, each leaving out the pools of those before it."""
        out: list[Candidate] = []
        taken = self.live.none() if avoid is None else avoid.copy()
        for position in range(limit):
            candidate = self.decide(taken, position + 1)
            if candidate is None:
                break
            out.append(candidate)
            taken |= self.live.mask_of({p.id for p, _ in candidate.allocations})
        return out
