"""Installs the console on a node's app: static files, sign-in and out, the language switch,
and the error pages; the pages themselves are in `pages_*.py`."""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from suanli.console import pages_jobs, pages_money, pages_overview
from suanli.console.client import Api, ApiError
from suanli.console.common import (
    Forbidden,
    SignInRequired,
    local_path,
    page,
    read_form,
    sessions_of,
)
from suanli.console.i18n import LANGUAGES
from suanli.console.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SessionStore,
    same_token,
)

STATIC = "/static/console"
LANG_COOKIE = "suanli_lang"
MAX_KEY_CHARS = 200

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """The console at `/` of an app built by `suanli.api.app.create_app`."""
    app.state.console_sessions = SessionStore()
    static = resources.files("suanli.console").joinpath("static")
    app.mount(STATIC, StaticFiles(directory=str(static)), name="console-static")
    app.include_router(router)
    app.include_router(pages_overview.router)
    app.include_router(pages_jobs.router)
    app.include_router(pages_money.router)
    app.add_exception_handler(SignInRequired, _to_sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]


def _cookie(response: Response, request: Request, name: str, value: str,
            max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


async def _to_sign_in(request: Request, exc: SignInRequired) -> Response:
    if request.headers.get("HX-Request"):  # a poll: send the whole page, not the fragment
        target = request.headers.get("HX-Current-URL", "/")
        target = local_path("/" + target.split("/", 3)[-1] if "://" in target else target)
        return Response(status_code=204, headers={
            "HX-Redirect": f"/login?next={quote(target)}"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _forbidden(request: Request, exc: Forbidden) -> Response:
    return page(request, "error.html", {"status": 403, "detail": exc.detail}, status=403)


async def _api_error(request: Request, exc: ApiError) -> Response:
    """What the API refused, shown as a page with the API's status (404 for another
    tenant's job: the API does not say whether it exists)."""
    if exc.status == 401:
        return await _to_sign_in(request, SignInRequired())
    return page(request, "error.html", {"status": exc.status, "detail": exc.detail},
                status=exc.status if exc.status >= 400 else 502)


@router.get("/login")
def login_form(request: Request, next: str = "/", error: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", {"csrf": token, "next": local_path(next),
                                            "error": error}, session=None)
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    if not same_token(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return page(request, "error.html", {"status": 403, "detail": "csrf"}, status=403)
    key = form.get("key", "").strip()
    target = local_path(form.get("next", "/"))
    if not key or len(key) > MAX_KEY_CHARS:
        return RedirectResponse(f"/login?error=key&next={quote(target)}", status_code=303)
    try:  # the API's own authentication, failed-guess limits included
        me: dict[str, Any] = await Api(request, key).get("/v1/me")
    except ApiError as error:
        reason = "limited" if error.status == 429 else "key"
        return RedirectResponse(f"/login?error={reason}&next={quote(target)}", status_code=303)
    cookie, _ = sessions_of(request).create(key, me["id"], me["name"], me["role"])
    response = RedirectResponse(target, status_code=303)
    _cookie(response, request, SESSION_COOKIE, cookie, max_age=int(
        sessions_of(request).ttl_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    store: SessionStore = sessions_of(request)
    session = store.get(request.cookies.get(SESSION_COOKIE))
    if session is not None and not same_token(form.get("csrf"), session.csrf):
        return page(request, "error.html", {"status": 403, "detail": "csrf"}, status=403)
    store.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    """A preference, not an action: a plain link, so it needs no CSRF token."""
    response = RedirectResponse(local_path(next), status_code=303)
    if code in LANGUAGES:
        _cookie(response, request, LANG_COOKIE, code, max_age=365 * 86400)
    return response

