"""Benchmark: identifier resolution — which platform is authoritative for an id — p50/p99.

    python bench/federation_resolution.py

Data: synthetic delegation tree as a national platform would hold it: CN delegates 34
provincial platforms (CN.BJ ... two letters each), each of those delegates 8 industry or city
platforms (CN.GD.FIN, ...): 306 delegations besides CN itself. Ids: 200,000 random provider, site, pool,
job, lease and usage-record ids issued under those platforms, 5% under prefixes nobody
delegated (they fall back to the nearest delegated ancestor, at worst CN).

Measures each call separately (perf_counter_ns): `Resolver.resolve` on parsed ids and on
text (parse + check character + longest prefix), building the Resolver from the delegations
table, and `GET /v1/ids/{id}` through the HTTP API in-process (TestClient, SQLite), which
reads the table on every request.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import string
import sys
import tempfile
import time

from suanli.domain.ids import ComputeId, IdKind, Resolver

PROVINCES = ["BJ", "TJ", "HE", "SX", "NM", "LN", "JL", "HL", "SH", "JS", "ZJ", "AH", "FJ", "JX",
             "SD", "HA", "HB", "HN", "GD", "GX", "HI", "CQ", "SC", "GZ", "YN", "XZ", "SN", "GS",
             "QH", "NX", "XJ", "TW", "HK", "MO"]
SECTORS = ["FIN", "EDU", "MED", "AUTO", "GRID", "GOV", "CITY", "PORT"]


def delegations() -> dict[str, str]:
    table = {"CN": "self"}
    for province in PROVINCES:
        table[f"CN.{province}"] = f"https://{province.lower()}.example"
        for sector in SECTORS:
            table[f"CN.{province}.{sector}"] = f"https://{sector.lower()}.{province.lower()}.ex"
    return table


def random_id(rng: random.Random) -> ComputeId:
    province = rng.choice(PROVINCES)
    authority = ["CN", province]
    if rng.random() < 0.5:
        authority.append(rng.choice(SECTORS))
    if rng.random() < 0.05:  # a prefix nobody delegated
        authority.append("".join(rng.choices(string.ascii_uppercase, k=3)))
    base = ComputeId.platform(*authority)
    if rng.random() < 0.5:
        cid = base.child(IdKind.PROVIDER, rng.randint(1, 9999))
        for kind in (IdKind.SITE, IdKind.POOL)[:rng.randint(0, 2)]:
            cid = cid.child(kind, rng.randint(1, 999))
        return cid
    cid = base.child(IdKind.JOB, rng.randint(1, 10**7))
    for kind in (IdKind.LEASE, IdKind.RECORD)[:rng.randint(0, 2)]:
        cid = cid.child(kind, rng.randint(1, 99))
    return cid


def percentiles(label: str, samples_ns: list[int]) -> None:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000
    print(f"{label:<52} n={len(ordered):>7,} p50={statistics.median(ordered) / 1000:8.2f} µs "
          f"p99={pick(0.99):8.2f} µs max={ordered[-1] / 1000:9.2f} µs")


def main() -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")
    rng = random.Random(11)
    table = delegations()
    ids = [random_id(rng) for _ in range(200_000)]
    texts = [str(cid) for cid in ids]
    samples = []
    for _ in range(20):
        started = time.perf_counter_ns()
        resolver = Resolver(table)
        samples.append(time.perf_counter_ns() - started)
    percentiles(f"build a Resolver of {len(table)} delegations", samples)
    for label, items in (("resolve a parsed id", ids), ("resolve an id's text (parse + check)",
                                                         texts)):
        for item in items[:1000]:
            resolver.resolve(item)  # warm
        samples = []
        for item in items:
            started = time.perf_counter_ns()
            resolver.resolve(item)
            samples.append(time.perf_counter_ns() - started)
        percentiles(label, samples)
    http(table, texts[:2000])


def http(table: dict[str, str], texts: list[str]) -> None:
    from fastapi.testclient import TestClient

    from suanli.adapters.clock import SystemClock
    from suanli.adapters.store import create_database
    from suanli.adapters.store.tables import DelegationRow
    from suanli.api.app import create_app
    from suanli.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        db = create_database(f"sqlite:///{tmp}/ids.db")
        db.migrate()
        now = SystemClock().now()
        with db.unit_of_work() as session:
            for authority, endpoint in table.items():
                if authority != "CN":
                    level = "industry" if authority.count(".") == 2 else "regional"
                    session.add(DelegationRow(authority=authority, name=authority, level=level,
                                              endpoint=endpoint, created_at=now))
        client = TestClient(create_app(Settings(auto_migrate=False, run_scheduler=False),
                                       database=db))
        for text in texts[:100]:
            client.get(f"/v1/ids/{text}")
        samples = []
        for text in texts:
            started = time.perf_counter_ns()
            response = client.get(f"/v1/ids/{text}")
            samples.append(time.perf_counter_ns() - started)
            assert response.status_code == 200, response.text
        percentiles("GET /v1/ids/{id} over HTTP (in-process, SQLite)", samples)
        db.dispose()


if __name__ == "__main__":
    main()
