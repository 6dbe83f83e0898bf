"""Jobs for consumers (/v1/jobs) and the provider agents' pull protocol (/v1/agents)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import PlainTextResponse

from suanli.api.context import AppContext, context, principal
from suanli.api.job_schemas import (
    JobEventOut,
    JobIn,
    JobOut,
    JobStateName,
    UsageOut,
)
from suanli.api.quote_schemas import JobCostOut
from suanli.api.schemas import Page
from suanli.domain.errors import ValidationFailed
from suanli.domain.jobs import JobSpec, JobState
from suanli.domain.tenants import Principal
from suanli.protocol.agent import (
    ClaimAnswer,
    ClaimRequest,
    HeartbeatAnswer,
    HeartbeatRequest,
    Registration,
    RegistrationAnswer,
    Report,
    ReportAnswer,
)
from suanli.services.dispatch import agents
from suanli.services.jobs import lifecycle as jobs
from suanli.services.metering import usage
from suanli.services.scheduling import placement as scheduling
from suanli.services.scheduling import quote_ids, quotes

router = APIRouter(prefix="/v1")
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


def _job_out(session, row, with_events: bool = False) -> JobOut:
    out = JobOut.model_validate(row, from_attributes=True)
    if with_events:
        out.events = [JobEventOut.model_validate(e, from_attributes=True)
                      for e in jobs.events(session, row)]
        cost = quotes.job_cost(session, row.id)
        out.cost = JobCostOut(estimated_cost_fen=(row.placement or {}).get("estimated_cost_fen"),
                              records=cost.records, device_hours=str(cost.device_hours),
                              compute_unit_hours=str(cost.compute_unit_hours),
                              amount_fen=cost.amount_fen, discount_fen=cost.discount_fen,
                              payable_fen=cost.payable_fen)
    return out


def _state(value: str, field: str = "state") -> JobState:
    try:
        return JobState(value)
    except ValueError:
        raise ValidationFailed(f"unknown state {value!r}", field=field) from None


@router.post("/jobs", status_code=201, response_model=JobOut, tags=["jobs"])
def submit_job(body: JobIn, response: Response, ctx: Ctx, caller: Caller,
               idempotency_key: Annotated[str, Header(alias="Idempotency-Key")]) -> JobOut:
    """Submit a job; the same Idempotency-Key again returns the same job (200)."""
    spec = JobSpec(**{**body.model_dump(), "command": tuple(body.command),
                      "provinces": tuple(body.provinces)})
    now = ctx.clock.now()
    with ctx.db.unit_of_work() as session:
        job, created = jobs.submit(session, caller, ctx.authority, spec, idempotency_key, now)
        if created:
            quote_ids.read_quote(spec, caller.tenant_id, now)  # 422 and nothing stored if bad
            scheduling.place(session, job, now, ctx.settings.claim_timeout_s)
        else:
            response.status_code = 200
        return _job_out(session, job, with_events=True)


@router.get("/jobs", response_model=Page[JobOut], tags=["jobs"])
def list_jobs(ctx: Ctx, caller: Caller, state: JobStateName | None = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Page[JobOut]:
    with ctx.db.unit_of_work() as session:
        rows = jobs.list_jobs(session, caller, state=state, limit=limit + 1, offset=offset)
        return Page[JobOut](items=[_job_out(session, r) for r in rows[:limit]],
                            next_offset=offset + limit if len(rows) > limit else None)


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
def get_job(job_id: str, ctx: Ctx, caller: Caller) -> JobOut:
    with ctx.db.unit_of_work() as session:
        return _job_out(session, jobs.get(session, caller, job_id), with_events=True)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"])
def cancel_job(job_id: str, ctx: Ctx, caller: Caller) -> JobOut:
    with ctx.db.unit_of_work() as session:
        return _job_out(session, jobs.cancel(session, caller, job_id, ctx.clock.now()),
                        with_events=True)


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse, tags=["jobs"])
def job_logs(job_id: str, ctx: Ctx, caller: Caller) -> str:
    with ctx.db.unit_of_work() as session:
        row = jobs.logs(session, caller, job_id)
        return "" if row is None else row.text


@router.get("/jobs/{job_id}/usage", response_model=list[UsageOut], tags=["jobs"])
def job_usage(job_id: str, ctx: Ctx, caller: Caller) -> list[UsageOut]:
    with ctx.db.unit_of_work() as session:
        job = jobs.get(session, caller, job_id)
        rows = usage.records_of_job(session, job.id)
        return [UsageOut.model_validate(r, from_attributes=True) for r in rows]


# -- provider agents -------------------------------------------------------------------------

@router.post("/agents", status_code=201, response_model=RegistrationAnswer, tags=["agents"])
def register_agent(body: Registration, ctx: Ctx, caller: Caller) -> RegistrationAnswer:
    with ctx.db.unit_of_work() as session:
        row = agents.register(session, caller, name=body.name, pools=body.pools,
                              engine=body.engine, now=ctx.clock.now())
        return RegistrationAnswer(id=row.id, pools=list(row.pools),
                                  heartbeat_ttl_s=agents.HEARTBEAT_TTL_S)


@router.post("/agents/{agent_id}/claim", response_model=ClaimAnswer, tags=["agents"])
def claim(agent_id: str, body: ClaimRequest, ctx: Ctx, caller: Caller) -> ClaimAnswer:
    with ctx.db.unit_of_work() as session:
        found = agents.claim(session, caller, agent_id, ctx.clock.now(), body.max_jobs,
                             ctx.settings.heartbeat_ttl_s)
        return ClaimAnswer.model_validate({"assignments": [a.__dict__ for a in found]})


@router.post("/agents/{agent_id}/heartbeat", response_model=HeartbeatAnswer, tags=["agents"])
def heartbeat(agent_id: str, body: HeartbeatRequest, ctx: Ctx,
              caller: Caller) -> HeartbeatAnswer:
    with ctx.db.unit_of_work() as session:
        answers = agents.heartbeat(session, caller, agent_id,
                                   [lease.model_dump() for lease in body.leases], ctx.clock.now(),
                                   ctx.settings.heartbeat_ttl_s)
        return HeartbeatAnswer.model_validate({"leases": answers})


@router.post("/agents/{agent_id}/leases/{lease_id}/report", response_model=ReportAnswer,
             tags=["agents"])
def report(agent_id: str, lease_id: str, body: Report, ctx: Ctx,
           caller: Caller) -> ReportAnswer:
    state = _state(body.state)
    with ctx.db.unit_of_work() as session:
        job = agents.report(session, caller, agent_id, lease_id, body.fence, state,
                            ctx.clock.now(), exit_code=body.exit_code, message=body.message,
                            logs=body.logs, engine_ref=body.engine_ref,
                            usage=body.usage.model_dump() if body.usage else None,
                            ttl_s=ctx.settings.heartbeat_ttl_s)
        return ReportAnswer(job_id=job.id, state=str(job.state))
