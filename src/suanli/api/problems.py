"""Errors as problem+json (RFC 9457), mapped from the typed errors in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from suanli.domain.errors import SuanliError

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://suanli.dev/problems/"


def problem(status: int, title: str, detail: str, *, instance: str,
            errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {
        "type": TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_of(location: tuple) -> str:
    # Pydantic locations start with where the value came from ("body", "query", "path").
    parts = [str(part) for part in location[1:] if part != "__root__"] or [str(location[0])]
    return ".".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(SuanliError)
    async def _suanli(request: Request, exc: SuanliError) -> JSONResponse:
        errors = [{"field": exc.field, "reason": exc.detail}] if exc.field else None
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        detail = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
        return problem(exc.status, exc.title, detail, instance=request.url.path, errors=errors,
                       headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_of(tuple(error["loc"])), "reason": error["msg"]}
                  for error in exc.errors()]
        detail = "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
        return problem(422, "Validation failed", detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return problem(exc.status_code, title, str(exc.detail), instance=request.url.path)
