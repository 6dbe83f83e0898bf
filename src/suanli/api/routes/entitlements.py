"""Entitlements (算力权益) over HTTP: operators grant them at the platform's price, which an
operator sets; a tenant reads its own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response

from suanli.api.context import AppContext, context, principal
from suanli.api.entitlement_schemas import TOKEN, EntitlementIn, EntitlementPriceIn
from suanli.domain.errors import Forbidden, NotFound
from suanli.domain.tenants import Principal
from suanli.services.roaming import entitlements

router = APIRouter(prefix="/v1/federation", tags=["federation"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.post("/entitlements", status_code=201)
def grant_entitlement(body: EntitlementIn, response: Response, ctx: Ctx, caller: Caller,
                      idempotency_key: Annotated[str, Header(alias="Idempotency-Key",
                                                             max_length=128)]
                      ) -> dict[str, Any]:
    """Operators: grant prepaid compute-unit hours, usable when the tenant's jobs roam, at
    the platform's price, from the tenant's wallet or a voucher programme."""
    with ctx.db.unit_of_work() as session:
        row, created = entitlements.grant(
            session, caller, tenant_id=body.tenant_id, units=body.units,
            idempotency_key=idempotency_key, pay_from=body.pay_from,
            programme_id=body.programme_id, valid_until=body.valid_until, now=ctx.clock.now())
        if not created:
            response.status_code = 200
        return {**entitlements.as_json(row), "created": created}


@router.get("/entitlements")
def list_entitlements(ctx: Ctx, caller: Caller,
                      tenant_id: Annotated[str | None, Query(max_length=72, pattern=TOKEN)]
                      = None) -> dict[str, Any]:
    tenant = tenant_id or caller.tenant_id
    if tenant != caller.tenant_id and not caller.is_operator:
        raise Forbidden("you may only see your own entitlements")
    with ctx.db.unit_of_work() as session:
        return {"tenant_id": tenant, "items": [entitlements.as_json(r) for r in
                                               entitlements.entitlements(session, tenant)]}


@router.get("/entitlement-price")
def get_price(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """What one compute-unit hour of entitlement costs here."""
    with ctx.db.unit_of_work() as session:
        current = entitlements.price(session)
    if current is None:
        raise NotFound("no entitlement price is set on this platform", field="price")
    return {"fen_per_unit_hour": str(current.fen_per_unit_hour), "set_by": current.set_by,
            "set_at": current.set_at.isoformat()}


@router.put("/entitlement-price")
def set_price(body: EntitlementPriceIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Operators: the price of one compute-unit hour of entitlement from now on."""
    with ctx.db.unit_of_work() as session:
        current = entitlements.set_price(session, caller, body.fen_per_unit_hour,
                                         ctx.clock.now())
    return {"fen_per_unit_hour": str(current.fen_per_unit_hour), "set_by": current.set_by,
            "set_at": current.set_at.isoformat()}
