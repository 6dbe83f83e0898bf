"""The Slurm engine against a real one-node cluster (slurmdbd, slurmctld, slurmd) on this host."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from suanli.adapters.engines import EngineJobSpec, get_engine
from suanli.adapters.engines import _slurm_parse as parse
from suanli.adapters.engines.base import Engine, EngineJobRef, EngineState, EngineStatus
from suanli.adapters.engines.slurm import SlurmEngine
from suanli.domain.errors import NotFound

pytestmark = pytest.mark.slurm

WaitFor = Callable[..., EngineStatus]  # the wait_for fixture
ACTIVE = {EngineState.RUNNING}
DONE = {EngineState.SUCCEEDED, EngineState.FAILED, EngineState.CANCELLED}
BUSY_2S = "import time\nt = time.process_time()\nwhile time.process_time() - t < 2.0: pass\n"


@pytest.fixture
def slurm_engine(
    slurm_cluster: None, tmp_path: Path, cancel_leftovers: Callable[[Engine], None]
) -> SlurmEngine:
    engine = get_engine("slurm", output_dir=tmp_path / "slurm-out", partition="debug")
    assert isinstance(engine, SlurmEngine) and isinstance(engine, Engine)
    cancel_leftovers(engine)
    return engine


def test_a_command_runs_to_success_with_logs_and_usage(
    slurm_engine: SlurmEngine, wait_for: WaitFor
) -> None:
    program = "import os\nprint('hello', os.environ['GREETING'])\nx = bytearray(64 << 20)\n"
    spec = EngineJobSpec(
        command=("python3", "-c", program + BUSY_2S), env={"GREETING": "it's $uanli"},
        memory_mb=512,
    )  # fmt: skip
    t0 = time.monotonic()
    ref = slurm_engine.submit(spec)
    wait_for(slurm_engine, ref, ACTIVE, 30)
    submit_to_running_s = time.monotonic() - t0
    status = wait_for(slurm_engine, ref, DONE, 30)
    assert status.state is EngineState.SUCCEEDED and status.exit_code == 0
    assert "hello it's $uanli" in slurm_engine.logs(ref)
    usage = slurm_engine.usage(ref)  # from sacct, through slurmdbd
    assert usage.cpu_s is not None and usage.cpu_s >= 1.8
    assert usage.wall_s >= 2  # Slurm counts whole seconds
    assert usage.max_rss_mb is not None and usage.max_rss_mb >= 64
    assert usage.energy_wh is not None and usage.energy_estimated
    assert submit_to_running_s < 15


def test_a_failing_script_reports_its_exit_code(
    slurm_engine: SlurmEngine, wait_for: WaitFor
) -> None:
    ref = slurm_engine.submit(EngineJobSpec(script="echo oops >&2\nexit 7\n"))
    status = wait_for(slurm_engine, ref, DONE, 30)
    assert status.state is EngineState.FAILED and status.exit_code == 7
    assert "oops" in slurm_engine.logs(ref)


def test_cancel_stops_a_sleeping_job(slurm_engine: SlurmEngine, wait_for: WaitFor) -> None:
    ref = slurm_engine.submit(EngineJobSpec(command=("sleep", "60")))
    wait_for(slurm_engine, ref, ACTIVE, 30)
    slurm_engine.cancel(ref)
    assert slurm_engine.status(ref).state is EngineState.CANCELLED
    slurm_engine.cancel(ref)  # a finished job: no-op


def test_cpu_time_limit_kills_a_busy_loop(slurm_engine: SlurmEngine, wait_for: WaitFor) -> None:
    spec = EngineJobSpec(command=("python3", "-c", "while True: pass"), cpu_time_limit_s=1)
    status = wait_for(slurm_engine, slurm_engine.submit(spec), DONE, 30)
    assert status.state is EngineState.FAILED
    assert status.exit_code == 128 + signal.SIGXCPU
    assert status.message == f"killed by signal {int(signal.SIGXCPU)}"


def test_capacity_reports_the_node_and_what_a_job_holds(
    slurm_engine: SlurmEngine, wait_for: WaitFor
) -> None:
    idle = slurm_engine.capacity()
    assert idle.cpus >= 1 and idle.memory_mb > 0
    ref = slurm_engine.submit(EngineJobSpec(command=("sleep", "30"), memory_mb=300))
    try:
        wait_for(slurm_engine, ref, ACTIVE, 30)
        busy = slurm_engine.capacity()
        assert busy.free_cpus == idle.free_cpus - 1
        assert busy.free_memory_mb == idle.free_memory_mb - 300
    finally:
        slurm_engine.cancel(ref)


def test_an_unknown_job_is_not_found(slurm_engine: SlurmEngine) -> None:
    with pytest.raises(NotFound):
        slurm_engine.status(EngineJobRef("slurm", "999999999"))


def test_sacct_and_scontrol_output_is_parsed() -> None:
    sacct = (
        "12|CANCELLED by 0|0:15|61|01:02.500||0|billing=1,cpu=1,gres/gpu=2,mem=256M,node=1\n"
        "12.batch|CANCELLED|0:15|61|01:02.500|117364K|0|cpu=1,mem=256M,node=1\n"
        "12.extern|COMPLETED|0:0|61|00:00:00|1024K|0|billing=1,cpu=1,mem=256M,node=1\n"
    )
    job = parse.parse_sacct("12", sacct)
    assert job is not None
    assert parse.engine_state(job.state) is EngineState.CANCELLED
    assert job.exit_code == 143 and job.elapsed_s == 61 and job.gpus == 2
    assert job.total_cpu_s == pytest.approx(62.5)
    assert job.max_rss_mb == pytest.approx(117364 / 1024)
    assert job.consumed_energy_j is None
    assert parse.parse_sacct("13", sacct) is None
    assert parse.duration_s("1-02:03:04") == 93784
    assert parse.exit_code("3:0") == 3
    node = parse.parse_oneliner("NodeName=vm CfgTRES=cpu=2,mem=21695M AllocTRES= State=IDLE")
    assert parse.tres(node["CfgTRES"]) == {"cpu": "2", "mem": "21695M"}
    assert node["AllocTRES"] == ""
