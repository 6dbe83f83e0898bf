"""The MCP server: suanli's tools, resources and prompts, each a call to /v1 as the caller.

Tool names are English; each description gives the Chinese name too, so an assistant asked
in either language finds them. Reading tools are always there; `submit_job` exists only when
spending is allowed, `cancel_job` / `cancel_order` only when destructive tools are not
disabled (over HTTP both are listed and each call is checked against the caller's policy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from suanli import __version__
from suanli.domain import ask as asking
from suanli.mcp import prompts
from suanli.mcp.access import Access, Caller
from suanli.mcp.models import (
    AskOut,
    BidOut,
    JobListOut,
    JobOut,
    JobSpecIn,
    MarketQuoteOut,
    MarketShapeIn,
    PlatformAnswer,
    PoolSearchOut,
    QuoteJobOut,
    SpendStatusOut,
    SubmitOut,
    UtilisationOut,
    UtilisationRow,
)
from suanli.mcp.platform import Platform
from suanli.mcp.safety import CHINA, DailySpend
from suanli.mcp.tools import Tools, job_out

INSTRUCTIONS = """suanli (算力) finds, prices, runs and bills compute across many operators.
Find pools with search_pools (or ask, for a request in words); price a job with quote_job;
submit it with submit_job and the quote_id quote_job returned (the same job, within the
caps spend_status shows). Money is in fen (1 yuan = 100 fen). The platform enforces your
key's role, tenant and scopes on every call."""

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTROY = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                          open_world_hint=False)
Limit = Annotated[int, Field(ge=1, le=50, description="at most this many")]
Text = Annotated[str, Field(min_length=1, max_length=asking.MAX_ASK_CHARS)]


def build_server(platform: Platform, access: Access, daily: DailySpend, *,
                 list_spending_tools: bool, list_destructive_tools: bool,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> MCPServer:
    """The server; `list_*` decide which writing tools exist at all (stdio: the flags)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    server = MCPServer("suanli", title="suanli (算力)", instructions=INSTRUCTIONS,
                       version=__version__, log_level="WARNING")
    # The SDK configures the root logger (basicConfig); the node's logging is its own.
    root.setLevel(level)
    root.handlers[:] = handlers
    tools = Tools(platform, access, daily, now)
    _reading_tools(server, tools)
    if list_spending_tools:
        _spending_tools(server, tools)
    if list_destructive_tools:
        _destructive_tools(server, tools)
    prompts.register(server, tools)
    return server


def _reading_tools(server: MCPServer, tools: Tools) -> None:  # noqa: C901 - one table
    @server.tool(annotations=READ)
    async def search_pools(
        ctx: Context,
        accelerator: str | None = None, vendor: str | None = None,
        device_kind: str | None = None, workload_class: str = "general",
        province: str | None = None, hub: str | None = None, near_city: str | None = None,
        min_memory_gb: float | None = None, max_fen_per_device_hour: int | None = None,
        min_green_share: str | None = None,
        sort: Annotated[str, Field(description="price_per_unit, price, latency (with "
                                               "near_city), green or free")] = "price_per_unit",
        limit: Limit = 10,
    ) -> PoolSearchOut:
        """Search this platform's pools (搜索算力池) by accelerator, vendor, kind, region, price
        and green-power share; with near_city, each hit has its modelled latency."""
        params = {"accelerator": accelerator, "vendor": vendor, "device_kind": device_kind,
                  "workload_class": workload_class, "province": province, "hub": hub,
                  "near_city": near_city, "min_memory_gb": min_memory_gb,
                  "max_fen_per_device_hour": max_fen_per_device_hour,
                  "min_green_share": min_green_share, "sort": sort, "limit": limit}
        body = await tools.call(tools.caller(ctx), "GET", "/v1/pools", params=params)
        return PoolSearchOut.model_validate(body)

    @server.tool(annotations=READ)
    async def federated_catalog(ctx: Context, accelerator: str | None = None,
                                device_kind: str | None = None, hub: str | None = None,
                                province: str | None = None, limit: Limit = 20
                                ) -> PlatformAnswer:
        """Pool summaries over the whole federation tree (联邦算力目录), cheapest first."""
        params = {"accelerator": accelerator, "device_kind": device_kind, "hub": hub,
                  "province": province, "limit": limit}
        path = "/v1/federation/catalog"
        return PlatformAnswer(path=path, body=await tools.call(tools.caller(ctx), "GET", path,
                                                               params=params))

    @server.tool(annotations=READ)
    async def list_accelerators(ctx: Context, vendor: str | None = None,
                                kind: str | None = None) -> PlatformAnswer:
        """The accelerator catalog (加速卡目录): keys to use as `accelerator`, datasheets."""
        path = "/v1/catalog/accelerators"
        return PlatformAnswer(path=path, body=await tools.call(
            tools.caller(ctx), "GET", path, params={"vendor": vendor, "kind": kind}))

    @server.tool(annotations=READ)
    async def compute_unit(ctx: Context) -> PlatformAnswer:
        """The standard compute unit (标准算力单位, SCU) and each accelerator's rating."""
        return PlatformAnswer(path="/v1/units",
                              body=await tools.call(tools.caller(ctx), "GET", "/v1/units"))

    @server.tool(annotations=READ)
    async def ask(text: Text) -> AskOut:
        """Read a request in Chinese or English (自然语言需求) into search_pools arguments and
        quote_job fields; unknown and ambiguous words are listed, never guessed."""
        return tools.ask(text)

    @server.tool(annotations=READ)
    async def quote_job(ctx: Context, job: JobSpecIn,
                        options: Annotated[int, Field(ge=1, le=10)] = 3,
                        near_city: Annotated[str | None, Field(
                            description="give each option's modelled latency from here")]
                        = None) -> QuoteJobOut:
        """Price a job before running it (作业报价): the best pools now, each with the cost
        for the whole time limit, start, energy, carbon, latency and the placement's reason.
        Returns a quote_id that submit_job needs. Reserves nothing."""
        return await tools.quote(tools.caller(ctx), job, options, near_city)

    @server.tool(annotations=READ)
    async def market_quote(ctx: Context, block: MarketShapeIn) -> MarketQuoteOut:
        """Ask the exchange for quotes on a block of hours (询价): every pool that can serve
        it, cheapest first, with the escrow a bid would hold. Returns a quote_id that
        place_bid needs. Commits nobody."""
        return await tools.market_quote(tools.caller(ctx), block)

    @server.tool(annotations=READ)
    async def spend_status(ctx: Context) -> SpendStatusOut:
        """What this server may still spend for you (花费上限): caps and what is committed."""
        return tools.status(tools.caller(ctx))

    @server.tool(annotations=READ)
    async def list_jobs(ctx: Context, state: str | None = None, limit: Limit = 20
                        ) -> JobListOut:
        """Your jobs (我的作业), newest first; only your tenant's are visible."""
        body = await tools.call(tools.caller(ctx), "GET", "/v1/jobs",
                                params={"state": state, "limit": limit})
        return JobListOut(items=[job_out(j) for j in body["items"]],
                          next_offset=body.get("next_offset"))

    @server.tool(annotations=READ)
    async def job_status(ctx: Context, job_id: str) -> JobOut:
        """One job's state, pool, exit code and cost so far (作业状态)."""
        return job_out(await tools.call(tools.caller(ctx), "GET", f"/v1/jobs/{job_id}"))

    @server.tool(annotations=READ)
    async def job_logs(ctx: Context, job_id: str) -> str:
        """The job's output as its agent reported it (作业日志)."""
        return str(await tools.call(tools.caller(ctx), "GET", f"/v1/jobs/{job_id}/logs",
                                    text=True))

    @server.tool(annotations=READ)
    async def bill(ctx: Context, period: Annotated[str | None, Field(
            description="YYYY-MM; default this month (Asia/Shanghai)")] = None
                   ) -> PlatformAnswer:
        """Your bill for a month (账单): each job's usage, vouchers, totals, wallet movement."""
        month = period or tools.now().astimezone(CHINA).strftime("%Y-%m")
        path = f"/v1/bills/{month}"
        return PlatformAnswer(path=path, body=await tools.call(tools.caller(ctx), "GET", path))

    @server.tool(annotations=READ)
    async def balance(ctx: Context) -> PlatformAnswer:
        """Your wallet (余额): balance, holds, billing mode."""
        return PlatformAnswer(path="/v1/wallet",
                              body=await tools.call(tools.caller(ctx), "GET", "/v1/wallet"))

    @server.tool(annotations=READ)
    async def vouchers(ctx: Context) -> PlatformAnswer:
        """Your compute vouchers (算力券) and what is left of each."""
        return PlatformAnswer(path="/v1/vouchers",
                              body=await tools.call(tools.caller(ctx), "GET", "/v1/vouchers"))

    @server.tool(annotations=READ)
    async def entitlements(ctx: Context) -> PlatformAnswer:
        """Your roaming entitlements (漫游权益) at other platforms of the federation."""
        path = "/v1/federation/entitlements"
        return PlatformAnswer(path=path, body=await tools.call(tools.caller(ctx), "GET", path))

    @server.tool(annotations=READ)
    async def market_products(ctx: Context) -> PlatformAnswer:
        """The exchange's products (算力交易品种): accelerator class x location."""
        path = "/v1/market/products"
        return PlatformAnswer(path=path, body=await tools.call(tools.caller(ctx), "GET", path))

    @server.tool(annotations=READ)
    async def price_index(ctx: Context, accelerator_class: str, location: str,
                          period: str = "day") -> PlatformAnswer:
        """The compute price index (算力价格指数) of one class at one hub or province."""
        path = "/v1/market/index"
        return PlatformAnswer(path=path, body=await tools.call(
            tools.caller(ctx), "GET", path, params={"accelerator_class": accelerator_class,
                                                     "location": location, "period": period}))

    @server.tool(annotations=READ)
    async def platform_utilisation(ctx: Context) -> UtilisationOut:
        """How busy the federation's devices are (算力利用率), overall and by hub, from the
        federated catalog's summaries (each as fresh as its age_s there)."""
        body = await tools.call(tools.caller(ctx), "GET", "/v1/federation/catalog",
                                params={"limit": CATALOG_ROWS})
        return utilisation(body)

    @server.tool(annotations=READ)
    async def platform_health(ctx: Context) -> PlatformAnswer:
        """Whether the platform and its database answer (平台健康), its version and name."""
        return PlatformAnswer(path="/v1/health",
                              body=await tools.call(tools.caller(ctx), "GET", "/v1/health"))


CATALOG_ROWS = 1000  # the catalog endpoint's largest page


def utilisation(catalog: dict[str, Any]) -> UtilisationOut:
    totals: dict[str, list[int]] = {"all": [0, 0]}
    for item in catalog["items"]:
        for scope in ("all", item["hub"] or item["province"]):
            row = totals.setdefault(scope, [0, 0])
            row[0] += item["devices"]
            row[1] += item["free_devices"]
    rows = [UtilisationRow(scope=scope, devices=devices, free_devices=free,
                           busy_share=str((1 - Decimal(free) / devices).quantize(Decimal("0.0001"))
                                          if devices else Decimal(0)))
            for scope, (devices, free) in totals.items()]
    return UtilisationOut(platform=catalog["platform"],
                          rows=[rows[0], *sorted(rows[1:], key=lambda r: r.scope)])


def _spending_tools(server: MCPServer, tools: Tools) -> None:
    @server.tool(annotations=WRITE)
    async def submit_job(ctx: Context, quote_id: str, job: JobSpecIn,
                         option: Annotated[int, Field(ge=1, le=10, description="the quote's "
                                                      "option rank")] = 1) -> SubmitOut:
        """Run a job that quote_job priced (提交作业): pass its quote_id and the same job.
        Pinned to the option's pool and price; refused when the quote is stale, the job
        differs, or its estimate would pass the session's or the day's spend cap."""
        return await tools.submit(tools.caller(ctx), quote_id, job, option)

    @server.tool(annotations=WRITE)
    async def place_bid(ctx: Context, quote_id: str, block: MarketShapeIn,
                        option: Annotated[int, Field(ge=1, le=50, description="the quote's "
                                                     "option rank")] = 1) -> BidOut:
        """Bid on the exchange at a quoted price (下买单): pass market_quote's quote_id and
        the same block. All or none; its escrow (price x count x hours) counts against the
        session's and the day's spend caps."""
        return await tools.bid(tools.caller(ctx), quote_id, block, option)


def _destructive_tools(server: MCPServer, tools: Tools) -> None:
    @server.tool(annotations=DESTROY)
    async def cancel_job(ctx: Context, job_id: str) -> JobOut:
        """Cancel one of your jobs (取消作业); it is charged for what it ran."""
        caller = tools.caller(ctx)
        _destructive_allowed(caller)
        return job_out(await tools.call(caller, "POST", f"/v1/jobs/{job_id}/cancel"))

    @server.tool(annotations=DESTROY)
    async def cancel_order(ctx: Context, order_id: str) -> PlatformAnswer:
        """Cancel one of your resting orders on the exchange (撤单)."""
        caller = tools.caller(ctx)
        _destructive_allowed(caller)
        path = f"/v1/market/orders/{order_id}"
        return PlatformAnswer(path=path, body=await tools.call(caller, "DELETE", path))


def _destructive_allowed(caller: Caller) -> None:
    if not caller.policy.allow_destructive:
        raise ToolError("destructive tools are disabled on this server (--disable-destructive)")
    if not caller.policy.allow_spend:
        raise ToolError("read-only: this server was not started to change anything "
                        "(suanli mcp --allow-spend, or X-Suanli-Allow-Spend: true)")


