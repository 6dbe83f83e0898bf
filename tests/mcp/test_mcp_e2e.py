"""The MCP server driven by the SDK's real client, over stdio and over HTTP, against a real
demo node: tools, quotes, spending within and over the caps, scopes and tenants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.e2e.conftest import Node, run_cli
from tests.mcp.conftest import CPU_JOB, api, http_client, stdio_client

pytestmark = pytest.mark.xdist_group("mcp")


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured answer."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """A tool call that must fail; the message the model reads."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


async def names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


def test_stdio_is_read_only_by_default_and_searches_and_quotes(demo: Node,
                                                                tmp_path: Path) -> None:
    async def body() -> None:
        async with stdio_client(demo, demo.demo_key, tmp_path) as client:
            tools = await names(client)
            assert {"search_pools", "quote_job", "list_accelerators", "ask", "bill",
                    "balance", "price_index", "platform_health"} <= tools
            assert not tools & {"submit_job", "cancel_job", "cancel_order"}
            pools = await call(client, "search_pools", device_kind="cpu", limit=3)
            assert pools["items"] and all(p["device_kind"] == "cpu" for p in pools["items"])
            quote = await call(client, "quote_job", job=CPU_JOB)
            assert quote["quote_id"].startswith("q_") and quote["options"]
            assert quote["options"][0]["estimated_cost_fen"] > 0
            assert "read-only" in quote["spending"]
            understood = await call(client, "ask", text="帮我找64张昇腾卡，西部，预训练3天")
            assert understood["job"]["devices"] == 64 and not understood["unknown"]
    run(body)


def test_stdio_submits_within_the_cap_and_refuses_above_it(demo: Node, tmp_path: Path) -> None:
    async def body() -> None:
        flags = ("--allow-spend", "--max-spend", "10", "--max-spend-per-day", "20")
        async with stdio_client(demo, demo.demo_key, tmp_path, *flags) as client:
            assert {"submit_job", "cancel_job"} <= await names(client)
            quote = await call(client, "quote_job", job=CPU_JOB)
            done = await call(client, "submit_job", quote_id=quote["quote_id"], job=CPU_JOB)
            cost = quote["options"][0]["estimated_cost_fen"]
            assert done["committed_fen"] == cost and done["session_spent_fen"] == cost
            assert done["job"]["pool_id"] == quote["options"][0]["pool_id"]
            mine = await call(client, "list_jobs")
            assert done["job"]["id"] in {j["id"] for j in mine["items"]}
            again = await refused(client, "submit_job", quote_id=quote["quote_id"], job=CPU_JOB)
            assert "no quote" in again  # a quote buys one job
        tight = ("--allow-spend", "--max-spend", "0.10")
        async with stdio_client(demo, demo.demo_key, tmp_path, *tight) as client:
            quote = await call(client, "quote_job", job=CPU_JOB)
            message = await refused(client, "submit_job", quote_id=quote["quote_id"],
                                    job=CPU_JOB)
            assert "over the session's spend cap" in message and "0.10" in message
    run(body)


def test_the_day_cap_holds_across_sessions(demo: Node, tmp_path: Path) -> None:
    async def body() -> None:
        flags = ("--allow-spend", "--max-spend", "100", "--max-spend-per-day", "0.50")
        async with stdio_client(demo, demo.demo_key, tmp_path, *flags) as client:
            quote = await call(client, "quote_job", job=CPU_JOB)
            await call(client, "submit_job", quote_id=quote["quote_id"], job=CPU_JOB)
        async with stdio_client(demo, demo.demo_key, tmp_path, *flags) as client:
            status = await call(client, "spend_status")
            assert status["session_spent_fen"] == 0 and status["today_spent_fen"] > 0
            quote = await call(client, "quote_job", job=CPU_JOB)
            message = await refused(client, "submit_job", quote_id=quote["quote_id"],
                                    job=CPU_JOB)
            assert "over today's spend cap" in message
    run(body)


def test_submit_needs_the_quote_of_the_same_job(demo: Node, tmp_path: Path) -> None:
    async def body() -> None:
        async with stdio_client(demo, demo.demo_key, tmp_path, "--allow-spend") as client:
            quote = await call(client, "quote_job", job=CPU_JOB)
            other = {**CPU_JOB, "devices": 2}
            assert "differs" in await refused(client, "submit_job",
                                              quote_id=quote["quote_id"], job=other)
            assert "no quote" in await refused(client, "submit_job", quote_id="q_made_up",
                                               job=CPU_JOB)
    run(body)


def test_disable_destructive_drops_the_cancel_tools(demo: Node, tmp_path: Path) -> None:
    async def body() -> None:
        async with stdio_client(demo, demo.demo_key, tmp_path, "--allow-spend",
                                "--disable-destructive") as client:
            tools = await names(client)
            assert "submit_job" in tools and not tools & {"cancel_job", "cancel_order"}
    run(body)


def test_http_lists_searches_quotes_and_submits_with_the_callers_key(demo: Node) -> None:
    async def body() -> None:
        async with http_client(demo, demo.demo_key) as client:
            assert {"search_pools", "quote_job", "submit_job"} <= await names(client)
            pools = await call(client, "search_pools", vendor="Huawei", limit=2)
            assert all(p["vendor"] == "Huawei" for p in pools["items"])
            quote = await call(client, "quote_job", job=CPU_JOB)
            message = await refused(client, "submit_job", quote_id=quote["quote_id"],
                                    job=CPU_JOB)
            assert "read-only" in message  # the caller did not allow spending
        async with http_client(demo, demo.demo_key, X_Suanli_Allow_Spend="true") as client:
            quote = await call(client, "quote_job", job=CPU_JOB)
            done = await call(client, "submit_job", quote_id=quote["quote_id"], job=CPU_JOB)
            assert done["job"]["state"] in {"placed", "running", "succeeded", "pending"}
        async with http_client(demo, demo.demo_key, X_Suanli_Allow_Spend="true",
                               X_Suanli_Max_Spend="0.01") as client:
            quote = await call(client, "quote_job", job=CPU_JOB)
            assert "over the session's spend cap" in await refused(
                client, "submit_job", quote_id=quote["quote_id"], job=CPU_JOB)
    run(body)


def test_http_without_a_key_is_refused_by_the_platform(demo: Node) -> None:
    async def body() -> None:
        async with http_client(demo, None) as client:
            assert "401" in await refused(client, "list_jobs")
    run(body)


def test_a_key_without_the_spend_scope_cannot_submit_a_paid_job(demo: Node) -> None:
    made = api(demo, demo.demo_key, "POST", "/v1/keys",
               json={"name": "assistant", "scopes": ["read", "submit"]})
    assert made.status_code == 201, made.text
    key = made.json()["api_key"]

    async def body() -> None:
        async with http_client(demo, key, X_Suanli_Allow_Spend="true") as client:
            quote = await call(client, "quote_job", job=CPU_JOB)  # quoting only reads
            message = await refused(client, "submit_job", quote_id=quote["quote_id"],
                                    job=CPU_JOB)
            assert "403" in message and "spend" in message
            assert (await call(client, "spend_status"))["today_spent_fen"] == 0
    run(body)


def test_each_caller_sees_only_its_own_jobs(demo: Node) -> None:
    made = api(demo, demo.operator_key, "POST", "/v1/tenants",
               json={"name": "Other Lab", "role": "consumer"})
    assert made.status_code == 201, made.text
    other = made.json()["api_key"]

    async def body() -> None:
        async with http_client(demo, demo.demo_key, X_Suanli_Allow_Spend="true") as client:
            quote = await call(client, "quote_job", job=CPU_JOB)
            job_id = (await call(client, "submit_job", quote_id=quote["quote_id"],
                                 job=CPU_JOB))["job"]["id"]
            assert (await call(client, "job_status", job_id=job_id))["id"] == job_id
        async with http_client(demo, other) as client:
            assert job_id not in {j["id"] for j in (await call(client, "list_jobs"))["items"]}
            assert "404" in await refused(client, "job_status", job_id=job_id)
        audit = api(demo, demo.operator_key, "GET", "/v1/audit",
                    params={"action": "job.submit", "limit": 200})
        assert audit.status_code == 200 and job_id in audit.text  # the API's own audit log
    run(body)


def test_a_handshake_era_client_is_served_too(demo: Node) -> None:
    """Claude Desktop and Qwen-Agent today speak the initialize handshake (SDK 1.x)."""
    async def body() -> None:
        async with http_client(demo, demo.demo_key, mode="legacy") as client:
            assert "quote_job" in await names(client)
            assert "items" in await call(client, "list_jobs")
    run(body)


def test_resources_and_prompts(demo: Node) -> None:
    async def body() -> None:
        async with http_client(demo, demo.demo_key) as client:
            listed = await client.list_resources()
            assert "suanli://catalog/accelerators" in {str(r.uri) for r in listed.resources}
            templates = {t.uri_template for t in
                         (await client.list_resource_templates()).resource_templates}
            assert {"suanli://jobs/{state}", "suanli://bills/{period}"} <= templates
            catalog = await client.read_resource("suanli://catalog/accelerators")
            assert "huawei-ascend-910b" in catalog.contents[0].text  # type: ignore[union-attr]
            jobs = await client.read_resource("suanli://jobs/all")
            assert '"items"' in jobs.contents[0].text  # type: ignore[union-attr]
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert {"plan_training_run", "cut_my_bill"} <= prompts
    run(body)


def test_suanli_ask_shows_what_it_understood_and_asks_before_spending(demo: Node) -> None:
    shown = run_cli("ask", "two CPUs for 1 hour, cheapest", url=demo.url, key=demo.demo_key)
    assert shown.returncode == 0, shown.stderr
    assert "devices=2" in shown.stdout and "nothing submitted" in shown.stdout
    unclear = run_cli("ask", "a cpu on the moon", "--yes", "--", "true", url=demo.url,
                      key=demo.demo_key)
    assert unclear.returncode == 1 and "moon" in unclear.stdout
    assert "not submitted" in unclear.stdout
    too_dear = run_cli("ask", "a cpu for 1 hour under 0.1 yuan", "--yes", "--", "true",
                       url=demo.url, key=demo.demo_key)
    assert too_dear.returncode == 1 and "no option within the budget" in too_dear.stdout
    declined = run_cli("ask", "a cpu for 1 hour", "--", "true", url=demo.url,
                       key=demo.demo_key)  # no terminal: the question reads "no"
    assert declined.returncode == 1 and "submitted CN.J" not in declined.stdout
    done = run_cli("ask", "一个CPU 1小时 最便宜", "--yes", "--", "python3", "-c", "print(1)",
                   url=demo.url, key=demo.demo_key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submitted CN.J" in done.stdout


def _block() -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    return {"accelerator_class": "huawei-ascend-910b", "location": "guizhou",
            "start": start.isoformat(), "hours": 2, "count": 1}


def test_a_bid_needs_a_market_quote_and_its_escrow_counts_against_the_cap(demo: Node) -> None:
    async def body() -> None:
        block = _block()
        async with http_client(demo, demo.demo_key, X_Suanli_Allow_Spend="true",
                               X_Suanli_Max_Spend="1") as client:
            quote = await call(client, "market_quote", block=block)
            best = quote["options"][0]
            assert best["escrow_fen"] == best["price_fen_per_unit_hour"] * 2
            assert "over the session's spend cap" in await refused(
                client, "place_bid", quote_id=quote["quote_id"], block=block)
        async with http_client(demo, demo.demo_key, X_Suanli_Allow_Spend="true") as client:
            quote = await call(client, "market_quote", block=block)
            placed = await call(client, "place_bid", quote_id=quote["quote_id"], block=block)
            assert placed["order"]["side"] == "bid" and placed["order"]["state"] == "open"
            assert placed["committed_fen"] == quote["options"][0]["escrow_fen"]
            cancelled = await call(client, "cancel_order", order_id=placed["order"]["id"])
            assert cancelled["body"]["state"] != "open"
    run(body)


def test_a_quote_gives_latency_from_a_city(demo: Node) -> None:
    async def body() -> None:
        async with http_client(demo, demo.demo_key) as client:
            quote = await call(client, "quote_job", job=CPU_JOB, near_city="深圳")
            assert all(o["latency_ms"] > 0 and o["start"].startswith("now")
                       for o in quote["options"])
            assert "unknown city" in await refused(client, "quote_job", job=CPU_JOB,
                                                   near_city="Atlantis")
    run(body)


def test_an_operator_reads_health_and_utilisation(demo: Node) -> None:
    async def body() -> None:
        async with http_client(demo, demo.operator_key) as client:
            assert (await call(client, "platform_health"))["body"]["status"] == "ok"
            rows = (await call(client, "platform_utilisation"))["rows"]
            assert rows[0]["scope"] == "all" and rows[0]["devices"] > rows[0]["free_devices"]
            assert {"guizhou", "ningxia"} <= {r["scope"] for r in rows}
            assert sum(r["devices"] for r in rows[1:]) == rows[0]["devices"]
    run(body)
