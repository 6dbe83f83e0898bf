"""Who is calling and what they allowed: the key, the session and the spend policy of a call.

Over stdio the key and the policy are the process's (`suanli mcp` flags, `suanli login`).
Over HTTP each request carries its own: `Authorization: Bearer <key>`, the MCP session id,
and `X-Suanli-Allow-Spend` / `X-Suanli-Max-Spend` / `X-Suanli-Max-Spend-Per-Day` (yuan),
which can only lower the node's ceiling, never raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from suanli.mcp.safety import Session, Sessions, SpendPolicy, SpendRefused

ALLOW_SPEND = "x-suanli-allow-spend"
MAX_SPEND = "x-suanli-max-spend"
MAX_SPEND_PER_DAY = "x-suanli-max-spend-per-day"
SESSION_HEADER = "mcp-session-id"


@dataclass(frozen=True)
class Caller:
    api_key: str | None
    session: Session
    policy: SpendPolicy


class Access:
    """Resolves each tool call to a Caller."""

    def __init__(self, policy: SpendPolicy, *, api_key: str | None = None,
                 per_request: bool = False) -> None:
        self.policy = policy
        self.api_key = api_key
        self.per_request = per_request
        self.sessions = Sessions()

    def caller(self, headers: Mapping[str, str] | None) -> Caller:
        if not self.per_request or headers is None:
            return Caller(self.api_key, self.sessions.get(self.api_key, "stdio"), self.policy)
        lower = {k.lower(): v for k, v in headers.items()}
        auth = lower.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        session = self.sessions.get(key, lower.get(SESSION_HEADER))
        return Caller(key, session, _lowered(self.policy, lower))


def _lowered(ceiling: SpendPolicy, headers: Mapping[str, str]) -> SpendPolicy:
    allow = headers.get(ALLOW_SPEND, "").strip().lower() in ("1", "true", "yes")
    policy = replace(ceiling, allow_spend=ceiling.allow_spend and allow)
    for header, name in ((MAX_SPEND, "max_session_fen"), (MAX_SPEND_PER_DAY, "max_day_fen")):
        if header in headers:
            fen = _fen(headers[header], header)
            policy = replace(policy, **{name: min(fen, getattr(policy, name))})
    return policy


def _fen(value: str, header: str) -> int:
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise SpendRefused(f"{header} must be an amount in yuan, got {value[:40]!r}") from None
    if not amount.is_finite() or amount < 0 or amount > 10**9:
        raise SpendRefused(f"{header} must be 0..1000000000 yuan")
    return int((amount * 100).to_integral_value())
