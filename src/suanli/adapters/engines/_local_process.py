"""Starting and stopping one local job's process tree: limits set between fork and exec, and
signals that reach every process of the job (its PID namespace, or its process group)."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from suanli.adapters.engines._local_cgroup import JobCgroup

_CLK_TCK = os.sysconf("SC_CLK_TCK")
CPU_HARD_GRACE_S = 2  # SIGXCPU at the soft limit, SIGKILL this much later


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
