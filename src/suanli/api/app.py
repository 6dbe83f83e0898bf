"""Builds the FastAPI application of one platform node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from suanli import __version__
from suanli.adapters.clock import Clock
from suanli.adapters.store import Database
from suanli.api import audit_log, guard, problems
from suanli.api.routes import (
    audit,
    billing,
    calibration,
    entitlements,
    jobs,
    keys,
    platform,
    registry,
)
from suanli.api.routes import federation as federation_routes
from suanli.bootstrap import build_node
from suanli.settings import Settings

DESCRIPTION = """suanli (算力) — a compute-power internet.

Every request but `/v1/health` needs an API key: `Authorization: Bearer <key>`.
Errors are `application/problem+json` (RFC 9457) and name the offending field.
"""


def create_app(settings: Settings | None = None, *, database: Database | None = None,
               clock: Clock | None = None) -> FastAPI:
    """The HTTP face of one node (built by `bootstrap.build_node`); its lifespan starts and
    stops the node's background work."""
    node = build_node(settings, database=database, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(node.start)
        try:
            yield
        finally:
            await run_in_threadpool(node.stop)

    app = FastAPI(title="suanli", version=__version__, description=DESCRIPTION,
                  docs_url="/docs", openapi_url="/openapi.json", lifespan=lifespan)
    app.state.ctx = node
    problems.install(app)
    app.include_router(platform.router)
    app.include_router(registry.router)
    app.include_router(jobs.router)
    app.include_router(billing.router)
    app.include_router(calibration.router)
    app.include_router(federation_routes.router)  # issue 6: /federation/v1, /v1/federation
    guard.install(app, node.settings)  # issue 12: rate limits and key scopes
    app.add_middleware(audit_log.AuditLog)  # issue 12: the audit log
    app.include_router(keys.router)  # issue 12: /v1/keys
    app.include_router(audit.router)  # issue 12: /v1/audit
    app.include_router(entitlements.router)  # issue 12: entitlements at the platform's price
    return app
