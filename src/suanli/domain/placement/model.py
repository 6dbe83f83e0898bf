"""What a job asks of the federation, what a pool offers now, and the decision joining them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from suanli.domain.errors import ValidationFailed
from suanli.domain.resources import Hub

MAX_DEVICES_PER_JOB = 100_000
MAX_DATA_GB = 10_000_000.0  # 10 PB: a sanity bound
MAX_HOURLY_SERIES = 24 * 366 * 2  # two years of hourly values


class LatencyClass(StrEnum):
    """How close to its user a job must run."""

    REALTIME = "realtime"  # online inference on a user's request path
    INTERACTIVE = "interactive"  # notebooks, debugging, dashboards
    BATCH = "batch"  # training, offline inference, HPC: may run anywhere, even later


# Round-trip budget from the user's city to the pool. 东数西算 targets <= 20 ms between hub
# clusters and their user regions, so real-time work must stay in (or next to) the user's
# region; interactive work tolerates a cross-country hop.
MAX_RTT_MS: Mapping[LatencyClass, float] = {
    LatencyClass.REALTIME: 20.0,
    LatencyClass.INTERACTIVE: 45.0,
    LatencyClass.BATCH: math.inf,
}

# Where data "in a hub" lies when a job names only the hub: the province of its cluster.
HUB_PROVINCE: Mapping[Hub, str] = {
    Hub.JINGJINJI: "CN-HE", Hub.YANGTZE: "CN-AH", Hub.GBA: "CN-GD", Hub.CHENGYU: "CN-SC",
    Hub.INNER_MONGOLIA: "CN-NM", Hub.GUIZHOU: "CN-GZ", Hub.GANSU: "CN-GS", Hub.NINGXIA: "CN-NX",
}


@dataclass(frozen=True, slots=True)
class AcceleratorConstraint:
    """Which devices a job can use; an empty set means "any"."""

    vendors: frozenset[str] = frozenset()
    architectures: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()  # catalog keys
    min_memory_gb: float = 0.0
    software_stacks: frozenset[str] = frozenset()  # the pool must provide every one of them


ANY_ACCELERATOR = AcceleratorConstraint()


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a job needs from the federation.

    Size: `work_units` compute units of work, spread over `devices` devices (fixed width) or
    over as many devices as give `units_per_hour` on the chosen pool (elastic width). Runtime
    on a pool is `work_units / (devices * pool.units_per_device_hour)`.
    """

    id: str
    tenant_id: str
    work_units: float
    devices: int | None = 1
    units_per_hour: float | None = None
    accelerator: AcceleratorConstraint = ANY_ACCELERATOR
    gang: bool = True  # all devices start together
    multi_pool: bool = False  # a gang may span pools on one interconnect fabric
    latency_class: LatencyClass = LatencyClass.BATCH
    user_city: str | None = None
    data_province: str | None = None
    data_hub: Hub | None = None
    data_gb: float = 0.0
    residency_provinces: frozenset[str] = frozenset()  # empty: no provincial restriction
    residency_countries: frozenset[str] = frozenset()  # empty: no national restriction
    deadline_s: int | None = None  # absolute, on the caller's clock
    deadline_strict: bool = False  # refuse rather than run late
    budget_fen: int | None = None
    spot_allowed: bool = False
    defer_allowed: bool = True
    workload_class: str = "training"

    def __post_init__(self) -> None:
        if not (self.work_units > 0 and math.isfinite(self.work_units)):
            raise ValidationFailed("work_units must be a positive number", field="work_units")
        if (self.devices is None) == (self.units_per_hour is None):
            raise ValidationFailed("give exactly one of devices and units_per_hour",
                                   field="devices")
        if self.devices is not None and not 1 <= self.devices <= MAX_DEVICES_PER_JOB:
            raise ValidationFailed(f"devices must be 1..{MAX_DEVICES_PER_JOB}", field="devices")
        if self.units_per_hour is not None and not (
                self.units_per_hour > 0 and math.isfinite(self.units_per_hour)):
            raise ValidationFailed("units_per_hour must be positive", field="units_per_hour")
        if not 0 <= self.data_gb <= MAX_DATA_GB:
            raise ValidationFailed(f"data_gb must be 0..{MAX_DATA_GB}", field="data_gb")
        if self.budget_fen is not None and self.budget_fen < 0:
            raise ValidationFailed("budget_fen must not be negative", field="budget_fen")
        if self.multi_pool and self.units_per_hour is not None:
            raise ValidationFailed("a multi-pool gang needs a fixed device count",
                                   field="multi_pool")

    @property
    def data_region(self) -> str | None:
        """The province the job's data lies in, if it has any data to move."""
        if self.data_province is not None:
            return self.data_province
        if self.data_hub is not None:
            return HUB_PROVINCE[self.data_hub]
        return None


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One pool's offer at a moment: what it is, where, how much is free, what it costs by hour.

    Hourly series (`price_fen_per_device_hour`, ...) are indexed by `hour % len(series)` on the
    caller's clock, so a 24-value series is a daily profile and a single value a flat rate.
    """

    id: str
    provider_id: str
    site_id: str
    province: str
    city: str
    accelerator: str
    vendor: str
    architecture: str
    memory_gb: float
    software_stacks: frozenset[str]
    device_count: int
    free_devices: int
    units_per_device_hour: float
    device_power_kw: float
    pue: float
    price_fen_per_device_hour: tuple[int, ...]
    electricity_fen_per_kwh: tuple[int, ...]
    carbon_g_per_kwh: tuple[float, ...]
    spot_price_fen_per_device_hour: tuple[int, ...] | None = None  # None: no spot offer
    spot_devices_in_use: int = 0  # devices held by preemptible (spot) leases
    hub: Hub | None = None
    western: bool = False
    country: str = "CN"
    interconnect: str | None = None  # pools sharing a fabric id can host one gang together
    rtt_ms: Mapping[str, float] = field(default_factory=dict)  # to user cities
    queue_wait_s: float = 0.0  # the provider's own dispatch/queue delay before a start
    active: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.device_count <= 1_000_000:
            raise ValidationFailed("device_count must be 1..1,000,000", field="device_count")
        if not 0 <= self.free_devices <= self.device_count:
            raise ValidationFailed("free_devices must be 0..device_count", field="free_devices")
        if not 0 <= self.spot_devices_in_use <= self.device_count - self.free_devices:
            raise ValidationFailed("spot devices must be among the busy ones",
                                   field="spot_devices_in_use")
        if not self.units_per_device_hour > 0:
            raise ValidationFailed("units_per_device_hour must be positive",
                                   field="units_per_device_hour")
        for name in ("price_fen_per_device_hour", "electricity_fen_per_kwh", "carbon_g_per_kwh"):
            series = getattr(self, name)
            if not 1 <= len(series) <= MAX_HOURLY_SERIES:
                raise ValidationFailed(f"{name} needs 1..{MAX_HOURLY_SERIES} values", field=name)
            if min(series) < 0:
                raise ValidationFailed(f"{name} must not be negative", field=name)
        spot = self.spot_price_fen_per_device_hour
        if spot is not None and (len(spot) != len(self.price_fen_per_device_hour) or min(spot) < 0):
            raise ValidationFailed("spot prices need one non-negative value per price hour",
                                   field="spot_price_fen_per_device_hour")


@dataclass(frozen=True, slots=True)
class Allocation:
    """Devices of one pool given to a job; `preempt_devices` of them are taken from spot leases."""

    pool_id: str
    pool_index: int
    devices: int
    spot: bool = False
    preempt_devices: int = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """The engine's decision for one job, with the figures and the score that explain it.

    `breakdown` holds each score term's contribution (fen-equivalent; lower is better) for the
    chosen option; the terms add up to `score`. Money (`cost_fen`, `transfer_fen`) is the
    estimate at the pools' hourly prices over the lease (staging plus run): held devices are
    billed while the data moves in.
    """

    job_id: str
    policy: str
    allocations: tuple[Allocation, ...]
    start_s: int  # devices are held from here (now, or a later hour when deferred)
    staging_s: int  # provider queue wait plus moving the data in, devices already held
    runtime_s: int
    cost_fen: int
    transfer_fen: int
    energy_kwh: float
    carbon_kg: float
    score: float
    breakdown: Mapping[str, float]
    candidates: int
    reason: str
    deferred: bool = False

    @property
    def devices(self) -> int:
        return sum(a.devices for a in self.allocations)

    @property
    def finish_s(self) -> int:
        return self.start_s + self.staging_s + self.runtime_s

    @property
    def pool_ids(self) -> tuple[str, ...]:
        return tuple(a.pool_id for a in self.allocations)
