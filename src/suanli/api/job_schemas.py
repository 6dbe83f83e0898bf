"""Request and response bodies of the job and agent endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from suanli.api.quote_schemas import JobCostOut


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    command: list[str] = Field(min_length=1, max_length=256,
                               description="argv of the program to run")
    devices: int = Field(default=1, ge=1, le=4096)
    workload_class: str = "general"
    accelerator: str | None = Field(default=None, description="catalog key")
    vendor: str | None = None
    device_kind: str | None = Field(default=None, description="gpu, npu, dcu, xpu, cpu")
    min_memory_gb: float | None = Field(default=None, ge=0)
    provinces: list[str] = Field(default_factory=list, max_length=40,
                                 description="residency: allowed provinces (ISO 3166-2:CN)")
    pool_id: str | None = None
    time_limit_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    max_price_fen_per_device_hour: int | None = Field(default=None, ge=0)
    env: dict[str, str] = Field(default_factory=dict, max_length=128)
    spot: bool = False


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


class AgentIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    pools: list[str] = Field(min_length=1, max_length=256)
    engine: str = Field(default="local", max_length=16)


class ClaimIn(Strict):
    max_jobs: int = Field(default=4, ge=1, le=16)


class LeaseBeat(Strict):
    lease_id: str
    fence: int = Field(ge=0)


class HeartbeatIn(Strict):
    leases: list[LeaseBeat] = Field(default_factory=list, max_length=128)


class UsageIn(Strict):
    wall_s: float = Field(ge=0, le=366 * 86400)
    cpu_s: float | None = Field(default=None, ge=0)
    max_rss_mb: float | None = Field(default=None, ge=0)
    energy_wh: float | None = Field(default=None, ge=0)
    energy_estimated: bool = True
    utilisation: float = Field(default=1.0, ge=0, le=1)


class ReportIn(Strict):
    fence: int = Field(ge=0)
    state: str = Field(description="running, succeeded, failed, cancelled or preempted")
    exit_code: int | None = None
    message: str = Field(default="", max_length=2000)
    logs: str | None = Field(default=None, max_length=4 << 20)
    engine_ref: str | None = Field(default=None, max_length=200)
    usage: UsageIn | None = None
