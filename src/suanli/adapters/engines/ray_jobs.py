"""The Ray engine: Ray Jobs through `ray.job_submission.JobSubmissionClient` against a head.

The entrypoint is a fixed one-line call of a small bash wrapper, passed with the user's
command in environment variables (base64, because Ray expands `$VAR` in their values): it marks where the job's own output starts (Ray writes its
own lines into the same log), applies the CPU-time and wall-time limits, and at the end prints
a marker with the CPU time of everything the job ran (bash's `time`), because Ray's job info
carries start and end times but no CPU figures. `logs()` hides the markers; `usage()` reads them.
"""

from __future__ import annotations

import base64
import re
import secrets
import shlex
import time
from typing import Any

import httpx

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
    tail_text,
)
from suanli.domain.errors import NotFound

KIND = "ray"
START_MARKER = "__suanli_start__"
USAGE_MARKER = "__suanli_usage__"
KILL_AFTER_S = 5  # `timeout` escalates from SIGTERM to SIGKILL after this
MAX_LOG_FETCH_BYTES = 32 << 20  # Ray returns the whole log; refuse to hold more than this
MAX_COMMAND_BYTES = 90 << 10  # one variable in base64; Linux caps each at 128 KiB
_STATES = {
    "PENDING": EngineState.PENDING,
    "RUNNING": EngineState.RUNNING,
    "SUCCEEDED": EngineState.SUCCEEDED,
    "FAILED": EngineState.FAILED,
    "STOPPED": EngineState.CANCELLED,
}
ENTRYPOINT = 'bash -c "$(printf %s "$SUANLI_WRAPPER_B64" | base64 -d)" suanli-job'
_USAGE_RE = re.compile(r"\n?" + USAGE_MARKER + r" ([0-9.]+) ([0-9.]+)\n?")
# `time` (the keyword, no subshell) reports the user and system CPU time of the whole tree the
# command reaped; TIMEFORMAT starts with a newline so the marker never joins a partial line.
_WRAPPER = f"""echo {START_MARKER}
{{limits}}
TIMEFORMAT=$'\\n{USAGE_MARKER} %3U %3S'
time {{timeout}}bash -c "$(printf %s "$SUANLI_COMMAND_B64" | base64 -d)"
"""


class RayJobsEngine:
    """One Ray cluster, addressed by its dashboard URL (where the job server lives)."""

    kind = KIND

    def __init__(
        self,
        address: str = "http://127.0.0.1:8265",
        *,
        request_timeout_s: float = 10.0,
        cancel_wait_s: float = 30.0,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
    ) -> None:
        assert 0.5 <= request_timeout_s <= 300 and 0 <= cancel_wait_s <= 600
        self.address = address.rstrip("/")
        self._timeout_s = request_timeout_s
        self._cancel_wait_s = cancel_wait_s
        self._watts = cpu_watts_per_core
        self._client_obj: Any = None

    # -- the Engine interface -------------------------------------------------------------

    def submit(self, spec: EngineJobSpec) -> EngineJobRef:
        submission_id = f"suanli-{spec.name}-{secrets.token_hex(6)}"
        kwargs: dict[str, Any] = {
            "entrypoint": ENTRYPOINT,
            "submission_id": submission_id,
            "runtime_env": {"env_vars": {**spec.env, **wrapper_env(spec)}},
            "metadata": {"suanli_name": spec.name, "suanli_gpus": str(spec.gpus)},
            "entrypoint_num_cpus": spec.cpus,
            "entrypoint_num_gpus": spec.gpus or None,
            # Ray schedules on this figure but does not enforce it on the process
            "entrypoint_memory": (spec.memory_mb << 20) if spec.memory_mb else None,
        }
        self._call("submit_job", **{k: v for k, v in kwargs.items() if v is not None})
        return EngineJobRef(KIND, submission_id)

    def status(self, ref: EngineJobRef) -> EngineStatus:
        info = self._info(ref)
        state = _STATES.get(str(getattr(info.status, "value", info.status)), EngineState.UNKNOWN)
        code = getattr(info, "driver_exit_code", None)
        if state is EngineState.FAILED and code is None:
            code = 1  # the entrypoint never ran (bad runtime env, lost node): no exit code
        if not state.is_terminal:
            code = None
        message = "" if state is EngineState.SUCCEEDED else _first_line(info.message or "")
        if state is EngineState.FAILED and getattr(info, "driver_exit_code", None) is not None:
            # `timeout` exits 124 when the wall time limit strikes
            message = "wall time limit exceeded" if code == 124 else f"exit code {code}"
        return EngineStatus(state, exit_code=code, message=message)

    def cancel(self, ref: EngineJobRef) -> None:
        if self.status(ref).state.is_terminal:
            return
        self._call("stop_job", ref.native_id)
        deadline = time.monotonic() + self._cancel_wait_s
        while not self.status(ref).state.is_terminal:
            if time.monotonic() > deadline:
                raise EngineError(f"{ref} did not stop within {self._cancel_wait_s} s")
            time.sleep(0.2)

    def logs(self, ref: EngineJobRef, *, max_bytes: int = DEFAULT_LOG_BYTES) -> str:
        check_log_bytes(max_bytes)
        return tail_text(job_output(ref, self._logs(ref)).encode(), max_bytes)

    def usage(self, ref: EngineJobRef) -> EngineUsage:
        info = self._info(ref)
        start_ms, end_ms = info.start_time, info.end_time
        if start_ms is None:
            return EngineUsage(wall_s=0.0, cpu_s=0.0, energy_wh=0.0)
        end_s = end_ms / 1000 if end_ms else time.time()
        wall_s = max(0.0, end_s - start_ms / 1000)
        cpu_s = parse_usage_marker(self._logs(ref)) if end_ms else None
        gpus = int((info.metadata or {}).get("suanli_gpus", "0") or 0)
        return EngineUsage(
            wall_s=wall_s,
            cpu_s=cpu_s,
            device_seconds=wall_s * gpus,
            energy_wh=None if cpu_s is None else cpu_energy_wh(cpu_s, self._watts),
            energy_estimated=True,
        )

    def capacity(self) -> Capacity:
        """From the dashboard's cluster status: [used, total] per logical resource."""
        try:
            resp = httpx.get(
                f"{self.address}/api/cluster_status", params={"format": "0"},
                timeout=self._timeout_s,
            )  # fmt: skip
            resp.raise_for_status()
            usage = resp.json()["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
        except httpx.TransportError as exc:
            raise EngineUnavailable(f"Ray dashboard at {self.address}: {exc}") from exc
        except (httpx.HTTPStatusError, KeyError, TypeError, ValueError) as exc:
            raise EngineError(f"Ray cluster status unreadable: {exc!r}") from exc
        cpu_used, cpu_total = usage.get("CPU", [0, 0])
        mem_used, mem_total = usage.get("memory", [0, 0])
        gpu_used, gpu_total = usage.get("GPU", [0, 0])
        mib = 1 << 20
        return Capacity(
            cpus=int(cpu_total),
            memory_mb=int(mem_total // mib),
            gpus=int(gpu_total),
            free_cpus=max(0, int(cpu_total - cpu_used)),
            free_memory_mb=max(0, int((mem_total - mem_used) // mib)),
            free_gpus=max(0, int(gpu_total - gpu_used)),
        )

    # -- helpers --------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._client_obj is None:
            self._client_obj = self._call_raw(_make_client, self.address, self._timeout_s)
        return self._client_obj

    def _info(self, ref: EngineJobRef) -> Any:
        self._check_ref(ref)
        return self._call("get_job_info", ref.native_id)

    def _logs(self, ref: EngineJobRef) -> str:
        self._check_ref(ref)
        text = str(self._call("get_job_logs", ref.native_id))
        return text[-MAX_LOG_FETCH_BYTES:]

    def _check_ref(self, ref: EngineJobRef) -> None:
        if ref.engine != KIND or not ref.native_id:
            raise NotFound(f"{ref} is not a Ray job", field="ref")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._call_raw(getattr(self._client(), method), *args, **kwargs)

    def _call_raw(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Maps the client's exceptions (plain RuntimeError with the HTTP status) to ours."""
        try:
            return fn(*args, **kwargs)
        except ConnectionError as exc:
            raise EngineUnavailable(f"Ray job server at {self.address}: {exc}") from exc
        except RuntimeError as exc:
            text = str(exc)
            if "404" in text or "does not exist" in text:
                raise NotFound(f"Ray knows no job {args[0] if args else ''}", field="ref") from exc
            raise EngineError(f"Ray: {text[:2000]}") from exc
        except OSError as exc:  # requests' ConnectionError and Timeout derive from OSError
            raise EngineUnavailable(f"Ray job server at {self.address}: {exc}") from exc


def _make_client(address: str, timeout_s: float) -> Any:
    """JobSubmissionClient sends requests without a timeout; this subclass adds one."""
    from ray.job_submission import JobSubmissionClient  # imported late: Ray is heavy

    class TimedJobSubmissionClient(JobSubmissionClient):
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            return super()._do_request(method, endpoint, **kwargs)

    return TimedJobSubmissionClient(address)


def wrapper_env(spec: EngineJobSpec) -> dict[str, str]:
    """What ENTRYPOINT runs, kept out of the command line and safe from Ray's `$` expansion."""
    inner = shlex.join(spec.command) if spec.command is not None else spec.script
    assert inner is not None
    if len(inner.encode()) > MAX_COMMAND_BYTES:
        raise EngineError(f"command over {MAX_COMMAND_BYTES} bytes cannot go to Ray")
    limits = []
    if spec.workdir:
        limits.append(f"cd {shlex.quote(spec.workdir)} || exit 126")
    if spec.cpu_time_limit_s is not None:
        limit = spec.cpu_time_limit_s  # SIGXCPU at the soft limit, SIGKILL 2 s later
        limits.append(f"ulimit -S -t {limit} && ulimit -H -t {limit + 2} || exit 126")
    timeout = ""
    if spec.time_limit_s is not None:
        timeout = f"timeout --kill-after={KILL_AFTER_S} {spec.time_limit_s} "
    wrapper = _WRAPPER.format(limits="\n".join(limits), timeout=timeout)
    return {
        "SUANLI_WRAPPER_B64": base64.b64encode(wrapper.encode()).decode("ascii"),
        "SUANLI_COMMAND_B64": base64.b64encode(inner.encode()).decode("ascii"),
    }


def job_output(ref: EngineJobRef, logs: str) -> str:
    """The job's own output: Ray's lines before the start marker and its echo of the
    entrypoint (which may land after the marker) go, and so does the usage marker."""
    lines = logs.splitlines(True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip("\n") == START_MARKER), None)
    if start is None:
        return logs  # the wrapper never ran; Ray's own lines say why
    ray_echo = f"Running entrypoint for job {ref.native_id}: {ENTRYPOINT}"
    kept = "".join(ln for ln in lines[start + 1 :] if ln.rstrip("\n") != ray_echo)
    return _USAGE_RE.sub("", kept)


def parse_usage_marker(logs: str) -> float | None:
    """User plus system CPU seconds from the wrapper's marker, if the job got that far."""
    found = _USAGE_RE.findall(logs)
    if not found:
        return None
    user_s, sys_s = found[-1]
    return float(user_s) + float(sys_s)


def _first_line(text: str, limit: int = 500) -> str:
    return text.strip().splitlines()[0][:limit] if text.strip() else ""
