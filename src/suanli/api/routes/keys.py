"""API keys over HTTP: a tenant lists, makes, rotates and revokes its own; operators any
tenant's (`?tenant_id=` / `tenant_id`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from suanli.api.context import AppContext, context, principal
from suanli.api.keys_schemas import TOKEN, KeyIn, KeyOut, NewKeyOut, RotateIn
from suanli.domain.tenants import Principal
from suanli.services import keys

router = APIRouter(prefix="/v1", tags=["keys"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{10}$", description="the key's prefix")]


def _out(key: keys.KeyInfo, ctx: AppContext) -> dict[str, object]:
    return {"key_id": key.key_id, "tenant_id": key.tenant_id, "name": key.name,
            "scopes": list(key.scopes), "state": key.state(ctx.clock.now()),
            "created_at": key.created_at, "expires_at": key.expires_at,
            "revoked_at": key.revoked_at, "created_by": key.created_by,
            "rotated_from": key.rotated_from}


@router.get("/keys", response_model=list[KeyOut])
def list_keys(ctx: Ctx, caller: Caller,
              tenant_id: Annotated[str | None, Query(max_length=72, pattern=TOKEN)] = None
              ) -> list[dict[str, object]]:
    """The keys of your tenant (operators: of `tenant_id`), revoked and expired ones too."""
    with ctx.db.unit_of_work() as session:
        return [_out(k, ctx) for k in keys.list_keys(session, caller, tenant_id)]


@router.post("/keys", status_code=201, response_model=NewKeyOut)
def create_key(body: KeyIn, ctx: Ctx, caller: Caller) -> dict[str, object]:
    """A new key, shown once; it never has a scope the key making it lacks."""
    with ctx.db.unit_of_work() as session:
        key, secret = keys.create_key(session, caller, ctx.clock.now(),
                                      tenant_id=body.tenant_id, name=body.name,
                                      scopes=body.scopes, expires_at=body.expires_at)
    return {**_out(key, ctx), "api_key": secret}


@router.post("/keys/{key_id}/rotate", status_code=201, response_model=NewKeyOut)
def rotate_key(key_id: KeyId, ctx: Ctx, caller: Caller,
               body: RotateIn | None = None) -> dict[str, object]:
    """A new key in place of this one; the old one stops now (or after `grace_s`)."""
    with ctx.db.unit_of_work() as session:
        key, secret = keys.rotate_key(session, caller, key_id, ctx.clock.now(),
                                      grace_s=body.grace_s if body else 0)
    return {**_out(key, ctx), "api_key": secret}


@router.post("/keys/{key_id}/revoke", response_model=KeyOut)
def revoke_key(key_id: KeyId, ctx: Ctx, caller: Caller) -> dict[str, object]:
    """The key stops working at once (revoking twice is harmless)."""
    with ctx.db.unit_of_work() as session:
        return _out(keys.revoke_key(session, caller, key_id, ctx.clock.now()), ctx)
