"""The engine interface: one Protocol every engine adapter implements, and its value types."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from suanli.domain.errors import SuanliError, ValidationFailed

# Limits on what a job spec may ask for; an engine that cannot honour a value rejects it itself.
MAX_ARGV_ITEMS = 4096
MAX_SCRIPT_BYTES = 1 << 20  # 1 MiB of shell script
MAX_ENV_VARS = 1024
MAX_ENV_BYTES = 256 << 10
MAX_CPUS = 4096
MAX_MEMORY_MB = 64 << 20  # 64 TiB
MAX_GPUS = 1024
MAX_TIME_LIMIT_S = 30 * 24 * 3600
DEFAULT_LOG_BYTES = 64 << 10
MAX_LOG_BYTES = 16 << 20

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class EngineError(SuanliError):
    """The engine refused or failed an operation (command failed, bad answer, timeout)."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached at all (daemon down, binary missing, head not running)."""


class EngineState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({EngineState.SUCCEEDED, EngineState.FAILED, EngineState.CANCELLED})


@dataclass(frozen=True, slots=True)
class EngineJobSpec:
    """What to run and what it may use; exactly one of `command` (argv) and `script` is set.

    `cpu_time_limit_s` caps CPU seconds per process where the engine can (local, Slurm via
    `ulimit -t`); left unset it is `cpus * time_limit_s`. `network` asks for network access;
    the local engine's sandbox gives it only where the provider's policy allows.
    """

    command: tuple[str, ...] | None = None
    script: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    cpus: int = 1
    memory_mb: int | None = None
    gpus: int = 0
    time_limit_s: int | None = None
    cpu_time_limit_s: int | None = None
    name: str = "suanli-job"
    network: bool = False

    def __post_init__(self) -> None:
        if (self.command is None) == (self.script is None):
            raise ValidationFailed("give exactly one of command and script", field="command")
        if self.command is not None:
            object.__setattr__(self, "command", tuple(self.command))
            _check_command(self.command)
        if self.script is not None and len(self.script.encode()) > MAX_SCRIPT_BYTES:
            raise ValidationFailed(f"script over {MAX_SCRIPT_BYTES} bytes", field="script")
        _check_env(self.env)
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        _check_range("cpus", self.cpus, 1, MAX_CPUS)
        _check_range("gpus", self.gpus, 0, MAX_GPUS)
        if self.memory_mb is not None:
            _check_range("memory_mb", self.memory_mb, 1, MAX_MEMORY_MB)
        if self.time_limit_s is not None:
            _check_range("time_limit_s", self.time_limit_s, 1, MAX_TIME_LIMIT_S)
        if self.cpu_time_limit_s is not None:
            _check_range("cpu_time_limit_s", self.cpu_time_limit_s, 1, MAX_TIME_LIMIT_S * 64)
        if not _NAME_RE.match(self.name):
            raise ValidationFailed("name: 1-64 of A-Z a-z 0-9 . _ -", field="name")

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields (the env as a dict, the command as a list)."""
        return {
            "command": None if self.command is None else list(self.command),
            "script": self.script,
            "env": dict(self.env),
            "workdir": self.workdir,
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "gpus": self.gpus,
            "time_limit_s": self.time_limit_s,
            "cpu_time_limit_s": self.cpu_time_limit_s,
            "name": self.name,
            "network": self.network,
        }

    @property
    def effective_cpu_time_limit_s(self) -> int | None:
        if self.cpu_time_limit_s is not None:
            return self.cpu_time_limit_s
        return None if self.time_limit_s is None else self.cpus * self.time_limit_s


def _check_command(command: tuple[str, ...]) -> None:
    if not command or len(command) > MAX_ARGV_ITEMS:
        raise ValidationFailed(f"command needs 1-{MAX_ARGV_ITEMS} items", field="command")
    if any(not isinstance(arg, str) or "\x00" in arg for arg in command):
        raise ValidationFailed("command items must be strings without NUL", field="command")


def _check_env(env: Mapping[str, str]) -> None:
    if len(env) > MAX_ENV_VARS:
        raise ValidationFailed(f"over {MAX_ENV_VARS} environment variables", field="env")
    size = 0
    for key, value in env.items():
        if not _ENV_KEY_RE.match(key) or not isinstance(value, str) or "\x00" in value:
            raise ValidationFailed(f"bad environment variable {key!r}", field="env")
        size += len(key) + len(value.encode())
    if size > MAX_ENV_BYTES:
        raise ValidationFailed(f"environment over {MAX_ENV_BYTES} bytes", field="env")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{name} must be an integer in [{low}, {high}]", field=name)


@dataclass(frozen=True, slots=True)
class EngineJobRef:
    """A job as its engine knows it: the engine kind and the engine's own id."""

    engine: str
    native_id: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.native_id}"

    @classmethod
    def parse(cls, text: str) -> EngineJobRef:
        engine, sep, native_id = text.partition(":")
        if not sep or not engine or not native_id:
            raise ValidationFailed(f"not an engine job reference: {text!r}", field="ref")
        return cls(engine, native_id)


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Where a job is; `exit_code` is set once the engine knows it, `message` says why."""

    state: EngineState
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class EngineUsage:
    """What a job consumed so far (final once the job is terminal).

    `cpu_s` and `max_rss_mb` are None where the engine does not report them. `energy_wh` is
    measured (NVML counters, Slurm's energy plugin) when `energy_estimated` is False, and an
    estimate from TDP × utilisation otherwise; None when nothing could be said at all.
    """

    wall_s: float
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    device_seconds: float = 0.0
    energy_wh: float | None = None
    energy_estimated: bool = True

    def __post_init__(self) -> None:
        assert self.wall_s >= 0, self.wall_s
        assert self.cpu_s is None or self.cpu_s >= 0, self.cpu_s
        assert self.device_seconds >= 0, self.device_seconds
        assert self.energy_wh is None or self.energy_wh >= 0, self.energy_wh


@dataclass(frozen=True, slots=True)
class Capacity:
    """Total and currently free resources behind one engine."""

    cpus: int
    memory_mb: int
    gpus: int
    free_cpus: int
    free_memory_mb: int
    free_gpus: int

    def __post_init__(self) -> None:
        assert 0 <= self.free_cpus <= self.cpus, (self.free_cpus, self.cpus)
        assert 0 <= self.free_memory_mb <= self.memory_mb, (self.free_memory_mb, self.memory_mb)
        assert 0 <= self.free_gpus <= self.gpus, (self.free_gpus, self.gpus)


@runtime_checkable
class Engine(Protocol):
    """One engine (local processes, Slurm, Ray, ...) seen through six calls.

    Calls are synchronous and bounded in time; each raises EngineUnavailable when the engine
    cannot be reached, EngineError when it answers with a failure, and NotFound for a job it
    does not know.
    """

    kind: str

    def submit(self, spec: EngineJobSpec) -> EngineJobRef: ...

    def status(self, ref: EngineJobRef) -> EngineStatus: ...

    def cancel(self, ref: EngineJobRef) -> None:
        """Stops the job; cancelling a finished job is a no-op."""
        ...

    def logs(self, ref: EngineJobRef, *, max_bytes: int = DEFAULT_LOG_BYTES) -> str:
        """The last `max_bytes` of the job's output (stdout, then stderr where kept apart)."""
        ...

    def usage(self, ref: EngineJobRef) -> EngineUsage: ...

    def capacity(self) -> Capacity: ...


def check_log_bytes(max_bytes: int) -> int:
    _check_range("max_bytes", max_bytes, 1, MAX_LOG_BYTES)
    return max_bytes


def tail_text(data: bytes, max_bytes: int) -> str:
    """The last `max_bytes` of `data` decoded leniently (a cut may split a UTF-8 character)."""
    return data[-max_bytes:].decode("utf-8", errors="replace")


def joined_logs(stdout: bytes, stderr: bytes, max_bytes: int) -> str:
    """stdout then stderr, each given at most half of `max_bytes` when both have content."""
    if not stderr:
        return tail_text(stdout, max_bytes)
    if not stdout:
        return tail_text(stderr, max_bytes)
    half = max(1, max_bytes // 2)
    return tail_text(stdout, half) + "\n--- stderr ---\n" + tail_text(stderr, half)


def read_tail(path: Path, max_bytes: int) -> bytes:
    """The last `max_bytes` of a file; empty when it does not exist (yet)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            return fh.read(max_bytes)
    except FileNotFoundError:
        return b""
