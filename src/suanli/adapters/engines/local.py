"""The local engine: jobs run as subprocesses of this host, under rlimits, with a job table on disk.

Each job gets a supervisor process (`_local_supervisor`) that waits for free CPUs, memory and
GPUs, runs the job in its own process group, captures its output with a size cap, and writes
the outcome and usage (from `os.wait4`) into the job's directory. The adapter only reads and
writes that directory, so a new adapter over the same directory sees every job.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from suanli.adapters.engines import _local_table as table
from suanli.adapters.engines._gpu import DEFAULT_CPU_WATTS_PER_CORE, cpu_energy_wh, gpu_count
from suanli.adapters.engines.base import (
    DEFAULT_LOG_BYTES,
    Capacity,
    EngineError,
    EngineJobRef,
    EngineJobSpec,
    EngineState,
    EngineStatus,
    EngineUnavailable,
    EngineUsage,
    check_log_bytes,
    joined_logs,
    read_tail,
)
from suanli.domain.errors import NotFound

KIND = "local"
SUPERVISOR_MODULE = "suanli.adapters.engines._local_supervisor"
START_TIMEOUT_S = 15.0
MAX_RETAINED_JOBS = 1000
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "suanli" / "local-engine"


def _meminfo_mb() -> int:
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise EngineError("MemTotal missing from /proc/meminfo")


class LocalEngine:
    """Runs jobs on this host. Totals default to what the host has; set them lower to share."""

    kind = KIND

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        cpus: int | None = None,
        memory_mb: int | None = None,
        gpus: int | None = None,
        open_files: int = 1024,
        log_cap_bytes: int = 8 << 20,
        log_tail_bytes: int = 256 << 10,
        kill_grace_s: float = 5.0,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
        max_retained_jobs: int = MAX_RETAINED_JOBS,
        python: str = sys.executable,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.total_cpus = cpus if cpus is not None else (os.cpu_count() or 1)
        self.total_memory_mb = memory_mb if memory_mb is not None else _meminfo_mb()
        self.total_gpus = gpus if gpus is not None else gpu_count()
        assert self.total_cpus >= 1 and self.total_memory_mb >= 1 and self.total_gpus >= 0
        assert 16 <= open_files <= 1 << 20, open_files
        assert 1024 <= log_cap_bytes <= 1 << 30 and 0 <= log_tail_bytes <= log_cap_bytes
        assert 0 <= kill_grace_s <= 300, kill_grace_s
        assert 1 <= max_retained_jobs <= 100_000, max_retained_jobs
        self._limits = {
            "total_cpus": self.total_cpus,
            "total_memory_mb": self.total_memory_mb,
            "total_gpus": self.total_gpus,
            "open_files": open_files,
            "log_cap_bytes": log_cap_bytes,
            "log_tail_bytes": log_tail_bytes,
            "kill_grace_s": kill_grace_s,
            "cpu_watts_per_core": cpu_watts_per_core,
        }
        self._kill_grace_s = kill_grace_s
        self._max_retained_jobs = max_retained_jobs
        self._python = python
        self._children: list[subprocess.Popen[bytes]] = []
        self._children_lock = threading.Lock()  # the API may submit from several threads

    # -- the Engine interface -------------------------------------------------------------

    def submit(self, spec: EngineJobSpec) -> EngineJobRef:
        self._check_fits(spec)
        table.prune(self.state_dir, self._max_retained_jobs)
        job_id = f"{time.time_ns():x}-{secrets.token_hex(4)}"
        job_dir = self.state_dir / job_id
        job_dir.mkdir()
        record: dict[str, Any] = spec.to_dict()
        record["cpu_time_limit_s"] = spec.effective_cpu_time_limit_s
        record["limits"] = self._limits
        record["submitted_at"] = table.now_s()
        table.write_json(job_dir / table.SPEC, record)
        self._spawn_supervisor(job_dir)
        return EngineJobRef(KIND, job_id)

    def status(self, ref: EngineJobRef) -> EngineStatus:
        job_dir = self._job_dir(ref)
        result = table.read_json(job_dir / table.RESULT)
        if result is not None:
            return _status_from_result(result)
        if table.supervisor_alive(job_dir):
            started = table.read_json(job_dir / table.STARTED)
            if started is not None and started.get("pid") is not None:
                return EngineStatus(EngineState.RUNNING)
            return EngineStatus(EngineState.PENDING, message="waiting for free resources")
        result = table.read_json(job_dir / table.RESULT)  # it may have finished just now
        if result is not None:
            return _status_from_result(result)
        return EngineStatus(EngineState.UNKNOWN, message="supervisor exited without a result")

    def cancel(self, ref: EngineJobRef) -> None:
        job_dir = self._job_dir(ref)
        if (job_dir / table.RESULT).exists():
            return
        (job_dir / table.CANCEL).touch()
        # the supervisor polls the marker; wait for it to kill the group and write the result
        wait_s = self._kill_grace_s + 5.0
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if (job_dir / table.RESULT).exists():
                return
            if not table.supervisor_alive(job_dir):
                self._cancel_orphan(job_dir)
                return
            time.sleep(0.05)
        raise EngineError(f"job {ref} did not stop within {wait_s:.0f} s of cancel")

    def logs(self, ref: EngineJobRef, *, max_bytes: int = DEFAULT_LOG_BYTES) -> str:
        check_log_bytes(max_bytes)
        job_dir = self._job_dir(ref)
        return joined_logs(
            read_tail(job_dir / table.STDOUT, max_bytes),
            read_tail(job_dir / table.STDERR, max_bytes),
            max_bytes,
        )

    def usage(self, ref: EngineJobRef) -> EngineUsage:
        job_dir = self._job_dir(ref)
        result = table.read_json(job_dir / table.RESULT)
        if result is not None:
            return EngineUsage(
                wall_s=float(result.get("wall_s", 0.0)),
                cpu_s=_opt_float(result.get("cpu_s")),
                max_rss_mb=_opt_float(result.get("max_rss_mb")),
                device_seconds=float(result.get("device_seconds", 0.0)),
                energy_wh=_opt_float(result.get("energy_wh")),
                energy_estimated=bool(result.get("energy_estimated", True)),
            )
        started = table.read_json(job_dir / table.STARTED)
        if started is None or started.get("pid") is None:
            return EngineUsage(wall_s=0.0, cpu_s=0.0, energy_wh=0.0)
        return self._running_usage(started)

    def capacity(self) -> Capacity:
        held = table.held_by_running(self.state_dir)
        return Capacity(
            cpus=self.total_cpus,
            memory_mb=self.total_memory_mb,
            gpus=self.total_gpus,
            free_cpus=max(0, self.total_cpus - sum(h.cpus for h in held)),
            free_memory_mb=max(0, self.total_memory_mb - sum(h.memory_mb for h in held)),
            free_gpus=max(0, self.total_gpus - sum(len(h.gpu_indices) for h in held)),
        )

    # -- helpers --------------------------------------------------------------------------

    def _check_fits(self, spec: EngineJobSpec) -> None:
        if (
            spec.cpus > self.total_cpus
            or (spec.memory_mb or 0) > self.total_memory_mb
            or spec.gpus > self.total_gpus
        ):
            raise EngineError(
                f"job asks for {spec.cpus} CPUs, {spec.memory_mb} MB, {spec.gpus} GPUs; this "
                f"host has {self.total_cpus}, {self.total_memory_mb} MB, {self.total_gpus}"
            )

    def _spawn_supervisor(self, job_dir: Path) -> None:
        with self._children_lock:  # poll() reaps supervisors that have exited
            self._children = [c for c in self._children if c.poll() is None]
        with open(job_dir / table.SUPERVISOR_LOG, "ab") as log:
            child = subprocess.Popen(
                [self._python, "-m", SUPERVISOR_MODULE, str(job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=str(job_dir),
                start_new_session=True,  # a Ctrl-C aimed at the caller does not kill jobs
            )
        with self._children_lock:
            self._children.append(child)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not table.supervisor_alive(job_dir) and not (job_dir / table.RESULT).exists():
            if child.poll() is not None and not (job_dir / table.RESULT).exists():
                raise EngineUnavailable(
                    f"supervisor exited with {child.returncode}; see {log.name}"
                )
            if time.monotonic() > deadline:
                child.kill()
                raise EngineUnavailable(f"supervisor did not start within {START_TIMEOUT_S} s")
            time.sleep(0.01)

    def _cancel_orphan(self, job_dir: Path) -> None:
        """The supervisor is gone without a result: kill what it left and record the cancel."""
        if (job_dir / table.RESULT).exists():
            return
        started = table.read_json(job_dir / table.STARTED) or {}
        pid = started.get("pid")
        if isinstance(pid, int) and pid > 1:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        table.write_json(
            job_dir / table.RESULT,
            {
                "state": "cancelled",
                "exit_code": None,
                "message": "cancelled (supervisor lost)",
                "wall_s": max(0.0, table.now_s() - float(started.get("started_at", table.now_s()))),
            },
        )

    def _running_usage(self, started: dict[str, Any]) -> EngineUsage:
        """While running only the job's leader process is visible (its reaped children too)."""
        wall_s = max(0.0, table.now_s() - float(started["started_at"]))
        cpu_s, rss_mb = _proc_usage(int(started["pid"]))
        gpus = len(started.get("gpu_indices", []))
        watts = float(self._limits["cpu_watts_per_core"])
        return EngineUsage(
            wall_s=wall_s,
            cpu_s=cpu_s,
            max_rss_mb=rss_mb,
            device_seconds=wall_s * gpus,
            energy_wh=None if cpu_s is None or gpus else cpu_energy_wh(cpu_s, watts),
            energy_estimated=True,
        )

    def _job_dir(self, ref: EngineJobRef) -> Path:
        if ref.engine != KIND:
            raise NotFound(f"{ref} is not a local engine job", field="ref")
        if "/" in ref.native_id or ref.native_id.startswith("."):
            raise NotFound(f"no local job {ref.native_id!r}", field="ref")
        job_dir = self.state_dir / ref.native_id
        if not (job_dir / table.SPEC).exists():
            raise NotFound(f"no local job {ref.native_id!r}", field="ref")
        return job_dir


def _status_from_result(result: dict[str, Any]) -> EngineStatus:
    exit_code = result.get("exit_code")
    return EngineStatus(
        EngineState(result["state"]),
        exit_code=int(exit_code) if exit_code is not None else None,
        message=str(result.get("message", "")),
    )


def _proc_usage(pid: int) -> tuple[float | None, float | None]:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            hwm = next((ln for ln in fh if ln.startswith("VmHWM:")), None)
    except (FileNotFoundError, ProcessLookupError):
        return None, None
    # fields[11:15] are utime, stime, cutime, cstime in clock ticks (man 5 proc, from field 14)
    cpu_s = sum(int(x) for x in fields[11:15]) / _CLK_TCK
    rss_mb = int(hwm.split()[1]) / 1024 if hwm else None
    return cpu_s, rss_mb


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
