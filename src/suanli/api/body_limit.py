"""Caps the size of request bodies before anything reads them (authentication included)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from suanli.api.problems import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Routes that carry bulk by design: an agent's report with up to 4 MiB of logs, and the signed
# federation protocol (a clearing page of 10,000 records is ~3 MiB).
BULK_ROUTES = re.compile(r"^/(federation/v1/|v1/agents/[^/]+/leases/[^/]+/report$)")


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a body over the limit is answered 413 problem+json unread.

    A declared Content-Length over the limit is refused before one byte is read; a chunked
    body is counted as it arrives and refused at the first byte over.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_bulk_bytes: int) -> None:
        assert 0 < max_bytes <= max_bulk_bytes, "body limits must be positive, bulk >= default"
        self.app, self.max_bytes, self.max_bulk_bytes = app, max_bytes, max_bulk_bytes

    def limit_for(self, path: str) -> int:
        return self.max_bulk_bytes if BULK_ROUTES.match(path) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return
        received, started, refused = 0, False, False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await _refuse(scope, receive, send, limit)
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is out; what the app answers to the broken read is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not refused:
                raise


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            # a malformed length is the server's (uvicorn's) to refuse; here it counts as huge
            return int(text) if text.isdigit() and len(text) <= 18 else 1 << 62
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(413, "Content too large",
                       f"the request body exceeds {limit} bytes on this route",
                       instance=scope["path"], headers={"Connection": "close"})
    await response(scope, receive, send)
