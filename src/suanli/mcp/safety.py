"""Spend safety enforced by the MCP server, not by the model: quotes first, caps, modes.

- A job is submitted only with the id of a quote this server made in the same session, for
  the same spec, less than QUOTE_TTL_S old; the job is pinned to the quoted pool and price.
- Its estimated cost (the quote's estimate for the whole time limit) must fit the session's
  cap and the day's cap (Asia/Shanghai day) left; what was committed is recorded in a
  `DailySpend` file so a restarted server, or a second one on the same file, still counts it.
- Spending and destructive tools exist only when the server was started to allow them; the
  key's scopes, role and tenant are still the platform's to check on every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

QUOTE_TTL_S = 300  # a quote older than this is stale: prices and free devices move
MAX_QUOTES_PER_SESSION = 64
MAX_SESSIONS = 1024
# Clients of the 2026 protocol send no session id: their "session" is one key's calls with
# no pause longer than this (a handshake-era client's Mcp-Session-Id is a session itself).
SESSION_IDLE_S = 3600
MAX_SPEND_FILE_BYTES = 1 << 20
MAX_KEYS_PER_DAY = 10_000
CHINA = timezone(timedelta(hours=8))  # bills and days are Asia/Shanghai (no DST)


class SpendRefused(Exception):
    """A spending call this server refuses; the message says why and what to do."""


@dataclass(frozen=True)
class SpendPolicy:
    """What the server was started to allow (`suanli mcp --allow-spend --max-spend 500`)."""

    allow_spend: bool = False
    allow_destructive: bool = True
    max_session_fen: int = 100_00
    max_day_fen: int = 500_00

    def __post_init__(self) -> None:
        assert self.max_session_fen >= 0 and self.max_day_fen >= 0


@dataclass(frozen=True)
class HeldQuote:
    quote_id: str
    spec_digest: str
    spec: dict[str, Any]
    options: tuple[dict[str, Any], ...]  # the platform's quote options, rank 1 first
    made_at_s: float  # time.monotonic()


@dataclass
class Session:
    """One assistant's conversation: its quotes and what it has committed."""

    key_fingerprint: str
    quotes: OrderedDict[str, HeldQuote] = field(default_factory=OrderedDict)
    spent_fen: int = 0
    used_at_s: float = field(default_factory=time.monotonic)

    def remember(self, spec: dict[str, Any], options: list[dict[str, Any]]) -> HeldQuote:
        held = HeldQuote("q_" + secrets.token_urlsafe(9), spec_digest(spec), spec,
                         tuple(options), time.monotonic())
        self.quotes[held.quote_id] = held
        while len(self.quotes) > MAX_QUOTES_PER_SESSION:
            self.quotes.popitem(last=False)
        return held

    def quote_for(self, quote_id: str, spec: dict[str, Any], now_s: float) -> HeldQuote:
        held = self.quotes.get(quote_id)
        if held is None:
            raise SpendRefused(f"no quote {quote_id!r} in this session: call quote_job first "
                               "and pass back the quote_id it returns")
        if now_s - held.made_at_s > QUOTE_TTL_S:
            raise SpendRefused(f"quote {quote_id} is stale (older than {QUOTE_TTL_S} s): "
                               "quote again, prices and free devices move")
        if spec_digest(spec) != held.spec_digest:
            raise SpendRefused(f"the job differs from what quote {quote_id} priced: quote "
                               "this exact job again")
        return held


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


def fingerprint(api_key: str | None) -> str:
    """Who a key is, without keeping the key: its SHA-256, shortened."""
    return hashlib.sha256((api_key or "").encode()).hexdigest()[:24]


class Sessions:
    """Sessions by (key, MCP session id); one idle over SESSION_IDLE_S starts afresh, the
    least recently used goes beyond MAX_SESSIONS."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, str], Session] = OrderedDict()
        self._key_locks: OrderedDict[str, asyncio.Lock] = OrderedDict()

    def key_lock(self, key_fingerprint: str) -> asyncio.Lock:
        """One commitment at a time per key in this process, over all its sessions, so the
        day cap is checked and recorded as one step (idle locks beyond MAX_SESSIONS go)."""
        lock = self._key_locks.pop(key_fingerprint, None) or asyncio.Lock()
        self._key_locks[key_fingerprint] = lock
        for stale in [k for k, v in self._key_locks.items() if not v.locked()]:
            if len(self._key_locks) <= MAX_SESSIONS:
                break
            del self._key_locks[stale]
        return lock

    def get(self, api_key: str | None, session_id: str | None,
            now_s: float | None = None) -> Session:
        key = (fingerprint(api_key), session_id or "-")
        now_s = time.monotonic() if now_s is None else now_s
        found = self._items.get(key)
        if found is None or now_s - found.used_at_s > SESSION_IDLE_S:
            found = self._items[key] = Session(key[0])
            while len(self._items) > MAX_SESSIONS:
                self._items.popitem(last=False)
        found.used_at_s = now_s
        self._items.move_to_end(key)
        return found


class DailySpend:
    """What each key committed through MCP today (Asia/Shanghai), in a small JSON file.

    The user's config directory for `suanli mcp` (the caps are the user's own), a file beside
    the node's database for `/mcp`. Replaced atomically under a lock; mode 0600.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def spent_today(self, key_fingerprint: str, now: datetime) -> int:
        with self._lock:
            return int(self._read(now).get(key_fingerprint, 0))

    def add(self, key_fingerprint: str, amount_fen: int, now: datetime) -> int:
        assert amount_fen >= 0
        with self._lock:
            spent = self._read(now)
            if key_fingerprint not in spent and len(spent) >= MAX_KEYS_PER_DAY:
                raise SpendRefused("the spend book is full for today")
            spent[key_fingerprint] = int(spent.get(key_fingerprint, 0)) + amount_fen
            self._write(now, spent)
            return spent[key_fingerprint]

    def _read(self, now: datetime) -> dict[str, int]:
        try:
            if self.path.stat().st_size > MAX_SPEND_FILE_BYTES:
                raise SpendRefused(f"{self.path} is larger than {MAX_SPEND_FILE_BYTES} bytes")
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # refusing is safer than forgetting what was spent
            raise SpendRefused(f"cannot read the spend book {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("day") != _day(now):
            return {}
        spent = data.get("spent_fen", {})
        return {k: int(v) for k, v in spent.items()} if isinstance(spent, dict) else {}

    def _write(self, now: datetime, spent: dict[str, int]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"day": _day(now), "spent_fen": spent}, fh)
        os.replace(tmp, self.path)


def _day(now: datetime) -> str:
    return now.astimezone(CHINA).date().isoformat()


def check_caps(policy: SpendPolicy, session: Session, spent_today_fen: int,
               cost_fen: int) -> None:
    """Refuse a commitment of `cost_fen` that would pass either cap."""
    if session.spent_fen + cost_fen > policy.max_session_fen:
        raise SpendRefused(
            f"over the session's spend cap: this job is estimated at {yuan(cost_fen)} yuan, "
            f"{yuan(session.spent_fen)} of {yuan(policy.max_session_fen)} yuan already "
            "committed in this session (suanli mcp --max-spend)")
    if spent_today_fen + cost_fen > policy.max_day_fen:
        raise SpendRefused(
            f"over today's spend cap: this job is estimated at {yuan(cost_fen)} yuan, "
            f"{yuan(spent_today_fen)} of {yuan(policy.max_day_fen)} yuan already committed "
            "today (suanli mcp --max-spend-per-day)")


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
