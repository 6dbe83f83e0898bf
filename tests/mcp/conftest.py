"""A real `suanli serve --demo` for the MCP tests, and the SDK's own client to drive it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.e2e.conftest import Node, cli_env, database_env, drop_schema, start_node

CPU_JOB = {"name": "hello", "command": ["python3", "-c", "print('hello from mcp')"],
           "device_kind": "cpu"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One demo node for a module: its pools, a funded demo consumer and the demo agent."""
    workdir = tmp_path_factory.mktemp("mcp-node")
    storage = database_env(workdir)
    node = start_node(workdir, "--demo", env=storage)
    yield node
    node.stop()
    drop_schema(storage)


def stdio_client(node: Node, key: str, config_home: Path, *flags: str) -> Client:
    """`suanli mcp FLAGS` as a child process, as Claude Desktop would start it."""
    env = {**cli_env(node.url, key), "XDG_CONFIG_HOME": str(config_home)}
    return Client(StdioServerParameters(command=sys.executable,
                                        args=["-m", "suanli.cli.main", "mcp", *flags], env=env),
                  read_timeout_seconds=60)


def http_client(node: Node, key: str | None, mode: str = "auto", **headers: str) -> Client:
    """The node's `/mcp`, with the caller's key in the Authorization header."""
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    return Client(streamable_http_client(node.url + "/mcp",
                                         http_client=create_mcp_http_client(headers=sent)),
                  read_timeout_seconds=60, mode=mode)  # type: ignore[arg-type]


def api(node: Node, key: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, node.url + path, headers={"Authorization": f"Bearer {key}"},
                         timeout=30, **kwargs)  # type: ignore[arg-type]
