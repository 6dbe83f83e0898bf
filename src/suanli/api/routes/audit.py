"""The audit log over HTTP, for operators (keys with `read` and `admin`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from suanli.api.context import AppContext, context, principal
from suanli.domain.tenants import Principal
from suanli.services import audit

router = APIRouter(prefix="/v1", tags=["audit"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
TOKEN = r"^[A-Za-z0-9._:*+-]+$"


@router.get("/audit")
def read_audit(ctx: Ctx, caller: Caller,
               actor: Annotated[str | None, Query(max_length=72, pattern=TOKEN)] = None,
               action: Annotated[str | None, Query(max_length=64, pattern=TOKEN)] = None,
               target: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
               = None,
               since: datetime | None = None, until: datetime | None = None,
               after_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
               limit: Annotated[int, Query(ge=1, le=audit.MAX_LIST)] = 100) -> dict[str, Any]:
    """Who did what, when, to what, and how it ended; oldest first, page with `after_id`."""
    with ctx.db.unit_of_work() as session:
        rows = audit.query(session, caller, actor=actor, action=action, target=target,
                           since=since, until=until, after_id=after_id, limit=limit)
        items = [audit.as_json(row) for row in rows]
    return {"items": items, "next_after_id": items[-1]["id"] if len(items) == limit else None}
