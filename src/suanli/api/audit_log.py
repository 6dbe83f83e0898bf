"""Writes the audit log: every admin and money action (api.policy names them), taken or
refused, by an authenticated caller. The entry is committed before the answer leaves, so a
caller that saw its answer can find its entry.

A middleware rather than a line in each route: a new route cannot forget it, and a refused
request (403, 409, 422) is recorded as well as a taken one. Requests that never authenticated
are not actions of anyone; the rate limits of api.guard bound them instead.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suanli.api import policy
from suanli.domain.tenants import Principal
from suanli.services import audit

log = logging.getLogger("suanli.audit")
MAX_ANSWER_BYTES = 256 << 10  # answers of audited actions are small JSON documents
_WRITING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITING:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self.app(scope, receive, hold)
        finally:
            entry = _entry(scope, held)
            if entry is not None:
                await run_in_threadpool(_write, scope["app"].state.ctx, entry)
            for message in held:
                await send(message)


def _entry(scope: Scope, held: list[Message]) -> audit.AuditEntry | None:
    route = scope.get("route")
    principal = scope.get("state", {}).get("principal")
    if route is None or not isinstance(principal, Principal):
        return None
    rule = policy.rule_for(scope["method"], route.path)
    if rule.action is None:
        return None
    status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
    answer = _answer(held)
    params = scope.get("path_params") or {}
    target = ",".join(f"{name}={value}" for name in rule.target
                      if (value := params.get(name, answer.get(name))) not in (None, ""))
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers") or []}
    client = scope.get("client")
    ctx = scope["app"].state.ctx
    return audit.AuditEntry(
        at=ctx.clock.now(), action=rule.action, method=scope["method"], path=scope["path"],
        status=status, outcome=_outcome(status, answer), actor_tenant_id=principal.tenant_id,
        actor_key_id=principal.key_id, actor_role=principal.role.value,
        client=client[0] if client else None, target=target or None,
        idempotency_key=headers.get("idempotency-key"))


def _answer(held: list[Message]) -> dict[str, Any]:
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    if not body or len(body) > MAX_ANSWER_BYTES:
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _outcome(status: int, answer: dict[str, Any]) -> str:
    if status < 400:
        return "ok (replay)" if answer.get("created") is False else "ok"
    return f"refused: {answer.get('title', status)}: {answer.get('detail', '')}".strip(": ")


def _write(ctx: Any, entry: audit.AuditEntry) -> None:
    try:
        with ctx.db.unit_of_work() as session:
            audit.record(session, entry)
    except Exception:  # the action is done; losing its entry is logged loudly, never hidden
        log.exception("could not write the audit entry %s", entry)
