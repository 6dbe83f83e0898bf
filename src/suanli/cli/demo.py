"""`suanli serve --demo`'s side files and helper process: the demo key file and the demo agent.

The key file sits beside the database (`suanli-CN.db` -> `suanli-CN-demo-keys.json`), mode
0600 like the node's federation key, so a restarted demo prints the same `suanli login`
commands and keeps its tenants and wallet. The demo agent is one `suanli agent` child process
serving every illustrative pool on the local engine, so a job placed anywhere in the demo runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from suanli.adapters.store.database import sqlite_file
from suanli.services.demo_access import DemoKeys

KEY_FILE_MODE = 0o600
MAX_KEY_FILE_BYTES = 16 << 10
AGENT_NAME = "demo-agent"
AGENT_MAX_RUNNING = 8
# The demo's GPU, NPU, DCU and XPU pools are illustrative: their jobs run on this host's CPUs.
# The local engine is told it has this many GPUs, so it admits a job of any size the API
# accepts (domain.jobs.MAX_DEVICES_PER_JOB) and gives it CUDA_VISIBLE_DEVICES that name none.
AGENT_ILLUSTRATIVE_GPUS = 4096
START_WAIT_S = 60.0
STOP_WAIT_S = 15.0
_PR_SET_PDEATHSIG = 1


class DemoKeyFileError(RuntimeError):
    """The key file exists but cannot be used."""


def side_file(database_url: str, authority: str, suffix: str) -> Path:
    """`<database file stem><suffix>` beside a SQLite file, else `suanli-<authority><suffix>`
    in the working directory."""
    database = sqlite_file(database_url)
    if database is not None:
        return database.with_name(database.stem + suffix)
    return Path(f"suanli-{authority.strip().upper()}{suffix}")


def key_file(database_url: str, authority: str) -> Path:
    return side_file(database_url, authority, "-demo-keys.json")


def read_keys(path: Path) -> DemoKeys | None:
    """The saved keys; None when there is no file. Refuses a file others may read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DemoKeyFileError(f"{path} is readable by others (mode {info.st_mode & 0o777:o}); "
                               f"`chmod 600 {path}` or delete it to get new demo keys")
    if info.st_size > MAX_KEY_FILE_BYTES:
        raise DemoKeyFileError(f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes")
    try:
        return DemoKeys.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None  # unreadable: new keys replace it


def write_keys(path: Path, keys: DemoKeys) -> None:
    """Write atomically with mode 0600: a temporary file, then a rename over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    try:
        os.fchmod(fd, KEY_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(keys.to_json(), fh, indent=1)
            fh.write("\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def client_url(host: str, port: int) -> str:
    """Where a client on this host reaches the node (a wildcard address is not one)."""
    reachable = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in reachable and not reachable.startswith("["):
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the agent gets SIGTERM if the server dies without stopping it (kill -9)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class DemoAgent:
    """One `suanli agent` child serving the demo's pools, started once the node answers."""

    def __init__(self, url: str, provider_key: str, pools: list[str], state_dir: Path) -> None:
        assert 1 <= len(pools) <= 256, len(pools)
        self.url, self._key, self._pools = url, provider_key, pools
        self.state_dir = state_dir.resolve()
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "suanli.cli.main", "agent", "--platform", self.url,
                   "--engine", "local", "--engine-option", f"gpus={AGENT_ILLUSTRATIVE_GPUS}",
                   "--state-dir", str(self.state_dir), "--name", AGENT_NAME,
                   "--max-running", str(AGENT_MAX_RUNNING)]
        for pool in self._pools:
            command += ["--pool", pool]
        return command

    def start(self) -> None:
        """Start in the background: wait for the node to answer, then spawn the agent."""
        self._thread = threading.Thread(target=self._run, name="suanli-demo-agent", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + START_WAIT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    break
            self._stop.wait(0.2)
        else:
            if not self._stop.is_set():
                print(f"demo agent not started: {self.url} did not answer in "
                      f"{START_WAIT_S:.0f} s", file=sys.stderr, flush=True)
            return
        env = {**os.environ, "SUANLI_API_KEY": self._key}
        # This thread lives as long as the child: Linux sends the parent-death signal when
        # the thread that forked the child ends, not only when the process does.
        self._process = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)  # noqa: PLW1509
        self._stop.wait()
        self._end(self._process)

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_WAIT_S)

    def stop(self) -> None:
        """Stop the agent (SIGTERM, then SIGKILL after STOP_WAIT_S); its engine's jobs end
        on their own and are picked up by the next demo agent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3 * STOP_WAIT_S)
