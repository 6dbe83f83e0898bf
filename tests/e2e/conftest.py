"""Real `suanli serve` processes on loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_S = 60
# The CLI reads `suanli login`'s file from the user's config directory: the suite's commands
# get an empty one of their own, never the developer's login.
CLIENT_CONFIG_HOME = tempfile.mkdtemp(prefix="suanli-test-config-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    url: str
    storage: dict[str, str]
    port: int
    process: subprocess.Popen
    output: Path
    operator_key: str | None
    demo_key: str | None
    demo_provider_key: str | None = None

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
    env["XDG_CONFIG_HOME"] = CLIENT_CONFIG_HOME
    if "SUANLI_SHARED_DATA" in os.environ:
        env["SUANLI_SHARED_DATA"] = os.environ["SUANLI_SHARED_DATA"]
    if url:
        env["SUANLI_URL"] = url
    if key:
        env["SUANLI_API_KEY"] = key
    return env


def database_env(workdir: Path) -> dict[str, str]:
    """Where a new node keeps its data: a SQLite file of its own, or a fresh PostgreSQL
    schema when the suite runs on PostgreSQL (SUANLI_TEST_DATABASE_URL)."""
    url = os.environ.get("SUANLI_TEST_DATABASE_URL")
    if not url:
        return {"SUANLI_DATABASE_URL": f"sqlite:///{workdir / secrets.token_hex(4)}.db"}
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


PORT_ATTEMPTS = 3  # a free port is free when chosen; another process may bind it first


class PortTaken(RuntimeError):
    pass


def start_node(workdir: Path, *args: str, database_url: str | None = None,
               env: dict[str, str] | None = None, port: int | None = None) -> Node:
    """A `suanli serve` on `port`, or on a free port (tried again if another process takes it
    between our choice and the server's bind)."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start_node(workdir, args, database_url, env, port or free_port())
        except PortTaken:
            if port is not None or attempt == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _start_node(workdir: Path, args: tuple[str, ...], database_url: str | None,
                env: dict[str, str] | None, port: int) -> Node:
    output = workdir / f"serve-{port}.log"
    command = [sys.executable, "-m", "suanli.cli.main", "serve", "--port", str(port), *args]
    if database_url:
        command += ["--database-url", database_url]
    with output.open("w") as handle:
        process = subprocess.Popen(command, cwd=workdir, stdout=handle,
                                   stderr=subprocess.STDOUT, env={**cli_env(), **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = output.read_text()
            error = PortTaken if "address already in use" in log else RuntimeError
            raise error(f"suanli serve exited early:\n{log}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"suanli serve did not start:\n{output.read_text()}")
    text = output.read_text()
    operator = re.search(r"operator API key \(shown once\):\s*(\S+)", text)
    demo = re.search(r"demo consumer API key:\s*(\S+)", text)
    demo_provider = re.search(r"demo provider API key:\s*(\S+)", text)
    return Node(url, env or {}, port, process, output, operator.group(1) if operator else None,
                demo.group(1) if demo else None,
                demo_provider.group(1) if demo_provider else None)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    """Starts nodes; each keeps its data in its own SQLite file or PostgreSQL schema."""
    nodes: list[tuple[Node, dict[str, str]]] = []

    def make(*args: str, env: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
             storage: dict[str, str] | None = None, **kwargs) -> Node:
        """A new node; pass `storage=earlier.storage` to restart on the same database."""
        fresh = storage is None
        if storage is None:
            storage = {} if kwargs.get("database_url") else database_env(tmp_path)
        node = start_node(tmp_path, *args, env={**storage, **(env or {})}, **kwargs)
        node.storage = storage
        nodes.append((node, storage if fresh else {}))
        return node

    yield make
    for node, _ in nodes:
        node.stop()
    for _, storage in nodes:
        drop_schema(storage)


@dataclass
class Agent:
    process: subprocess.Popen
    output: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator:
    """Starts `suanli agent` processes; each has its own state directory."""
    agents: list[Agent] = []

    def make(url: str, key: str, pools: list[str], *extra: str, name: str = "agent",
             state_dir: Path | None = None) -> Agent:
        state = state_dir or tmp_path / f"agent-{name}"
        output = tmp_path / f"agent-{name}-{len(agents)}.log"
        command = [sys.executable, "-m", "suanli.cli.main", "agent", "--platform", url,
                   "--state-dir", str(state), "--name", name, "--poll-s", "0.2", *extra]
        for pool in pools:
            command += ["--pool", pool]
        process = subprocess.Popen(command, stdout=output.open("w"), stderr=subprocess.STDOUT,
                                   env=cli_env(key=key), cwd=tmp_path)
        agent = Agent(process, output)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


def run_cli(*args: str, url: str | None = None, key: str | None = None,
            cwd: Path | None = None, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suanli.cli.main", *args], check=False,
                          cwd=cwd, env=cli_env(url, key), capture_output=True, text=True,
                          timeout=timeout_s)
