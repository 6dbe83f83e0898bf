"""Builds the FastAPI application of one platform node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from suanli import __version__
from suanli.adapters.clock import Clock, SystemClock
from suanli.adapters.store import Database, create_database
from suanli.api import problems
from suanli.api.context import AppContext
from suanli.api.routes import billing, calibration, jobs, platform, quotes, registry
from suanli.api.routes import federation as federation_routes
from suanli.services.background import SchedulerLoop
from suanli.services.bootstrap import parse_authority
from suanli.services.pool_index import PoolIndex
from suanli.settings import Settings

DESCRIPTION = """suanli (算力) — a compute-power internet.

Every request but `/v1/health` needs an API key: `Authorization: Bearer <key>`.
Errors are `application/problem+json` (RFC 9457) and name the offending field.
"""


def create_app(settings: Settings | None = None, *, database: Database | None = None,
               clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    if database is None:
        database = create_database(settings.database_url, schema=settings.database_schema)
        if settings.auto_migrate:
            database.migrate()
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = None
        if settings.run_scheduler:
            loop = SchedulerLoop(app.state.ctx.db, app.state.ctx.clock,
                                 settings.scheduler_interval_s,
                                 heartbeat_ttl_s=settings.heartbeat_ttl_s,
                                 claim_timeout_s=settings.claim_timeout_s)
            loop.start()
        if app.state.ctx.pool_index is not None:
            app.state.ctx.pool_index.warm(app.state.ctx.db.engine)
        yield
        if loop is not None:
            loop.stop()

    app = FastAPI(title="suanli", version=__version__, description=DESCRIPTION,
                  docs_url="/docs", openapi_url="/openapi.json", lifespan=lifespan)
    app.state.ctx = AppContext(settings=settings, db=database, clock=clock or SystemClock(),
                               authority=parse_authority(settings.authority),
                               pool_index=(PoolIndex(background=True) if settings.search_index
                                           else None))
    problems.install(app)
    app.include_router(platform.router)
    app.include_router(registry.router)
    app.include_router(jobs.router)
    app.include_router(quotes.router)  # issue 10: POST /v1/quotes
    app.include_router(billing.router)
    app.include_router(calibration.router)
    app.include_router(federation_routes.router)  # issue 6: /federation/v1, /v1/federation
    return app
