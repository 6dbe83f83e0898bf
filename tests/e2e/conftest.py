"""Real `suanli serve` processes on loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    url: str
    process: subprocess.Popen
    output: Path
    operator_key: str | None
    demo_key: str | None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def cli_env(url: str | None = None, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUANLI_")}
    env["COLUMNS"] = "200"
    if "SUANLI_SHARED_DATA" in os.environ:
        env["SUANLI_SHARED_DATA"] = os.environ["SUANLI_SHARED_DATA"]
    if url:
        env["SUANLI_URL"] = url
    if key:
        env["SUANLI_API_KEY"] = key
    return env


def database_env() -> dict[str, str]:
    """Where a node keeps its data: SQLite in its working directory, or a fresh PostgreSQL
    schema when the suite runs on PostgreSQL (SUANLI_TEST_DATABASE_URL)."""
    url = os.environ.get("SUANLI_TEST_DATABASE_URL")
    if not url:
        return {}
    return {"SUANLI_DATABASE_URL": url,
            "SUANLI_DATABASE_SCHEMA": f"e2e_{os.getpid()}_{secrets.token_hex(3)}"}


def drop_schema(env: dict[str, str]) -> None:
    if "SUANLI_DATABASE_SCHEMA" not in env:
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(env["SUANLI_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{env["SUANLI_DATABASE_SCHEMA"]}" '
                                "CASCADE"))
    engine.dispose()


def start_node(workdir: Path, *args: str, database_url: str | None = None,
               env: dict[str, str] | None = None) -> Node:
    port = free_port()
    output = workdir / f"serve-{port}.log"
    command = [sys.executable, "-m", "suanli.cli.main", "serve", "--port", str(port), *args]
    if database_url:
        command += ["--database-url", database_url]
    handle = output.open("w")
    process = subprocess.Popen(command, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT,
                               env={**cli_env(), **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"suanli serve exited early:\n{output.read_text()}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"suanli serve did not start:\n{output.read_text()}")
    text = output.read_text()
    operator = re.search(r"operator API key \(shown once\):\s*(\S+)", text)
    demo = re.search(r"demo consumer API key:\s*(\S+)", text)
    return Node(url, process, output, operator.group(1) if operator else None,
                demo.group(1) if demo else None)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    """Starts nodes; each keeps its data in its own SQLite file or PostgreSQL schema."""
    nodes: list[tuple[Node, dict[str, str]]] = []

    def make(*args: str, env: dict[str, str] | None = None, **kwargs) -> Node:  # type: ignore[no-untyped-def]
        storage = {} if kwargs.get("database_url") else database_env()
        node = start_node(tmp_path, *args, env={**storage, **(env or {})}, **kwargs)
        nodes.append((node, storage))
        return node

    yield make
    for node, storage in nodes:
        node.stop()
        drop_schema(storage)


def run_cli(*args: str, url: str | None = None, key: str | None = None,
            cwd: Path | None = None, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suanli.cli.main", *args], cwd=cwd,
                          env=cli_env(url, key), capture_output=True, text=True,
                          timeout=timeout_s)
