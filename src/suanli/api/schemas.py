"""Request and response bodies of the registry, catalog and tenant endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

from suanli.api.fields import (
    MAX_DEVICES,
    AcceleratorKey,
    Name,
    Province,
    Strict,
    bounded_decimal,
    bounded_float,
    bounded_int,
    one_of,
    text,
)
from suanli.domain.resources import (
    MAX_PRICE_FEN_PER_DEVICE_HOUR,
    Engine,
    Hub,
    PoolState,
    ProviderKind,
    SiteKind,
)
from suanli.domain.tenants import Role, TenantClass

T = TypeVar("T")
RoleName = one_of([r.value for r in Role], what="role")
TenantClassName = one_of([c.value for c in TenantClass], what="tenant class")
LevelName = one_of(["national", "regional", "industry"], what="level")
ProviderKindName = one_of([k.value for k in ProviderKind], what="provider kind")
SiteKindName = one_of([k.value for k in SiteKind], what="site kind")
HubName = one_of([h.value for h in Hub], what="national hub")
EngineName = one_of([e.value for e in Engine], what="engine")
PoolStateName = one_of([s.value for s in PoolState], what="pool state")
Country = Annotated[str, Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]
Latitude = bounded_float(-90, 90)
Longitude = bounded_float(-180, 180)
Pue = bounded_decimal(1, 3, places=4, description="power usage effectiveness")
ElectricityFen = bounded_int(0, 1000)
GreenShare = bounded_decimal(0, 1, places=4, description="share of green power, 0..1")
DeviceCount = bounded_int(1, MAX_DEVICES)
FreeDevices = bounded_int(0, MAX_DEVICES)
ListPrice = bounded_int(0, MAX_PRICE_FEN_PER_DEVICE_HOUR)
Interconnect = text(64)
LabelKey = text(64, min_length=1)
LabelValue = text(256)
Version = bounded_int(1, 2**62)
Endpoint = text(300)


class TenantIn(Strict):
    name: Name
    role: RoleName
    tenant_class: TenantClassName = "enterprise"


class TenantOut(BaseModel):
    id: str
    name: str
    role: str
    tenant_class: str
    created_at: datetime


class NewTenantOut(TenantOut):
    api_key: str = Field(description="shown once; only its hash is stored")


class DelegationIn(Strict):
    prefix: str = Field(min_length=2, max_length=8, pattern=r"^[A-Za-z0-9]+$",
                        description="e.g. GD under CN gives CN.GD")
    name: Name
    level: LevelName
    endpoint: Endpoint = Field(description="base URL of the delegated platform")


class ProviderIn(Strict):
    name: Name
    kind: ProviderKindName
    country: Country = "CN"


class ProviderPatch(Strict):
    name: Name | None = None
    kind: ProviderKindName | None = None


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
    province: Province
    city: Name
    latitude: Latitude
    longitude: Longitude
    pue: Pue
    electricity_fen_per_kwh: ElectricityFen
    green_share: GreenShare
    kind: SiteKindName
    hub: HubName | None = None


class SitePatch(Strict):
    name: Name | None = None
    city: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    pue: Pue | None = None
    electricity_fen_per_kwh: ElectricityFen | None = None
    green_share: GreenShare | None = None
    kind: SiteKindName | None = None
    hub: HubName | None = None


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
    accelerator: AcceleratorKey
    device_count: DeviceCount
    engine: EngineName
    price_fen_per_device_hour: ListPrice
    free_devices: FreeDevices | None = None
    interconnect: Interconnect | None = None
    state: PoolStateName | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=32)


class PoolPatch(Strict):
    name: Name | None = None
    device_count: DeviceCount | None = None
    free_devices: FreeDevices | None = None
    engine: EngineName | None = None
    price_fen_per_device_hour: ListPrice | None = None
    interconnect: Interconnect | None = None
    state: PoolStateName | None = None
    labels: dict[LabelKey, LabelValue] | None = Field(default=None, max_length=32)
    expected_version: Version | None = Field(default=None,
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
