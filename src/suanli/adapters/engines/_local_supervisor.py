"""Supervises one local job: waits for room, runs it under rlimits, captures output, records usage.

Run as `python -m suanli.adapters.engines._local_supervisor JOB_DIR`. It outlives the adapter
object that started it, which is what lets status, logs and usage be read by a new adapter,
and it is the job's parent, which is what lets `os.wait4` report the job's CPU time and RSS.
"""

from __future__ import annotations

import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from suanli.adapters.engines import _local_table as table
from suanli.adapters.engines._gpu import GpuMeter, cpu_energy_wh

POLL_S = 0.1
ADMISSION_POLL_S = 0.25
DRAIN_TIMEOUT_S = 2.0
READ_CHUNK = 64 << 10


class CappedSink:
    """Writes the first `cap_bytes` to a file, keeps the last `tail_bytes` in memory, drops the
    middle; the tail goes to the file at the end, so both the start and the crash show."""

    def __init__(self, path: Path, cap_bytes: int, tail_bytes: int) -> None:
        assert cap_bytes > 0 and 0 <= tail_bytes <= cap_bytes, (cap_bytes, tail_bytes)
        # unbuffered, since logs() reads it while the job runs; closed by close()
        self._fh = open(path, "ab", buffering=0)  # noqa: SIM115
        self._cap = cap_bytes
        self._tail_cap = tail_bytes
        self._written = 0
        self._tail = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        room = self._cap - self._written
        if room > 0:
            head = data[:room]
            self._fh.write(head)
            self._written += len(head)
            data = data[room:]
        if data:
            self._tail += data
            overflow = len(self._tail) - self._tail_cap
            if overflow > 0:
                del self._tail[:overflow]
                self.dropped += overflow

    def close(self) -> None:
        if self.dropped:
            self._fh.write(f"\n[suanli: {self.dropped} bytes of output dropped]\n".encode())
        self._fh.write(bytes(self._tail))
        self._fh.close()


def rlimit_setter(cpu_s: int | None, memory_mb: int | None, open_files: int) -> Callable[[], None]:
    """The preexec hook: runs in the child between fork and exec, so it must only set limits."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files filling the disk
        if cpu_s is not None:
            # SIGXCPU at the soft limit, SIGKILL a little later for a job that ignores it
            resource.setrlimit(resource.RLIMIT_CPU, _clamp(resource.RLIMIT_CPU, cpu_s, cpu_s + 2))
        if memory_mb is not None:
            limit = memory_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, _clamp(resource.RLIMIT_AS, limit, limit))
        resource.setrlimit(
            resource.RLIMIT_NOFILE, _clamp(resource.RLIMIT_NOFILE, open_files, open_files)
        )

    return apply


def _clamp(which: int, soft: int, hard: int) -> tuple[int, int]:
    """setrlimit may lower the hard limit but never raise it."""
    _, cur_hard = resource.getrlimit(which)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard)
        soft = min(soft, hard)
    return soft, hard


class Supervisor:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        spec = table.read_json(job_dir / table.SPEC)
        assert spec is not None, f"{job_dir} has no spec"
        self.spec: dict[str, Any] = spec
        self.cancel_requested = False

    def cancelled(self) -> bool:
        self.cancel_requested = self.cancel_requested or (self.job_dir / table.CANCEL).exists()
        return self.cancel_requested

    def admit(self) -> table.Held | None:
        """Waits until the job fits beside the running ones; None if cancelled meanwhile."""
        limits = self.spec["limits"]
        want_cpus = int(self.spec["cpus"])
        want_mem = int(self.spec["memory_mb"] or 0)
        want_gpus = int(self.spec["gpus"])
        state_dir = self.job_dir.parent
        while not self.cancelled():
            with table.SchedulerLock(state_dir):
                held = table.held_by_running(state_dir)
                busy_gpus = {i for h in held for i in h.gpu_indices}
                free_gpus = [i for i in range(int(limits["total_gpus"])) if i not in busy_gpus]
                fits = (
                    sum(h.cpus for h in held) + want_cpus <= int(limits["total_cpus"])
                    and sum(h.memory_mb for h in held) + want_mem <= int(limits["total_memory_mb"])
                    and len(free_gpus) >= want_gpus
                )
                if fits:
                    mine = table.Held(want_cpus, want_mem, tuple(free_gpus[:want_gpus]))
                    self._write_started(mine, pid=None)
                    return mine
            time.sleep(ADMISSION_POLL_S)
        return None

    def _write_started(self, held: table.Held, pid: int | None) -> None:
        table.write_json(
            self.job_dir / table.STARTED,
            {
                "pid": pid,
                "started_at": table.now_s(),
                "cpus": held.cpus,
                "memory_mb": held.memory_mb,
                "gpu_indices": list(held.gpu_indices),
            },
        )

    def argv(self) -> list[str]:
        if self.spec["command"] is not None:
            return list(self.spec["command"])
        script = self.job_dir / "script.sh"
        script.write_text(self.spec["script"], encoding="utf-8")
        return [shutil.which("bash") or "/bin/sh", str(script)]

    def child_env(self, held: table.Held) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec["env"])
        # an empty list hides every GPU from a job that was given none
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in held.gpu_indices)
        env["SUANLI_JOB_ID"] = self.job_dir.name
        return env

    def run(self) -> dict[str, Any]:
        held = self.admit()
        if held is None:
            return {"state": "cancelled", "exit_code": None, "message": "cancelled while pending"}
        limits = self.spec["limits"]
        cap, tail = int(limits["log_cap_bytes"]), int(limits["log_tail_bytes"])
        sinks = {
            "out": CappedSink(self.job_dir / table.STDOUT, cap, tail),
            "err": CappedSink(self.job_dir / table.STDERR, cap, tail),
        }
        t0 = time.monotonic()
        try:
            child = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.spec["workdir"] or str(self.job_dir),
                env=self.child_env(held),
                start_new_session=True,  # its own process group, so one killpg reaches all
                # safe: this process starts no thread before the job is spawned
                preexec_fn=rlimit_setter(  # noqa: PLW1509
                    self.spec["cpu_time_limit_s"],
                    self.spec["memory_mb"],
                    int(limits["open_files"]),
                ),
            )
        except OSError as exc:
            for sink in sinks.values():
                sink.close()
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return {"state": "failed", "exit_code": code, "message": f"cannot start: {exc}"}
        self._write_started(held, pid=child.pid)
        meter = GpuMeter(held.gpu_indices)
        meter.start()
        result = self._watch(child, sinks, t0)
        gpu = meter.stop()
        return self._with_usage(result, held, gpu)

    def _watch(
        self, child: subprocess.Popen[bytes], sinks: dict[str, CappedSink], t0: float
    ) -> dict[str, Any]:
        assert child.stdout is not None and child.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(child.stdout, selectors.EVENT_READ, sinks["out"])
        sel.register(child.stderr, selectors.EVENT_READ, sinks["err"])
        time_limit = self.spec["time_limit_s"]
        deadline = None if time_limit is None else t0 + float(time_limit)
        grace_s = float(self.spec["limits"]["kill_grace_s"])
        reason = ""
        kill_at: float | None = None
        waited: tuple[int, int, resource.struct_rusage] | None = None
        while waited is None:
            _pump(sel, POLL_S)
            pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                waited = (pid, status, rusage)
                break
            now = time.monotonic()
            if not reason and self.cancelled():
                reason = "cancelled"
            elif not reason and deadline is not None and now >= deadline:
                reason = "wall-time-limit"
            if reason and kill_at is None:
                _killpg(child.pid, signal.SIGTERM)
                kill_at = now + grace_s
            elif kill_at is not None and now >= kill_at:
                _killpg(child.pid, signal.SIGKILL)
        wall_s = time.monotonic() - t0
        _killpg(child.pid, signal.SIGKILL)  # stragglers the job left behind in its group
        drain_until = time.monotonic() + DRAIN_TIMEOUT_S
        while sel.get_map() and time.monotonic() < drain_until:
            _pump(sel, POLL_S)
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
        for sink in sinks.values():
            sink.close()
        _, status, rusage = waited
        child.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        return self._outcome(status, reason, rusage, wall_s)

    def _outcome(
        self, status: int, reason: str, rusage: resource.struct_rusage, wall_s: float
    ) -> dict[str, Any]:
        cpu_s = rusage.ru_utime + rusage.ru_stime
        out: dict[str, Any] = {
            "wall_s": wall_s,
            "cpu_s": cpu_s,
            "max_rss_mb": rusage.ru_maxrss / 1024,
        }
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        out["exit_code"] = os.WEXITSTATUS(status) if sig is None else 128 + sig
        cpu_limit = self.spec["cpu_time_limit_s"]
        if reason == "cancelled":
            out.update(state="cancelled", message="cancelled")
        elif reason == "wall-time-limit":
            out.update(state="failed", message=f"wall time limit {self.spec['time_limit_s']} s")
        elif sig == signal.SIGXCPU or (
            sig == signal.SIGKILL and cpu_limit is not None and cpu_s >= cpu_limit
        ):
            out.update(state="failed", message=f"CPU time limit {cpu_limit} s exceeded")
        elif sig is not None:
            out.update(state="failed", message=f"killed by {signal.Signals(sig).name}")
        elif out["exit_code"] == 0:
            out.update(state="succeeded", message="")
        else:
            out.update(state="failed", message=f"exit code {out['exit_code']}")
        return out

    def _with_usage(self, result: dict[str, Any], held: table.Held, gpu: Any) -> dict[str, Any]:
        wall_s = float(result["wall_s"])
        result["gpu_indices"] = list(held.gpu_indices)
        result["device_seconds"] = wall_s * len(held.gpu_indices)
        if gpu is not None:
            result.update(energy_wh=gpu.energy_wh, energy_estimated=gpu.estimated)
        else:
            watts = float(self.spec["limits"]["cpu_watts_per_core"])
            result.update(energy_wh=cpu_energy_wh(result["cpu_s"], watts), energy_estimated=True)
        return result


def _pump(sel: selectors.BaseSelector, timeout_s: float) -> None:
    """Moves what the pipes hold into the sinks; unregisters a pipe at EOF."""
    if not sel.get_map():
        time.sleep(timeout_s)
        return
    for key, _ in sel.select(timeout_s):
        fileobj = cast(IO[bytes], key.fileobj)  # selectors types it as any fd; we register pipes
        data = os.read(fileobj.fileno(), READ_CHUNK)
        if data:
            key.data.write(data)
        else:
            sel.unregister(fileobj)
            fileobj.close()


def _killpg(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m suanli.adapters.engines._local_supervisor JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[1])
    lock_fd = table.hold_lock(job_dir)
    # the adapter asks for cancellation through a marker file; a signal only hurries it along
    signal.signal(signal.SIGTERM, lambda *_: (job_dir / table.CANCEL).touch())
    sup = Supervisor(job_dir)
    started_at = table.now_s()
    result: dict[str, Any] = {"state": "failed", "exit_code": None, "message": "interrupted"}
    try:
        result = sup.run()
    except Exception as exc:  # recorded, so status says why instead of "supervisor lost"
        result = {"state": "failed", "exit_code": None, "message": f"supervisor error: {exc!r}"}
        raise
    finally:
        result.setdefault("wall_s", 0.0)
        result.setdefault("started_at", started_at)
        result["ended_at"] = table.now_s()
        table.write_json(job_dir / table.RESULT, result)
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
