"""One local job's process tree: limits set between fork and exec, its output captured with a
cap, signals that reach every process of the job (its PID namespace, or its process group),
and its CPU time and memory read while it runs."""

from __future__ import annotations

import os
import resource
import selectors
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from suanli.adapters.engines._local_cgroup import JobCgroup

_CLK_TCK = os.sysconf("SC_CLK_TCK")
READ_CHUNK = 64 << 10
CPU_HARD_GRACE_S = 2  # SIGXCPU at the soft limit, SIGKILL this much later


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


@dataclass(frozen=True, slots=True)
class ProcessLimits:
    """Per-process rlimits (the cgroup, when there is one, bounds the whole tree)."""

    cpu_s: int | None
    address_space_mb: int | None  # only where no cgroup bounds memory: it breaks CUDA, JVMs
    file_mb: int
    open_files: int
    cpu_indices: Sequence[int] = ()


def preexec(limits: ProcessLimits, cgroup: JobCgroup | None) -> Callable[[], None]:
    """The hook run in the child between fork and exec: into the cgroup, then the rlimits
    and the CPU affinity. The job inherits all three through bwrap."""

    def apply() -> None:
        if cgroup is not None:
            cgroup.attach_self()
        _cap(resource.RLIMIT_CORE, 0, 0)  # no core files filling the disk
        if limits.cpu_s is not None:
            _cap(resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + CPU_HARD_GRACE_S)
        if limits.address_space_mb is not None:
            size = limits.address_space_mb << 20
            _cap(resource.RLIMIT_AS, size, size)
        _cap(resource.RLIMIT_FSIZE, limits.file_mb << 20, limits.file_mb << 20)
        _cap(resource.RLIMIT_NOFILE, limits.open_files, limits.open_files)
        if limits.cpu_indices:
            os.sched_setaffinity(0, limits.cpu_indices)

    return apply


def _cap(which: int, soft: int, hard: int) -> None:
    """Never raises a limit above what this process already has."""
    _, cur_hard = resource.getrlimit(which)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def namespace_members(leader: int) -> list[int]:
    """The processes in the PID namespace bwrap (`leader`) made: its child is that
    namespace's init. Empty once it is gone."""
    inits = children(leader)
    if not inits:
        return []
    try:
        ns = os.stat(f"/proc/{inits[0]}/ns/pid").st_ino
    except (FileNotFoundError, ProcessLookupError):
        return []
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/pid").st_ino == ns:
                members.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return members


def signal_job(leader: int, sig: signal.Signals, *, sandboxed: bool) -> None:
    """SIGTERM reaches every process of the job; SIGKILL ends the namespace's init, which
    takes the whole namespace with it (setsid children included)."""
    if not sandboxed:
        try:
            os.killpg(leader, sig)
        except (ProcessLookupError, PermissionError):
            pass
        return
    members = namespace_members(leader)
    targets = [*children(leader), leader] if sig == signal.SIGKILL else []
    for pid in targets + members:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def tree_cpu_s(leader: int, *, sandboxed: bool) -> float | None:
    """CPU seconds of the job's live processes and what they have reaped, read from /proc."""
    pids = [leader, *namespace_members(leader)] if sandboxed else [leader]
    total, seen = 0.0, False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # fields[11:15]: utime, stime, cutime, cstime in clock ticks (man 5 proc, from field 14)
        total += sum(int(x) for x in fields[11:15]) / _CLK_TCK
        seen = True
    return total if seen else None


def cgroup_cpu_s(cpuacct: str | None) -> float | None:
    if cpuacct is None:
        return None
    try:
        return int((Path(cpuacct) / "cpuacct.usage").read_text(encoding="ascii")) / 1e9
    except (OSError, ValueError):
        return None


def peak_rss_mb(pids: list[int]) -> float | None:
    peaks = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                hwm = next((ln for ln in fh if ln.startswith("VmHWM:")), None)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if hwm:
            peaks.append(int(hwm.split()[1]) / 1024)
    return max(peaks, default=None)


def pump(sel: selectors.BaseSelector, timeout_s: float) -> None:
    """Moves what the pipes hold into the sinks; unregisters a pipe at EOF."""
    if not sel.get_map():
        time.sleep(timeout_s)
        return
    for key, _ in sel.select(timeout_s):
        fileobj: IO[bytes] = key.fileobj  # type: ignore[assignment]
        data = os.read(fileobj.fileno(), READ_CHUNK)
        if data:
            key.data.write(data)
        else:
            sel.unregister(fileobj)
            fileobj.close()
