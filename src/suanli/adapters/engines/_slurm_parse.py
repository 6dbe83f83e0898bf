"""Parsers for what Slurm's commands print (scontrol -o, sacct --parsable2, TRES strings)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from suanli.adapters.engines.base import EngineState

# JobState / State as scontrol and sacct print them (sacct may add "by <uid>" after CANCELLED).
_STATES: dict[str, EngineState] = {
    "PENDING": EngineState.PENDING,
    "CONFIGURING": EngineState.PENDING,
    "REQUEUED": EngineState.PENDING,
    "REQUEUE_FED": EngineState.PENDING,
    "REQUEUE_HOLD": EngineState.PENDING,
    "RESV_DEL_HOLD": EngineState.PENDING,
    "RUNNING": EngineState.RUNNING,
    "COMPLETING": EngineState.RUNNING,  # the script ended but epilogs run; not final yet
    "SUSPENDED": EngineState.RUNNING,
    "STOPPED": EngineState.RUNNING,
    "SIGNALING": EngineState.RUNNING,
    "STAGE_OUT": EngineState.RUNNING,
    "RESIZING": EngineState.RUNNING,
    "COMPLETED": EngineState.SUCCEEDED,
    "CANCELLED": EngineState.CANCELLED,
    "FAILED": EngineState.FAILED,
    "TIMEOUT": EngineState.FAILED,
    "OUT_OF_MEMORY": EngineState.FAILED,
    "NODE_FAIL": EngineState.FAILED,
    "BOOT_FAIL": EngineState.FAILED,
    "DEADLINE": EngineState.FAILED,
    "PREEMPTED": EngineState.FAILED,
    "SPECIAL_EXIT": EngineState.FAILED,
    "REVOKED": EngineState.CANCELLED,
}

_WHY: dict[str, str] = {
    "TIMEOUT": "wall time limit exceeded",
    "OUT_OF_MEMORY": "memory limit exceeded",
    "NODE_FAIL": "node failed",
    "BOOT_FAIL": "node failed to boot",
    "DEADLINE": "deadline passed",
    "PREEMPTED": "preempted",
}

_KV_RE = re.compile(r"(\S+?)=(\S*)")
_SIZE_RE = re.compile(r"^([0-9.]+)([KMGTP]?)$")
_UNIT_MB = {"": 1 / (1 << 20), "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1 << 20, "P": 1 << 30}


def engine_state(slurm_state: str) -> EngineState:
    return _STATES.get(slurm_state.split()[0].upper() if slurm_state else "", EngineState.UNKNOWN)


def why(slurm_state: str) -> str:
    return _WHY.get(slurm_state.split()[0].upper() if slurm_state else "", "")


def parse_oneliner(line: str) -> dict[str, str]:
    """`scontrol show job -o` / `show node -o`: space-separated Key=Value pairs.

    Values with spaces (Reason, Comment) lose their tail; none of the keys read here has any.
    """
    return {key: value for key, value in _KV_RE.findall(line)}


def exit_code(text: str) -> int | None:
    """Slurm's "code:signal"; a death by signal becomes 128 + signal as a shell reports it."""
    if not text or ":" not in text:
        return None
    code, _, sig = text.partition(":")
    try:
        code_i, sig_i = int(code), int(sig)
    except ValueError:
        return None
    return 128 + sig_i if sig_i else code_i


def duration_s(text: str) -> float | None:
    """[DD-][HH:]MM:SS[.mmm] as sacct prints TotalCPU and Elapsed; also plain HH:MM:SS."""
    text = text.strip()
    if not text or text in {"INVALID", "UNLIMITED", "Partition_Limit"}:
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    parts = [float(p) for p in text.split(":")]
    if len(parts) > 3:
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return days * 86400 + seconds


def size_mb(text: str) -> float | None:
    """Sizes such as 1234K, 12M, 1.5G (MaxRSS, TRES mem); a bare number counts bytes."""
    match = _SIZE_RE.match(text.strip().upper())
    if not match:
        return None
    return float(match.group(1)) * _UNIT_MB[match.group(2)]


def tres(text: str) -> dict[str, str]:
    """cpu=2,mem=21695M,billing=2,gres/gpu=1 -> {"cpu": "2", "mem": "21695M", ...}."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True, slots=True)
class SacctJob:
    """One job's accounting, folded over its allocation line and its steps."""

    state: str
    exit_code: int | None
    elapsed_s: float
    total_cpu_s: float | None
    max_rss_mb: float | None
    consumed_energy_j: float | None
    gpus: int


SACCT_FIELDS = "JobID,State,ExitCode,ElapsedRaw,TotalCPU,MaxRSS,ConsumedEnergyRaw,AllocTRES"


def parse_sacct(job_id: str, text: str) -> SacctJob | None:
    """Output of `sacct -j ID --parsable2 --noheader -o SACCT_FIELDS`; None if ID is absent."""
    main: list[str] | None = None
    rss: list[float] = []
    energy: list[float] = []
    for line in text.splitlines():
        cols = line.split("|")
        if len(cols) != SACCT_FIELDS.count(",") + 1:
            continue
        if cols[0] == job_id:
            main = cols
        elif cols[0].startswith(job_id + "."):
            if (value := size_mb(cols[5])) is not None:
                rss.append(value)
            if cols[6].strip().isdigit() and int(cols[6]) > 0:
                energy.append(float(cols[6]))
    if main is None:
        return None
    if main[6].strip().isdigit() and int(main[6]) > 0:
        energy = [float(main[6])]
    alloc = tres(main[7])
    return SacctJob(
        state=main[1],
        exit_code=exit_code(main[2]),
        elapsed_s=float(main[3]) if main[3].isdigit() else 0.0,
        total_cpu_s=duration_s(main[4]),
        max_rss_mb=max(rss) if rss else size_mb(main[5]),
        consumed_energy_j=sum(energy) if energy else None,
        gpus=int(alloc.get("gres/gpu", "0") or 0),
    )
