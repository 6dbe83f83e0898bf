"""Submitting through the tools with a stand-in platform: concurrency and what is sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from suanli.mcp.access import Access
from suanli.mcp.models import JobSpecIn
from suanli.mcp.platform import Platform
from suanli.mcp.safety import DailySpend, SpendPolicy
from suanli.mcp.tools import Tools

JOB = JobSpecIn(name="a", command=["true"], device_kind="cpu")
OPTION = {"rank": 1, "pool_id": "CN.P1", "accelerator": "x", "province": "CN-GZ",
          "city": "Guiyang", "hub": "guizhou", "free_devices": 4,
          "price_fen_per_device_hour": 600, "score": 1.0, "placement": {},
          "estimate": {"estimated_cost_fen": 600, "hold_fen": 700}}


class StandIn(Platform):
    """Answers quotes with one 6-yuan option and jobs with what was sent, slowly enough for
    two calls to interleave."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def call(self, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)
        if path == "/v1/quotes":
            return {"candidates": 1, "options": [OPTION], "message": ""}
        self.sent.append({"path": path, **kwargs})
        return {"id": f"CN.J{len(self.sent)}", "name": "a", "state": "placed",
                "pool_id": kwargs["json"]["pool_id"], "created_at": "2026-11-30T00:00:00Z"}


def test_two_sessions_of_one_key_cannot_pass_the_day_cap_together(tmp_path: Path) -> None:
    platform = StandIn()
    access = Access(SpendPolicy(allow_spend=True, max_session_fen=1000, max_day_fen=1000),
                    per_request=True)
    tools = Tools(platform, access, DailySpend(tmp_path / "spend.json"),
                  lambda: datetime(2026, 11, 30, 4, tzinfo=UTC))

    async def attempt(session_id: str) -> str:
        caller = access.caller({"Authorization": "Bearer k", "Mcp-Session-Id": session_id,
                                "X-Suanli-Allow-Spend": "true"})
        quote = await tools.quote(caller, JOB, 1)
        try:
            await tools.submit(caller, quote.quote_id, JOB, 1)
        except ToolError as exc:
            return str(exc)
        return "submitted"

    async def both() -> list[str]:
        return list(await asyncio.gather(attempt("s1"), attempt("s2")))

    outcomes = asyncio.run(both())
    assert sorted(outcomes)[1] == "submitted" and "today's spend cap" in sorted(outcomes)[0]
    assert len(platform.sent) == 1
    sent = platform.sent[0]
    assert sent["json"]["pool_id"] == "CN.P1"  # pinned to the quoted pool ...
    assert sent["json"]["max_price_fen_per_device_hour"] == 600  # ... at its quoted price
    assert sent["idempotency_key"].startswith("mcp-q_")
