"""The Ray engine against a real Ray head started on 127.0.0.1 for this session."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from suanli.adapters.engines import EngineJobSpec, get_engine
from suanli.adapters.engines.base import Engine, EngineJobRef, EngineState, EngineStatus
from suanli.adapters.engines.ray_jobs import RayJobsEngine, job_output, parse_usage_marker
from suanli.domain.errors import NotFound

pytestmark = pytest.mark.ray

WaitFor = Callable[..., EngineStatus]  # the wait_for fixture
ACTIVE = {EngineState.RUNNING}
DONE = {EngineState.SUCCEEDED, EngineState.FAILED, EngineState.CANCELLED}
BUSY_1S = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"


@pytest.fixture
def ray_engine(ray_head: str, cancel_leftovers: Callable[[Engine], None]) -> RayJobsEngine:
    engine = get_engine("ray", address=ray_head)
    assert isinstance(engine, RayJobsEngine) and isinstance(engine, Engine)
    cancel_leftovers(engine)
    return engine


def test_a_command_runs_to_success_with_logs_and_usage(
    ray_engine: RayJobsEngine, wait_for: WaitFor
) -> None:
    # quotes, dollars and newlines must reach the job untouched by Ray's env expansion
    program = "import os\nprint('hello', os.environ['GREETING'], '${HOME}')\n" + BUSY_1S
    spec = EngineJobSpec(command=("python3", "-c", program), env={"GREETING": "suanli"})
    t0 = time.monotonic()
    ref = ray_engine.submit(spec)
    wait_for(ray_engine, ref, ACTIVE, 30)
    submit_to_running_s = time.monotonic() - t0
    status = wait_for(ray_engine, ref, DONE, 30)
    assert status.state is EngineState.SUCCEEDED and status.exit_code == 0
    logs = ray_engine.logs(ref)
    assert logs.startswith("hello suanli ${HOME}\n"), logs  # Ray's own lines are gone
    assert "__suanli" not in logs
    usage = ray_engine.usage(ref)
    assert usage.cpu_s is not None and usage.cpu_s >= 0.9
    assert usage.wall_s >= 1.0 and usage.energy_estimated
    assert submit_to_running_s < 20


def test_a_failing_script_reports_its_exit_code(
    ray_engine: RayJobsEngine, wait_for: WaitFor
) -> None:
    ref = ray_engine.submit(EngineJobSpec(script="echo oops >&2\nexit 7\n"))
    status = wait_for(ray_engine, ref, DONE, 30)
    assert status.state is EngineState.FAILED and status.exit_code == 7
    assert status.message == "exit code 7"
    assert "oops" in ray_engine.logs(ref)


def test_cancel_stops_a_sleeping_job(ray_engine: RayJobsEngine, wait_for: WaitFor) -> None:
    ref = ray_engine.submit(EngineJobSpec(command=("sleep", "60")))
    wait_for(ray_engine, ref, ACTIVE, 30)
    ray_engine.cancel(ref)
    assert ray_engine.status(ref).state is EngineState.CANCELLED
    assert ray_engine.usage(ref).wall_s < 30
    ray_engine.cancel(ref)  # a finished job: no-op


def test_the_wall_time_limit_stops_a_sleeper(ray_engine: RayJobsEngine, wait_for: WaitFor) -> None:
    ref = ray_engine.submit(EngineJobSpec(command=("sleep", "60"), time_limit_s=1))
    status = wait_for(ray_engine, ref, DONE, 30)
    assert status.state is EngineState.FAILED and status.message == "wall time limit exceeded"


def test_capacity_reports_the_head_and_what_a_job_holds(
    ray_engine: RayJobsEngine, wait_for: WaitFor
) -> None:
    _await_free_cpus(ray_engine, 2)  # earlier tests' jobs may still show as held
    idle = ray_engine.capacity()
    assert idle.cpus == 2 and idle.memory_mb > 0 and idle.gpus == 0
    ref = ray_engine.submit(EngineJobSpec(command=("sleep", "30"), cpus=1))
    try:
        wait_for(ray_engine, ref, ACTIVE, 30)
        _await_free_cpus(ray_engine, 1)
    finally:
        ray_engine.cancel(ref)


def _await_free_cpus(engine: RayJobsEngine, free_cpus: int, timeout_s: float = 20) -> None:
    """Ray's resource report lags its scheduler by a second or more."""
    deadline = time.monotonic() + timeout_s
    while (capacity := engine.capacity()).free_cpus != free_cpus:
        assert time.monotonic() < deadline, capacity
        time.sleep(0.25)


def test_an_unknown_job_is_not_found(ray_engine: RayJobsEngine) -> None:
    with pytest.raises(NotFound):
        ray_engine.status(EngineJobRef("ray", "suanli-no-such-job"))


def test_markers_are_parsed_and_stripped_without_ray() -> None:
    ref = EngineJobRef("ray", "j1")
    raw = (
        "2026-01-01 INFO job_manager.py -- Runtime env is setting up.\n__suanli_start__\n"
        "out\nRunning entrypoint for job j1: "
        'bash -c "$(printf %s "$SUANLI_WRAPPER_B64" | base64 -d)" suanli-job\n'
        "partial\n__suanli_usage__ 1.250 0.250\n"
    )
    assert job_output(ref, raw) == "out\npartial"
    assert parse_usage_marker(raw) == pytest.approx(1.5)
    assert parse_usage_marker("no marker") is None
