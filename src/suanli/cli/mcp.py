"""`suanli mcp`: serve the MCP tools over stdio to an assistant (Claude Desktop, Qwen-Agent)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from rich.console import Console

from suanli.cli import config
from suanli.cli.client import request, settings

SPEND_FILE = "mcp-spend.json"
err = Console(stderr=True, soft_wrap=True)  # stdout is the protocol's


def _fen(text: str, option: str) -> int:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount in yuan", param_hint=option) \
            from None
    if not amount.is_finite() or not 0 <= amount <= 10**9:
        raise typer.BadParameter("must be 0..1000000000 yuan", param_hint=option)
    return int((amount * 100).to_integral_value())


def mcp(
    allow_spend: Annotated[bool, typer.Option(
        help="offer submit_job, place_bid and the cancel tools (default: read-only)")] = False,
    max_spend: Annotated[str, typer.Option(
        help="yuan this server may commit in one session (a job counts its quote's "
             "estimate)")] = "100",
    max_spend_per_day: Annotated[str, typer.Option(
        help="yuan it may commit per day (Asia/Shanghai), over all sessions of your key; "
             "counted in mcp-spend.json in your config directory")] = "500",
    disable_destructive: Annotated[bool, typer.Option(
        help="never offer cancel_job or cancel_order")] = False,
) -> None:
    """Serve suanli's MCP tools over stdio (可对话): an assistant finds, quotes and, with
    --allow-spend, runs compute as you, with your key (`suanli login`, SUANLI_API_KEY)."""
    from suanli.mcp import stdio
    from suanli.mcp.safety import SpendPolicy

    current = settings()
    if current.api_key is None:
        err.print("[red]no API key: `suanli login --url URL --key KEY` or set "
                  "SUANLI_API_KEY[/red]")
        raise typer.Exit(2)
    policy = SpendPolicy(allow_spend=allow_spend, allow_destructive=not disable_destructive,
                         max_session_fen=_fen(max_spend, "--max-spend"),
                         max_day_fen=_fen(max_spend_per_day, "--max-spend-per-day"))
    me = request("GET", "/v1/me")  # a wrong key or a platform that is down: say so now
    mode = (f"spending up to {max_spend} yuan a session, {max_spend_per_day} a day"
            if allow_spend else "read-only")
    err.print(f"suanli MCP server on stdio for {current.url} as {me['id']} ({mode})")
    stdio.run(current.url, current.api_key, policy, config.config_path().parent / SPEND_FILE)
