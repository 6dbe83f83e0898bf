"""Request and response bodies of the registry, catalog and tenant endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=120)]
T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantIn(Strict):
    name: Name
    role: str = Field(description="consumer, provider or operator")
    tenant_class: str = Field(default="enterprise",
                              description="small-firm, start-up, research, enterprise, public")


class TenantOut(BaseModel):
    id: str
    name: str
    role: str
    tenant_class: str
    created_at: datetime | None = None


class NewTenantOut(TenantOut):
    api_key: str = Field(description="shown once; only its hash is stored")


class DelegationIn(Strict):
    prefix: str = Field(min_length=2, max_length=8, description="e.g. GD under CN gives CN.GD")
    name: Name
    level: str = Field(description="national, regional or industry")
    endpoint: str = Field(max_length=300, description="base URL of the delegated platform")


class ProviderIn(Strict):
    name: Name
    kind: str = Field(description="telecom, cloud, computing-centre, university, enterprise")
    country: str = Field(default="CN", min_length=2, max_length=2)


class ProviderPatch(Strict):
    name: Name | None = None
    kind: str | None = None


class ProviderOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    kind: str
    country: str
    retired: bool
    illustrative: bool
    created_at: datetime
    updated_at: datetime


class SiteIn(Strict):
    name: Name
    province: str = Field(description="ISO 3166-2:CN code, e.g. CN-GZ")
    city: Name
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    pue: Decimal = Field(ge=1, le=3, description="power usage effectiveness")
    electricity_fen_per_kwh: int = Field(ge=0, le=1000)
    green_share: Decimal = Field(ge=0, le=1, description="share of green power, 0..1")
    kind: str = Field(description="hub or edge")
    hub: str | None = Field(default=None, description="national hub, e.g. guizhou")


class SitePatch(Strict):
    name: Name | None = None
    city: Name | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    pue: Decimal | None = Field(default=None, ge=1, le=3)
    electricity_fen_per_kwh: int | None = Field(default=None, ge=0, le=1000)
    green_share: Decimal | None = Field(default=None, ge=0, le=1)
    kind: str | None = None
    hub: str | None = None


class SiteOut(BaseModel):
    id: str
    provider_id: str
    tenant_id: str
    name: str
    province: str
    city: str
    latitude: float
    longitude: float
    pue: Decimal
    electricity_fen_per_kwh: int
    green_share: Decimal
    kind: str
    hub: str | None
    retired: bool
    illustrative: bool


class PoolIn(Strict):
    name: Name
    accelerator: str = Field(min_length=1, max_length=48, description="catalog key")
    device_count: int = Field(ge=1, le=1_000_000)
    engine: str = Field(description="local, slurm, ray or kubernetes")
    price_fen_per_device_hour: int = Field(ge=0, le=100_000_000)
    free_devices: int | None = Field(default=None, ge=0)
    interconnect: str | None = Field(default=None, max_length=64)
    state: str | None = None
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)


class PoolPatch(Strict):
    name: Name | None = None
    device_count: int | None = Field(default=None, ge=1, le=1_000_000)
    free_devices: int | None = Field(default=None, ge=0)
    engine: str | None = None
    price_fen_per_device_hour: int | None = Field(default=None, ge=0, le=100_000_000)
    interconnect: str | None = Field(default=None, max_length=64)
    state: str | None = None
    labels: dict[str, str] | None = Field(default=None, max_length=32)
    expected_version: int | None = Field(default=None, ge=1,
                                         description="reject the change if the pool moved on")


class PoolOut(BaseModel):
    id: str
    site_id: str
    provider_id: str
    tenant_id: str
    name: str
    accelerator: str
    vendor: str
    architecture: str
    device_kind: str
    memory_gb: float | None
    device_count: int
    free_devices: int
    interconnect: str | None
    engine: str
    state: str
    price_fen_per_device_hour: int
    units_per_device_hour: Decimal
    province: str
    city: str
    hub: str | None
    site_kind: str
    green_share: Decimal
    latitude: float
    longitude: float
    labels: dict[str, str]
    illustrative: bool
    version: int


class PoolHitOut(PoolOut):
    fen_per_unit_hour: Decimal | None = Field(description="for the queried workload class")
    latency_ms: float | None = Field(description="estimated RTT from near_city, when given")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_offset: int | None = None
    total: int | None = None
