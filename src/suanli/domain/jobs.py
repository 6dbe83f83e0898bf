"""Jobs (算力任务): what a job asks for, its states, and the transitions it may make."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.resources import MAX_PRICE_FEN_PER_DEVICE_HOUR
from suanli.domain.units import WORKLOAD_CLASSES

MAX_DEVICES_PER_JOB = 4096
MAX_TIME_LIMIT_S = 30 * 24 * 3600
MAX_ATTEMPTS = 3  # placements a job gets before failover gives up on it
MAX_COMMAND_ITEMS = 256
MAX_COMMAND_BYTES = 64 << 10
MAX_ENV_VARS = 128
MAX_ENV_BYTES = 256 << 10  # names, values and their '=' and NUL, as the kernel counts them
MAX_MEMORY_GB = 65_536.0
MAX_DATA_GB = 10_000_000.0  # 10 PB
MAX_DEADLINE_S = 90 * 24 * 3600
MAX_BUDGET_FEN = 10**13
MAX_RTT_BOUND_MS = 1000.0
MAX_PRIORITY = 9
# What a job's program is built for, as users name it; the catalog gives each accelerator's.
SOFTWARE_STACKS = ("CUDA", "CANN", "ROCm", "DTK", "Neuware", "XPU", "SynapseAI", "CPU")
LATENCY_CLASSES = ("realtime", "interactive", "batch")
# Compute ids end in a check character that may be '*' (ISO 7064 MOD 37-2), and keys are
# often derived from them.
_IDEMPOTENCY_RE = re.compile(r"^[A-Za-z0-9._:*-]{1,128}$")
# exec() takes NUL-terminated strings, PostgreSQL text cannot hold NUL, and a lone surrogate
# has no UTF-8 form: none of them can reach a job.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class JobState(StrEnum):
    PENDING = "pending"  # accepted, waiting for a pool
    PLACED = "placed"  # a lease holds devices on a pool; waiting for the provider's agent
    DISPATCHED = "dispatched"  # the agent claimed it and handed it to its engine
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"  # a spot job evicted by its provider; requeued unless out of tries

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
_S = JobState
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _S.PENDING: frozenset({_S.PLACED, _S.CANCELLED, _S.FAILED}),
    # back to PENDING: the lease expired or its agent vanished — failover places it again
    _S.PLACED: frozenset({_S.DISPATCHED, _S.PENDING, _S.CANCELLED, _S.FAILED}),
    _S.DISPATCHED: frozenset({_S.RUNNING, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED, _S.PENDING,
                              _S.PREEMPTED}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED, _S.PENDING, _S.PREEMPTED}),
    _S.PREEMPTED: frozenset({_S.PENDING, _S.FAILED, _S.CANCELLED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}


class LeaseState(StrEnum):
    """A lease: devices of a pool held for one attempt of a job (stored in leases.state)."""

    ACTIVE = "active"  # holds its devices
    RELEASED = "released"  # ended normally: the job finished, failed or was cancelled
    EXPIRED = "expired"  # its agent missed the heartbeat deadline (failover)


def check_transition(current: JobState, target: JobState) -> None:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (final)"
        raise Conflict(f"a {current.value} job cannot become {target.value}; allowed: {allowed}",
                       field="state")


@dataclass(frozen=True)
class JobSpec:
    """What a consumer submits: the work and what it needs from a pool."""

    name: str
    command: tuple[str, ...]
    devices: int = 1
    workload_class: str = "general"
    accelerator: str | None = None  # a catalog key, or
    vendor: str | None = None
    device_kind: str | None = None  # gpu, npu, cpu, ...
    min_memory_gb: float | None = None
    provinces: tuple[str, ...] = ()  # residency: allowed provinces (empty: anywhere)
    pool_id: str | None = None  # pin to one pool
    time_limit_s: int = 3600
    max_price_fen_per_device_hour: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    spot: bool = False
    # Issue 13: what the placement engine weighs. Specs stored before these fields read
    # with the defaults (from_json), which place as before.
    software_stack: str | None = None  # one of SOFTWARE_STACKS: pools must provide it
    latency_class: str = "batch"  # realtime and interactive need user_city
    user_city: str | None = None  # where the job's users are (the city table's name)
    max_rtt_ms: float | None = None  # a tighter round-trip bound to user_city
    data_province: str | None = None  # where the input data lies (or the site's province)
    data_site: str | None = None
    data_gb: float = 0.0
    deadline_s: int | None = None  # seconds after submission it should be done by
    budget_fen: int | None = None  # what the lease may cost at most, estimated at placement
    priority: int = 0  # 0..9: higher goes first within a scheduling pass
    multi_pool: bool = False  # a gang may span pools of one interconnect domain
    quote_id: str | None = None  # the quote (POST /v1/quotes) whose option the job accepts

    def __post_init__(self) -> None:
        self._check_command()
        self._check_env()
        self._check_placement()
        if not 1 <= self.devices <= MAX_DEVICES_PER_JOB:
            raise ValidationFailed(f"must be 1..{MAX_DEVICES_PER_JOB}", field="devices")
        if not 1 <= self.time_limit_s <= MAX_TIME_LIMIT_S:
            raise ValidationFailed(f"must be 1..{MAX_TIME_LIMIT_S}", field="time_limit_s")
        if self.workload_class not in WORKLOAD_CLASSES:
            raise ValidationFailed(f"one of {', '.join(WORKLOAD_CLASSES)}",
                                   field="workload_class")
        price = self.max_price_fen_per_device_hour
        if price is not None and not 0 <= price <= MAX_PRICE_FEN_PER_DEVICE_HOUR:
            raise ValidationFailed(f"must be 0..{MAX_PRICE_FEN_PER_DEVICE_HOUR}",
                                   field="max_price_fen_per_device_hour")
        memory = self.min_memory_gb
        if memory is not None and not 0 <= memory <= MAX_MEMORY_GB:  # NaN fails both
            raise ValidationFailed(f"must be 0..{MAX_MEMORY_GB:g}", field="min_memory_gb")

    def _check_placement(self) -> None:
        if self.software_stack is not None and self.software_stack not in SOFTWARE_STACKS:
            raise ValidationFailed(f"one of {', '.join(SOFTWARE_STACKS)}",
                                   field="software_stack")
        if self.latency_class not in LATENCY_CLASSES:
            raise ValidationFailed(f"one of {', '.join(LATENCY_CLASSES)}",
                                   field="latency_class")
        if (self.latency_class != "batch" or self.max_rtt_ms is not None) \
                and self.user_city is None:
            raise ValidationFailed("a realtime or interactive job, or a latency bound, needs "
                                   "the users' city", field="user_city")
        if self.max_rtt_ms is not None and not 0 < self.max_rtt_ms <= MAX_RTT_BOUND_MS:
            raise ValidationFailed(f"must be in (0, {MAX_RTT_BOUND_MS:g}]", field="max_rtt_ms")
        if not 0 <= self.data_gb <= MAX_DATA_GB:
            raise ValidationFailed(f"must be 0..{MAX_DATA_GB:g}", field="data_gb")
        if self.data_province is not None and self.data_site is not None:
            raise ValidationFailed("give the data's province or its site, not both",
                                   field="data_site")
        if self.deadline_s is not None and not 1 <= self.deadline_s <= MAX_DEADLINE_S:
            raise ValidationFailed(f"must be 1..{MAX_DEADLINE_S}", field="deadline_s")
        if self.budget_fen is not None and not 0 <= self.budget_fen <= MAX_BUDGET_FEN:
            raise ValidationFailed(f"must be 0..{MAX_BUDGET_FEN}", field="budget_fen")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise ValidationFailed(f"must be 0..{MAX_PRIORITY}", field="priority")

    def _check_command(self) -> None:
        if not self.command:
            raise ValidationFailed("must not be empty", field="command")
        for index, part in enumerate(self.command):
            if _UNSTORABLE.search(part):
                raise ValidationFailed("must not contain NUL (or unpaired surrogates)",
                                       field=f"command.{index}")
        size = sum(len(part.encode()) + 1 for part in self.command)
        if len(self.command) > MAX_COMMAND_ITEMS or size > MAX_COMMAND_BYTES:
            raise ValidationFailed(f"at most {MAX_COMMAND_ITEMS} arguments and "
                                   f"{MAX_COMMAND_BYTES >> 10} KiB", field="command")

    def _check_env(self) -> None:
        if len(self.env) > MAX_ENV_VARS or any(not _ENV_KEY_RE.match(k) for k in self.env):
            raise ValidationFailed(f"at most {MAX_ENV_VARS} variables with names like NAME_1",
                                   field="env")
        for name, value in self.env.items():
            if _UNSTORABLE.search(value):
                raise ValidationFailed("must not contain NUL (or unpaired surrogates)",
                                       field=f"env.{name}")
        size = sum(len(name) + len(value.encode()) + 2 for name, value in self.env.items())
        if size > MAX_ENV_BYTES:
            raise ValidationFailed(f"at most {MAX_ENV_BYTES >> 10} KiB in all (this is "
                                   f"{size} bytes)", field="env")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "command": list(self.command), "devices": self.devices,
                "workload_class": self.workload_class, "accelerator": self.accelerator,
                "vendor": self.vendor, "device_kind": self.device_kind,
                "min_memory_gb": self.min_memory_gb, "provinces": list(self.provinces),
                "pool_id": self.pool_id, "time_limit_s": self.time_limit_s,
                "max_price_fen_per_device_hour": self.max_price_fen_per_device_hour,
                "env": dict(self.env), "spot": self.spot,
                "software_stack": self.software_stack, "latency_class": self.latency_class,
                "user_city": self.user_city, "max_rtt_ms": self.max_rtt_ms,
                "data_province": self.data_province, "data_site": self.data_site,
                "data_gb": self.data_gb, "deadline_s": self.deadline_s,
                "budget_fen": self.budget_fen, "priority": self.priority,
                "multi_pool": self.multi_pool, "quote_id": self.quote_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        """A spec as the platform stored it. It was checked when it was submitted; it is not
        checked again, so a spec stored under older, looser limits can still be dispatched,
        refused by its engine, reported and charged rather than wedging every step that reads
        it (the limits bind new input, at the API)."""
        fields = {**data, "command": tuple(data["command"]),
                  "provinces": tuple(data.get("provinces") or ())}
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:  # written by a newer version: not a spec this one can run
            raise TypeError(f"unknown job spec fields: {', '.join(sorted(unknown))}")
        spec = cls.__new__(cls)
        defaults = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING
                             else f.default) for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING}
        for name in (f.name for f in dataclasses.fields(cls)):
            object.__setattr__(spec, name, fields[name] if name in fields else defaults[name])
        return spec


def check_idempotency_key(key: str) -> str:
    if not _IDEMPOTENCY_RE.match(key):
        raise ValidationFailed("1-128 characters of letters, digits and ._:-",
                               field="Idempotency-Key")
    return key
