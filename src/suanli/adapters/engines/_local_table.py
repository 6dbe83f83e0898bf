"""The local engine's job table: one directory per job, shared by the adapter and supervisors.

Files of a job directory (all JSON written atomically, so a reader never sees half a file):
spec.json (what to run, written by submit), started.json (the job's pid and start time, and the
devices it holds), result.json (how it ended and what it used), cancel (a marker asking the
supervisor to stop the job), stdout.log / stderr.log, and lock, which the supervisor holds with
flock for as long as it lives: a lock nobody holds means no supervisor, whatever pids say.

The table is the engine's alone (directories 0700): a job never sees it. A job's working
directory lives apart, under the engine's work root, and goes when its job is pruned.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

SPEC = "spec.json"
STARTED = "started.json"
RESULT = "result.json"
CANCEL = "cancel"
LOCK = "lock"
STDOUT = "stdout.log"
STDERR = "stderr.log"
SUPERVISOR_LOG = "supervisor.log"
SCHEDULER_LOCK = ".scheduler.lock"
MAX_JSON_BYTES = 1 << 20


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename so readers see the old file or the new one, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"{path} is over {MAX_JSON_BYTES} bytes")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError(f"{path} does not hold a JSON object")
    return data


def supervisor_alive(job_dir: Path) -> bool:
    """True while the job's supervisor holds its lock."""
    try:
        fd = os.open(job_dir / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock taken when nobody held it
    return False


def hold_lock(job_dir: Path) -> int:
    """Taken by the supervisor for its lifetime; the descriptor closes on exec (O_CLOEXEC).

    Blocking, because a reader probing with a shared lock may hold it for a moment.
    """
    fd = os.open(job_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


class SchedulerLock:
    """Serialises admission (who gets which CPUs, memory and GPUs) across supervisors."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / SCHEDULER_LOCK
        self._fd = -1

    def __enter__(self) -> Self:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)
        self._fd = -1


@dataclass(frozen=True, slots=True)
class Held:
    """Resources a running job holds: counts, the host CPUs and GPUs it is pinned to, and
    the host uid it runs as (root mode: one per running job; None otherwise)."""

    cpus: int
    memory_mb: int
    gpu_indices: tuple[int, ...]
    cpu_indices: tuple[int, ...] = ()
    uid: int | None = None


def job_dirs(state_dir: Path) -> Iterator[Path]:
    for entry in os.scandir(state_dir):
        if entry.is_dir() and not entry.name.startswith("."):
            yield Path(entry.path)


def held_by_running(state_dir: Path) -> list[Held]:
    """What jobs that have started and not finished hold (a dead supervisor holds nothing)."""
    held = []
    for job_dir in job_dirs(state_dir):
        started = read_json(job_dir / STARTED)
        if started is None or (job_dir / RESULT).exists() or not supervisor_alive(job_dir):
            continue
        uid = started.get("uid")
        held.append(
            Held(
                cpus=int(started["cpus"]),
                memory_mb=int(started["memory_mb"]),
                gpu_indices=tuple(int(i) for i in started["gpu_indices"]),
                cpu_indices=tuple(int(i) for i in started.get("cpu_indices", ())),
                uid=None if uid is None else int(uid),
            )
        )
    return held


def prune(state_dir: Path, keep: int, work_root: Path | None = None) -> int:
    """Removes the oldest finished jobs beyond `keep`, and their working directories;
    returns how many went."""
    finished = [d for d in job_dirs(state_dir) if (d / RESULT).exists()]
    if len(finished) <= keep:
        return 0
    finished.sort(key=lambda d: (d / RESULT).stat().st_mtime)
    doomed = finished[: len(finished) - keep]
    for job_dir in doomed:
        if work_root is not None:
            shutil.rmtree(work_root / job_dir.name, ignore_errors=True)
        shutil.rmtree(job_dir, ignore_errors=True)
    return len(doomed)


def now_s() -> float:
    """Wall-clock seconds since the epoch: start and end times must survive process restarts."""
    return time.time()
