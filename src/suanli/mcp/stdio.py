"""`suanli mcp`: the MCP server over stdio for an assistant on this machine."""

from __future__ import annotations

from pathlib import Path

import asyncio

from suanli.mcp.access import Access
from suanli.mcp.platform import Platform
from suanli.mcp.safety import DailySpend, SpendPolicy
from suanli.mcp.server import build_server


def run(url: str, api_key: str | None, policy: SpendPolicy, spend_file: Path) -> None:
    """Serve one assistant on stdin/stdout until it closes them."""
    platform = Platform.remote(url)
    server = build_server(platform, Access(policy, api_key=api_key), DailySpend(spend_file),
                          list_spending_tools=policy.allow_spend,
                          list_destructive_tools=policy.allow_spend and policy.allow_destructive)

    async def main() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await platform.aclose()

    asyncio.run(main())
