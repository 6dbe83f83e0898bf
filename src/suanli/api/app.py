"""Builds the FastAPI application of one platform node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from suanli import __version__
from suanli.adapters.clock import Clock
from suanli.adapters.store import Database
from suanli.api import audit_log, problems
from suanli.api import guard as key_guard
from suanli.api.body_limit import BodyLimit
from suanli.api.input_guard import guard
from suanli.api.routes import (
    audit,
    billing,
    calibration,
    entitlements,
    jobs,
    keys,
    platform,
    quotes,
    registry,
)
from suanli.api.routes import federation as federation_routes
from suanli.api.routes import market as market_routes
from suanli.bootstrap import build_node
from suanli.settings import Settings

DESCRIPTION = """suanli (算力) — a compute-power internet.

Every request but `/v1/health` needs an API key: `Authorization: Bearer <key>`.
Errors are `application/problem+json` (RFC 9457) and name the offending field.
"""
STATIC = "/static/docs"  # Swagger UI and ReDoc, shipped in the package: the docs work offline


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
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  lifespan=lifespan, dependencies=[Depends(guard)])
    app.add_middleware(BodyLimit, max_bytes=node.settings.max_body_bytes,
                       max_bulk_bytes=max(node.settings.max_body_bytes,
                                          node.settings.max_bulk_body_bytes))
    app.state.ctx = node
    problems.install(app)
    app.include_router(platform.router)
    app.include_router(registry.router)
    app.include_router(jobs.router)
    app.include_router(quotes.router)  # issue 10: POST /v1/quotes
    app.include_router(billing.router)
    app.include_router(calibration.router)
    app.include_router(federation_routes.router)  # issue 6: /federation/v1, /v1/federation
    app.include_router(market_routes.router)  # issue 14: /v1/market
    key_guard.install(app, node.settings)  # issue 12: rate limits and key scopes
    app.add_middleware(audit_log.AuditLog)  # issue 12: the audit log
    app.include_router(keys.router)  # issue 12: /v1/keys
    app.include_router(audit.router)  # issue 12: /v1/audit
    app.include_router(entitlements.router)  # issue 12: entitlements at the platform's price
    _serve_docs(app)
    return app


def _serve_docs(app: FastAPI) -> None:
    """FastAPI's "self-hosting JavaScript and CSS for docs" recipe, with the vendored assets."""
    static = resources.files("suanli.api").joinpath("static")
    app.mount(STATIC, StaticFiles(directory=str(static)), name="docs-static")
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="suanli API",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{STATIC}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png")

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="suanli API",
                              redoc_js_url=f"{STATIC}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png",
                              with_google_fonts=False)
