"""`/mcp` on a served node: the MCP server over streamable HTTP, beside the /v1 API.

Each request's own key (its Authorization header) is the caller; tools call the same node's
API in-process (httpx's ASGI transport into the node's app), so every call passes the app's
middleware and routes exactly as a request from outside would: body limits, key scopes,
rate limits, audit. No loopback socket, and no need for the node to know its own URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from suanli.mcp.access import Access
from suanli.mcp.platform import Platform
from suanli.mcp.safety import DailySpend, SpendPolicy
from suanli.mcp.server import build_server

PATH = "/mcp"


def mount(app: Starlette, *, spend_file: Path, host: str,
          ceiling: SpendPolicy | None = None) -> None:
    """Add `/mcp` to `app` and run the MCP session manager inside the app's lifespan.

    `ceiling` is the most any caller may allow itself with the X-Suanli-* headers; by
    default a caller may enable spending (its key's scopes still decide) within 100 yuan a
    session and 500 a day.
    """
    policy = ceiling or SpendPolicy(allow_spend=True)
    server = build_server(Platform.in_process(app), Access(policy, per_request=True),
                          DailySpend(spend_file), list_spending_tools=True,
                          list_destructive_tools=policy.allow_destructive)
    # DNS-rebinding protection stays on when the node listens on loopback.
    http_app = server.streamable_http_app(streamable_http_path=PATH, host=host)
    app.router.routes.extend(http_app.routes)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[Any]:
        async with inner(owner) as state, server.session_manager.run():
            yield state

    app.router.lifespan_context = lifespan
