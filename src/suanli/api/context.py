"""What every request handler needs: the node (settings, database, clock, authority) and the
caller."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from suanli.bootstrap import Node
from suanli.domain.tenants import Principal
from suanli.services.tenants import authenticate

AppContext = Node  # what every request handler needs


def context(request: Request) -> AppContext:
    return request.app.state.ctx


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def principal(
    ctx: AppContext = Depends(context),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    api_key: str | None = Depends(_api_key),
) -> Principal:
    key = bearer.credentials if bearer else api_key
    with ctx.db.unit_of_work() as session:
        return authenticate(session, key)
