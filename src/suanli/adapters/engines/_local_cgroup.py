"""Per-job cgroups (v1 controllers memory, pids, cpu, cpuacct) for the local engine.

Where the engine may create cgroups below its own (root on a host with cgroup v1 mounted
read-write), each job gets one per controller: a memory limit and a process-count limit on
the whole tree, a CFS quota of `cpus` CPUs, and the tree's exact CPU time, orphans included.
Elsewhere `JobCgroup.create` returns None and the supervisor falls back to rlimits (see
docs/decisions.md). cgroup v2 is not driven yet: a v2-only host takes the rlimit path.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
CFS_PERIOD_US = 100_000
EMPTY_TIMEOUT_S = 5.0
PROBE_NAME = ".suanli-probe"


def own_cgroup_dirs() -> dict[str, Path]:
    """Where this process's cgroup of each v1 controller is, as a directory."""
    mounts: dict[str, tuple[Path, str]] = {}
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            parts = right.split()
            if len(parts) < 3 or parts[0] != "cgroup":
                continue
            fields = left.split()
            for option in parts[2].split(","):
                if option in CONTROLLERS:
                    mounts[option] = (Path(fields[4]), fields[3])
    own: dict[str, Path] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(","):
                if name not in mounts:
                    continue
                mount_point, root = mounts[name]
                relative = os.path.relpath(path, root)
                if not relative.startswith(".."):  # else our cgroup is not under this mount
                    own[name] = (mount_point / relative).resolve()
    return own


class JobCgroup:
    """One job's cgroups, one directory per controller (co-mounted controllers share one)."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        assert set(dirs) == set(CONTROLLERS), dirs
        self.dirs = dirs

    @classmethod
    def create(cls, name: str, *, memory_mb: int, max_processes: int,
               cpus: int) -> JobCgroup | None:
        """The job's cgroups with their limits set; None where this host does not let us."""
        assert memory_mb >= 1 and max_processes >= 1 and cpus >= 1
        try:
            parents = own_cgroup_dirs()
        except OSError:
            return None
        if set(CONTROLLERS) - parents.keys():
            return None
        dirs = {c: parents[c] / name for c in CONTROLLERS}
        group = cls(dirs)
        try:
            for path in group.unique_dirs():
                path.mkdir()
            group._write("memory", "memory.limit_in_bytes", memory_mb << 20)
            if (dirs["memory"] / "memory.memsw.limit_in_bytes").exists():  # no swapping past it
                group._write("memory", "memory.memsw.limit_in_bytes", memory_mb << 20)
            group._write("pids", "pids.max", max_processes)
            group._write("cpu", "cpu.cfs_period_us", CFS_PERIOD_US)
            group._write("cpu", "cpu.cfs_quota_us", cpus * CFS_PERIOD_US)
        except OSError:
            group.remove()
            return None
        return group

    @classmethod
    def usable(cls) -> bool:
        """Whether this process may make job cgroups here (makes and removes a probe one)."""
        probe = cls.create(f"{PROBE_NAME}-{os.getpid()}", memory_mb=64, max_processes=8, cpus=1)
        if probe is None:
            return False
        probe.remove()
        return True

    def unique_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def attach_self(self) -> None:
        """Moves the calling process in; for a preexec hook (only os calls, no allocation of
        note), so that the job is inside from its first instruction."""
        for path in self.unique_dirs():
            fd = os.open(path / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, b"0")  # 0: the writer itself
            finally:
                os.close(fd)

    def cpu_s(self) -> float | None:
        text = self._read("cpuacct", "cpuacct.usage")
        return None if text is None else int(text) / 1e9

    def peak_memory_mb(self) -> float | None:
        text = self._read("memory", "memory.max_usage_in_bytes")
        return None if text is None else int(text) / (1 << 20)

    def oom_kills(self) -> int:
        text = self._read("memory", "memory.oom_control") or ""
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def hit_process_limit(self) -> bool:
        text = self._read("pids", "pids.events") or ""
        return any(line.split()[-1] != "0" for line in text.splitlines() if line.strip())

    def pids(self) -> list[int]:
        text = self._read("pids", "cgroup.procs") or ""
        return [int(x) for x in text.split()]

    def kill_all(self) -> None:
        """SIGKILLs whatever is left until the cgroup is empty (bounded)."""
        deadline = time.monotonic() + EMPTY_TIMEOUT_S
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        """Removes the cgroups once their last process has gone (bounded wait)."""
        deadline = time.monotonic() + EMPTY_TIMEOUT_S
        for path in self.unique_dirs():
            while path.exists():
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while exiting processes are still counted
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)

    def _write(self, controller: str, name: str, value: int) -> None:
        (self.dirs[controller] / name).write_text(str(value), encoding="ascii")

    def _read(self, controller: str, name: str) -> str | None:
        try:
            return (self.dirs[controller] / name).read_text(encoding="ascii")
        except OSError:
            return None
