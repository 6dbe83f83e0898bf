"""Random but plausible pools and jobs for property tests and benchmarks (seeded, no I/O)."""

from __future__ import annotations

import numpy as np

from suanli.domain.placement.model import (
    AcceleratorConstraint,
    JobRequest,
    LatencyClass,
    PoolSnapshot,
)
from suanli.domain.resources import WESTERN_HUBS, Hub

# (key, vendor, architecture, memory GB, stacks, units per device-hour, kW, fen/device-hour)
# Figures are round numbers in the catalog's ranges; synthetic pools need shape, not truth.
DEVICE_KINDS: tuple[tuple[str, str, str, float, frozenset[str], float, float, int], ...] = (
    ("nvidia-h800", "nvidia", "hopper", 80, frozenset({"cuda"}), 4.5, 0.70, 1900),
    ("nvidia-a100-80gb", "nvidia", "ampere", 80, frozenset({"cuda"}), 2.7, 0.40, 1100),
    ("nvidia-v100", "nvidia", "volta", 32, frozenset({"cuda"}), 1.0, 0.30, 350),
    ("nvidia-t4", "nvidia", "turing", 16, frozenset({"cuda"}), 0.4, 0.07, 150),
    ("nvidia-a10", "nvidia", "ampere", 24, frozenset({"cuda"}), 0.9, 0.15, 220),
    ("huawei-ascend-910b", "huawei", "davinci", 64, frozenset({"cann"}), 2.4, 0.40, 800),
    ("cambricon-mlu590", "cambricon", "mluarch05", 80, frozenset({"neuware"}), 1.8, 0.35, 600),
)
# (province, city, hub) — sites in the eight hubs and a few eastern edges.
PLACES: tuple[tuple[str, str, Hub | None], ...] = (
    ("CN-HE", "Zhangjiakou", Hub.JINGJINJI), ("CN-BJ", "Beijing", Hub.JINGJINJI),
    ("CN-AH", "Wuhu", Hub.YANGTZE), ("CN-SH", "Shanghai", Hub.YANGTZE),
    ("CN-GD", "Shaoguan", Hub.GBA), ("CN-GD", "Shenzhen", Hub.GBA),
    ("CN-SC", "Chengdu", Hub.CHENGYU), ("CN-CQ", "Chongqing", Hub.CHENGYU),
    ("CN-NM", "Ulanqab", Hub.INNER_MONGOLIA), ("CN-GZ", "Gui'an", Hub.GUIZHOU),
    ("CN-GS", "Qingyang", Hub.GANSU), ("CN-NX", "Zhongwei", Hub.NINGXIA),
    ("CN-HB", "Wuhan", None), ("CN-SN", "Xi'an", None), ("CN-ZJ", "Hangzhou", None),
)
USER_CITIES = ("Beijing", "Shanghai", "Shenzhen", "Chengdu", "Wuhan", "Hangzhou")
PROVIDERS = tuple(f"provider-{i}" for i in range(12))
MID_RANGE_UNITS = 2.0
MID_RANGE_FEN_PER_UNIT = 300


def random_pools(n: int, rng: np.random.Generator, *, period_h: int = 24,
                 busy: float = 0.5, spot_share: float = 0.5) -> list[PoolSnapshot]:
    """`n` pools over the eight hubs, with daily price and carbon profiles."""
    hours = np.arange(period_h) % 24
    valley = ((hours < 8) | (hours >= 23)).astype(float)
    peak = (((hours >= 10) & (hours < 12)) | ((hours >= 14) & (hours < 19))).astype(float)
    tou = 1.0 - 0.3 * valley + 0.2 * peak
    pools = []
    for i in range(n):
        kind = DEVICE_KINDS[int(rng.integers(len(DEVICE_KINDS)))]
        key, vendor, arch, mem, stacks, units, kw, price = kind
        site = int(rng.integers(len(PLACES)))
        province, city, hub = PLACES[site]
        count = int(rng.choice([4, 8, 16, 32, 64]))
        free = int(rng.binomial(count, 1.0 - busy))
        spot_used = int(rng.integers(0, count - free + 1)) if rng.random() < spot_share else 0
        base = price * float(rng.uniform(0.8, 1.2)) * (0.85 if hub in WESTERN_HUBS else 1.0)
        series = tuple(round(base * m) for m in tou)
        spot = tuple(int(v * 0.4) for v in series) if rng.random() < spot_share else None
        grid = 400.0 + 300.0 * rng.random()
        carbon = tuple(float(grid * (0.8 + 0.4 * rng.random())) for _ in range(period_h))
        rtt = {c: float(rng.uniform(3.0, 60.0)) for c in USER_CITIES}
        if city in rtt:
            rtt[city] = float(rng.uniform(1.0, 5.0))
        pools.append(PoolSnapshot(
            id=f"pool-{i}", provider_id=PROVIDERS[i % len(PROVIDERS)], site_id=f"site-{site}",
            province=province, city=city, accelerator=key, vendor=vendor, architecture=arch,
            memory_gb=mem, software_stacks=stacks, device_count=count, free_devices=free,
            units_per_device_hour=units * float(rng.uniform(0.9, 1.1)), device_power_kw=kw,
            pue=float(rng.uniform(1.1, 1.5)), price_fen_per_device_hour=series,
            electricity_fen_per_kwh=tuple(int(60 * m) for m in tou), carbon_g_per_kwh=carbon,
            spot_price_fen_per_device_hour=spot, spot_devices_in_use=spot_used, hub=hub,
            western=hub in WESTERN_HUBS, interconnect=f"site-{site}/{key}",
            rtt_ms=rtt, queue_wait_s=float(rng.choice([0.0, 0.0, 60.0, 600.0])),
        ))
    return pools


def random_job(i: int, rng: np.random.Generator, now_s: int = 0) -> JobRequest:
    """A job with a random mix of the constraints a real one carries.

    Deadlines and budgets scale with the job's size, as a user sets them: a deadline between
    half and three times its run time on a mid-range device (2 SCU), a budget between half
    and twice its work at a mid-range price (300 fen per SCU), so that some pools keep them
    and others do not.
    """
    cls = (LatencyClass.BATCH, LatencyClass.BATCH, LatencyClass.INTERACTIVE,
           LatencyClass.REALTIME)[int(rng.integers(4))]
    vendors = frozenset() if rng.random() < 0.6 else frozenset({"nvidia"})
    constraint = AcceleratorConstraint(
        vendors=vendors, min_memory_gb=float(rng.choice([0, 0, 24, 64])))
    residency = frozenset() if rng.random() < 0.8 else frozenset(
        rng.choice([p[0] for p in PLACES], size=3, replace=False).tolist())
    devices = int(rng.choice([1, 1, 1, 2, 4, 8]))
    work = float(rng.uniform(0.5, 200.0)) * devices
    run_s = work / devices / MID_RANGE_UNITS * 3600
    deadline = now_s + int(rng.uniform(0.5, 3.0) * run_s) + 3600 if rng.random() < 0.4 else None
    budget = int(rng.uniform(0.5, 2.0) * work * MID_RANGE_FEN_PER_UNIT) \
        if rng.random() < 0.2 else None
    province, _, _ = PLACES[int(rng.integers(len(PLACES)))]
    return JobRequest(
        id=f"job-{i}", tenant_id=f"tenant-{i % 7}", work_units=work, devices=devices,
        accelerator=constraint, latency_class=cls,
        user_city=USER_CITIES[int(rng.integers(len(USER_CITIES)))],
        data_province=province, data_gb=float(rng.choice([0.0, 10.0, 500.0])),
        residency_provinces=residency, deadline_s=deadline, budget_fen=budget,
        spot_allowed=bool(rng.random() < 0.3),
    )
