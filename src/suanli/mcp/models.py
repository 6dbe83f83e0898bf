"""Typed inputs and outputs of the MCP tools (JSON Schema for the assistant; money in fen)."""

from __future__ import annotations

from datetime import datetime
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
    start: str = Field(default="now: the pool has the free devices",
                       description="quotes only pools that can start the job now")
    latency_ms: float | None = Field(default=None,
                                     description="modelled round trip from near_city")
    placement: dict[str, Any] = Field(description="score terms, energy, carbon, the reason")


class MarketShapeIn(BaseModel):
    """One block of whole hours on the exchange: `count` units every hour of it."""

    model_config = ConfigDict(extra="forbid")
    accelerator_class: str = Field(min_length=2, max_length=48,
                                   description="a catalog key, or scu-<workload class>")
    location: str = Field(min_length=2, max_length=24,
                          description="a hub (e.g. ningxia) or a province (e.g. CN-GZ)")
    start: datetime = Field(description="a whole hour with its offset, e.g. "
                                        "2026-12-01T08:00:00+08:00")
    hours: int = Field(ge=1, le=168)
    count: int = Field(ge=1, le=100_000, description="devices, or SCU for scu-* classes")


class MarketOptionOut(_Out):
    rank: int
    pool_id: str
    provider_id: str
    price_fen_per_unit_hour: int
    value_fen: int
    escrow_fen: int = Field(description="what a bid at this price holds: price x count x hours")


class MarketQuoteOut(_Out):
    quote_id: str = Field(description="pass it to place_bid with the same block")
    expires_in_s: int
    options: list[MarketOptionOut]
    spending: str


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


class UtilisationRow(_Out):
    scope: str = Field(description="a hub, a province outside the hubs, or `all`")
    devices: int
    free_devices: int
    busy_share: str = Field(description="1 - free/devices, 4 decimals")


class UtilisationOut(_Out):
    platform: str
    rows: list[UtilisationRow] = Field(description="`all` first, then by hub")


class BidOut(_Out):
    order: dict[str, Any]
    committed_fen: int = Field(description="the bid's escrow, counted against the caps")
    session_spent_fen: int
    today_spent_fen: int


class PlatformAnswer(_Out):
    """A platform answer passed through as the API returns it (docs/api.md describes it)."""

    path: str
    body: Any
