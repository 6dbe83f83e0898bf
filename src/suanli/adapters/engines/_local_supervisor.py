"""Supervises one local job: waits for room, runs it in its sandbox under limits, captures
output, records usage.

Run as `python -m suanli.adapters.engines._local_supervisor JOB_DIR`. It outlives the adapter
object that started it, which is what lets status, logs and usage be read by a new adapter,
and it is the job's parent (bwrap's, in a sandbox), which is what lets `os.wait4` report the
CPU time and RSS of the whole tree: the job's PID namespace reaps every orphan into it.
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
from collections import Counter
from pathlib import Path
from typing import Any

from suanli.adapters.engines import _local_table as table
from suanli.adapters.engines._gpu import GpuMeter, cpu_energy_wh
from suanli.adapters.engines._local_cgroup import JobCgroup
from suanli.adapters.engines._local_process import (
    CappedSink,
    ProcessLimits,
    preexec,
    pump,
    signal_job,
)
from suanli.adapters.engines._local_sandbox import (
    JOB_HOME,
    JobSandbox,
    Launch,
    SandboxPolicy,
    Tools,
    job_environment,
)

POLL_S = 0.1
ADMISSION_POLL_S = 0.25
DRAIN_TIMEOUT_S = 2.0
GRACEFUL = frozenset({"cancelled", "wall-time-limit"})  # SIGTERM first; limits kill at once
MAX_JOB_UIDS = 65536  # root mode: job uids are uid_base .. uid_base + this - 1


class Supervisor:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        spec = table.read_json(job_dir / table.SPEC)
        assert spec is not None, f"{job_dir} has no spec"
        self.spec: dict[str, Any] = spec
        self.limits: dict[str, Any] = spec["limits"]
        self.sandboxed = self.limits["sandbox"] != SandboxPolicy.NONE
        self.cancel_requested = False

    def cancelled(self) -> bool:
        self.cancel_requested = self.cancel_requested or (self.job_dir / table.CANCEL).exists()
        return self.cancel_requested

    def admit(self) -> table.Held | None:
        """Waits until the job fits beside the running ones; None if cancelled meanwhile."""
        want_cpus = int(self.spec["cpus"])
        want_mem = int(self.spec["memory_mb"] or 0)
        want_gpus = int(self.spec["gpus"])
        state_dir = self.job_dir.parent
        while not self.cancelled():
            with table.SchedulerLock(state_dir):
                held = table.held_by_running(state_dir)
                busy_gpus = {i for h in held for i in h.gpu_indices}
                free_gpus = [i for i in range(int(self.limits["total_gpus"]))
                             if i not in busy_gpus]
                fits = (
                    sum(h.cpus for h in held) + want_cpus <= int(self.limits["total_cpus"])
                    and sum(h.memory_mb for h in held) + want_mem
                    <= int(self.limits["total_memory_mb"])
                    and len(free_gpus) >= want_gpus
                )
                if fits:
                    mine = table.Held(want_cpus, want_mem, tuple(free_gpus[:want_gpus]),
                                      _pick_cpus(held, want_cpus), self._pick_uid(held))
                    self._write_started(mine, pid=None)
                    return mine
            time.sleep(ADMISSION_POLL_S)
        return None

    def _pick_uid(self, held: list[table.Held]) -> int | None:
        """Root mode: the lowest uid of the range no running job has, so that the process
        limit and file ownership are the job's alone."""
        base = self.limits.get("uid_base")
        if base is None or not self.sandboxed:
            return None
        taken = {h.uid for h in held}
        uid = next(int(base) + n for n in range(len(taken) + 1) if int(base) + n not in taken)
        assert uid < int(base) + MAX_JOB_UIDS, uid
        return uid

    def _write_started(self, held: table.Held, pid: int | None,
                       cgroup: JobCgroup | None = None) -> None:
        table.write_json(
            self.job_dir / table.STARTED,
            {
                "pid": pid,
                "sandboxed": self.sandboxed,
                "started_at": table.now_s(),
                "cpus": held.cpus,
                "memory_mb": held.memory_mb,
                "gpu_indices": list(held.gpu_indices),
                "cpu_indices": list(held.cpu_indices),
                "uid": held.uid,
                "cpuacct": None if cgroup is None else str(cgroup.dirs["cpuacct"]),
            },
        )

    def make_workdir(self, uid: int | None) -> Path:
        """The job's own directory, outside the engine's job table; the job's uid owns it."""
        if not self.sandboxed and self.spec["workdir"]:
            return Path(self.spec["workdir"])
        workdir = Path(self.limits["work_root"]) / self.job_dir.name
        workdir.mkdir(mode=0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        return workdir

    def command(self, held: table.Held, workdir: Path) -> tuple[list[str], dict[str, str],
                                                               Launch | None]:
        """argv and environment for Popen, and the sandbox launch whose fds to pass."""
        env = self.spec["env"]
        if not self.sandboxed:
            if self.spec["command"] is not None:
                argv = list(self.spec["command"])
            else:
                script = self.job_dir / "script.sh"
                script.write_text(self.spec["script"], encoding="utf-8")
                argv = [shutil.which("bash") or "/bin/sh", str(script)]
            visible = ",".join(str(i) for i in held.gpu_indices)
            return argv, job_environment(env, job_id=self.job_dir.name, home=str(workdir),
                                         cuda_visible=visible), None
        tools = Tools(**self.limits["tools"])
        chdir = self.spec["workdir"] or JOB_HOME
        launch = Launch(tools, JobSandbox(
            workdir=workdir, argv=self.spec["command"] or [], env=env,
            job_id=self.job_dir.name, uid=held.uid, network=bool(self.spec.get("network")),
            gpu_indices=held.gpu_indices, expose=self.limits["expose"],
            max_processes=int(self.limits["max_processes"]), tmp_mb=int(self.limits["tmp_mb"]),
            chdir=chdir, script=self.spec["script"]))
        return launch.argv, launch.env, launch

    def run(self) -> dict[str, Any]:
        held = self.admit()
        if held is None:
            return {"state": "cancelled", "exit_code": None, "message": "cancelled while pending"}
        workdir = self.make_workdir(held.uid)
        cap, tail = int(self.limits["log_cap_bytes"]), int(self.limits["log_tail_bytes"])
        sinks = {
            "out": CappedSink(self.job_dir / table.STDOUT, cap, tail),
            "err": CappedSink(self.job_dir / table.STDERR, cap, tail),
        }
        memory_mb = int(self.spec["memory_mb"])
        cgroup = None
        if self.limits["cgroups"]:
            cgroup = JobCgroup.create(f"suanli-{self.job_dir.name}", memory_mb=memory_mb,
                                      max_processes=int(self.limits["max_processes"]),
                                      cpus=held.cpus)
            if cgroup is None:
                print("cgroups unavailable for this job: rlimits only", file=sys.stderr)
        limits = ProcessLimits(
            cpu_s=self.spec["cpu_time_limit_s"],
            address_space_mb=None if cgroup is not None else memory_mb,
            file_mb=int(self.limits["max_file_mb"]),
            open_files=int(self.limits["open_files"]),
            cpu_indices=held.cpu_indices,
        )
        try:
            return self._run_in(held, workdir, sinks, cgroup, limits)
        finally:
            if cgroup is not None:
                cgroup.kill_all()
                cgroup.remove()

    def _run_in(self, held: table.Held, workdir: Path, sinks: dict[str, CappedSink],
                cgroup: JobCgroup | None, limits: ProcessLimits) -> dict[str, Any]:
        t0 = time.monotonic()
        argv, env, launch = self.command(held, workdir)
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(workdir),
                env=env,
                pass_fds=() if launch is None else tuple(launch.fds),
                start_new_session=True,  # its own process group: one killpg reaches it all
                # safe: this process starts no thread before the job is spawned
                preexec_fn=preexec(limits, cgroup),  # noqa: PLW1509
            )
        except OSError as exc:
            for sink in sinks.values():
                sink.close()
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return {"state": "failed", "exit_code": code, "message": f"cannot start: {exc}"}
        finally:
            if launch is not None:
                launch.close()
        self._write_started(held, pid=child.pid, cgroup=cgroup)
        meter = GpuMeter(held.gpu_indices)
        meter.start()
        result = self._watch(child, sinks, t0, cgroup)
        gpu = meter.stop()
        return self._with_usage(result, held, gpu)

    def _watch(
        self, child: subprocess.Popen[bytes], sinks: dict[str, CappedSink], t0: float,
        cgroup: JobCgroup | None,
    ) -> dict[str, Any]:
        assert child.stdout is not None and child.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(child.stdout, selectors.EVENT_READ, sinks["out"])
        sel.register(child.stderr, selectors.EVENT_READ, sinks["err"])
        time_limit = self.spec["time_limit_s"]
        cpu_limit = self.spec["cpu_time_limit_s"]
        deadline = None if time_limit is None else t0 + float(time_limit)
        grace_s = float(self.limits["kill_grace_s"])
        reason = ""
        kill_at: float | None = None
        waited: tuple[int, int, resource.struct_rusage] | None = None
        while waited is None:
            pump(sel, POLL_S)
            pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                waited = (pid, status, rusage)
                break
            now = time.monotonic()
            if not reason:
                reason = self._reason_to_stop(now, deadline, cgroup, cpu_limit)
            if reason and kill_at is None:
                signal_job(child.pid, signal.SIGTERM, sandboxed=self.sandboxed)
                kill_at = now + (grace_s if reason in GRACEFUL else 0.0)
            elif kill_at is not None and now >= kill_at:
                signal_job(child.pid, signal.SIGKILL, sandboxed=self.sandboxed)
        wall_s = time.monotonic() - t0
        # stragglers: in a sandbox the namespace died with its init; else the group remains
        signal_job(child.pid, signal.SIGKILL, sandboxed=False)
        if cgroup is not None:
            cgroup.kill_all()
        drain_until = time.monotonic() + DRAIN_TIMEOUT_S
        while sel.get_map() and time.monotonic() < drain_until:
            pump(sel, POLL_S)
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
        for sink in sinks.values():
            sink.close()
        _, status, rusage = waited
        child.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
        return self._outcome(status, reason, rusage, wall_s, cgroup)

    def _reason_to_stop(self, now: float, deadline: float | None, cgroup: JobCgroup | None,
                        cpu_limit: int | None) -> str:
        if self.cancelled():
            return "cancelled"
        if deadline is not None and now >= deadline:
            return "wall-time-limit"
        if cgroup is None:
            return ""
        if cpu_limit is not None:
            used = cgroup.cpu_s()  # the whole tree; rlimits count each process alone
            if used is not None and used >= cpu_limit:
                return "cpu-time-limit"
        if cgroup.oom_kills():  # the kernel killed one process; the job goes as a whole
            return "memory-limit"
        return ""

    def _outcome(
        self, status: int, reason: str, rusage: resource.struct_rusage, wall_s: float,
        cgroup: JobCgroup | None,
    ) -> dict[str, Any]:
        cpu_s = rusage.ru_utime + rusage.ru_stime
        tree_cpu_s = None if cgroup is None else cgroup.cpu_s()
        if tree_cpu_s is not None:
            cpu_s = max(cpu_s, tree_cpu_s)
        out: dict[str, Any] = {"wall_s": wall_s, "cpu_s": cpu_s,
                               "max_rss_mb": rusage.ru_maxrss / 1024}
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        out["exit_code"] = os.WEXITSTATUS(status) if sig is None else 128 + sig
        if sig is None and self.sandboxed and 128 < out["exit_code"] < 128 + signal.NSIG:
            sig = out["exit_code"] - 128  # bwrap passes on a killed job's status as 128 + n
        cpu_limit = self.spec["cpu_time_limit_s"]
        if reason == "cancelled":
            out.update(state="cancelled", message="cancelled")
            return out
        out["state"] = "failed"
        if reason == "wall-time-limit":
            out["message"] = f"wall time limit {self.spec['time_limit_s']} s"
        elif reason == "cpu-time-limit" or sig == signal.SIGXCPU or (
            sig == signal.SIGKILL and cpu_limit is not None and cpu_s >= cpu_limit
        ):
            out["message"] = f"CPU time limit {cpu_limit} s exceeded"
        elif reason == "memory-limit" or (cgroup is not None and cgroup.oom_kills()):
            out["message"] = f"memory limit {self.spec['memory_mb']} MB exceeded"
        elif sig == signal.SIGXFSZ:
            out["message"] = f"file size limit {self.limits['max_file_mb']} MB exceeded"
        elif sig is not None:
            out["message"] = f"killed by {signal.Signals(sig).name}"
        elif out["exit_code"] == 0:
            out.update(state="succeeded", message="")
        else:
            out["message"] = f"exit code {out['exit_code']}"
        if cgroup is not None and cgroup.hit_process_limit():
            out["message"] = _joined(out["message"], "process limit "
                                     f"{self.limits['max_processes']} reached")
        return out

    def _with_usage(self, result: dict[str, Any], held: table.Held, gpu: Any) -> dict[str, Any]:
        wall_s = float(result["wall_s"])
        result["gpu_indices"] = list(held.gpu_indices)
        result["device_seconds"] = wall_s * len(held.gpu_indices)
        if gpu is not None:
            result.update(energy_wh=gpu.energy_wh, energy_estimated=gpu.estimated)
        else:
            watts = float(self.limits["cpu_watts_per_core"])
            result.update(energy_wh=cpu_energy_wh(result["cpu_s"], watts), energy_estimated=True)
        return result


def _pick_cpus(held: list[table.Held], want: int) -> tuple[int, ...]:
    """The host CPUs least used by running jobs (each once, when the host has enough)."""
    host = sorted(os.sched_getaffinity(0))
    if want >= len(host):
        return tuple(host)
    load = Counter(i for h in held for i in h.cpu_indices)
    return tuple(sorted(sorted(host, key=lambda i: (load[i], i))[:want]))


def _joined(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


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
