"""An ILLUSTRATIVE national federation for `suanli serve --demo`: invented owners, sites, prices.

Nothing here describes a real company or real capacity. Providers carry generic names
("Demo Telecom A"); sites sit in real cities of the eight national hubs and in other cities'
edges; PUE, tariffs, green share, device counts and prices are drawn from plausible ranges
documented in docs/demo.md. The structure (who has a site where) is fixed; a seed varies the
figures within their ranges, and the same seed always gives the same federation.

Objects have no ids: the registry service assigns them when it loads the demo
(`DemoSite.to_site(id, provider_id)` and `DemoPool.to_pool(id, site_id)` build the domain objects).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from suanli.catalog import load_cities
from suanli.domain import geo
from suanli.domain.resources import (
    WESTERN_HUBS,
    Engine,
    Hub,
    Pool,
    PoolState,
    ProviderKind,
    Site,
    SiteKind,
)

DEMO_NOTICE = (
    "ILLUSTRATIVE demo data: invented providers, sites, capacities and prices in plausible "
    "ranges; not a description of any real operator or market."
)
ILLUSTRATIVE_LABEL = {"illustrative": "true"}

# NDRC/CAC/MIIT/NEA hub-cluster plan (2021): new large data centres in hub clusters at PUE
# <= 1.25 in the east and <= 1.2 in the west. The demo's hub sites honour it.
MAX_HUB_PUE_EAST = Decimal("1.25")
MAX_HUB_PUE_WEST = Decimal("1.20")


@dataclass(frozen=True)
class DemoProvider:
    name: str
    kind: ProviderKind
    illustrative: bool = True


@dataclass(frozen=True)
class DemoSite:
    provider_index: int  # index into DemoFederation.providers
    name: str
    province: str
    city: str
    latitude: float
    longitude: float
    pue: Decimal
    electricity_fen_per_kwh: int
    green_share: Decimal
    kind: SiteKind
    hub: Hub | None
    illustrative: bool = True

    def to_site(self, id: str, provider_id: str) -> Site:
        """The domain Site (validated by its constructor) once the registry has ids."""
        return Site(
            id=id, provider_id=provider_id, name=self.name, province=self.province,
            city=self.city, latitude=self.latitude, longitude=self.longitude, pue=self.pue,
            electricity_fen_per_kwh=self.electricity_fen_per_kwh, green_share=self.green_share,
            kind=self.kind, hub=self.hub,
        )


@dataclass(frozen=True)
class DemoPool:
    site_index: int  # index into DemoFederation.sites
    name: str
    accelerator: str  # catalog key
    device_count: int  # accelerators, or CPU sockets for CPU pools
    engine: Engine
    price_fen_per_device_hour: int
    state: PoolState = PoolState.ACTIVE
    free_devices: int | None = None
    interconnect: str | None = None
    labels: dict[str, str] = field(default_factory=lambda: dict(ILLUSTRATIVE_LABEL))
    illustrative: bool = True

    def to_pool(self, id: str, site_id: str) -> Pool:
        """The domain Pool (validated by its constructor) once the registry has ids."""
        return Pool(
            id=id, site_id=site_id, name=self.name, accelerator=self.accelerator,
            device_count=self.device_count, engine=self.engine,
            price_fen_per_device_hour=self.price_fen_per_device_hour, state=self.state,
            free_devices=self.free_devices, interconnect=self.interconnect,
            labels=dict(self.labels),
        )


@dataclass(frozen=True)
class DemoFederation:
    seed: int
    providers: tuple[DemoProvider, ...]
    sites: tuple[DemoSite, ...]
    pools: tuple[DemoPool, ...]
    illustrative: bool = True
    notice: str = DEMO_NOTICE


# --- who owns what where (fixed; the seed only varies the figures) ---------------------------

_PROVIDERS: tuple[tuple[str, ProviderKind], ...] = (
    ("Demo Telecom A", ProviderKind.TELECOM),
    ("Demo Telecom B", ProviderKind.TELECOM),
    ("Demo Telecom C", ProviderKind.TELECOM),
    ("Demo Cloud A", ProviderKind.CLOUD),
    ("Demo Cloud B", ProviderKind.CLOUD),
    ("Demo Cloud C", ProviderKind.CLOUD),
    ("Demo Guizhou Computing Centre", ProviderKind.COMPUTING_CENTRE),
    ("Demo Ningxia Computing Centre", ProviderKind.COMPUTING_CENTRE),
    ("Demo Chengdu Intelligent Computing Centre", ProviderKind.COMPUTING_CENTRE),
    ("Demo Wuhan AI Computing Centre", ProviderKind.COMPUTING_CENTRE),
    ("Demo Inner Mongolia Green Compute", ProviderKind.ENTERPRISE),
    ("Demo GPU Rental Co.", ProviderKind.ENTERPRISE),
    ("Demo University A", ProviderKind.UNIVERSITY),
    ("Demo University B", ProviderKind.UNIVERSITY),
    ("Demo University C", ProviderKind.UNIVERSITY),
)

TRAIN, SERVE = "train", "serve"
_H, _E = SiteKind.HUB, SiteKind.EDGE
# (provider name, city, site kind, workload the site is built for)
_SITES: tuple[tuple[str, str, SiteKind, str], ...] = (
    ("Demo Telecom A", "Zhangjiakou", _H, TRAIN), ("Demo Cloud A", "Zhangjiakou", _H, TRAIN),
    ("Demo Cloud B", "Zhangjiakou", _H, TRAIN), ("Demo Telecom B", "Langfang", _H, TRAIN),
    ("Demo Telecom C", "Beijing", _E, SERVE), ("Demo University A", "Beijing", _E, SERVE),
    ("Demo Cloud C", "Beijing", _E, SERVE), ("Demo Telecom A", "Tianjin", _E, SERVE),
    ("Demo Telecom B", "Wuhu", _H, TRAIN), ("Demo Cloud A", "Wuhu", _H, TRAIN),
    ("Demo Cloud B", "Suzhou", _H, TRAIN), ("Demo Telecom A", "Shanghai", _E, SERVE),
    ("Demo University B", "Shanghai", _E, SERVE), ("Demo Cloud C", "Hangzhou", _E, SERVE),
    ("Demo Telecom C", "Nanjing", _E, SERVE), ("Demo GPU Rental Co.", "Hefei", _E, SERVE),
    ("Demo Telecom C", "Shaoguan", _H, TRAIN), ("Demo Cloud A", "Shaoguan", _H, TRAIN),
    ("Demo Cloud B", "Qingyuan", _H, TRAIN), ("Demo Telecom B", "Shenzhen", _E, SERVE),
    ("Demo GPU Rental Co.", "Shenzhen", _E, SERVE), ("Demo Telecom A", "Guangzhou", _E, SERVE),
    ("Demo Cloud C", "Hong Kong", _E, SERVE),
    ("Demo Chengdu Intelligent Computing Centre", "Chengdu", _H, TRAIN),
    ("Demo Telecom A", "Chengdu", _H, TRAIN), ("Demo Telecom B", "Chongqing", _H, TRAIN),
    ("Demo Cloud C", "Chongqing", _H, TRAIN),
    ("Demo Telecom A", "Hohhot", _H, TRAIN), ("Demo Cloud A", "Hohhot", _H, TRAIN),
    ("Demo Cloud B", "Ulanqab", _H, TRAIN),
    ("Demo Inner Mongolia Green Compute", "Ulanqab", _H, TRAIN),
    ("Demo Telecom C", "Gui'an", _H, TRAIN), ("Demo Cloud A", "Gui'an", _H, TRAIN),
    ("Demo Guizhou Computing Centre", "Gui'an", _H, TRAIN), ("Demo Cloud B", "Guiyang", _E, SERVE),
    ("Demo Telecom B", "Qingyang", _H, TRAIN), ("Demo Telecom A", "Qingyang", _H, TRAIN),
    ("Demo Telecom C", "Lanzhou", _E, SERVE),
    ("Demo Cloud C", "Zhongwei", _H, TRAIN),
    ("Demo Ningxia Computing Centre", "Zhongwei", _H, TRAIN),
    ("Demo Telecom A", "Zhongwei", _H, TRAIN), ("Demo Telecom B", "Yinchuan", _E, SERVE),
    # City edges outside the hub regions; Wuhan's city centre trains models for local firms.
    ("Demo Wuhan AI Computing Centre", "Wuhan", _E, TRAIN),
    ("Demo University C", "Xi'an", _E, SERVE),
    ("Demo Telecom C", "Zhengzhou", _E, SERVE), ("Demo Telecom B", "Changsha", _E, SERVE),
    ("Demo Cloud C", "Qingdao", _E, SERVE), ("Demo Telecom A", "Xiamen", _E, SERVE),
    ("Demo Telecom B", "Kunming", _E, SERVE), ("Demo Telecom A", "Shenyang", _E, SERVE),
    ("Demo Telecom C", "Urumqi", _E, SERVE),
)

# --- plausible ranges (see docs/demo.md for where they come from) ----------------------------

COLD, MILD, WARM = "cold", "mild", "warm"
# PUE in hundredths: (hub low, hub high, edge low, edge high); free cooling lowers it up north.
_PUE_BY_CLIMATE = {COLD: (110, 118, 125, 135), MILD: (115, 120, 128, 140),
                   WARM: (118, 125, 135, 150)}
# province: (climate, tariff fen/kWh low, high, green share % low, high)
_PROVINCE_PROFILE: dict[str, tuple[str, int, int, int, int]] = {
    "CN-BJ": (MILD, 70, 80, 15, 25), "CN-TJ": (MILD, 62, 70, 10, 20),
    "CN-HE": (COLD, 40, 55, 45, 65),  # Zhangjiakou's renewable-power zone
    "CN-SX": (COLD, 45, 52, 15, 25), "CN-NM": (COLD, 28, 36, 35, 50),
    "CN-LN": (COLD, 55, 62, 15, 25), "CN-JL": (COLD, 55, 62, 25, 35),
    "CN-HL": (COLD, 55, 62, 20, 30), "CN-SH": (WARM, 70, 80, 10, 20),
    "CN-JS": (WARM, 62, 70, 12, 22), "CN-ZJ": (WARM, 65, 75, 15, 25),
    "CN-AH": (WARM, 60, 66, 12, 22), "CN-FJ": (WARM, 58, 65, 25, 35),
    "CN-JX": (WARM, 60, 66, 20, 30), "CN-SD": (MILD, 60, 68, 12, 20),
    "CN-HA": (MILD, 55, 62, 15, 25), "CN-HB": (WARM, 60, 68, 35, 45),
    "CN-HN": (WARM, 62, 70, 30, 40), "CN-GD": (WARM, 68, 80, 25, 35),
    "CN-GX": (WARM, 55, 62, 40, 50), "CN-HI": (WARM, 62, 70, 20, 30),
    "CN-CQ": (MILD, 48, 56, 30, 45), "CN-SC": (MILD, 42, 52, 70, 85),
    "CN-GZ": (MILD, 38, 46, 35, 45), "CN-YN": (MILD, 36, 44, 75, 88),
    "CN-XZ": (COLD, 45, 55, 80, 90), "CN-SN": (MILD, 50, 58, 20, 30),
    "CN-GS": (COLD, 32, 40, 45, 60), "CN-QH": (COLD, 30, 38, 70, 85),
    "CN-NX": (COLD, 30, 38, 35, 50), "CN-XJ": (COLD, 28, 36, 25, 40),
    "CN-HK": (WARM, 100, 120, 5, 10), "CN-MO": (WARM, 100, 120, 5, 10),
}

# Price band per catalog key, fen per device-hour (CPU: per socket-hour).
PRICE_BAND_FEN: dict[str, tuple[int, int]] = {
    "nvidia-h800-sxm": (1500, 2200), "nvidia-a800-sxm4-80gb": (800, 1500),
    "nvidia-a100-sxm4-80gb": (900, 1500), "nvidia-h20": (500, 900),
    "huawei-ascend-910b": (600, 1000), "cambricon-mlu590": (450, 800),
    "hygon-dcu-k100": (300, 600), "kunlunxin-p800": (450, 800), "nvidia-l40s": (400, 700),
    "nvidia-l20": (250, 450), "nvidia-rtx-4090": (150, 300), "nvidia-a10": (150, 300),
    "nvidia-t4": (100, 200), "huawei-ascend-310p": (80, 160),
    "nvidia-v100-pcie-16gb": (250, 450), "cambricon-mlu370-x8": (200, 400),
    "huawei-kunpeng-920-7260": (20, 45), "intel-xeon-platinum-8480plus": (30, 60),
    "amd-epyc-9654": (30, 60),
}
# Where in its band a pool prices, in percent, by (western hub region?, site kind):
# western power is cheaper; eastern edges charge for being near users.
_BAND_POSITION = {(True, _H): (0, 50), (True, _E): (20, 70), (False, _H): (30, 80),
                  (False, _E): (50, 100)}

DOMESTIC = frozenset({"huawei-ascend-910b", "cambricon-mlu590", "hygon-dcu-k100",
                      "kunlunxin-p800", "huawei-ascend-310p", "cambricon-mlu370-x8",
                      "huawei-kunpeng-920-7260"})
# Draw weights: how often a site of each kind picks each device.
_WEST_TRAINING = {
    "huawei-ascend-910b": 4, "nvidia-h800-sxm": 2, "nvidia-a800-sxm4-80gb": 2, "nvidia-h20": 2,
    "cambricon-mlu590": 2, "nvidia-a100-sxm4-80gb": 1, "hygon-dcu-k100": 2, "kunlunxin-p800": 1,
}
_EAST_TRAINING = {
    "nvidia-h800-sxm": 2, "nvidia-a800-sxm4-80gb": 2, "huawei-ascend-910b": 3, "nvidia-h20": 2,
    "nvidia-a100-sxm4-80gb": 1, "cambricon-mlu590": 1,
}
_INFERENCE = {
    "nvidia-l20": 3, "nvidia-l40s": 2, "nvidia-t4": 2, "huawei-ascend-310p": 3,
    "nvidia-rtx-4090": 2, "nvidia-a10": 1, "cambricon-mlu370-x8": 1, "nvidia-v100-pcie-16gb": 1,
}
_CPU = {"huawei-kunpeng-920-7260": 2, "intel-xeon-platinum-8480plus": 2, "amd-epyc-9654": 1}
NVIDIA_TRAINING = frozenset(
    {"nvidia-h800-sxm", "nvidia-a800-sxm4-80gb", "nvidia-a100-sxm4-80gb", "nvidia-h20"})

_COUNTS = {TRAIN: (128, 256, 512, 1024, 2048), SERVE: (8, 16, 32, 64, 128, 256),
           "cpu": (64, 128, 256, 512)}
_UNIVERSITY_COUNTS = {TRAIN: (32, 64, 128), SERVE: (8, 16, 32), "cpu": (16, 32, 64)}
_ENGINE = {  # (provider kind, pool class) -> engine; telecoms split training between two
    ProviderKind.UNIVERSITY: {TRAIN: Engine.SLURM, SERVE: Engine.SLURM, "cpu": Engine.LOCAL},
    ProviderKind.CLOUD: {TRAIN: Engine.KUBERNETES, SERVE: Engine.RAY, "cpu": Engine.KUBERNETES},
    ProviderKind.TELECOM: {TRAIN: Engine.SLURM, SERVE: Engine.KUBERNETES, "cpu": Engine.KUBERNETES},
    ProviderKind.COMPUTING_CENTRE: {TRAIN: Engine.SLURM, SERVE: Engine.KUBERNETES,
                                    "cpu": Engine.SLURM},
    ProviderKind.ENTERPRISE: {TRAIN: Engine.RAY, SERVE: Engine.RAY, "cpu": Engine.KUBERNETES},
}
MAINTENANCE_PERCENT = 4


def demo_federation(seed: int = 7) -> DemoFederation:
    """The illustrative federation for `seed`; the same seed always gives the same one."""
    rng = random.Random(seed)
    providers = tuple(DemoProvider(name=n, kind=k) for n, k in _PROVIDERS)
    index_of = {p.name: i for i, p in enumerate(providers)}
    sites: list[DemoSite] = []
    pools: list[DemoPool] = []
    for provider_name, city_name, kind, workload in _SITES:
        provider_index = index_of[provider_name]
        site = _make_site(rng, provider_index, provider_name, load_cities().city(city_name), kind)
        sites.append(site)
        provider_kind = providers[provider_index].kind
        pools.extend(_make_pools(rng, len(sites) - 1, site, provider_kind, workload))
    return DemoFederation(seed=seed, providers=providers, sites=tuple(sites), pools=tuple(pools))


def _make_site(rng: random.Random, provider_index: int, provider_name: str, city: geo.City,
               kind: SiteKind) -> DemoSite:
    climate, tariff_low, tariff_high, green_low, green_high = _PROVINCE_PROFILE[city.province]
    hub_low, hub_high, edge_low, edge_high = _PUE_BY_CLIMATE[climate]
    pue_low, pue_high = (hub_low, hub_high) if kind is SiteKind.HUB else (edge_low, edge_high)
    pue = Decimal(rng.randint(pue_low, pue_high)).scaleb(-2)
    if kind is SiteKind.HUB:
        cap = MAX_HUB_PUE_WEST if city.hub in WESTERN_HUBS else MAX_HUB_PUE_EAST
        pue = min(pue, cap)
    label = "Hub DC" if kind is SiteKind.HUB else "Edge"
    return DemoSite(
        provider_index=provider_index, name=f"{provider_name} {city.name} {label}",
        province=city.province, city=city.name, latitude=city.latitude,
        longitude=city.longitude, pue=pue,
        electricity_fen_per_kwh=rng.randint(tariff_low, tariff_high),
        green_share=Decimal(rng.randint(green_low, green_high)).scaleb(-2), kind=kind, hub=city.hub,
    )


def _make_pools(rng: random.Random, site_index: int, site: DemoSite, provider_kind: ProviderKind,
                workload: str) -> list[DemoPool]:
    western = site.hub in WESTERN_HUBS
    if workload == TRAIN:
        menu = _WEST_TRAINING if western else _EAST_TRAINING
        accelerators = _draw(rng, _favour_domestic(menu, provider_kind), rng.randint(3, 4))
        classes = [TRAIN] * len(accelerators)
        if not western:  # eastern training sites also serve their region's inference
            accelerators[-1] = _draw(rng, _INFERENCE, 1)[0]
            classes[-1] = SERVE
    else:
        accelerators = _draw(rng, _INFERENCE, rng.randint(1, 2))
        classes = [SERVE] * len(accelerators)
    accelerators.append(_draw(rng, _CPU, 1)[0])
    classes.append("cpu")
    return [
        _make_pool(rng, site_index, site, provider_kind, key, pool_class, number)
        for number, (key, pool_class) in enumerate(zip(accelerators, classes), start=1)
    ]


def _make_pool(rng: random.Random, site_index: int, site: DemoSite, provider_kind: ProviderKind,
               key: str, pool_class: str, number: int) -> DemoPool:
    counts = _UNIVERSITY_COUNTS if provider_kind is ProviderKind.UNIVERSITY else _COUNTS
    device_count = rng.choice(counts[pool_class])
    engine = _ENGINE[provider_kind][pool_class]
    if provider_kind is ProviderKind.TELECOM and pool_class == TRAIN and rng.random() < 0.4:
        engine = Engine.KUBERNETES
    busy_percent = rng.randint(55, 95)
    state = PoolState.ACTIVE
    if rng.randint(1, 100) <= MAINTENANCE_PERCENT:
        state, busy_percent = PoolState.MAINTENANCE, 100
    free = device_count * (100 - busy_percent) // 100
    model = key.split("-", 1)[1]
    return DemoPool(
        site_index=site_index, name=f"{site.name} #{number} {model} {pool_class}",
        accelerator=key, device_count=device_count, engine=engine,
        price_fen_per_device_hour=_price(rng, key, site), state=state, free_devices=free,
        interconnect=_interconnect(key, pool_class),
        labels={**ILLUSTRATIVE_LABEL, "class": pool_class,
                "device_unit": "socket" if pool_class == "cpu" else "accelerator"},
    )


def _price(rng: random.Random, key: str, site: DemoSite) -> int:
    low, high = PRICE_BAND_FEN[key]
    position_low, position_high = _BAND_POSITION[(site.hub in WESTERN_HUBS, site.kind)]
    # Integer arithmetic throughout: money is never a float.
    position = rng.randint(position_low, position_high)
    price = low + (high - low) * position // 100
    return price - price % 5  # bands start on multiples of 5, so this stays inside the band


def _interconnect(key: str, pool_class: str) -> str:
    if pool_class == "cpu":
        return "ethernet-25g"
    if pool_class == SERVE:
        return "pcie"
    return "nvlink+infiniband-400g" if key in NVIDIA_TRAINING else "roce-200g"


def _favour_domestic(menu: dict[str, int], provider_kind: ProviderKind) -> dict[str, int]:
    # Publicly funded computing centres mostly buy domestic accelerators.
    if provider_kind is not ProviderKind.COMPUTING_CENTRE:
        return menu
    return {key: weight * 3 if key in DOMESTIC else weight for key, weight in menu.items()}


def _draw(rng: random.Random, weights: dict[str, int], count: int) -> list[str]:
    """`count` distinct keys, drawn by weight without replacement."""
    remaining = dict(weights)
    assert 0 < count <= len(remaining), (count, len(remaining))
    chosen = []
    for _ in range(count):
        key = rng.choices(list(remaining), weights=list(remaining.values()))[0]
        chosen.append(key)
        del remaining[key]
    return chosen
