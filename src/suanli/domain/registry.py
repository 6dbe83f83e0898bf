"""The registry's stored records: providers, sites, pools, delegations and calibrations.

Each record holds what the store keeps, under the stored names and types (enums as their
values), so a record and the API's answer agree field for field. The rules that make and
change them live in `resources` and in `services.registry`; this module holds data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ProviderRecord:
    id: str
    tenant_id: str
    name: str
    kind: str
    country: str
    retired: bool
    illustrative: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SiteRecord:
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
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PoolRecord:
    """A pool, with its site's and accelerator's searchable facts copied in."""

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
    fen_per_unit_hour_general: Decimal | None
    fen_per_unit_hour_training: Decimal | None
    fen_per_unit_hour_inference: Decimal | None
    fen_per_unit_hour_hpc: Decimal | None
    province: str
    city: str
    hub: str | None
    site_kind: str
    green_share: Decimal
    latitude: float
    longitude: float
    geo_x: float
    geo_y: float
    geo_z: float
    labels: dict[str, str]
    illustrative: bool
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SitePosition:
    """Where a site is, for ranking sites by distance."""

    id: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class DelegationRecord:
    """An identifier prefix this platform delegated to another platform."""

    authority: str
    name: str
    level: str
    endpoint: str
    created_at: datetime


@dataclass(frozen=True)
class CalibrationRecord:
    """One probe run uploaded for a pool, with the comparison made when it arrived; `id` is
    None until it is stored."""

    pool_id: str
    tenant_id: str
    accelerator: str
    backend: str
    device_kind: str
    device_name: str
    devices: int
    measured: dict[str, float]
    datasheet: dict[str, float]
    ratios: dict[str, float]
    best_ratio: float | None
    verdict: str
    over_declared: bool
    notes: list[str]
    probe_version: str
    host: str
    probe: dict[str, Any]
    created_at: datetime
    id: int | None = field(default=None)
