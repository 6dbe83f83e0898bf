"""MCP resources (the catalog, your jobs and bills) and prompts for common tasks."""

from __future__ import annotations

import json
from mcp.server.mcpserver import Context, MCPServer

from suanli.mcp.tools import Tools


def register(server: MCPServer, tools: Tools) -> None:
    @server.resource("suanli://catalog/accelerators", mime_type="application/json",
                     description="The accelerator catalog (加速卡目录)")
    async def catalog() -> str:
        body = await tools.platform.call(None, "GET", "/v1/catalog/accelerators")
        return json.dumps(body, ensure_ascii=False)

    @server.resource("suanli://jobs/{state}", mime_type="application/json",
                     description="Your jobs in one state, or `all` (我的作业)")
    async def jobs(state: str, ctx: Context) -> str:
        params = {"limit": 50, "state": None if state == "all" else state}
        body = await tools.call(tools.caller(ctx), "GET", "/v1/jobs", params=params)
        return json.dumps(body, ensure_ascii=False)

    @server.resource("suanli://bills/{period}", mime_type="application/json",
                     description="Your bill for a month, YYYY-MM (账单)")
    async def bills(period: str, ctx: Context) -> str:
        body = await tools.call(tools.caller(ctx), "GET", f"/v1/bills/{period}")
        return json.dumps(body, ensure_ascii=False)

    @server.prompt(description="Plan a training run within a budget (规划训练任务)")
    def plan_training_run(devices: str, accelerator: str, days: str, budget_yuan: str) -> str:
        return (f"Plan a training run on {devices} {accelerator} devices for {days} days "
                f"within {budget_yuan} yuan. Use search_pools (workload_class=training, "
                "sort=green when the price allows) to see where they are free, then quote_job "
                f"with time_limit_s={days} days in seconds and devices={devices}. Compare the "
                "options' estimated_cost_fen with the budget (1 yuan = 100 fen) and their "
                "carbon. Show me the best two and their quote_id; do not submit until I say so.")

    @server.prompt(description="Find where my bill can be cut (降低账单)")
    def cut_my_bill() -> str:
        return ("Read my bill for this month with the bill tool and my vouchers. Find the "
                "jobs that cost the most, then search_pools for the same accelerator sorted "
                "by price_per_unit and by price, and the time-of-use bands in the bill. "
                "Suggest concrete changes (pool, accelerator, time of day, vouchers) with the "
                "yuan each would save; change nothing yourself.")
