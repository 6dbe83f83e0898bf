"""Fits suanli.domain.geo's RTT model to the WonderNetwork pings and prints its constants.

Usage:  python tools/fit_latency.py           # print the fit and the Chinese pairs
        python tools/fit_latency.py --check   # exit 1 if geo.py's constants drifted from the fit

Data: WonderProxy "A day in the life of the internet" (2020-07-19), via sm86/geo-latency-data,
in shared/data/network/. Selection, and why:
  - a source whose ping to itself averages over MAX_SELF_PING_MS is broken (Hangzhou,
    Zhangjiakou and Shenzhen measure 265-384 ms to themselves), so its rows are dropped;
  - a pair's RTT is the better of its two directions: a one-sided anomaly inflates only one;
  - only pairs in the same country under MAX_DISTANCE_KM: suanli routes inside China, and
    cross-border paths (Hong Kong to the mainland: 76-196 ms over 30-2,000 km) obey other rules.
The line rtt = a + s * km is fitted by ordinary least squares; ROUTE_FACTOR = s / fibre.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from suanli.domain import geo
from suanli.shared_data import shared_data_dir

SERVERS_FILE = Path("network/wondernetwork-servers-2020-07-19.csv")
PINGS_FILE = Path("network/wondernetwork-pings-2020-07-19.csv")
MAX_SELF_PING_MS = 5.0
MAX_DISTANCE_KM = 5000.0
CHINESE_COUNTRIES = frozenset({"China", "Hong Kong"})


@dataclass(frozen=True)
class Server:
    id: int
    name: str
    country: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class PairRtt:
    a: Server
    b: Server
    distance_km: float
    avg_rtt_ms: float


@dataclass(frozen=True)
class RttFit:
    base_ms: float  # intercept a
    slope_ms_per_km: float
    route_factor: float  # slope / fibre round-trip ms per km
    r2: float
    rmse_ms: float
    pairs: int

    def predict_ms(self, distance_km: float) -> float:
        return self.base_ms + self.slope_ms_per_km * distance_km


def load_servers(data_dir: Path) -> dict[int, Server]:
    servers: dict[int, Server] = {}
    with open(data_dir / SERVERS_FILE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            servers[int(row["id"])] = Server(
                id=int(row["id"]), name=row["title"], country=row["country"],
                latitude=float(row["latitude"]), longitude=float(row["longitude"]),
            )
    return servers


def load_pair_rtts(data_dir: Path) -> list[PairRtt]:
    """One RTT per unordered pair of servers, from healthy sources only."""
    servers = load_servers(data_dir)
    rows: list[tuple[int, int, float]] = []
    self_ping: dict[int, float] = {}
    with open(data_dir / PINGS_FILE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            source, destination = int(row["source"]), int(row["destination"])
            avg = float(row["avg"])
            if source == destination:
                self_ping[source] = avg
            else:
                rows.append((source, destination, avg))
    best: dict[tuple[int, int], float] = {}
    for source, destination, avg in rows:
        # Pings name a few ids absent from the server list: no coordinates, no use.
        if source not in servers or destination not in servers:
            continue
        if self_ping.get(source, math.inf) > MAX_SELF_PING_MS:
            continue
        key = (min(source, destination), max(source, destination))
        best[key] = min(best.get(key, math.inf), avg)
    pairs = []
    for (i, j), avg in sorted(best.items()):
        a, b = servers[i], servers[j]
        km = geo.great_circle_km(a.latitude, a.longitude, b.latitude, b.longitude)
        pairs.append(PairRtt(a=a, b=b, distance_km=km, avg_rtt_ms=avg))
    return pairs


def select_for_fit(pairs: list[PairRtt]) -> list[PairRtt]:
    return [p for p in pairs if p.a.country == p.b.country and p.distance_km < MAX_DISTANCE_KM]


def fit_pairs(pairs: list[PairRtt]) -> RttFit:
    """Ordinary least squares of avg RTT on great-circle distance."""
    n = len(pairs)
    if n < 3:
        raise ValueError(f"need at least 3 pairs to fit, got {n}")
    xs = [p.distance_km for p in pairs]
    ys = [p.avg_rtt_ms for p in pairs]
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    sse = math.fsum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    sst = math.fsum((y - mean_y) ** 2 for y in ys)
    return RttFit(
        base_ms=intercept, slope_ms_per_km=slope,
        route_factor=slope / geo.FIBRE_RTT_MS_PER_KM,
        r2=1 - sse / sst, rmse_ms=math.sqrt(sse / n), pairs=n,
    )


def fit_rtt(data_dir: Path) -> RttFit:
    return fit_pairs(select_for_fit(load_pair_rtts(data_dir)))


def chinese_pairs(pairs: list[PairRtt]) -> list[PairRtt]:
    return [p for p in pairs if {p.a.country, p.b.country} <= CHINESE_COUNTRIES]


def constants_drift(fit: RttFit) -> list[str]:
    """Where geo.py's committed constants disagree with `fit` beyond their printed rounding."""
    checks = (
        ("RTT_BASE_MS", geo.RTT_BASE_MS, fit.base_ms, 0.0015),
        ("ROUTE_FACTOR", geo.ROUTE_FACTOR, fit.route_factor, 0.0015),
        ("RTT_FIT_R2", geo.RTT_FIT_R2, fit.r2, 0.0015),
        ("RTT_FIT_RMSE_MS", geo.RTT_FIT_RMSE_MS, fit.rmse_ms, 0.06),
        ("RTT_FIT_PAIRS", geo.RTT_FIT_PAIRS, fit.pairs, 0),
    )
    return [
        f"{name} = {committed} but the fit gives {fitted:.4f}"
        for name, committed, fitted, tolerance in checks
        if abs(committed - fitted) > tolerance
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="shared/data directory")
    parser.add_argument("--check", action="store_true", help="fail if geo.py's constants drifted")
    args = parser.parse_args(argv)
    data_dir = args.data or shared_data_dir()
    pairs = load_pair_rtts(data_dir)
    fit = fit_pairs(select_for_fit(pairs))
    print(f"pairs fitted     {fit.pairs}")
    print(f"RTT_BASE_MS      {fit.base_ms:.3f}")
    print(f"slope ms/km      {fit.slope_ms_per_km:.6f}")
    print(f"ROUTE_FACTOR     {fit.route_factor:.3f}")
    print(f"RTT_FIT_R2       {fit.r2:.3f}")
    print(f"RTT_FIT_RMSE_MS  {fit.rmse_ms:.1f}")
    print("\nChinese pairs (healthy sources): measured vs model, ms")
    for p in chinese_pairs(pairs):
        model = fit.predict_ms(p.distance_km)
        print(f"  {p.a.name:>12} - {p.b.name:<12} {p.distance_km:6.0f} km "
              f"{p.avg_rtt_ms:7.1f} {model:7.1f} {p.avg_rtt_ms - model:+7.1f}")
    if args.check:
        drift = constants_drift(fit)
        for line in drift:
            print(f"DRIFT: {line}", file=sys.stderr)
        return 1 if drift else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
