"""Providers, sites and pools: the registry's objects and the rules they obey."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from suanli.domain.errors import ValidationFailed


class Hub(StrEnum):
    """The eight national hubs of "East Data, West Computing" (东数西算)."""

    JINGJINJI = "jingjinji"  # 京津冀 Beijing-Tianjin-Hebei
    YANGTZE = "yangtze"  # 长三角 Yangtze River Delta
    GBA = "gba"  # 粤港澳大湾区 Guangdong-Hong Kong-Macao
    CHENGYU = "chengyu"  # 成渝 Chengdu-Chongqing
    INNER_MONGOLIA = "inner-mongolia"  # 内蒙古
    GUIZHOU = "guizhou"  # 贵州
    GANSU = "gansu"  # 甘肃
    NINGXIA = "ningxia"  # 宁夏


WESTERN_HUBS = frozenset({Hub.CHENGYU, Hub.INNER_MONGOLIA, Hub.GUIZHOU, Hub.GANSU, Hub.NINGXIA})


class ProviderKind(StrEnum):
    TELECOM = "telecom"
    CLOUD = "cloud"
    COMPUTING_CENTRE = "computing-centre"  # provincial / city intelligent-computing centre
    UNIVERSITY = "university"
    ENTERPRISE = "enterprise"


class SiteKind(StrEnum):
    HUB = "hub"  # a large data centre in a national hub cluster
    EDGE = "edge"  # a city edge pool near users


class Engine(StrEnum):
    LOCAL = "local"
    SLURM = "slurm"
    RAY = "ray"
    KUBERNETES = "kubernetes"


class PoolState(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


# ISO 3166-2:CN subdivision codes (the same keys as the provincial emission factors).
PROVINCES: dict[str, str] = {
    "CN-BJ": "Beijing", "CN-TJ": "Tianjin", "CN-HE": "Hebei", "CN-SX": "Shanxi",
    "CN-NM": "Inner Mongolia", "CN-LN": "Liaoning", "CN-JL": "Jilin", "CN-HL": "Heilongjiang",
    "CN-SH": "Shanghai", "CN-JS": "Jiangsu", "CN-ZJ": "Zhejiang", "CN-AH": "Anhui",
    "CN-FJ": "Fujian", "CN-JX": "Jiangxi", "CN-SD": "Shandong", "CN-HA": "Henan",
    "CN-HB": "Hubei", "CN-HN": "Hunan", "CN-GD": "Guangdong", "CN-GX": "Guangxi",
    "CN-HI": "Hainan", "CN-CQ": "Chongqing", "CN-SC": "Sichuan", "CN-GZ": "Guizhou",
    "CN-YN": "Yunnan", "CN-XZ": "Tibet", "CN-SN": "Shaanxi", "CN-GS": "Gansu",
    "CN-QH": "Qinghai", "CN-NX": "Ningxia", "CN-XJ": "Xinjiang", "CN-HK": "Hong Kong",
    "CN-MO": "Macao", "CN-TW": "Taiwan",
}

_NAME_RE = re.compile(r"^[^\x00-\x1f]{1,120}$")
MAX_DEVICES_PER_POOL = 1_000_000
MAX_PRICE_FEN_PER_DEVICE_HOUR = 100_000_000  # 1,000,000 CNY per device-hour: a sanity bound


def check_name(value: str, field_name: str) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("must be a string", field=field_name)
    value = value.strip()
    if not _NAME_RE.match(value):
        raise ValidationFailed("must be 1-120 printable characters", field=field_name)
    return value


def check_province(value: str, field_name: str = "province") -> str:
    if value not in PROVINCES:
        raise ValidationFailed(
            f"unknown province {value!r}: use an ISO 3166-2:CN code such as CN-GZ", field=field_name
        )
    return value


Number = TypeVar("Number", Decimal, int, float)


def check_range(value: Number, low: Decimal | float, high: Decimal | float,
                field_name: str) -> Number:
    if not (low <= value <= high):
        raise ValidationFailed(f"must be between {low} and {high}, got {value}", field=field_name)
    return value


@dataclass(frozen=True)
class Provider:
    id: str
    tenant_id: str
    name: str
    kind: ProviderKind
    country: str = "CN"
    retired: bool = False


@dataclass(frozen=True)
class Site:
    id: str
    provider_id: str
    name: str
    province: str
    city: str
    latitude: float
    longitude: float
    pue: Decimal
    electricity_fen_per_kwh: int
    green_share: Decimal  # 0..1, share of green power in the site's supply
    kind: SiteKind
    hub: Hub | None = None
    retired: bool = False

    def __post_init__(self) -> None:
        check_province(self.province)
        check_range(self.latitude, -90, 90, "latitude")
        check_range(self.longitude, -180, 180, "longitude")
        check_range(self.pue, Decimal("1.0"), Decimal("3.0"), "pue")
        check_range(self.electricity_fen_per_kwh, 0, 1000, "electricity_fen_per_kwh")
        check_range(self.green_share, Decimal(0), Decimal(1), "green_share")

    @property
    def is_western(self) -> bool:
        return self.hub in WESTERN_HUBS


@dataclass(frozen=True)
class Pool:
    id: str
    site_id: str
    name: str
    accelerator: str  # catalog key
    device_count: int
    engine: Engine
    price_fen_per_device_hour: int
    state: PoolState = PoolState.ACTIVE
    free_devices: int | None = None
    interconnect: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_range(self.device_count, 1, MAX_DEVICES_PER_POOL, "device_count")
        check_range(self.price_fen_per_device_hour, 0, MAX_PRICE_FEN_PER_DEVICE_HOUR,
                    "price_fen_per_device_hour")
        if self.free_devices is not None:
            check_range(self.free_devices, 0, self.device_count, "free_devices")
