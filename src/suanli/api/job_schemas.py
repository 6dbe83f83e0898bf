"""Request and response bodies of the job and agent endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from suanli.api.fields import (
    AcceleratorKey,
    DeviceKind,
    Flag,
    Name,
    Province,
    Strict,
    Token,
    UserCity,
    Vendor,
    WorkloadClass,
    bounded_float,
    bounded_int,
    one_of,
)
from suanli.api.quote_schemas import JobCostOut
from suanli.domain.jobs import (
    LATENCY_CLASSES,
    MAX_BUDGET_FEN,
    MAX_COMMAND_BYTES,
    MAX_COMMAND_ITEMS,
    MAX_DEVICES_PER_JOB,
    MAX_ENV_VARS,
    MAX_DATA_GB,
    MAX_DEADLINE_S,
    MAX_MEMORY_GB,
    MAX_PRIORITY,
    MAX_RTT_BOUND_MS,
    MAX_TIME_LIMIT_S,
    SOFTWARE_STACKS,
)
from suanli.domain.resources import MAX_PRICE_FEN_PER_DEVICE_HOUR

# The agent's messages live on their wire (suanli.protocol.agent); the old names still work.
from suanli.protocol.agent import (  # noqa: F401
    ClaimRequest,
    EngineKind,
    EngineRef,
    ExitCode,
    Fence,
    HeartbeatRequest,
    JobStateName,
    LeaseBeat,
    MaxJobs,
    Measure,
    Message,
    Registration,
    Report,
    Share,
    Usage,
    WallSeconds,
)

AgentIn = Registration
ClaimIn = ClaimRequest
HeartbeatIn = HeartbeatRequest
UsageIn = Usage
ReportIn = Report

Argument = Annotated[str, Field(max_length=MAX_COMMAND_BYTES)]
Devices = bounded_int(1, MAX_DEVICES_PER_JOB)
TimeLimit = bounded_int(1, MAX_TIME_LIMIT_S)
PriceCap = bounded_int(0, MAX_PRICE_FEN_PER_DEVICE_HOUR)
MemoryGb = bounded_float(0, MAX_MEMORY_GB)
SoftwareStack = one_of(SOFTWARE_STACKS, what="software stack the program is built for")
LatencyClassName = one_of(LATENCY_CLASSES, what="latency class")
RttBound = bounded_float(0.1, MAX_RTT_BOUND_MS)
DataGb = bounded_float(0, MAX_DATA_GB)
Deadline = bounded_int(1, MAX_DEADLINE_S)
Budget = bounded_int(0, MAX_BUDGET_FEN)
Priority = bounded_int(0, MAX_PRIORITY)
QuoteId = Annotated[str, Field(min_length=4, max_length=2048, pattern=r"^q1\.[A-Za-z0-9_-]+$",
                               description="an option's quote_id from POST /v1/quotes")]


class JobIn(Strict):
    name: Name
    command: list[Argument] = Field(min_length=1, max_length=MAX_COMMAND_ITEMS,
                                    description="argv of the program to run; no NUL, at most "
                                    f"{MAX_COMMAND_BYTES >> 10} KiB in all")
    devices: Devices = 1
    workload_class: WorkloadClass = "general"
    accelerator: AcceleratorKey | None = None
    vendor: Vendor | None = None
    device_kind: DeviceKind | None = None
    min_memory_gb: MemoryGb | None = None
    provinces: list[Province] = Field(
        default_factory=list, max_length=40,
        description="residency: allowed provinces (ISO 3166-2:CN)")
    pool_id: Token | None = None
    time_limit_s: TimeLimit = 3600
    max_price_fen_per_device_hour: PriceCap | None = None
    env: dict[str, str] = Field(default_factory=dict, max_length=MAX_ENV_VARS,
                                description="names like NAME_1; no NUL; at most 256 KiB "
                                "in all")
    spot: Flag = False
    software_stack: SoftwareStack | None = None
    latency_class: LatencyClassName = "batch"
    user_city: UserCity | None = None
    max_rtt_ms: RttBound | None = None
    data_province: Province | None = None
    data_site: Token | None = None
    data_gb: DataGb = 0.0
    deadline_s: Deadline | None = None
    budget_fen: Budget | None = None
    priority: Priority = 0
    multi_pool: Flag = False
    quote_id: QuoteId | None = None


class JobEventOut(BaseModel):
    from_state: str | None
    to_state: str
    at: datetime
    reason: str


class JobOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    state: str
    spec: dict[str, Any]
    attempts: int
    pool_id: str | None
    lease_id: str | None
    placement: dict[str, Any] | None
    exit_code: int | None
    message: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    events: list[JobEventOut] = Field(default_factory=list)
    cost: JobCostOut | None = Field(default=None, description="estimate and charges (a single "
                                    "job's view; not in lists)")


class UsageOut(BaseModel):
    id: str
    lease_id: str
    job_id: str
    pool_id: str
    accelerator: str
    devices: int
    started_at: datetime
    ended_at: datetime
    wall_s: float
    device_seconds: float
    cpu_s: float | None
    max_rss_mb: float | None
    energy_wh: float
    energy_estimated: bool
