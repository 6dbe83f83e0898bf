"""Fixtures that start real engines: local jobs, a one-node Slurm cluster, a local Ray head.

An engine that cannot be had is a skip on a developer's machine and a failure under CI=true.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from suanli.adapters.engines.base import (
    Engine,
    EngineError,
    EngineJobRef,
    EngineJobSpec,
    EngineState,
    EngineStatus,
)
from suanli.adapters.engines.local import LocalEngine
from suanli.domain.errors import NotFound

REPO = Path(__file__).resolve().parents[2]
SLURM_SCRIPT = REPO / "scripts" / "slurm-localhost.sh"
SLURM_START_TIMEOUT_S = 900  # a fresh machine installs the packages first
RAY_START_TIMEOUT_S = 120
RAY_STOP_GRACE_S = 3  # `ray start --block` takes long to act on SIGTERM; nothing to save

WaitFor = Callable[[Engine, EngineJobRef, Collection[EngineState], float], EngineStatus]


def engine_missing(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (under CI every engine must run)", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def wait_for() -> WaitFor:
    """Polls a job until it reaches one of `states`; fails the test after `timeout_s`."""

    def wait(
        engine: Engine, ref: EngineJobRef, states: Collection[EngineState], timeout_s: float
    ) -> EngineStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            status = engine.status(ref)
            if status.state in states:
                return status
            if status.state.is_terminal or time.monotonic() > deadline:
                pytest.fail(f"{ref} is {status}, expected one of {sorted(states)}")
            time.sleep(0.05)

    return wait


def processes_running(marker: str, program: str | None = None) -> list[int]:
    """Live (not zombie) processes on this host whose command line contains `marker` (and
    whose program is `program`, when given: a sandbox's bwrap carries the job's argv too)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
                cmdline = b" ".join(argv).decode(errors="replace")
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if program is not None and os.path.basename(argv[0].decode(errors="replace")) != program:
            continue
        if marker in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture
def local_engine(tmp_path: Path) -> LocalEngine:
    return LocalEngine(tmp_path / "local-jobs", cpus=2, memory_mb=4096, kill_grace_s=1.0)


@pytest.fixture
def cancel_leftovers() -> Iterator[Callable[[Engine], None]]:
    """Records the jobs submitted through the engines it is given and cancels them after the
    test, so one failing test cannot hold a cluster's CPUs and starve the tests after it."""
    submitted: list[tuple[Engine, EngineJobRef]] = []

    def track(engine: Engine) -> None:
        submit = engine.submit

        def recording_submit(spec: EngineJobSpec) -> EngineJobRef:
            ref = submit(spec)
            submitted.append((engine, ref))
            return ref

        engine.submit = recording_submit  # type: ignore[method-assign]

    yield track
    for engine, ref in submitted:
        try:
            engine.cancel(ref)
        except (EngineError, NotFound):
            pass  # best effort: the job's own test has already reported what went wrong


# -- Slurm --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Starts (or finds running) slurmdbd, slurmctld and slurmd on this host via the script."""
    if shutil.which("slurmctld") is None and not os.environ.get("CI"):
        engine_missing(f"Slurm is not installed; run `sudo {SLURM_SCRIPT.relative_to(REPO)}`")
    if os.geteuid() != 0:
        if subprocess.run(
            ["scontrol", "ping"], check=False, capture_output=True, timeout=30
        ).returncode:
            engine_missing("Slurm is not running and starting it needs root")
        return
    proc = subprocess.run(
        ["bash", str(SLURM_SCRIPT), "start"],
        check=False,
        capture_output=True,
        text=True,
        timeout=SLURM_START_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        engine_missing(f"{SLURM_SCRIPT.name} failed: {proc.stderr[-3000:]}")


# -- Ray ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_binary() -> str | None:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else shutil.which("ray")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """`ray stop` would kill every Ray on the host; we end only the group we started."""
    for sig, wait_s in ((signal.SIGTERM, RAY_STOP_GRACE_S), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                proc.wait(timeout=5)
                return
            proc.poll()
            time.sleep(0.2)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """A Ray head on 127.0.0.1 with the dashboard (and so the job server); yields its URL."""
    try:
        import ray.job_submission  # noqa: F401
    except ImportError:
        engine_missing("Ray is not installed: pip install 'ray[default]>=2.40'")
    ray_bin = _ray_binary()
    if ray_bin is None:
        engine_missing("the `ray` command is not on PATH")
    temp_dir = tempfile.mkdtemp(prefix="suanli-ray-", dir="/tmp")  # short: sockets live here
    dashboard_port = _free_port()
    argv = [
        ray_bin, "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--port={_free_port()}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        f"--ray-client-server-port={_free_port()}",
        "--num-cpus=2", "--num-gpus=0", f"--object-store-memory={100 << 20}",
        f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    # Ray replaces 127.0.0.1 by the host's routable address unless it believes it runs a
    # single-machine cluster, which this variable (meant for macOS and Windows) declares.
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")
    env["AUTOSCALER_UPDATE_INTERVAL_S"] = "1"  # the resource report capacity() reads: 5 s lag
    log_path = Path(temp_dir) / "ray-start.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        _wait_for_job_server(url, proc, log_path)
        yield url
    finally:
        _stop_group(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_job_server(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + RAY_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            engine_missing(f"ray start exited {proc.returncode}: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/jobs/", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    engine_missing(f"Ray's job server did not answer within {RAY_START_TIMEOUT_S} s")
