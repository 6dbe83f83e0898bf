"""Federation over HTTP: the protocol between platforms (`/federation/v1`, signed) and the
operators' and tenants' view of it (`/v1/federation`, API key): platforms, the aggregated
catalog, roaming jobs and records, entitlements, clearing, reconciliation and disputes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field, StrictInt

from suanli.api.context import principal
from suanli.api.federation_runtime import runtime_of
from suanli.api.fields import Strict
from suanli.api.routes import federation_peer
from suanli.domain import federation as fed
from suanli.domain.errors import Forbidden
from suanli.domain.federation_records import Dispute
from suanli.domain.tenants import Principal, Role, require_role
from suanli.domain.time import aware
from suanli.services.clearing import cycle as clearing
from suanli.services.federation import catalog as federated_catalog
from suanli.services.federation import platforms as federation
from suanli.services.jobs import lifecycle as jobs
from suanli.services.peering import reconciliation
from suanli.services.peering.runtime import FederationRuntime
from suanli.services.roaming import records as roaming_records

router = APIRouter()
router.include_router(federation_peer.router)
api = APIRouter(prefix="/v1/federation", tags=["federation"])
Caller = Annotated[Principal, Depends(principal)]


def _runtime(request: Request) -> FederationRuntime:
    return runtime_of(request.app)


Runtime = Annotated[FederationRuntime, Depends(_runtime)]
Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]
TOKEN = r"^[A-Za-z0-9._:*+-]+$"  # ids, authorities, catalog keys: no blanks or control bytes
TEXT = r"^[^\x00-\x1f\x7f]*$"  # free text: printable only (PostgreSQL refuses NUL)


def _token(max_length: int) -> Any:
    return Query(max_length=max_length, pattern=TOKEN)




class EnrolmentIn(Strict):
    authority: str = Field(min_length=5, max_length=72, description="e.g. CN.GD under CN",
                           pattern=TOKEN)
    name: str = Field(min_length=1, max_length=120, pattern=TEXT)
    level: str = Field(default="regional", description="regional or industry")


class CycleIn(Strict):
    through_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class ReconcileIn(Strict):
    peer: str = Field(min_length=2, max_length=72, pattern=TOKEN)
    since: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    through: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    repair: bool = False


class DisputeIn(Strict):
    counterparty: str = Field(min_length=2, max_length=72, pattern=TOKEN)
    detail: str = Field(min_length=1, max_length=1000, pattern=TEXT)
    record_id: str | None = Field(default=None, max_length=72, pattern=TOKEN)
    cycle_id: str | None = Field(default=None, max_length=64, pattern=TOKEN)
    amount_fen: StrictInt | None = Field(default=None, ge=0, le=10**15)


class ResolveIn(Strict):
    resolution: str = Field(min_length=1, max_length=1000, pattern=TEXT)


# -- platforms and keys ----------------------------------------------------------------------

@api.get("/platforms")
def list_platforms(rt: Runtime, caller: Caller) -> dict[str, Any]:
    with rt.db.unit_of_work() as session:
        snapshot = federation.registry_snapshot(session)
        seen = {p.authority: p.last_seen_at for p in federation.platforms(session)}
    for item in snapshot["platforms"]:
        last = seen.get(item["authority"])
        item["last_seen_at"] = aware(last).isoformat() if last else None
        item["self"] = item["authority"] == rt.own
    return {"platform": rt.own, "key_id": rt.me.key_id, "house": rt.house, **snapshot}


@api.post("/enrolments", status_code=201)
def enrol(body: EnrolmentIn, rt: Runtime, caller: Caller) -> dict[str, Any]:
    """Admit a sub-platform: its one-time token, for `suanli serve --enrolment-token`."""
    with rt.db.unit_of_work() as session:
        token = federation.enrol(session, caller, rt.own, authority=body.authority,
                                 name=body.name, level=body.level, now=rt.now())
    return {"authority": fed.check_authority(body.authority), "enrolment_token": token,
            "parent": rt.own, "parent_url": rt.public_url}


@api.post("/keys/{key_id}/revoke")
def revoke(key_id: Annotated[str, Path(max_length=100, pattern=TOKEN)], rt: Runtime,
           caller: Caller) -> dict[str, Any]:
    with rt.db.unit_of_work() as session:
        row = federation.revoke_key(session, caller, key_id, rt.now())
        return {"key_id": row.key_id, "authority": row.authority,
                "revoked_at": aware(row.revoked_at).isoformat() if row.revoked_at else None}


# -- the catalog -----------------------------------------------------------------------------

@api.get("/catalog")
def catalog(rt: Runtime, caller: Caller,
            accelerator: Annotated[str | None, _token(48)] = None,
            vendor: Annotated[str | None, Query(max_length=32, pattern=TEXT)] = None,
            device_kind: Annotated[str | None, _token(8)] = None,
            province: Annotated[str | None, _token(8)] = None,
            hub: Annotated[str | None, _token(24)] = None,
            platform: Annotated[str | None, _token(72)] = None,
            min_free_devices: Annotated[int, Query(ge=0, le=10**6)] = 0,
            limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict[str, Any]:
    """Pool summaries over the whole tree this platform holds, each with how fresh it is."""
    now = rt.now()
    with rt.db.unit_of_work() as session:
        items = federated_catalog.query(session, now, accelerator=accelerator, vendor=vendor,
                                        device_kind=device_kind, province=province, hub=hub,
                                        platform=platform, min_free_devices=min_free_devices,
                                        limit=limit)
        fresh = federated_catalog.freshness(session, now)
    return {"platform": rt.own, "items": items, "count": len(items), "platforms": fresh,
            "totals": {"pools": sum(i["pools"] for i in items),
                       "devices": sum(i["devices"] for i in items),
                       "free_devices": sum(i["free_devices"] for i in items)}}


# -- roaming jobs and records (entitlements: api.routes.entitlements) --------------------

@api.get("/jobs/{job_id}")
def roaming_job(job_id: str, rt: Runtime, caller: Caller) -> dict[str, Any]:
    """Where a job roamed: each forward attempt and its host's answer, and its records."""
    with rt.db.unit_of_work() as session:
        job = jobs.get(session, caller, job_id)
        attempts, records = roaming_records.of_job(session, job.id)
        return {"job_id": job.id, "state": job.state, "attempts": [
            {"attempt": a.attempt, "host": a.host, "state": a.state, "reason": a.reason,
             "host_job_id": a.host_job_id, "host_pool_id": a.host_pool_id,
             "host_state": a.host_state, "tries": a.tries, "last_error": a.last_error}
            for a in attempts], "records": [roaming_records.summary_of(r) for r in records]}


@api.get("/roaming-records")
def list_records(rt: Runtime, caller: Caller,
                 peer: Annotated[str | None, _token(72)] = None,
                 role: Annotated[str | None, Query(pattern="^(home|host)$")] = None,
                 since: Day = None, through: Day = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    """Roaming records held here; a consumer sees its own, an operator all."""
    with rt.db.unit_of_work() as session:
        rows = roaming_records.listing(
            session, tenant_id=None if caller.is_operator else caller.tenant_id, peer=peer,
            role=role, since=since, through=through, limit=limit)
        return {"items": [roaming_records.summary_of(r) for r in rows]}


# -- clearing, positions, reconciliation, disputes -------------------------------------------

@api.post("/clearing/cycles", status_code=201)
def run_cycle(body: CycleIn, rt: Runtime, caller: Caller) -> dict[str, Any]:
    """Clear every unsettled record up to a business date now (the national platform)."""
    require_role(caller, Role.OPERATOR)
    if rt.own != rt.house:
        raise Forbidden(f"clearing runs at the national platform {rt.house}")
    return rt.run_clearing(body.through_date, created_by=caller.tenant_id)


@api.get("/clearing/cycles")
def list_cycles(rt: Runtime, caller: Caller) -> dict[str, Any]:
    require_role(caller, Role.OPERATOR)
    with rt.db.unit_of_work() as session:
        return {"items": [{"cycle_id": c.id, "through_date": c.through_date, "state": c.state,
                           "created_at": aware(c.created_at).isoformat(), **c.summary}
                          for c in clearing.cycles(session)]}


@api.get("/clearing/statements")
def list_statements(rt: Runtime, caller: Caller,
                    cycle_id: Annotated[str | None, _token(64)] = None,
                    platform: Annotated[str | None, _token(72)] = None
                    ) -> dict[str, Any]:
    require_role(caller, Role.OPERATOR)
    with rt.db.unit_of_work() as session:
        return {"items": [{"cycle_id": s.cycle_id, "platform": s.platform, "role": s.role,
                           "state": s.state, "net_fen": s.net_fen, "key_id": s.key_id,
                           "signature": s.signature, "statement": s.document}
                          for s in clearing.statements(session, cycle_id, platform)]}


@api.get("/positions")
def positions(rt: Runtime, caller: Caller) -> dict[str, Any]:
    """Open (unsettled) positions per peer, and the ledger's peer and house accounts."""
    require_role(caller, Role.OPERATOR)
    with rt.db.unit_of_work() as session:
        open_positions = clearing.open_positions(session, rt.own)
        ledger = clearing.ledger_positions(session, rt.own, rt.house)
    return {"platform": rt.own, "open": open_positions, "ledger": ledger}


@api.post("/reconcile")
def reconcile(body: ReconcileIn, rt: Runtime, caller: Caller) -> dict[str, Any]:
    """Compare the records held here and at a peer; `repair` takes in or re-sends the ones
    missing on one side (signed by their host, so nothing is taken on trust)."""
    require_role(caller, Role.OPERATOR)
    return reconciliation.reconcile(rt, body.peer, body.since, body.through, body.repair)


@api.get("/disputes")
def list_disputes(rt: Runtime, caller: Caller,
                  state: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None
                  ) -> dict[str, Any]:
    require_role(caller, Role.OPERATOR)
    with rt.db.unit_of_work() as session:
        rows = roaming_records.disputes(session, state)
        return {"items": [_dispute_json(r) for r in rows]}


@api.post("/disputes", status_code=201)
def raise_dispute(body: DisputeIn, rt: Runtime, caller: Caller) -> dict[str, Any]:
    require_role(caller, Role.OPERATOR)
    with rt.db.unit_of_work() as session:
        row = roaming_records.record_dispute(
            session, rt.own, fed.check_authority(body.counterparty, field="counterparty"),
            "other", body.detail, rt.now(), record_id=body.record_id, cycle_id=body.cycle_id,
            amount_fen=body.amount_fen)
        return _dispute_json(row)


@api.post("/disputes/{dispute_id}/resolve")
def resolve_dispute(dispute_id: Annotated[int, Path(ge=1, le=2**62)], body: ResolveIn,
                    rt: Runtime, caller: Caller) -> dict[str, Any]:
    require_role(caller, Role.OPERATOR)
    with rt.db.unit_of_work() as session:
        row = roaming_records.resolve_dispute(session, dispute_id, body.resolution, rt.now())
        return _dispute_json(row)


def _dispute_json(row: Dispute) -> dict[str, Any]:
    return {"id": row.id, "cycle_id": row.cycle_id, "record_id": row.record_id,
            "raised_by": row.raised_by, "counterparty": row.counterparty, "kind": row.kind,
            "detail": row.detail, "amount_fen": row.amount_fen, "state": row.state,
            "resolution": row.resolution, "created_at": aware(row.created_at).isoformat(),
            "resolved_at": aware(row.resolved_at).isoformat() if row.resolved_at else None}


router.include_router(api)
