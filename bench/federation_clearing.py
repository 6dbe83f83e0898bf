"""Benchmark: clearing 1,000,000 roaming records among 11 platforms (national + 10 regional).

    python bench/federation_clearing.py                    # 1,000,000 records
    python bench/federation_clearing.py --records 100000

Data: synthetic, seeded. Each record has a home and a host drawn from 11 platforms (a few
busy western hosts get more, as "East Data, West Computing" would), an amount in fen drawn
log-normally (median ~3 CNY, capped at 100,000 CNY). The host side reports every record; the
home side misses 0.1% (not delivered yet) and disagrees on 0.05% (mismatched content).

Measures, each the median of several runs unless said otherwise:
- vectorised netting (`domain.clearing.net_arrays`, NumPy bincount) of all records;
- the same netting record by record in Python (`multilateral_positions`, one run);
- `clearing_run.clear`: matching both sides by record id (64-bit hashes, checked), the
  vectorised netting, and each platform's records fingerprint;
- the house's whole cycle in memory (`services.clearing.build_statements`) from the columns
  the platforms report: splitting sides, clearing, one statement per platform, signing.
  (Collecting the columns over HTTP and the platforms' database reads are not included.)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np

from suanli.adapters.platform_key import PlatformIdentity
from suanli.domain import clearing as rules
from suanli.domain import clearing_run as run
from suanli.domain import federation as fed

PLATFORMS = ["CN", "CN.BJ", "CN.SH", "CN.ZJ", "CN.JS", "CN.GD", "CN.SC", "CN.GZ", "CN.NM",
             "CN.GS", "CN.NX"]
WEST = {"CN.SC", "CN.GZ", "CN.NM", "CN.GS", "CN.NX"}


def records(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = np.array([3.0 if p in WEST else 1.0 for p in PLATFORMS])
    host = rng.choice(len(PLATFORMS), size=n, p=weights / weights.sum())
    home = rng.integers(0, len(PLATFORMS) - 1, size=n)
    home = np.where(home >= host, home + 1, home)  # never the host itself
    amount = np.minimum(rng.lognormal(mean=np.log(300), sigma=1.5, size=n), 10**7)
    return home.astype(np.int64), host.astype(np.int64), amount.astype(np.int64)


def timed(label: str, fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    print(f"{label:<62} {median * 1000:10.1f} ms  (median of {runs})")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    n = args.records
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}, NumPy {np.__version__}")
    home, host, amount = records(n, args.seed)
    print(f"data: {n:,} records among {len(PLATFORMS)} platforms, "
          f"gross {int(amount.sum()) / 100:,.2f} CNY")

    netted = rules.net_arrays(home, host, amount, len(PLATFORMS))
    timed("vectorised netting (net_arrays, bincount)",
          lambda: rules.net_arrays(home, host, amount, len(PLATFORMS)), 7)
    obligations = [rules.Obligation(PLATFORMS[d], PLATFORMS[c], int(a))
                   for d, c, a in zip(home.tolist(), host.tolist(), amount.tolist(),
                                      strict=True)]
    scalar = {}

    def scalar_netting() -> None:
        scalar.update(rules.multilateral_positions(obligations))

    timed("scalar netting (multilateral_positions, pure Python)", scalar_netting, 1)
    assert all(scalar[p] == int(netted.positions[i]) for i, p in enumerate(PLATFORMS))

    names = [PLATFORMS[i] for i in range(len(PLATFORMS))]
    ids = [f"{names[c]}.J{i:08d}.L01.U0001" for i, c in enumerate(host.tolist())]
    digests = [f"{i * 0x9E3779B97F4A7C15 & (2**256 - 1):064x}" for i in range(n)]
    homes, hosts, amounts = ([names[i] for i in home.tolist()], [names[i] for i in host.tolist()],
                             amount.tolist())
    rng = np.random.default_rng(args.seed + 1)
    missing = set(rng.choice(n, size=n // 1000, replace=False).tolist())
    changed = set(rng.choice(n, size=n // 2000, replace=False).tolist()) - missing
    host_side = run.Entries(ids, homes, hosts, amounts, digests)
    home_side = run.Entries()
    for i in range(n):
        if i not in missing:
            home_side.append(ids[i], homes[i], hosts[i], amounts[i] + (i in changed),
                             digests[i])
    cleared = run.clear(home_side, host_side)
    print(f"matched {cleared.agreed:,}, missing at home {cleared.missing_at_home:,}, "
          f"mismatched {len(cleared.mismatched):,}; positions sum to "
          f"{sum(cleared.positions.values())}")
    timed("clear: match both sides by id (hashed) + vectorised netting",
          lambda: run.clear(home_side, host_side), 3)

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from suanli.services.clearing.cycle import build_statements

    key = Ed25519PrivateKey.generate()
    house = PlatformIdentity("CN", key, key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    sides: dict[str, dict[str, list]] = {p: {f: [] for f in ("side", *run.FIELDS)}
                                          for p in PLATFORMS}
    for side, entries in (("host", host_side), ("home", home_side)):
        for record_id, h, c, a, d in entries.rows():
            columns = sides[c if side == "host" else h]
            for name, value in zip(("side", *run.FIELDS), (side, record_id, h, c, a, d),
                                   strict=True):
                columns[name].append(value)
    now = datetime.now(UTC)

    def cycle() -> None:
        _, statements, _ = build_statements(house, "2026-11-02.01", "2026-11-02", sides, [],
                                            now)
        for document in statements.values():
            fed.sign_document(house.private_key, house.key_id, document)

    timed("house cycle: build_statements (columns in, statements out) + sign", cycle, 3)


if __name__ == "__main__":
    main()
