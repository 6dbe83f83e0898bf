"""Console sessions: an API key exchanged for a signed, expiring session id kept server-side.

The key never reaches the page: the browser holds only `<session id>.<HMAC>` in an HttpOnly,
SameSite=Strict cookie, and the key stays in this process's memory until the session ends
(logout, expiry, or a restart, which signs everyone out).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

SESSION_COOKIE = "suanli_session"
LOGIN_CSRF_COOKIE = "suanli_login_csrf"  # double-submit token of the sign-in form
SESSION_TTL_S = 8 * 3600
MAX_SESSIONS = 10_000  # a bound on memory: the oldest session goes first past it


@dataclass
class ConsoleSession:
    id: str
    key: str
    tenant_id: str
    tenant_name: str
    role: str
    expires_at: float  # time.monotonic()
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


class SessionStore:
    """Sessions by id; the cookie carries the id signed with a per-process secret."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, max_sessions: int = MAX_SESSIONS) -> None:
        assert ttl_s > 0 and max_sessions > 0
        self._secret = secrets.token_bytes(32)
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def _sign(self, value: str) -> str:
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()

    def create(self, key: str, tenant_id: str, tenant_name: str,
               role: str) -> tuple[str, ConsoleSession]:
        """A new session and the cookie value that names it."""
        session = ConsoleSession(id=secrets.token_urlsafe(32), key=key, tenant_id=tenant_id,
                                 tenant_name=tenant_name, role=role,
                                 expires_at=time.monotonic() + self._ttl_s)
        with self._lock:
            self._drop_expired()
            while len(self._sessions) >= self._max:
                oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return f"{session.id}.{self._sign(session.id)}", session

    def get(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie names, or None (unsigned, forged, expired, ended)."""
        session_id = self._verified(cookie)
        if session_id is None:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.expires_at <= time.monotonic():
                self._sessions.pop(session_id, None)
                return None
            return session

    def end(self, cookie: str | None) -> None:
        session_id = self._verified(cookie)
        if session_id is not None:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _verified(self, cookie: str | None) -> str | None:
        session_id, _, signature = (cookie or "").partition(".")
        if not session_id or not hmac.compare_digest(signature, self._sign(session_id)):
            return None
        return session_id

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for gone in [s.id for s in self._sessions.values() if s.expires_at <= now]:
            del self._sessions[gone]

    def __len__(self) -> int:
        return len(self._sessions)


def same_token(presented: str | None, expected: str) -> bool:
    """A CSRF check: the form's token against the session's (or the sign-in cookie's)."""
    return bool(presented) and hmac.compare_digest(presented or "", expected)
