"""Fixtures for real engines: local jobs, the host's one-node Slurm cluster, a local Ray head.

An engine that cannot be had is a skip on a developer's machine and a failure under CI=true.
"""

from __future__ import annotations

import contextlib
import fcntl
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
# The suite never installs Slurm nor starts its daemons: `.ci/run` does, through
# scripts/slurm-localhost.sh. These fixtures only look for a cluster that is already up.

SLURM_HOW = "start one with `sudo bash scripts/slurm-localhost.sh`"
SLURM_PROBE_TIMEOUT_S = 15
SLURM_USABLE_NODE = {"idle", "mixed", "allocated", "completing"}
# Every test run on this host submits to the same cluster, and some tests count its free CPUs:
# one test at a time holds this lock (xdist workers, and a second run beside this one alike).
SLURM_LOCK = Path(tempfile.gettempdir()) / "suanli-slurm-tests.lock"
SLURM_LOCK_WAIT_S = 600


def _slurm_problem() -> str | None:
    """Why no Slurm job can run here, or None when a controller, a node and accounting are up."""
    if shutil.which("scontrol") is None or shutil.which("sbatch") is None:
        return "Slurm is not installed"

    def run(*argv: str) -> str | None:
        try:
            proc = subprocess.run(
                argv,
                check=False,
                capture_output=True,
                text=True,
                timeout=SLURM_PROBE_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    if "is UP" not in (run("scontrol", "ping") or ""):
        return "no Slurm controller is up (`scontrol ping`)"
    states = {
        state.rstrip("*~#!%$@^-+") for state in (run("sinfo", "-h", "-N", "-o", "%T") or "").split()
    }
    if not states & SLURM_USABLE_NODE:
        return f"no Slurm node can run jobs (node states: {sorted(states) or 'none'})"
    if run("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster") is None:
        return "Slurm accounting (slurmdbd) does not answer `sacctmgr show cluster`"
    return None


def _open_lock(path: Path):  # type: ignore[no-untyped-def]
    """The lock file, read-only: flock needs no write access, so any user can share it."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        with contextlib.suppress(PermissionError):  # another user made it first
            os.fchmod(fd, 0o666)  # umask aside: another user's run must open it too
        return os.fdopen(fd, "rb")


@pytest.fixture(scope="session")
def _slurm_up() -> None:
    problem = _slurm_problem()
    if problem:
        engine_missing(f"{problem}: {SLURM_HOW}")


@pytest.fixture
def slurm_cluster(_slurm_up: None) -> Iterator[None]:
    """The host's one-node Slurm cluster, already running (CI starts it; tests never do), held
    for this test alone: a host-wide lock keeps other workers' and other runs' jobs off it."""
    with _open_lock(SLURM_LOCK) as handle:
        deadline = time.monotonic() + SLURM_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test run held {SLURM_LOCK} for {SLURM_LOCK_WAIT_S} s")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


RAY_START_ATTEMPTS = 3  # each picks new free ports: another process may take one meanwhile
# An idle head costs about 7% of a core (measured: 4.5 CPU-seconds a minute), for as long as
# it runs: it is stopped once the last test in this process that uses it has finished.
_ray_tests_left = 0
_ray_heads: list[Callable[[], None]] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    global _ray_tests_left
    _ray_tests_left = sum("ray_head" in getattr(item, "fixturenames", ()) for item in session.items)


@pytest.hookimpl(trylast=True)  # after the test's own fixtures are torn down
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """With xdist, every test that uses the head is in one group, run by one worker; so is
    every test of a run without xdist: once they are all done, the head can go."""
    global _ray_tests_left
    if "ray_head" in getattr(item, "fixturenames", ()):
        _ray_tests_left -= 1
        if _ray_tests_left <= 0:
            while _ray_heads:
                _ray_heads.pop()()


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """A Ray head on 127.0.0.1 with the dashboard (and so the job server); yields its URL.

    One per xdist worker that needs it: the tests that use it share the "ray" xdist group
    (tests/conftest.py), so one worker starts it once. It is a user-space process group of
    ours, ended after the last test that uses it; the start is bounded by RAY_START_TIMEOUT_S
    per attempt."""
    try:
        import ray.job_submission  # noqa: F401
    except ImportError:
        engine_missing("Ray is not installed: pip install 'ray[default]>=2.40'")
    ray_bin = _ray_binary()
    if ray_bin is None:
        engine_missing("the `ray` command is not on PATH")
    failures = []
    for _ in range(RAY_START_ATTEMPTS):
        temp_dir = tempfile.mkdtemp(prefix="suanli-ray-", dir="/tmp")  # short: sockets live here
        proc, url, log_path = _start_ray_head(ray_bin, temp_dir)

        def stop(proc: subprocess.Popen[bytes] = proc, temp_dir: str = temp_dir) -> None:
            _stop_group(proc)
            shutil.rmtree(temp_dir, ignore_errors=True)

        try:
            failure, retry = _wait_for_job_server(url, proc, log_path)
            if failure is None:
                _ray_heads.append(stop)
                yield url
                return
            failures.append(failure)
            if not retry:
                break
        finally:
            stop()  # a no-op when the last test has stopped it already
    engine_missing(" / ".join(failures))


def _start_ray_head(ray_bin: str, temp_dir: str) -> tuple[subprocess.Popen[bytes], str, Path]:
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
    return proc, f"http://127.0.0.1:{dashboard_port}", log_path


def _wait_for_job_server(
    url: str, proc: subprocess.Popen[bytes], log_path: Path
) -> tuple[str | None, bool]:
    """(None, _) once the job server answers; else why not, and whether new ports may help."""
    deadline = time.monotonic() + RAY_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"ray start exited {proc.returncode}: {log_path.read_text()[-3000:]}", True
        try:
            if httpx.get(f"{url}/api/jobs/", timeout=2.0).status_code == 200:
                return None, False
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return f"Ray's job server did not answer within {RAY_START_TIMEOUT_S} s", False
