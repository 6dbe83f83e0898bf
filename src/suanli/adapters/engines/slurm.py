"""The Slurm engine: drives sbatch, scontrol, sacct and scancel as subprocesses with timeouts.

State comes from `scontrol show job` while slurmctld still holds the job (MinJobAge after it
ends) and from `sacct` afterwards; usage (Elapsed, TotalCPU, MaxRSS, ConsumedEnergy) comes
from `sacct`, which needs accounting through slurmdbd. Without accounting the adapter still
works, reporting wall time only. Output goes to files in `output_dir`, which the compute
nodes and this host must share (true on one host; on a cluster, a shared file system).
"""

from __future__ import annotations

import math
import secrets
import shlex
import subprocess
import time
from pathlib import Path

from suanli.adapters.engines import _slurm_parse as parse
from suanli.adapters.engines._gpu import DEFAULT_CPU_WATTS_PER_CORE, cpu_energy_wh
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

KIND = "slurm"
READ_RETRIES = 3  # status, usage and capacity retry a controller that is briefly unreachable
ACCOUNTING_WAIT_S = 10.0  # slurmctld hands a finished job to slurmdbd asynchronously
MAX_OUTPUT_CHARS = 4 << 20
_UNREACHABLE = ("Unable to contact slurm controller", "Socket timed out", "Connection refused")
_UNAVAILABLE_NODE_STATES = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "POWERED_DOWN", "INVAL")


class SlurmEngine:
    """One Slurm cluster (optionally one partition) reached through its command-line tools."""

    kind = KIND

    def __init__(
        self,
        output_dir: str | Path,
        *,
        partition: str | None = None,
        account: str | None = None,
        command_timeout_s: float = 30.0,
        cancel_wait_s: float = 30.0,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
        slurm_bin_dir: str | None = None,
    ) -> None:
        assert 1 <= command_timeout_s <= 600 and 0 <= cancel_wait_s <= 600
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.partition = partition
        self.account = account
        self._timeout_s = command_timeout_s
        self._cancel_wait_s = cancel_wait_s
        self._watts = cpu_watts_per_core
        self._bin = Path(slurm_bin_dir) if slurm_bin_dir else None

    # -- the Engine interface -------------------------------------------------------------

    def submit(self, spec: EngineJobSpec) -> EngineJobRef:
        script = self.output_dir / f"{spec.name}-{secrets.token_hex(4)}.sbatch"
        script.write_text(self._batch_script(spec, script), encoding="utf-8")
        out = self._run(["sbatch", "--parsable", str(script)], retries=1)
        job_id = out.strip().split(";")[0]  # "id" or "id;cluster"
        if not job_id.isdigit():
            raise EngineError(f"sbatch printed no job id: {out[:200]!r}")
        return EngineJobRef(KIND, job_id)

    def status(self, ref: EngineJobRef) -> EngineStatus:
        job_id = self._job_id(ref)
        live = self._scontrol_job(job_id)
        if live is not None:
            state = live.get("JobState", "")
            reason = live.get("Reason", "")
            return self._status(state, parse.exit_code(live.get("ExitCode", "")), reason)
        acct = self._sacct(job_id)
        if acct is None:
            raise NotFound(f"Slurm knows no job {job_id}", field="ref")
        return self._status(acct.state, acct.exit_code, "")

    def cancel(self, ref: EngineJobRef) -> None:
        job_id = self._job_id(ref)
        if self.status(ref).state.is_terminal:
            return
        self._run(["scancel", job_id], retries=1)
        deadline = time.monotonic() + self._cancel_wait_s
        while not self.status(ref).state.is_terminal:
            if time.monotonic() > deadline:
                raise EngineError(f"job {job_id} did not stop within {self._cancel_wait_s} s")
            time.sleep(0.2)

    def logs(self, ref: EngineJobRef, *, max_bytes: int = DEFAULT_LOG_BYTES) -> str:
        check_log_bytes(max_bytes)
        job_id = self._job_id(ref)
        return joined_logs(
            read_tail(self.output_dir / f"slurm-{job_id}.out", max_bytes),
            read_tail(self.output_dir / f"slurm-{job_id}.err", max_bytes),
            max_bytes,
        )

    def usage(self, ref: EngineJobRef) -> EngineUsage:
        job_id = self._job_id(ref)
        live = self._scontrol_job(job_id)
        live_state = parse.engine_state(live.get("JobState", "")) if live else None
        acct = self._sacct_final(job_id, wait=live_state is not None and live_state.is_terminal)
        if acct is not None and parse.engine_state(acct.state).is_terminal:
            return self._usage_from_sacct(acct)
        if live is None:
            if acct is None:
                raise NotFound(f"Slurm knows no job {job_id}", field="ref")
            return self._usage_from_sacct(acct)
        wall_s = parse.duration_s(live.get("RunTime", "")) or 0.0
        gpus = int(parse.tres(live.get("TRES", "")).get("gres/gpu", "0") or 0)
        return EngineUsage(wall_s=wall_s, device_seconds=wall_s * gpus)

    def capacity(self) -> Capacity:
        names = self._partition_nodes()
        totals = [0, 0, 0]
        free = [0, 0, 0]
        for line in self._run(["scontrol", "show", "node", "-o"]).splitlines():
            node = parse.parse_oneliner(line)
            if not node.get("NodeName") or (names is not None and node["NodeName"] not in names):
                continue
            cfg = parse.tres(node.get("CfgTRES", ""))
            alloc = parse.tres(node.get("AllocTRES", ""))
            have = _tres_triplet(cfg)
            used = _tres_triplet(alloc)
            totals = [a + b for a, b in zip(totals, have, strict=True)]
            if not any(s in node.get("State", "") for s in _UNAVAILABLE_NODE_STATES):
                free = [a + max(0, h - u) for a, h, u in zip(free, have, used, strict=True)]
        return Capacity(totals[0], totals[1], totals[2], free[0], free[1], free[2])

    # -- helpers --------------------------------------------------------------------------

    def _batch_script(self, spec: EngineJobSpec, script_path: Path) -> str:
        out_dir = self.output_dir.resolve()
        lines = [
            "#!/bin/bash",
            f"#SBATCH --job-name={spec.name}",
            f"#SBATCH --output={out_dir}/slurm-%j.out",
            f"#SBATCH --error={out_dir}/slurm-%j.err",
            "#SBATCH --ntasks=1",
            f"#SBATCH --cpus-per-task={spec.cpus}",
        ]
        if self.partition:
            lines.append(f"#SBATCH --partition={self.partition}")
        if self.account:
            lines.append(f"#SBATCH --account={self.account}")
        if spec.memory_mb is not None:
            lines.append(f"#SBATCH --mem={spec.memory_mb}M")
        if spec.gpus:
            lines.append(f"#SBATCH --gres=gpu:{spec.gpus}")
        if spec.time_limit_s is not None:
            # Slurm counts whole minutes; its own granularity is coarser still (about 30 s)
            lines.append(f"#SBATCH --time={math.ceil(spec.time_limit_s / 60)}")
        if spec.workdir:
            lines.append(f"#SBATCH --chdir={spec.workdir}")
        lines += [f"export {key}={shlex.quote(value)}" for key, value in spec.env.items()]
        if spec.cpu_time_limit_s is not None:
            # SIGXCPU at the soft limit; SIGKILL at the hard one, 2 s later, as on the local engine
            limit = spec.cpu_time_limit_s
            lines.append(f"ulimit -S -t {limit} && ulimit -H -t {limit + 2} || exit 126")
        if spec.command is not None:
            lines.append(f"exec {shlex.join(spec.command)}")
        else:
            assert spec.script is not None
            user_script = script_path.with_suffix(".sh")
            user_script.write_text(spec.script, encoding="utf-8")
            lines.append(f"exec /bin/bash {shlex.quote(str(user_script.resolve()))}")
        return "\n".join(lines) + "\n"

    def _status(self, slurm_state: str, code: int | None, reason: str) -> EngineStatus:
        state = parse.engine_state(slurm_state)
        message = parse.why(slurm_state)
        if state is EngineState.PENDING and reason and reason != "None":
            message = reason
        elif state is EngineState.FAILED and not message and code is not None:
            message = f"killed by signal {code - 128}" if code > 128 else f"exit code {code}"
        return EngineStatus(state, exit_code=code if state.is_terminal else None, message=message)

    def _scontrol_job(self, job_id: str) -> dict[str, str] | None:
        try:
            out = self._run(["scontrol", "show", "job", "-o", job_id])
        except EngineError as exc:
            if "Invalid job id" in str(exc):
                return None  # slurmctld has forgotten it (MinJobAge passed); ask sacct
            raise
        job = parse.parse_oneliner(out.strip().splitlines()[0] if out.strip() else "")
        return job if job.get("JobId") == job_id else None

    def _sacct(self, job_id: str) -> parse.SacctJob | None:
        argv = ["sacct", "-j", job_id, "--parsable2", "--noheader", "-o", parse.SACCT_FIELDS]
        try:
            out = self._run(argv)
        except EngineError as exc:
            if "accounting storage is disabled" in str(exc):
                return None  # a cluster without slurmdbd: wall time from scontrol only
            raise
        return parse.parse_sacct(job_id, out)

    def _sacct_final(self, job_id: str, *, wait: bool) -> parse.SacctJob | None:
        """sacct's record; when the job has ended, waits briefly for slurmdbd to catch up."""
        deadline = time.monotonic() + (ACCOUNTING_WAIT_S if wait else 0.0)
        while True:
            acct = self._sacct(job_id)
            final = acct is not None and parse.engine_state(acct.state).is_terminal
            if final or time.monotonic() >= deadline:
                return acct
            time.sleep(0.25)

    def _usage_from_sacct(self, acct: parse.SacctJob) -> EngineUsage:
        measured = acct.consumed_energy_j is not None
        energy_wh: float | None
        if acct.consumed_energy_j is not None:
            energy_wh = acct.consumed_energy_j / 3600.0
        elif acct.total_cpu_s is not None:
            energy_wh = cpu_energy_wh(acct.total_cpu_s, self._watts)
        else:
            energy_wh = None
        return EngineUsage(
            wall_s=acct.elapsed_s,
            cpu_s=acct.total_cpu_s,
            max_rss_mb=acct.max_rss_mb,
            device_seconds=acct.elapsed_s * acct.gpus,
            energy_wh=energy_wh,
            energy_estimated=not measured,
        )

    def _partition_nodes(self) -> set[str] | None:
        if not self.partition:
            return None
        out = self._run(["sinfo", "-h", "-N", "-p", self.partition, "-o", "%N"])
        return {line.strip() for line in out.splitlines() if line.strip()}

    def _job_id(self, ref: EngineJobRef) -> str:
        if ref.engine != KIND or not ref.native_id.isdigit():
            raise NotFound(f"{ref} is not a Slurm job", field="ref")
        return ref.native_id

    def _run(self, argv: list[str], *, retries: int = READ_RETRIES) -> str:
        """Runs one Slurm command; retries only while the controller is unreachable."""
        assert 1 <= retries <= 10
        exe = str(self._bin / argv[0]) if self._bin else argv[0]
        for attempt in range(retries):
            try:
                proc = subprocess.run(
                    [exe, *argv[1:]],
                    check=False,
                    capture_output=True,
                    text=True,
                    timeout=self._timeout_s,
                    stdin=subprocess.DEVNULL,
                )
            except FileNotFoundError as exc:
                raise EngineUnavailable(f"{argv[0]} not found: is Slurm installed?") from exc
            except subprocess.TimeoutExpired as exc:
                if attempt + 1 == retries:
                    raise EngineUnavailable(
                        f"{argv[0]} timed out after {self._timeout_s} s"
                    ) from exc
                continue
            if proc.returncode == 0:
                return proc.stdout[:MAX_OUTPUT_CHARS]
            err = (proc.stderr or proc.stdout).strip()[:2000]
            if any(s in err for s in _UNREACHABLE):
                if attempt + 1 < retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise EngineUnavailable(f"{shlex.join(argv)}: {err}")
            raise EngineError(f"{shlex.join(argv)} exited {proc.returncode}: {err}")
        raise AssertionError("unreachable")


def _tres_triplet(tres: dict[str, str]) -> tuple[int, int, int]:
    cpus = int(tres.get("cpu", "0") or 0)
    mem_mb = int(parse.size_mb(tres.get("mem", "0")) or 0)
    gpus = int(tres.get("gres/gpu", "0") or 0)
    return cpus, mem_mb, gpus
