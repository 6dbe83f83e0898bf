"""The spend book, the caps and the per-request policy, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from suanli.mcp.access import Access
from suanli.mcp.safety import (
    QUOTE_TTL_S,
    SESSION_IDLE_S,
    DailySpend,
    Session,
    Sessions,
    SpendPolicy,
    SpendRefused,
    check_caps,
)

NOON_BEIJING = datetime(2026, 11, 30, 4, tzinfo=UTC)
NEXT_DAY_BEIJING = datetime(2026, 11, 30, 16, 1, tzinfo=UTC)  # 00:01 in Beijing


def test_the_day_is_beijings_and_a_new_day_starts_at_zero(tmp_path: Path) -> None:
    book = DailySpend(tmp_path / "spend.json")
    assert book.add("k", 250, NOON_BEIJING) == 250
    assert book.add("k", 100, NOON_BEIJING) == 350
    assert book.spent_today("other", NOON_BEIJING) == 0
    assert book.spent_today("k", NEXT_DAY_BEIJING) == 0
    assert (tmp_path / "spend.json").stat().st_mode & 0o777 == 0o600


def test_an_unreadable_spend_book_refuses_rather_than_forgets(tmp_path: Path) -> None:
    path = tmp_path / "spend.json"
    path.write_text("{not json")
    with pytest.raises(SpendRefused, match="cannot read the spend book"):
        DailySpend(path).spent_today("k", NOON_BEIJING)


def test_the_book_keeps_no_key_only_fingerprints(tmp_path: Path) -> None:
    access = Access(SpendPolicy(), api_key="sl_secret_key")
    session = access.caller(None).session
    DailySpend(tmp_path / "s.json").add(session.key_fingerprint, 1, NOON_BEIJING)
    assert "sl_secret" not in (tmp_path / "s.json").read_text()


def test_caps_refuse_what_would_pass_them() -> None:
    policy = SpendPolicy(allow_spend=True, max_session_fen=1000, max_day_fen=1500)
    session = Session("k", spent_fen=600)
    check_caps(policy, session, spent_today_fen=600, cost_fen=400)  # exactly at the cap
    with pytest.raises(SpendRefused, match="session's spend cap"):
        check_caps(policy, session, spent_today_fen=600, cost_fen=401)
    with pytest.raises(SpendRefused, match="today's spend cap"):
        check_caps(policy, Session("k"), spent_today_fen=1200, cost_fen=301)


def test_a_quote_goes_stale() -> None:
    session = Session("k")
    spec = {"name": "a", "command": ["true"]}
    held = session.remember(spec, [])
    assert session.quote_for(held.quote_id, spec, held.made_at_s + QUOTE_TTL_S) is held
    with pytest.raises(SpendRefused, match="stale"):
        session.quote_for(held.quote_id, spec, held.made_at_s + QUOTE_TTL_S + 1)


def test_headers_can_lower_the_ceiling_never_raise_it() -> None:
    access = Access(SpendPolicy(allow_spend=True, max_session_fen=10_000, max_day_fen=50_000),
                    per_request=True)
    caller = access.caller({"Authorization": "Bearer k1", "X-Suanli-Allow-Spend": "true",
                            "X-Suanli-Max-Spend": "20", "X-Suanli-Max-Spend-Per-Day": "9999"})
    assert caller.api_key == "k1" and caller.policy.allow_spend
    assert caller.policy.max_session_fen == 2000 and caller.policy.max_day_fen == 50_000
    assert not access.caller({"Authorization": "Bearer k1"}).policy.allow_spend
    closed = Access(SpendPolicy(allow_spend=False), per_request=True)
    assert not closed.caller({"X-Suanli-Allow-Spend": "true"}).policy.allow_spend
    with pytest.raises(SpendRefused, match="amount in yuan"):
        access.caller({"X-Suanli-Max-Spend": "lots"})


def test_sessions_are_per_key_and_mcp_session() -> None:
    access = Access(SpendPolicy(), per_request=True)
    a = access.caller({"Authorization": "Bearer k1", "Mcp-Session-Id": "s1"}).session
    assert access.caller({"authorization": "Bearer k1", "mcp-session-id": "s1"}).session is a
    assert access.caller({"Authorization": "Bearer k2", "Mcp-Session-Id": "s1"}).session is not a
    assert access.caller({"Authorization": "Bearer k1", "Mcp-Session-Id": "s2"}).session is not a


def test_a_session_without_an_id_ends_after_an_idle_hour() -> None:
    sessions = Sessions()
    first = sessions.get("k1", None, now_s=0.0)
    first.spent_fen = 500
    assert sessions.get("k1", None, now_s=SESSION_IDLE_S) is first
    assert sessions.get("k1", None, now_s=2 * SESSION_IDLE_S + 1).spent_fen == 0
