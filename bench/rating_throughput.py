"""Benchmark: records/s for scalar (Decimal) vs batch (NumPy) rating, on one core.

    python bench/rating_throughput.py                          # 1M and 5M records
    python bench/rating_throughput.py --records 2000000 --scalar-sample 50000

Data: synthetic usage records under one realistic tariff — base 1,200 fen per compute-unit-hour
with two graduated tiers (from 1,000 and 10,000 unit-hours a month), a four-band time-of-use
table (the example provincial table in docs/pricing.md), 30 % spot discount, a reserved price
and a 100 fen minimum charge. Records: 1-64 devices x 1 min-36 h (log-uniform) at 1-8 units
per device-hour, starting anywhere in 2025, a month-to-date position anywhere in 0-20,000
unit-hours, 25 % spot, 20 % with a commitment. The scalar path rates a sample (it is slow) and
must agree with the batch path on it, to the fen.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from suanli.domain.rating import rate_batch, rate_usage
from suanli.domain.tariffs import Band, Basis, Tariff, Tier, TimeOfUse

D = Decimal
YEAR_2025_S = (1_735_660_800, 1_767_196_800)  # 2025-01-01 .. 2026-01-01, UTC+8


def bench_tariff() -> Tariff:
    hours = ([Band.VALLEY] * 8 + [Band.FLAT] * 2 + [Band.PEAK] * 2 + [Band.FLAT] * 5
             + [Band.PEAK] * 2 + [Band.CRITICAL_PEAK] * 2 + [Band.PEAK] * 1 + [Band.FLAT] * 2)
    tou = TimeOfUse(tuple(hours), {Band.VALLEY: D("0.45"), Band.FLAT: D(1),
                                   Band.PEAK: D("1.6"), Band.CRITICAL_PEAK: D("1.92")})
    return Tariff(id="bench", pool_id="bench-pool", basis=Basis.COMPUTE_UNIT_HOUR,
                  base_unit_price_fen=D("1200"),
                  tiers=(Tier(D(1000), D("1080.5")), Tier(D(10_000), D("960.25"))),
                  time_of_use=tou, spot_discount=D("0.30"), reserved_unit_price_fen=D("850"),
                  minimum_charge_fen_per_job=100)


def synthetic(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    devices = rng.integers(1, 65, n)
    duration_s = np.exp(rng.uniform(np.log(60), np.log(36 * 3600), n)).astype(np.int64)
    units_per_device_hour_milli = rng.integers(1_000, 8_001, n)
    # quantity_micro = devices x hours x units: integer arithmetic, truncated to the micro-unit
    quantity = devices * duration_s * units_per_device_hour_milli * 1_000 // 3600
    start = rng.integers(*YEAR_2025_S, n)
    committed = np.where(rng.random(n) < 0.2, rng.integers(0, 5_000, n) * 10**6, 0)
    return {"quantity_micro": quantity, "start_s": start, "end_s": start + duration_s,
            "month_to_date_micro": rng.integers(0, 20_000 * 10**6, n),
            "spot": rng.random(n) < 0.25, "committed_micro": committed}


def rate_scalar(tariff: Tariff, data: dict[str, np.ndarray], count: int) -> list[int]:
    amounts = []
    for i in range(count):
        usage = rate_usage(
            tariff, D(int(data["quantity_micro"][i])).scaleb(-6),
            datetime.fromtimestamp(int(data["start_s"][i]), UTC),
            datetime.fromtimestamp(int(data["end_s"][i]), UTC),
            D(int(data["month_to_date_micro"][i])).scaleb(-6), bool(data["spot"][i]),
            committed_quantity=D(int(data["committed_micro"][i])).scaleb(-6))
        amounts.append(usage.amount_fen)
    return amounts


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--scalar-sample", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N batch runs")
    parser.add_argument("--seed", type=int, default=20250301)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print(f"machine: {cpu_model()} ({platform.machine()}, {platform.system()}), "
          f"os.cpu_count()={os.cpu_count()}, pinned to 1 core; Python "
          f"{platform.python_version()}, NumPy {np.__version__}")
    tariff = bench_tariff()
    sample = synthetic(args.scalar_sample, args.seed)
    began = time.perf_counter()
    scalar_amounts = rate_scalar(tariff, sample, args.scalar_sample)
    scalar_rate = args.scalar_sample / (time.perf_counter() - began)
    batch_sample = rate_batch(tariff, **{k: v for k, v in sample.items()})
    assert batch_sample.tolist() == scalar_amounts, "batch and scalar disagree"
    print(f"scalar: {args.scalar_sample:>9,} records  {scalar_rate:>12,.0f} records/s "
          f"(batch agrees on every record)")
    for n in args.records:
        data = synthetic(n, args.seed + n)
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            amounts = rate_batch(tariff, **data)
            best = min(best, time.perf_counter() - began)
        rate = n / best
        print(f"batch:  {n:>9,} records  {rate:>12,.0f} records/s  "
              f"({rate / scalar_rate:,.0f}x scalar; {int(amounts.sum()) / 100:,.2f} CNY rated)")


if __name__ == "__main__":
    main()
