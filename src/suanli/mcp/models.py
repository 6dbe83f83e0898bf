"""Typed inputs and outputs of the MCP tools (JSON Schema for the assistant; money in fen)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class JobSpecIn(BaseModel):
    """A job as quote_job prices it and submit_job runs it (the platform validates it)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120, description="a name for the job / 作业名")
    command: list[str] = Field(min_length=1, max_length=256,
                               description="argv of the program to run, e.g. "
                                           "[\"python3\", \"train.py\"]")
    devices: int = Field(default=1, ge=1, le=4096, description="devices (cards) / 卡数")
    workload_class: str = Field(default="general",
                                description="general, training, inference or hpc")
    accelerator: str | None = Field(default=None, description="catalog key, e.g. "
                                    "huawei-ascend-910b (list_accelerators)")
    vendor: str | None = Field(default=None, description="e.g. Huawei, NVIDIA")
    device_kind: str | None = Field(default=None, description="gpu, npu, dcu, xpu or cpu")
    min_memory_gb: float | None = Field(default=None, ge=0)
    provinces: list[str] = Field(default_factory=list, max_length=40,
                                 description="residency: allowed provinces, ISO 3166-2:CN "
                                             "codes such as CN-GZ / 数据驻留省份")
    time_limit_s: int = Field(default=3600, ge=1, le=30 * 86400,
                              description="the job's time limit; it is priced for all of it")
    max_price_fen_per_device_hour: int | None = Field(default=None, ge=0)
    spot: bool = False


class PoolHit(_Out):
    id: str
    name: str
    accelerator: str
    vendor: str
    device_kind: str
    free_devices: int
    device_count: int
    price_fen_per_device_hour: int
    fen_per_unit_hour: str | None = None
    province: str
    city: str
    hub: str | None
    green_share: str
    latency_ms: float | None = None
    illustrative: bool = False


class PoolSearchOut(_Out):
    items: list[PoolHit]
    next_offset: int | None = None


class QuoteOptionOut(_Out):
    rank: int
    pool_id: str
    accelerator: str
    province: str
    city: str
    hub: str | None
    free_devices: int
    price_fen_per_device_hour: int
    estimated_cost_fen: int | None = Field(description="for the whole time limit")
    hold_fen: int
    placement: dict[str, Any] = Field(description="score terms, energy, carbon, the reason")


class QuoteJobOut(_Out):
    quote_id: str = Field(description="pass it to submit_job with the same job")
    expires_in_s: int
    candidates: int
    options: list[QuoteOptionOut]
    message: str = ""
    spending: str = Field(description="whether this server may submit it, and the caps left")


class JobOut(_Out):
    id: str
    name: str
    state: str
    pool_id: str | None = None
    exit_code: int | None = None
    message: str = ""
    created_at: str
    cost: dict[str, Any] | None = None


class JobListOut(_Out):
    items: list[JobOut]
    next_offset: int | None = None


class SubmitOut(_Out):
    job: JobOut
    committed_fen: int = Field(description="the quote's estimate counted against the caps")
    session_spent_fen: int
    today_spent_fen: int


class SpendStatusOut(_Out):
    spending_enabled: bool
    destructive_enabled: bool
    max_session_fen: int
    session_spent_fen: int
    max_day_fen: int
    today_spent_fen: int


class AskOut(_Out):
    understood: list[str]
    unknown: list[str]
    ambiguous: list[str]
    search: dict[str, Any] = Field(description="arguments for search_pools")
    searches_per_hub: list[str]
    job: dict[str, Any] = Field(description="fields for quote_job's job")


class PlatformAnswer(_Out):
    """A platform answer passed through as the API returns it (docs/api.md describes it)."""

    path: str
    body: Any
