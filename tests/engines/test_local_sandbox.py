"""The local engine's job sandbox against real bubblewrap and real processes: each escape a
hostile job tried on a demo node (issue 12, findings 1 and 12) fails, and normal work still
runs. Under CI=true a host without bwrap is a failure, elsewhere a skip."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from suanli.adapters.engines import EngineError, EngineJobSpec, get_engine
from suanli.adapters.engines._local_sandbox import SandboxUnavailable
from suanli.adapters.engines.base import EngineJobRef, EngineState, EngineStatus
from suanli.adapters.engines.local import LocalEngine
from suanli.domain.errors import ValidationFailed
from tests.engines.conftest import engine_missing, processes_running

PY = sys.executable
DONE = {EngineState.SUCCEEDED, EngineState.FAILED, EngineState.CANCELLED}
AGENT_KEY = "sk-agent-" + secrets.token_hex(8)
WaitFor = Callable[..., EngineStatus]


@pytest.fixture(autouse=True)
def _needs_bwrap() -> None:
    if shutil.which("bwrap", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        engine_missing("bubblewrap is not installed: apt-get install -y bubblewrap")


@pytest.fixture
def agent_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An agent's state directory as `suanli agent` lays it out, with the agent's key in the
    environment the engine (and so every supervisor) inherits."""
    monkeypatch.setenv("SUANLI_API_KEY", AGENT_KEY)
    state = tmp_path / "agent"
    state.mkdir()
    (state / "agent-state.json").write_text(json.dumps({"agent_id": "ag_1", "key": AGENT_KEY}))
    return state


@pytest.fixture
def make_engine(agent_dir: Path) -> Iterator[Callable[..., LocalEngine]]:
    engines: list[tuple[LocalEngine, list[EngineJobRef]]] = []

    def make(**options: object) -> LocalEngine:
        settings: dict[str, object] = {"cpus": 2, "memory_mb": 2048, "kill_grace_s": 1.0,
                                       "max_processes": 64, "max_file_mb": 8, "tmp_mb": 16}
        merged: dict[str, Any] = {**settings, **options}
        engine = LocalEngine(agent_dir / "engine", **merged)
        refs: list[EngineJobRef] = []
        submit = engine.submit

        def recording(spec: EngineJobSpec) -> EngineJobRef:
            refs.append(submit(spec))
            return refs[-1]

        engine.submit = recording  # type: ignore[method-assign]
        engines.append((engine, refs))
        return engine

    yield make
    for engine, refs in engines:
        for ref in refs:
            engine.cancel(ref)


@pytest.fixture
def engine(make_engine: Callable[..., LocalEngine]) -> LocalEngine:
    return make_engine()


def run(engine: LocalEngine, wait_for: WaitFor, code: str, timeout_s: float = 30,
        **spec: object) -> tuple[EngineStatus, str, EngineJobRef]:
    ref = engine.submit(EngineJobSpec(command=(PY, "-c", code), **spec))  # type: ignore[arg-type]
    status = wait_for(engine, ref, DONE, timeout_s)
    return status, engine.logs(ref, max_bytes=1 << 20), ref


# -- finding 1: jobs see the agent ----------------------------------------------------------


def test_a_job_cannot_read_the_agents_environment(engine: LocalEngine, wait_for: WaitFor
                                                  ) -> None:
    code = "import os, json; print(json.dumps(dict(os.environ)))"
    status, logs, _ = run(engine, wait_for, code, env={"MINE": "declared"})
    assert status.state is EngineState.SUCCEEDED, logs
    seen = json.loads(logs)
    assert AGENT_KEY not in logs and "SUANLI_API_KEY" not in seen
    assert "PYTEST_CURRENT_TEST" not in seen  # nothing else of the agent's either
    assert seen["MINE"] == "declared" and seen["HOME"] == "/job"


def test_a_job_cannot_read_the_agents_state_or_another_jobs_spec(
        engine: LocalEngine, agent_dir: Path, wait_for: WaitFor) -> None:
    other = engine.submit(EngineJobSpec(command=("sleep", "30"),
                                        env={"TOKEN": "consumer-a-secret"}))
    wait_for(engine, other, {EngineState.RUNNING}, 10)
    other_spec = agent_dir / "engine" / other.native_id / "spec.json"
    assert "consumer-a-secret" in other_spec.read_text()  # it is there, on the host
    targets = ["../../agent-state.json", "../agent-state.json", str(agent_dir / "agent-state.json"),
               str(other_spec), str(engine.workdir(other))]
    code = f"""
import glob, os
for path in {targets!r} + glob.glob('../*/spec.json') + glob.glob('/*/*/spec.json'):
    try:
        print('LEAK', path, open(path).read() if os.path.isfile(path) else os.listdir(path))
    except OSError as exc:
        print('refused', path, type(exc).__name__)
"""
    status, logs, _ = run(engine, wait_for, code)
    assert status.state is EngineState.SUCCEEDED, logs
    assert "LEAK" not in logs and AGENT_KEY not in logs and "consumer-a-secret" not in logs
    assert logs.count("refused") == len(targets)


def test_a_job_cannot_signal_the_agent(engine: LocalEngine, wait_for: WaitFor) -> None:
    supervisor_pids = [os.getpid(), os.getppid()]
    code = f"""
import os, signal
for pid in {supervisor_pids!r}:
    try:
        os.kill(pid, signal.SIGTERM)
        print('SIGNALLED', pid)
    except OSError as exc:
        print('refused', pid, exc.strerror)
"""
    status, logs, _ = run(engine, wait_for, code)
    assert status.state is EngineState.SUCCEEDED, logs
    assert "SIGNALLED" not in logs and logs.count("refused") == 2
    # and it cannot see a single host process: its /proc is its own PID namespace
    status, logs, _ = run(engine, wait_for, "import os; print(sorted(int(p) for p in "
                                            "os.listdir('/proc') if p.isdigit()))")
    assert max(json.loads(logs)) < 10, logs


def test_a_job_cannot_read_host_files_outside_its_binds(engine: LocalEngine, tmp_path: Path,
                                                       wait_for: WaitFor) -> None:
    secret = "host-secret-" + secrets.token_hex(6)
    host_file = tmp_path / "outside" / "secret.txt"
    host_file.parent.mkdir()
    host_file.write_text(secret)
    host_file.chmod(0o644)  # readable by anyone on the host: only the sandbox hides it
    code = f"""
for path in [{str(host_file)!r}, '/etc/shadow', '/root/.bash_history', '/etc/ssl/private']:
    try:
        print('LEAK', path, open(path).read())
    except OSError as exc:
        print('refused', path, type(exc).__name__)
"""
    status, logs, _ = run(engine, wait_for, code)
    assert status.state is EngineState.SUCCEEDED, logs
    assert secret not in logs and "LEAK" not in logs and logs.count("refused") == 4


# -- finding 12: limits ---------------------------------------------------------------------


def test_a_fork_bomb_is_bounded_by_the_process_limit(engine: LocalEngine,
                                                     wait_for: WaitFor) -> None:
    marker = f"{secrets.randbelow(10**6)}.5"
    code = f"""
import os, time
started = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            os.execvp('sleep', ['sleep', '{marker}'])
        started += 1
except OSError as exc:
    print('fork refused after', started, exc.strerror)
print('started', started, flush=True)
"""
    _, logs, _ = run(engine, wait_for, code)
    assert "fork refused after" in logs, logs
    started = int(logs.split("started")[-1].split()[0])
    assert 10 < started < 64, logs  # max_processes=64 counts the job's own processes too
    assert not processes_running(marker), "the job's children outlived it"


@pytest.mark.parametrize("cgroups", ["auto", "off"])
def test_a_memory_hog_is_stopped_at_the_memory_limit(make_engine: Callable[..., LocalEngine],
                                                     wait_for: WaitFor, cgroups: str) -> None:
    engine = make_engine(cgroups=cgroups)
    code = ("chunks = []\nfor i in range(32):\n    chunks.append(bytearray(32 << 20))\n"
            "    print('held', (i + 1) * 32, 'MB', flush=True)\n")
    status, logs, _ = run(engine, wait_for, code, memory_mb=256)
    assert status.state is EngineState.FAILED, logs
    held = [int(line.split()[1]) for line in logs.splitlines() if line.startswith("held")]
    assert held and max(held) <= 256, logs
    if engine._limits["cgroups"]:
        assert status.message == "memory limit 256 MB exceeded"
    else:
        assert "MemoryError" in logs


def test_many_processes_share_one_memory_limit_under_cgroups(engine: LocalEngine,
                                                             wait_for: WaitFor) -> None:
    if not engine._limits["cgroups"]:
        pytest.skip("this host lets the engine make no cgroups: memory is per process")
    code = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        x = bytearray(120 << 20)
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""
    status, logs, _ = run(engine, wait_for, code, memory_mb=256)
    assert status.state is EngineState.FAILED and "memory limit" in status.message, logs


def test_a_big_file_write_is_stopped_by_the_file_size_limit(engine: LocalEngine,
                                                            wait_for: WaitFor) -> None:
    script = "set -e\nhead -c 64M /dev/zero > big.bin\necho wrote\n"
    ref = engine.submit(EngineJobSpec(script=script))
    status = wait_for(engine, ref, DONE, 30)
    assert status.state is EngineState.FAILED
    assert status.message == "file size limit 8 MB exceeded", status
    assert (engine.workdir(ref) / "big.bin").stat().st_size <= 8 << 20
    # Python ignores SIGXFSZ: its write fails instead, and the file is as big as allowed
    status, logs, ref = run(engine, wait_for, "open('big.bin', 'wb').write(bytes(64 << 20))")
    assert status.state is EngineState.FAILED and "File too large" in logs
    assert (engine.workdir(ref) / "big.bin").stat().st_size <= 8 << 20


def test_a_setsid_child_is_killed_when_its_job_ends(engine: LocalEngine,
                                                    wait_for: WaitFor) -> None:
    marker = f"{secrets.randbelow(10**6)}.25"
    code = f"""
import os, subprocess
subprocess.Popen(['setsid', 'sleep', '{marker}'], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:  # a double fork: the orphan belongs to no one but the namespace
    os.setsid()
    os.execvp('sleep', ['sleep', '{marker}'])
print('left two daemons behind')
"""
    seen: list[int] = []
    ref = engine.submit(EngineJobSpec(command=(PY, "-c", code + "import time; time.sleep(1)")))
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        seen = processes_running(marker, "sleep")
        time.sleep(0.05)
    assert len(seen) == 2, "the daemons never started"
    status = wait_for(engine, ref, DONE, 20)
    assert status.state is EngineState.SUCCEEDED
    assert not processes_running(marker), "a setsid child outlived its job"


def test_orphans_cpu_time_is_counted_in_the_jobs_usage(engine: LocalEngine,
                                                       wait_for: WaitFor) -> None:
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # the grandchild, orphaned at once, burns one CPU-second
        t = time.process_time()
        while time.process_time() - t < 1.0:
            pass
        open('burnt', 'w').close()
    os._exit(0)
deadline = time.time() + 20
while not os.path.exists('burnt') and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.2)  # the orphan exits and is reaped by the namespace's init
"""
    status, logs, ref = run(engine, wait_for, code)
    assert status.state is EngineState.SUCCEEDED, logs
    usage = engine.usage(ref)
    assert usage.cpu_s is not None and usage.cpu_s >= 0.9, usage


def test_cpus_bound_the_cpu_time_a_job_gets(engine: LocalEngine, wait_for: WaitFor) -> None:
    burn = ("import os, time\nfor _ in range(2):\n    if os.fork() == 0:\n"
            "        end = time.time() + 2\n        while time.time() < end: pass\n"
            "        os._exit(0)\nos.wait(); os.wait()\n")
    status, logs, ref = run(engine, wait_for, burn, cpus=1)
    assert status.state is EngineState.SUCCEEDED, logs
    usage = engine.usage(ref)
    assert usage.cpu_s is not None and usage.wall_s >= 2
    # two busy processes, one CPU: a quota (or pinning) keeps them to one CPU-second a second
    assert usage.cpu_s <= 1.3 * usage.wall_s, usage


def test_a_cpus_option_from_the_command_line_is_parsed(agent_dir: Path) -> None:
    engine = get_engine("local", state_dir=str(agent_dir / "engine"), cpus="4",
                        kill_grace_s="1.5", max_processes="128")
    assert isinstance(engine, LocalEngine)
    assert engine.total_cpus == 4 and engine._limits["kill_grace_s"] == 1.5
    for bad in ({"cpus": "four"}, {"cpus": "0"}, {"sandbox": "loose"}, {"cgroups": "maybe"},
                {"kill_grace_s": "nan"}, {"no_such_setting": "1"}, {"max_processes": "2"}):
        with pytest.raises(ValidationFailed):
            get_engine("local", state_dir=str(agent_dir / "engine"), **bad)


# -- network ----------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback that answers 'hello' to whoever connects."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(timeout=5)


def _connect(port: int) -> str:
    return f"""
import socket
try:
    print('GOT', socket.create_connection(('127.0.0.1', {port}), timeout=5).recv(5))
except OSError as exc:
    print('refused', exc)
"""


def test_network_is_off_unless_the_job_asks_and_the_provider_allows(
        make_engine: Callable[..., LocalEngine], wait_for: WaitFor, listener: int) -> None:
    strict = make_engine()
    status, logs, _ = run(strict, wait_for, _connect(listener))
    assert status.state is EngineState.SUCCEEDED and "refused" in logs and "GOT" not in logs
    with pytest.raises(EngineError, match="gives jobs none"):
        strict.submit(EngineJobSpec(command=("true",), network=True))
    open_policy = make_engine(sandbox="network")
    status, logs, _ = run(open_policy, wait_for, _connect(listener))  # did not ask
    assert "refused" in logs and "GOT" not in logs
    status, logs, _ = run(open_policy, wait_for, _connect(listener), network=True)
    assert status.state is EngineState.SUCCEEDED and "GOT b'hello'" in logs, logs


# -- normal work, and the policy ----------------------------------------------------------


def test_a_normal_job_still_works(engine: LocalEngine, wait_for: WaitFor) -> None:
    code = """
import os, subprocess, sys
open('out.txt', 'w').write('result')
open('/tmp/scratch', 'w').write('x')
print('cwd', os.getcwd(), 'home', os.environ['HOME'], 'mine', os.environ['MINE'])
print('id', os.environ['SUANLI_JOB_ID'])
print(subprocess.run(['sh', '-c', 'echo shell ok; ls /job'], capture_output=True, text=True).stdout)
"""
    status, logs, ref = run(engine, wait_for, code, env={"MINE": "yes"})
    assert status.state is EngineState.SUCCEEDED and status.exit_code == 0, logs
    assert "cwd /job home /job mine yes" in logs and f"id {ref.native_id}" in logs
    assert "shell ok" in logs and "out.txt" in logs
    assert (engine.workdir(ref) / "out.txt").read_text() == "result"
    assert engine.state_dir not in engine.workdir(ref).parents


def test_strict_refuses_to_start_without_bwrap(agent_dir: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        LocalEngine(agent_dir / "engine", bwrap="/nonexistent/bwrap")


def test_sandbox_none_runs_without_bwrap_and_says_so_loudly(
        agent_dir: Path, wait_for: WaitFor, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="suanli.engines.local"):
        engine = LocalEngine(agent_dir / "engine", sandbox="none", bwrap="/nonexistent/bwrap",
                             cpus=1, memory_mb=1024)
    assert "JOB SANDBOX DISABLED" in caplog.text
    status, logs, _ = run(engine, wait_for, "import os; print(sorted(os.environ))")
    assert status.state is EngineState.SUCCEEDED and "SUANLI_API_KEY" not in logs


# -- an engine run by an ordinary user --------------------------------------------------

ROOTLESS_SCRIPT = """
import json, os, sys, time
from suanli.adapters.engines import EngineJobSpec
from suanli.adapters.engines.local import LocalEngine
home = sys.argv[1]
with open(os.path.join(home, 'agent-state.json'), 'w') as fh:
    json.dump({'key': os.environ['SUANLI_API_KEY']}, fh)
engine = LocalEngine(os.path.join(home, 'engine'), cpus=1, memory_mb=512, max_processes=32,
                     kill_grace_s=1)
code = '''
import os, json
try:
    state = open(%r).read()
except OSError as exc:
    state = type(exc).__name__
n = 0
try:
    while True:
        if os.fork() == 0:
            import time; time.sleep(5); os._exit(0)
        n += 1
except OSError:
    pass
print(json.dumps({"uid": os.getuid(), "env": sorted(os.environ), "state": state, "forks": n}))
''' % os.path.join(home, 'agent-state.json')
ref = engine.submit(EngineJobSpec(command=('python3', '-c', code)))
deadline = time.time() + 30
while not engine.status(ref).state.is_terminal and time.time() < deadline:
    time.sleep(0.05)
print(json.dumps({"uid_base": engine._limits["uid_base"], "status": str(engine.status(ref)),
                  "job": engine.logs(ref)}))
"""


def test_an_engine_run_by_an_ordinary_user_sandboxes_jobs_as_nobody() -> None:
    """Without root there are no job uids and no cgroups: the job is nobody in a user
    namespace, and the process limit is counted inside it."""
    src = Path(__file__).resolve().parents[2] / "src"
    system_python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not system_python.exists():
        pytest.skip("needs root (to become an ordinary user) and /usr/bin/python3")
    if any(not (p.stat().st_mode & 0o001) for p in (src, *src.parents) if p != Path("/")):
        pytest.skip(f"{src} is not reachable by other users")
    uid = 1_800_000_000 + secrets.randbelow(1000)
    home = Path(tempfile.mkdtemp(prefix="suanli-rootless-", dir="/tmp"))
    try:
        os.chown(home, uid, uid)
        done = subprocess.run(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "env", "-i",
             "PATH=/usr/bin:/bin", f"SUANLI_API_KEY={AGENT_KEY}", f"PYTHONPATH={src}",
             str(system_python), "-c", ROOTLESS_SCRIPT, str(home)],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["uid_base"] is None and "SUCCEEDED" in outcome["status"], outcome
    job = json.loads(outcome["job"])
    assert job["uid"] == 65534 and "SUANLI_API_KEY" not in job["env"]
    assert job["state"] == "FileNotFoundError"  # the agent user's own file, hidden
    assert 10 < job["forks"] < 32, job
