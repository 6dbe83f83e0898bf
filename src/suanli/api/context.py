"""What every request handler needs: the node (settings, database, clock, authority) and the
caller."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from suanli.api.guard import authorise, client_of, guard_of
from suanli.bootstrap import Node
from suanli.domain.errors import Unauthenticated
from suanli.domain.tenants import Principal
from suanli.services.tenants import authenticate

AppContext = Node  # what every request handler needs


def context(request: Request) -> AppContext:
    return request.app.state.ctx


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def principal(
    request: Request,
    ctx: AppContext = Depends(context),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    api_key: str | None = Depends(_api_key),
) -> Principal:
    """The caller: its key authenticated under the rate limits, its scopes checked against
    the operation (api.guard, api.policy)."""
    key = bearer.credentials if bearer else api_key
    door, client = guard_of(request), client_of(request)
    door.admit(client)
    try:
        with ctx.db.unit_of_work() as session:
            caller = authenticate(session, key, ctx.clock.now())
    except Unauthenticated:
        if key:  # a guess; a request that forgot its key guesses nothing
            door.failed(client)
        raise
    assert caller.key_id is not None
    door.count_request(caller.key_id)
    authorise(request, caller)
    return caller
