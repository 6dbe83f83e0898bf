"""Errors as problem+json (RFC 9457): the one place that maps each typed error to HTTP."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from suanli.adapters.engines.base import EngineError, EngineUnavailable
from suanli.adapters.store.database import DATABASE_ERRORS, is_outage
from suanli.domain.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    NotFound,
    PlacementInfeasible,
    RateLimited,
    SuanliError,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from suanli.domain.federation import KeyRevoked, SignatureRejected

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://suanli.dev/problems/"
RETRY_AFTER_S = 5  # what a client waits before trying a request that met an outage again
log = logging.getLogger("suanli.api")

# Most specific first is not needed: the error's own class and then its bases are looked up.
STATUS: dict[type[SuanliError], tuple[int, str]] = {
    SuanliError: (400, "Bad request"),
    ValidationFailed: (422, "Validation failed"),
    NotFound: (404, "Not found"),
    Conflict: (409, "Conflict"),
    Unauthenticated: (401, "Unauthenticated"),
    SignatureRejected: (401, "Signature rejected"),
    Forbidden: (403, "Forbidden"),
    KeyRevoked: (403, "Key revoked"),
    InsufficientFunds: (402, "Insufficient funds"),
    PlacementInfeasible: (409, "Placement infeasible"),
    Unavailable: (503, "Service unavailable"),
    RateLimited: (429, "Too many requests"),
    EngineError: (502, "Engine error"),
    EngineUnavailable: (503, "Engine unavailable"),
}
_HTTP_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed",
                413: "Content too large", 415: "Unsupported media type"}


def status_of(error: SuanliError) -> tuple[int, str]:
    """The HTTP status and problem title of a typed error."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    raise AssertionError(f"{type(error).__name__} is not a SuanliError")


def problem(status: int, title: str, detail: str, *, instance: str,
            errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extensions,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def invalid(field: str, reason: str, *, instance: str) -> JSONResponse:
    """A 422 naming one field, for checks made before a route runs."""
    return problem(422, "Validation failed", f"{field}: {reason}", instance=instance,
                   errors=[{"field": field, "reason": reason}])


def unavailable(detail: str, *, instance: str, **extensions: Any) -> JSONResponse:
    return problem(503, "Service unavailable", detail, instance=instance,
                   headers={"Retry-After": str(RETRY_AFTER_S)}, **extensions)


def field_path(parts: list[str | int]) -> str:
    """How errors name a field: `tiers[0].from_quantity`, `env.HOME` (as the domain does)."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_of(location: tuple) -> str:
    # Pydantic locations start with where the value came from ("body", "query", "path").
    parts = [part for part in location[1:] if part not in ("__root__", "[key]")]
    return field_path(parts) or str(location[0])


def _reason(message: str) -> str:
    # Pydantic prefixes the text of a validator's ValueError; the reason reads better without.
    return message.removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    @app.exception_handler(SuanliError)
    async def _suanli(request: Request, exc: SuanliError) -> JSONResponse:
        status, title = status_of(exc)
        errors = [{"field": exc.field, "reason": exc.detail}] if exc.field else None
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
        detail = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
        return problem(status, title, detail, instance=request.url.path, errors=errors,
                       headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_of(tuple(error["loc"])), "reason": _reason(error["msg"])}
                  for error in exc.errors()]
        detail = "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
        return problem(422, "Validation failed", detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _HTTP_TITLES.get(exc.status_code, "HTTP error")
        return problem(exc.status_code, title, str(exc.detail), instance=request.url.path,
                       headers=getattr(exc, "headers", None))

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_outage(exc):
            raise exc  # a fault, not an outage: a logged 500 below
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0])
        return unavailable("the database is unavailable; try again shortly",
                           instance=request.url.path)

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback and re-raises after this answer is sent.
        return problem(500, "Internal error", "the server failed; the error is logged",
                       instance=request.url.path)
