"""Quotes (/v1/quotes): where a job would run and what it would cost, before submitting it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from suanli.api.context import AppContext, context, principal
from suanli.api.job_schemas import JobIn
from suanli.api.quote_schemas import EstimateOut, QuoteOptionOut, QuoteOut
from suanli.domain.jobs import JobSpec
from suanli.domain.tenants import Principal
from suanli.services.scheduling import quotes

router = APIRouter(prefix="/v1")
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


def _option(option: quotes.QuoteOption) -> QuoteOptionOut:
    e = option.estimate
    return QuoteOptionOut(
        rank=option.rank, pool_id=option.pool_id, accelerator=option.accelerator,
        province=option.province, city=option.city, hub=option.hub,
        free_devices=option.free_devices,
        price_fen_per_device_hour=option.price_fen_per_device_hour,
        estimate=EstimateOut(tariff_id=e.tariff_id, basis=e.basis, quantity=str(e.quantity),
                             estimated_cost_fen=e.amount_fen, hold_fen=e.hold_fen,
                             note=e.note),
        score=option.score, placement=option.breakdown, quote_id=option.quote_id,
        allocations=list(option.allocations))


@router.post("/quotes", response_model=QuoteOut, tags=["jobs"])
def quote(body: JobIn, ctx: Ctx, caller: Caller,
          limit: Annotated[int, Query(ge=1, le=quotes.MAX_OPTIONS,
                                      description="options to return")] = 3) -> QuoteOut:
    """The best pools for a job spec now, each priced with the tariff in force and with the
    placement's score breakdown. Nothing is reserved or stored; a job submitted next may be
    placed elsewhere if capacity changed."""
    spec = JobSpec(**{**body.model_dump(), "command": tuple(body.command),
                      "provinces": tuple(body.provinces)})
    with ctx.db.unit_of_work() as session:
        found = quotes.quote(session, caller, spec, ctx.clock.now(), limit)
        return QuoteOut(time_limit_s=spec.time_limit_s, devices=spec.devices,
                        candidates=found.candidates,
                        options=[_option(o) for o in found.options], message=found.message)
