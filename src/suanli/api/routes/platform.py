"""The platform itself: health, tenants, identifier resolution, the catalog and units."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from suanli import __version__
from suanli.adapters.store.database import DATABASE_ERRORS, is_outage
from suanli.api import problems
from suanli.api.context import AppContext, context, principal
from suanli.api.schemas import DelegationIn, NewTenantOut, TenantIn, TenantOut
from suanli.catalog import load_ratings, units_per_device_hour
from suanli.domain.errors import NotFound, SuanliError
from suanli.domain.ids import ComputeId
from suanli.domain.tenants import Principal, Role, require_role
from suanli.domain.units import WORKLOAD_CLASSES
from suanli.services import tenants
from suanli.services.registry import delegations

router = APIRouter(prefix="/v1")
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.get("/health", tags=["platform"], response_model=None,
            responses={503: {"description": "a dependency is down (problem+json, names it)"}})
def health(ctx: Ctx) -> dict[str, Any] | JSONResponse:
    """Whether this node and what it depends on answer; no key needed."""
    try:
        ctx.db.ping()
    except DATABASE_ERRORS as exc:
        if not is_outage(exc):
            raise
        return problems.unavailable("the database is down", instance="/v1/health",
                                    dependencies={"database": "down"})
    return {"status": "ok", "version": __version__, "authority": str(ctx.authority),
            "platform": ctx.settings.platform_name, "database": ctx.db.dialect,
            "dependencies": {"database": "ok"}}


@router.get("/me", response_model=TenantOut, tags=["tenants"])
def me(ctx: Ctx, caller: Caller) -> TenantOut:
    with ctx.db.unit_of_work() as session:
        return TenantOut.model_validate(tenants.get_tenant(session, caller.tenant_id),
                                        from_attributes=True)


@router.post("/tenants", status_code=201, response_model=NewTenantOut, tags=["tenants"])
def create_tenant(body: TenantIn, ctx: Ctx, caller: Caller) -> NewTenantOut:
    require_role(caller, Role.OPERATOR)
    with ctx.db.unit_of_work() as session:
        new = tenants.create_tenant(session, ctx.authority, body.name,
                                    tenants.parse_role(body.role),
                                    tenants.parse_tenant_class(body.tenant_class),
                                    ctx.clock.now())
        row = TenantOut.model_validate(tenants.get_tenant(session, new.tenant_id),
                                       from_attributes=True)
    return NewTenantOut(**row.model_dump(), api_key=new.api_key)


@router.get("/ids/{compute_id}", tags=["identifiers"])
def resolve_id(compute_id: str, ctx: Ctx) -> dict[str, Any]:
    """Parse an identifier and say which platform is authoritative for it (no key needed)."""
    cid = ComputeId.parse(compute_id, field="compute_id")
    with ctx.db.unit_of_work() as session:
        table = delegations.resolver(session, ctx.authority)
    authority = table.authority_for(cid)
    endpoint = table.resolve(cid)
    parent = cid.parent
    return {"id": str(cid), "kind": cid.kind.value, "parent": str(parent) if parent else None,
            "issuer": str(cid.authority_id), "authoritative_platform": authority.body,
            "endpoint": None if endpoint == delegations.SELF else endpoint,
            "local": endpoint == delegations.SELF}


@router.post("/delegations", status_code=201, tags=["identifiers"])
def create_delegation(body: DelegationIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Delegate an identifier prefix under this platform's authority to another platform."""
    with ctx.db.unit_of_work() as session:
        row = delegations.delegate(session, caller, ctx.authority, prefix=body.prefix,
                                   name=body.name, level=body.level, endpoint=body.endpoint,
                                   now=ctx.clock.now())
        return _delegation_json(row)


@router.get("/delegations", tags=["identifiers"])
def list_delegations(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.unit_of_work() as session:
        return {"items": [_delegation_json(r) for r in delegations.list_delegations(session)]}


def _delegation_json(row: Any) -> dict[str, Any]:
    return {"authority": row.authority, "name": row.name, "level": row.level,
            "endpoint": row.endpoint, "created_at": row.created_at.isoformat()}


@router.get("/catalog/accelerators", tags=["catalog"])
def list_accelerators(ctx: Ctx, vendor: str | None = None,
                      kind: str | None = None) -> dict[str, Any]:
    items = [a for a in ctx.catalog.all()
             if (vendor is None or a.vendor.lower() == vendor.lower())
             and (kind is None or a.kind == kind)]
    return {"items": [accelerator_json(a) for a in items], "count": len(items)}


@router.get("/catalog/accelerators/{key}", tags=["catalog"])
def get_accelerator(key: str, ctx: Ctx) -> dict[str, Any]:
    return accelerator_json(ctx.catalog.get(key))


@router.get("/units", tags=["catalog"])
def units() -> dict[str, Any]:
    return load_ratings_summary()


def accelerator_json(accelerator: Any) -> dict[str, Any]:
    """The datasheet entry, with its effective compute units per device-hour by workload
    class (decimal strings; a class the ratings do not cover is absent)."""
    units = {}
    for workload in WORKLOAD_CLASSES:
        try:
            units[workload] = str(units_per_device_hour(accelerator.key, workload))
        except SuanliError:
            continue
    return {**asdict(accelerator), "units_per_device_hour": units}


def load_ratings_summary() -> dict[str, Any]:
    ratings = load_ratings()
    if not ratings:
        raise NotFound("no unit ratings are loaded")
    return ratings if isinstance(ratings, dict) else {"ratings": ratings}
