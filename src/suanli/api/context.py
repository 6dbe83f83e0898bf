"""What every request handler needs: settings, the database, the clock, the authority."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from suanli.adapters.clock import Clock
from suanli.adapters.store import Database
from suanli.domain.ids import ComputeId
from suanli.domain.tenants import Principal
from suanli.services.registry.pool_index import PoolIndex
from suanli.services.tenants import authenticate
from suanli.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    authority: ComputeId
    pool_index: PoolIndex | None = None  # None: pool search orders in SQL


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
