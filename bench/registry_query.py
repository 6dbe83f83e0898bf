"""Benchmark: filtered, sorted, paginated pool search over 100,000 pools (SQLite, PostgreSQL).

    python bench/registry_query.py                       # SQLite in a temporary file
    python bench/registry_query.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Data: synthetic registry built from the packaged accelerator catalog and city table — 2,000
sites in 60+ cities across all eight national hubs and edges, pools of every catalog model with
prices scaled from a base price per nominal unit. Queries: a fixed random mix of filters
(vendor, accelerator, memory, units, province, hub, price ceilings, green share), all sort
orders (price per effective unit, price, latency from a city, green, free) and pages 1-5.
Prints p50/p90/p99/max per query in milliseconds, measured through the search service, for
both orderings in the same run: SQL (the fallback path) and the in-memory index
(services.pool_index: NumPy order, then the database checks free devices by id); plus the
index's load time and memory per pool.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from decimal import Decimal

from sqlalchemy import insert, text

from suanli.adapters.clock import SystemClock
from suanli.adapters.store import create_database
from suanli.adapters.store.tables import PoolRow, SiteRow
from suanli.catalog import load_catalog, load_cities, load_ratings, units_per_device_hour
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.resources import Engine, Hub, Pool, SiteKind
from suanli.domain.search import PoolQuery, SortKey
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.domain.units import WORKLOAD_CLASSES
from suanli.services import tenants
from suanli.services.registry import inventory as registry
from suanli.services.registry import search
from suanli.services.registry.pool_index import PoolIndex

HUB_OF_PROVINCE = {"CN-BJ": Hub.JINGJINJI, "CN-TJ": Hub.JINGJINJI, "CN-HE": Hub.JINGJINJI,
                   "CN-SH": Hub.YANGTZE, "CN-JS": Hub.YANGTZE, "CN-ZJ": Hub.YANGTZE,
                   "CN-AH": Hub.YANGTZE, "CN-GD": Hub.GBA, "CN-SC": Hub.CHENGYU,
                   "CN-CQ": Hub.CHENGYU, "CN-NM": Hub.INNER_MONGOLIA, "CN-GZ": Hub.GUIZHOU,
                   "CN-GS": Hub.GANSU, "CN-NX": Hub.NINGXIA}


def build(db, pools: int, sites: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    clock = SystemClock()
    now = clock.now()
    authority = ComputeId.platform("CN")
    catalog = [a for a in load_catalog().all() if a.key in load_ratings().ratings]
    cities = load_cities().all()
    with db.unit_of_work() as session:
        owner = tenants.create_tenant(session, authority, "bench", Role.PROVIDER,
                                      TenantClass.ENTERPRISE, now)
        principal = Principal(owner.tenant_id, Role.PROVIDER)
        provider_ids = [registry.create_provider(session, principal, authority,
                                                 name=f"provider {i}", kind="cloud", now=now).id
                        for i in range(50)]
    site_rows: list[SiteRow] = []
    with db.unit_of_work() as session:
        for i in range(sites):
            place = rng.choice(cities)
            hub = HUB_OF_PROVINCE.get(place.province)
            fields = {"name": f"site {i}", "province": place.province, "city": place.name,
                      "latitude": place.latitude, "longitude": place.longitude,
                      "pue": Decimal(rng.choice(["1.15", "1.2", "1.3", "1.4"])),
                      "electricity_fen_per_kwh": rng.randint(30, 80),
                      "green_share": Decimal(rng.randint(5, 80)) / 100,
                      "kind": SiteKind.HUB if hub and rng.random() < 0.7 else SiteKind.EDGE,
                      "hub": hub}
            site_rows.append(registry.create_site(session, principal, provider_ids[i % 50],
                                                  fields, now))
    batch: list[dict] = []
    for i in range(pools):
        site = site_rows[i % sites]
        device = rng.choice(catalog)
        count = rng.choice([4, 8, 16, 32, 64, 128, 512])
        base = units_per_device_hour(device.key, "general")
        price = max(1, int(base * rng.randint(300, 900)))
        pool_id = ComputeId.parse(site.id).child(IdKind.POOL, i // sites + 1)
        pool = Pool(id=str(pool_id), site_id=site.id, name=f"pool {i}", accelerator=device.key,
                    device_count=count, engine=rng.choice(list(Engine)),
                    price_fen_per_device_hour=price,
                    free_devices=rng.choice([0, count // 4, count // 2, count]))
        batch.append(registry.pool_row_values(site, device, pool, now))
        if len(batch) == 5_000:
            with db.unit_of_work() as session:
                session.execute(insert(PoolRow), batch)
            batch.clear()
    if batch:
        with db.unit_of_work() as session:
            session.execute(insert(PoolRow), batch)
    with db.engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def queries(n: int, seed: int) -> list[PoolQuery]:
    rng = random.Random(seed)
    catalog = load_catalog().all()
    vendors = sorted({a.vendor for a in catalog})
    cities = load_cities().all()
    out = []
    for _ in range(n):
        sort = rng.choice(list(SortKey))
        kwargs: dict = {"sort": sort, "workload_class": rng.choice(WORKLOAD_CLASSES[:3]),
                        "limit": rng.choice([20, 50]), "offset": 20 * rng.randint(0, 4)}
        filters = rng.sample(["vendor", "accelerator", "memory", "units", "province", "hub",
                              "price", "unit_price", "green"], rng.randint(0, 3))
        if "vendor" in filters:
            kwargs["vendor"] = rng.choice(vendors)
        if "accelerator" in filters:
            kwargs["accelerator"] = rng.choice(catalog).key
        if "memory" in filters:
            kwargs["min_memory_gb"] = rng.choice([16, 24, 48, 64, 80])
        if "units" in filters:
            kwargs["min_units"] = Decimal(rng.choice([1, 10, 50, 200]))
        if "province" in filters:
            kwargs["province"] = rng.choice(cities).province
        if "hub" in filters:
            kwargs["hub"] = rng.choice(list(Hub)).value
        if "price" in filters:
            kwargs["max_fen_per_device_hour"] = rng.choice([200, 500, 1000, 3000])
        if "unit_price" in filters:
            kwargs["max_fen_per_unit_hour"] = Decimal(rng.choice([300, 500, 800]))
        if "green" in filters:
            kwargs["min_green_share"] = Decimal(rng.choice(["0.2", "0.5", "0.7"]))
        if sort is SortKey.LATENCY:
            place = rng.choice(cities)
            kwargs["near"] = (place.latitude, place.longitude)
        out.append(PoolQuery(**kwargs))
    return out


def measure(db, workload: list[PoolQuery], with_count: bool,  # type: ignore[no-untyped-def]
            index: PoolIndex | None = None) -> list[float]:
    timings = []
    for query in workload:
        started = time.perf_counter()
        with db.unit_of_work() as session:
            search.search_pools(session, query, index)
            if with_count:
                search.count_pools(session, query)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _compare(db, workload: list[PoolQuery],  # type: ignore[no-untyped-def]
             index: PoolIndex) -> tuple[int, int, int]:
    """(searches ordered by the index, of those how many fell back to SQL, identical pages)."""
    ordered = fallbacks = same = 0
    with db.unit_of_work() as session:
        for query in workload:
            if query.sort is not SortKey.FREE:
                ordered += 1
                fallbacks += search._rows_from_index(session, query, index) is None  # noqa: SLF001
            page = lambda i: [(h.pool.id, h.fen_per_unit_hour, h.latency_ms)  # noqa: E731
                              for h in search.search_pools(session, query, i).items]
            same += page(None) == page(index)
    return ordered, fallbacks, same


def report(label: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    print(f"{label:<34} n={len(ordered):>4}  p50={statistics.median(ordered):7.2f} ms  "
          f"p90={pick(0.90):7.2f}  p99={pick(0.99):7.2f}  max={ordered[-1]:7.2f}")


def run(url: str, label: str, pools: int, sites: int, n: int, seed: int) -> None:
    schema = f"bench_{secrets.token_hex(3)}" if url.startswith("postgres") else None
    db = create_database(url, schema=schema)
    try:
        db.migrate()
        started = time.perf_counter()
        build(db, pools, sites, seed)
        print(f"[{label}] built {pools:,} pools on {sites:,} sites in "
              f"{time.perf_counter() - started:.1f} s")
        workload = queries(n, seed + 1)
        measure(db, workload[:50], False)  # warm caches and prepared plans
        index = PoolIndex()
        started = time.perf_counter()
        with db.unit_of_work() as session:
            columns = index.columns(session)
        assert columns is not None
        print(f"[{label}] index loaded in {time.perf_counter() - started:.2f} s: "
              f"{len(columns):,} pools, {columns.nbytes() / len(columns):.0f} bytes a pool")
        measure(db, workload[:50], False, index)
        ordered, fallbacks, same = _compare(db, workload, index)
        report(f"[{label}] search, SQL order", measure(db, workload, False))
        report(f"[{label}] search, index order", measure(db, workload, False, index))
        report(f"[{label}] search + count, SQL", measure(db, workload, True))
        report(f"[{label}] search + count, index", measure(db, workload, True, index))
        print(f"[{label}] index: ordered {ordered} searches (the rest sort by free devices, "
              f"in SQL), {fallbacks} of them fell back to SQL; pages identical to SQL's: "
              f"{same} of {len(workload)}; loads: {index.loads}")
    finally:
        if schema:
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default=os.environ.get("SUANLI_BENCH_POSTGRES"),
                        help="also run on this PostgreSQL URL")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.db", "SQLite", args.pools, args.sites, args.queries,
            args.seed)
    if args.postgres:
        run(args.postgres, "PostgreSQL", args.pools, args.sites, args.queries, args.seed)


if __name__ == "__main__":
    main()
