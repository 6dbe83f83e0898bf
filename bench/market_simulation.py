"""Market simulation: does the price index rise with scarcity and fall with idle capacity?

Usage: .venv/bin/python bench/market_simulation.py [--days 21] [--start-day 30]
       [--load 0.8] [--seed 7] [--output PNG (default: the temp dir)]

An illustrative model, run through the exchange's own domain code (call auctions, the index):

- Supply: the demo federation's pools (`suanli.demo`, illustrative) that have an SCU training
  rating; each hour every pool asks its whole capacity in SCU (devices x rating) at its list
  price per SCU-hour (its device-hour price / rating). One national `scu-training` product.
- Demand: the Philly trace (shared data, `traces/philly.csv`): in each hour, the SCU-hours of
  the jobs running then (GPUs x the P100's training rating x the share of the hour they run),
  per virtual cluster, scaled so that the average demand is `--load` x the supply (the trace
  and the demo federation are of unrelated sizes; the scale is printed). Each virtual cluster
  bids its hour's demand in four tranches of a quarter at 2.0, 1.4, 1.0 and 0.7 x the median
  ask price x its own willingness to pay (0.8-1.6, from a stable hash of its name).
- Each hour one uniform-price call auction (volume, imbalance, last price, lower price) clears
  it; the hourly index is the VWAP of its trades, the daily index the VWAP of the day's.

Prints the scale, the hours, the index by scarcity (demand / supply) band and the Spearman
correlation of the hourly index with scarcity; writes a two-panel plot to `--output`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from suanli.catalog import units_per_device_hour  # noqa: E402
from suanli.demo import demo_federation  # noqa: E402
from suanli.domain.errors import SuanliError  # noqa: E402
from suanli.domain.market.book import BUY, SELL, OrderBook  # noqa: E402
from suanli.domain.market.events import trades_of  # noqa: E402
from suanli.domain.market.index import Period, Print, bars  # noqa: E402
from suanli.domain.market.products import MatchingRule  # noqa: E402
from suanli.shared_data import shared_data_dir  # noqa: E402
from suanli.sim.traces import load_philly, unit_hash  # noqa: E402

H = 3600
TRANCHES = ((0.25, 2.0), (0.25, 1.4), (0.25, 1.0), (0.25, 0.7))


def supply(seed: int) -> list[tuple[str, int, int]]:
    """(pool, SCU per hour, ask price in fen per SCU-hour) of every rated demo pool."""
    asks = []
    for index, pool in enumerate(demo_federation(seed).pools):
        try:
            rating = units_per_device_hour(pool.accelerator, "training")
        except SuanliError:
            continue
        if rating <= 0:
            continue
        units = int(pool.device_count * rating)
        if units > 0:
            asks.append((f"pool{index}", units,
                         max(1, math.ceil(Decimal(pool.price_fen_per_device_hour) / rating))))
    return asks


def demand(days: int, start_day: int) -> dict[int, dict[str, float]]:
    """SCU-hours wanted per hour (from the window's start) per virtual cluster."""
    trace = load_philly(shared_data_dir())
    rating = float(units_per_device_hour("nvidia-p100", "training"))
    first, last = start_day * 24 * H, (start_day + days) * 24 * H
    wanted: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for job in trace.jobs:
        start, end = job.submit_s, job.submit_s + job.duration_s
        if end <= first or start >= last:
            continue
        hour = max(start, first) // H
        while hour * H < min(end, last):
            overlap = min(end, (hour + 1) * H) - max(start, hour * H)
            wanted[hour - first // H][job.tenant] += job.devices * rating * overlap / H
            hour += 1
    return wanted


def simulate(args: argparse.Namespace) -> None:
    asks = supply(args.seed)
    total_supply = sum(units for _, units, _ in asks)
    median_ask = statistics.median(price for _, _, price in asks)
    wanted = demand(args.days, args.start_day)
    hours = args.days * 24
    mean_demand = sum(sum(per.values()) for per in wanted.values()) / hours
    scale = args.load * total_supply / mean_demand
    print(f"supply: {len(asks)} rated demo pools, {total_supply:,} SCU per hour, median ask "
          f"{median_ask} fen/SCU-h; demand: Philly days {args.start_day}-"
          f"{args.start_day + args.days}, x{scale:,.1f} so that mean demand = "
          f"{args.load:.0%} of supply")
    scarcity, index, prints, last_price = [], [], [], None
    for hour in range(hours):
        book = OrderBook("scu-training", MatchingRule.CALL_AUCTION, last_price=last_price)
        at_ms = hour * H * 1000 + 1
        for pool, units, price in asks:
            book.submit(f"{hour}:{pool}", SELL, price, min(units, 100_000), at_ms, owner=pool)
        asked = 0.0
        for tenant, units in sorted(wanted.get(hour, {}).items()):
            willing = 0.8 + 0.8 * unit_hash("willing:" + tenant)
            for n, (share, factor) in enumerate(TRANCHES):
                quantity = int(units * scale * share)
                if quantity <= 0:
                    continue
                for chunk in range(0, quantity, 100_000):
                    book.submit(f"{hour}:{tenant}:{n}:{chunk}", BUY,
                                max(1, int(median_ask * factor * willing)),
                                min(100_000, quantity - chunk), at_ms, owner=tenant)
                asked += quantity
        trades = trades_of(book.uncross(at_ms + 1))
        scarcity.append(asked / total_supply)
        if trades:
            last_price = trades[-1].price
            prints += [Print(hour * H, t.price, t.quantity) for t in trades]
            value = sum(t.price * t.quantity for t in trades)
            index.append(value / sum(t.quantity for t in trades))
        else:
            index.append(float("nan"))
    report(args, scarcity, index, prints)


def report(args: argparse.Namespace, scarcity: list[float], index: list[float],
           prints: list[Print]) -> None:
    traded = [(s, i) for s, i in zip(scarcity, index, strict=True) if not math.isnan(i)]
    rho, p_value = spearmanr([s for s, _ in traded], [i for _, i in traded])
    print(f"hours: {len(scarcity)}, with trades {len(traded)}; Spearman rho(index, scarcity) "
          f"= {rho:.3f} (p = {p_value:.1e})")
    for low, high in ((0, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, 1.5), (1.5, 99)):
        band = [i for s, i in traded if low <= s < high]
        if band:
            print(f"  scarcity {low:.2f}-{high:.2f}: {len(band):4d} h, mean hourly index "
                  f"{statistics.mean(band):8.1f} fen/SCU-h")
    daily = bars(prints, Period.DAY)
    print("daily index (fen/SCU-h): " + ", ".join(str(bar.vwap) for bar in daily))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    top.plot(range(len(index)), index, color="tab:red", linewidth=0.8, label="hourly index")
    top.set_xlabel("hour")
    top.set_ylabel("index, fen per SCU-hour", color="tab:red")
    twin = top.twinx()
    twin.plot(range(len(scarcity)), scarcity, color="tab:blue", linewidth=0.8, alpha=0.6)
    twin.set_ylabel("scarcity = demand / supply", color="tab:blue")
    top.set_title("scu-training call auctions: demo federation supply, Philly demand "
                  "(illustrative)")
    bottom.scatter([s for s, _ in traded], [i for _, i in traded], s=6, alpha=0.5)
    bottom.set_xlabel("scarcity = demand / supply")
    bottom.set_ylabel("hourly index, fen per SCU-hour")
    bottom.set_title(f"index vs scarcity, Spearman rho = {rho:.2f}")
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    print(f"plot: {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--start-day", type=int, default=30)
    parser.add_argument("--load", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path,
                        default=Path(tempfile.gettempdir()) / "market_simulation.png")
    simulate(parser.parse_args())


if __name__ == "__main__":
    main()
