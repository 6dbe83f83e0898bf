"""What every console page needs: the session, the language, a form, a rendered page."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse

from suanli.console.client import Api
from suanli.console.i18n import DEFAULT_LANGUAGE, LANGUAGES
from suanli.console.sessions import SESSION_COOKIE, ConsoleSession, SessionStore, same_token
from suanli.console.views import CONTENT_SECURITY_POLICY, render_page

MAX_FORM_FIELDS = 64
MAX_FIELD_CHARS = 4000


class SignInRequired(Exception):
    """No live session: the page sends the browser to /login and back."""


class Forbidden(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadForm(Exception):
    pass


def sessions_of(request: Request) -> SessionStore:
    return request.app.state.console_sessions


def current(request: Request) -> ConsoleSession:
    """The signed-in session (a FastAPI dependency of every page)."""
    session = sessions_of(request).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired()
    return session


def api(request: Request, session: ConsoleSession) -> Api:
    return Api(request, session.key)


def language_of(request: Request) -> str:
    chosen = request.cookies.get("suanli_lang")
    if chosen in LANGUAGES:
        return chosen
    accepted = request.headers.get("accept-language", "").lower()
    return "zh" if accepted.startswith("zh") else DEFAULT_LANGUAGE


def local_path(target: str | None) -> str:
    """Only a path on this server: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's forms are all small), bounded."""
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    return {name: value for name, value in pairs if len(value) <= MAX_FIELD_CHARS}


async def checked_form(request: Request, session: ConsoleSession) -> dict[str, str]:
    """The form of a signed-in action, its CSRF token checked."""
    form = await read_form(request)
    if not same_token(form.get("csrf"), session.csrf):
        raise Forbidden("csrf")
    return form


def page(request: Request, template: str, context: dict[str, Any], *, status: int = 200,
         session: ConsoleSession | None = None, fragment: bool = False) -> HTMLResponse:
    if session is None and not fragment:
        session = sessions_of(request).get(request.cookies.get(SESSION_COOKIE))
    html = render_page(template, language_of(request), {
        "session": session, "csrf_token": session.csrf if session else "",
        "path": request.url.path, "query": request.url.query, **context})
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response
