"""A scripted assistant: drives `suanli mcp` over stdio with the MCP SDK's own client and
prints what each tool call sent and got back (abridged); docs/agents.md's transcript.

Run it logged in as a consumer (`suanli login`, or SUANLI_URL and SUANLI_API_KEY):

    python -m suanli.mcp.example

It lets the server spend at most 1 yuan: the 8-CPU job is refused over that cap, a 1-CPU
job of one hour is submitted within it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters

REQUEST = "find me 8 CPUs in the west for 2 hours under 20 yuan, greenest first"
WAIT_S, POLL_S = 60.0, 0.5
SMALL_JOB = {"name": "hello", "command": ["python3", "-c", "print('hello from an assistant')"],
             "device_kind": "cpu", "time_limit_s": 3600}


def show(label: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    print(f"{label} {text}")


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    show(f"-> {tool}", arguments)
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        show("<- refused:", " ".join(getattr(c, "text", "") for c in result.content))
        return None
    return result.structured_content


def pools(answer: dict[str, Any]) -> list[str]:
    return [f"{p['id']} {p['accelerator']} {p['city']} green {p['green_share']} "
            f"{p['price_fen_per_device_hour']} fen/h" for p in answer["items"]]


def options(answer: dict[str, Any]) -> list[str]:
    return [f"option {o['rank']}: {o['pool_id']} {o['city']} {o['estimated_cost_fen']} fen, "
            f"{o['placement'].get('estimated_carbon_kg')} kg CO2" for o in answer["options"]]


async def main() -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "suanli.cli.main", "mcp", "--allow-spend", "--max-spend", "1"],
        env=dict(os.environ))
    async with Client(server, read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        show("tools:", ", ".join(t.name for t in tools.tools))
        understood = await call(client, "ask", {"text": REQUEST})
        assert understood is not None
        show("<- understood:", understood["understood"])
        show("<- unknown:", understood["unknown"])
        search = {**understood["search"], "hub": understood["searches_per_hub"][0],
                  "limit": 3}
        found = await call(client, "search_pools", search)
        assert found is not None
        for line in pools(found):
            show("<-", line)
        big = {"name": "eight", "command": ["python3", "-c", "print(8)"], **understood["job"]}
        quote = await call(client, "quote_job", {"job": big, "options": 2})
        assert quote is not None
        show("<- quote", quote["quote_id"])
        for line in options(quote):
            show("<-", line)
        await call(client, "submit_job", {"quote_id": quote["quote_id"], "job": big})
        small = await call(client, "quote_job", {"job": SMALL_JOB, "options": 1})
        assert small is not None
        show("<- quote", small["quote_id"])
        for line in options(small):
            show("<-", line)
        done = await call(client, "submit_job", {"quote_id": small["quote_id"],
                                                 "job": SMALL_JOB})
        assert done is not None
        show("<- submitted", f"{done['job']['id']} ({done['job']['state']}) on "
                             f"{done['job']['pool_id']}, committed {done['committed_fen']} fen")
        job_id = done["job"]["id"]
        state = await _finished(client, job_id)
        show("<- job", f"{job_id} {state}")
        logs = await client.call_tool("job_logs", {"job_id": job_id})
        show("<- logs:", " ".join(getattr(c, "text", "") for c in logs.content).strip())
        status = await call(client, "spend_status", {})
        show("<-", status)


async def _finished(client: Client, job_id: str) -> str:
    """Poll job_status (quietly) until the job ends or WAIT_S passes."""
    show("-> job_status", {"job_id": job_id})
    for _ in range(int(WAIT_S / POLL_S)):
        job = await client.call_tool("job_status", {"job_id": job_id})
        state = str((job.structured_content or {}).get("state"))
        if state in ("succeeded", "failed", "cancelled"):
            return state
        await asyncio.sleep(POLL_S)
    return state


if __name__ == "__main__":
    asyncio.run(main())
