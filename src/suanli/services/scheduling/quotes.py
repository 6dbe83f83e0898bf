"""Quotes before a job is submitted, and what a job has cost since: the consumer's two money views.

A quote runs the placement a submitted job would get (the same engine over the same pools,
the same score breakdown, start and finish, energy, carbon and latency) and prices each
option with the tariff in force (services.estimates); nothing is reserved or stored. Each
option has a quote id a submission can name to accept it (quote_ids). Pools of other
platforms (roaming) are not quoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import usage as usage_store
from suanli.catalog import load_catalog
from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.jobs import JobSpec
from suanli.domain.tenants import Principal, Role, require_role
from suanli.services.billing import estimates
from suanli.services.scheduling import placement as scheduling
from suanli.services.scheduling import quote_ids

MAX_OPTIONS = 10


@dataclass(frozen=True)
class QuoteOption:
    rank: int
    pool_id: str
    accelerator: str
    province: str
    city: str
    hub: str | None
    free_devices: int
    price_fen_per_device_hour: int
    estimate: estimates.CostEstimate
    score: float | None
    breakdown: dict[str, Any]  # the placement's: policy, score terms, energy, carbon, reason
    quote_id: str = ""  # a submission naming it asks for this option (quote_ids)
    allocations: tuple[tuple[str, int], ...] = ()  # (pool id, devices); several for a gang


@dataclass(frozen=True)
class Quote:
    options: tuple[QuoteOption, ...]
    candidates: int  # pools that could take the job now
    message: str


def quote(session: Session, principal: Principal, spec: JobSpec, now: datetime,
          limit: int = 3) -> Quote:
    """The best `limit` pools for the job now, each with its estimated cost."""
    require_role(principal, Role.CONSUMER, Role.PROVIDER)
    if not 1 <= limit <= MAX_OPTIONS:
        raise ValidationFailed(f"must be 1..{MAX_OPTIONS}", field="limit")
    if spec.accelerator is not None:
        try:
            load_catalog().get(spec.accelerator)
        except NotFound as exc:
            raise ValidationFailed(exc.detail, field="accelerator") from None
    ranked = scheduling.candidates(session, spec, [], now, principal.tenant_id, limit=limit)
    options: list[QuoteOption] = []
    for candidate in ranked[:limit]:
        pool = candidate.pool
        pools = tuple((p.id, devices) for p, devices in candidate.allocations)
        breakdown = dict(candidate.breakdown)
        breakdown.pop("estimated_cost_fen", None)  # given as the option's estimate below
        options.append(QuoteOption(
            rank=len(options) + 1, pool_id=pool.id, accelerator=pool.accelerator,
            province=pool.province, city=pool.city, hub=pool.hub,
            free_devices=pool.free_devices,
            price_fen_per_device_hour=pool.price_fen_per_device_hour,
            estimate=estimates.estimate(session, pool, spec, now, principal.tenant_id),
            score=breakdown.get("score"), breakdown=breakdown,
            quote_id=quote_ids.quote_id(spec, principal.tenant_id, pools, now),
            allocations=pools))
    message = "" if options else \
        "no pool of this platform has enough free devices that meet the constraints now"
    feasible = int(ranked[0].breakdown["candidates"]) if ranked else 0
    return Quote(tuple(options), feasible, message)


@dataclass(frozen=True)
class JobCost:
    """What a job's usage records were charged (zero before any usage)."""

    records: int
    device_hours: Decimal
    compute_unit_hours: Decimal
    amount_fen: int  # rated under the tariff
    discount_fen: int  # paid by vouchers
    payable_fen: int  # amount - discount


def job_cost(session: Session, job_id: str) -> JobCost:
    """The caller has already been checked to own the job."""
    totals = usage_store.charge_totals_of_job(session, job_id)
    return JobCost(totals.records, Decimal(totals.device_hours_micro).scaleb(-6),
                   Decimal(totals.compute_unit_hours_micro).scaleb(-6), totals.amount_fen,
                   totals.discount_fen, totals.payable_fen)
