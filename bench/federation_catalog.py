"""Benchmark: catalog aggregation of 1,000 providers / 10,000 pools across 10 regional
platforms into the national platform, and queries over the whole tree there.

    python bench/federation_catalog.py
    python bench/federation_catalog.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup: 11 real platform apps in one process (CN and CN.BJ, CN.SH, CN.ZJ, CN.JS, CN.GD, CN.SC,
CN.GZ, CN.NM, CN.GS, CN.NX), each with its own database (SQLite files, or PostgreSQL schemas),
enrolled and registered with signed messages; the HTTP between them goes through an
in-memory transport (no sockets), so the figures are the protocol's own work: summarising,
signing, verifying, storing.
Data: synthetic, seeded. Per regional platform 100 providers with one site each in cities of
its province (or any city when the table has none), 10 pools per site, accelerators drawn
from the packaged catalog, device counts 4..512, a quarter to all devices free.
Figures: time to summarise 1,000 pools (GROUP BY), a sub-platform's first full push (and its
size), a steady push when nothing changed, how long one changed pool takes to show at the
national platform, and national queries over all 10,000 pools' summaries (service and HTTP).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import insert, text, update

from suanli.adapters.clock import SystemClock
from suanli.adapters.store import create_database
from suanli.adapters.store.tables import PoolRow
from suanli.api.app import create_app
from suanli.api.federation_runtime import build_runtime
from suanli.catalog import load_catalog, load_cities, load_ratings, units_per_device_hour
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.resources import Engine, Pool, SiteKind
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.federation_settings import FederationSettings
from suanli.services import tenants
from suanli.services.federation import catalog as federated_catalog
from suanli.services.registry import inventory as registry
from suanli.settings import Settings

REGIONS = {"BJ": "CN-BJ", "SH": "CN-SH", "ZJ": "CN-ZJ", "JS": "CN-JS", "GD": "CN-GD",
           "SC": "CN-SC", "GZ": "CN-GZ", "NM": "CN-NM", "GS": "CN-GS", "NX": "CN-NX"}
HUBS = {"CN-BJ": "jingjinji", "CN-SH": "yangtze", "CN-ZJ": "yangtze", "CN-JS": "yangtze",
        "CN-GD": "gba", "CN-SC": "chengyu", "CN-GZ": "guizhou", "CN-NM": "inner-mongolia",
        "CN-GS": "gansu", "CN-NX": "ningxia"}


class Router(httpx.BaseTransport):
    def __init__(self) -> None:
        self.clients: dict[str, TestClient] = {}
        self.bytes_sent = self.bytes_received = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bytes_sent += len(request.content)
        response = self.clients[request.url.host]._transport.handle_request(request)
        response.read()
        self.bytes_received += len(response.content)
        return response


def _db(url: str, tmp: Path, name: str):  # type: ignore[no-untyped-def]
    if url.startswith("postgres"):
        db = create_database(url, schema=f"benchfed_{secrets.token_hex(3)}")
    else:
        db = create_database(f"sqlite:///{tmp / name}.db")
    db.migrate()
    return db


def build_tree(url: str, tmp: Path):  # type: ignore[no-untyped-def]
    router = Router()
    nodes = {}
    clock = SystemClock()
    for authority in ["CN"] + [f"CN.{r}" for r in REGIONS]:
        db = _db(url, tmp, authority)
        app = create_app(Settings(database_url="sqlite://", authority=authority,
                                  auto_migrate=False, run_scheduler=False,
                                  platform_name=f"platform {authority}"), database=db,
                         clock=clock)
        host = authority.lower().replace(".", "-") + ".bench"
        router.clients[host] = TestClient(app, base_url=f"http://{host}")
        with db.unit_of_work() as session:
            operator = tenants.create_tenant(session, ComputeId.platform(authority), "operator",
                                             Role.OPERATOR, TenantClass.PUBLIC, clock.now())
        nodes[authority] = (app, db, host, {"Authorization": f"Bearer {operator.api_key}"})
    _, _, national_host, national_operator = nodes["CN"]
    runtimes = {}
    for authority, (app, _db_, host, _) in nodes.items():
        token = None
        if authority != "CN":
            response = router.clients[national_host].post(
                "/v1/federation/enrolments", headers=national_operator,
                json={"authority": authority, "name": f"platform {authority}"})
            token = response.json()["enrolment_token"]
        app.state.federation_settings = FederationSettings(
            key_file=tmp / f"{authority}.key", public_url=f"http://{host}",
            parent=None if authority == "CN" else f"http://{national_host}",
            enrolment_token=token, run_federation=False, catalog_pull_s=3600,
            catalog_heartbeat_s=3600, clearing_auto=False)
        app.state.federation_transport = router
        runtime = build_runtime(app)
        app.state.federation = runtime
        runtime.start()
        runtimes[authority] = runtime
    for authority, runtime in runtimes.items():
        if authority != "CN":
            runtime._register()
    return router, nodes, runtimes


def fill(db, authority: str, province: str, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    now = SystemClock().now()
    catalog = [a for a in load_catalog().all() if a.key in load_ratings().ratings]
    places = [c for c in load_cities().all() if c.province == province] or load_cities().all()
    with db.unit_of_work() as session:
        owner = tenants.create_tenant(session, ComputeId.platform(authority), "providers",
                                      Role.PROVIDER, TenantClass.ENTERPRISE, now)
        principal = Principal(owner.tenant_id, Role.PROVIDER)
        sites = []
        for i in range(100):
            provider = registry.create_provider(session, principal,
                                                ComputeId.platform(authority),
                                                name=f"provider {i}", kind="cloud", now=now)
            place = rng.choice(places)
            sites.append(registry.create_site(session, principal, provider.id, {
                "name": f"site {i}", "province": province, "city": place.name,
                "latitude": place.latitude, "longitude": place.longitude,
                "pue": Decimal("1.25"), "electricity_fen_per_kwh": rng.randint(30, 80),
                "green_share": Decimal(rng.randint(5, 80)) / 100, "kind": SiteKind.HUB,
                "hub": HUBS[province]}, now))
        batch = []
        for site in sites:
            for j in range(10):
                device = rng.choice(catalog)
                count = rng.choice([4, 8, 16, 32, 64, 128, 512])
                price = max(1, int(units_per_device_hour(device.key, "general")
                                   * rng.randint(300, 900)))
                pool = Pool(id=str(ComputeId.parse(site.id).child(IdKind.POOL, j + 1)),
                            site_id=site.id, name=f"pool {j}", accelerator=device.key,
                            device_count=count, engine=Engine.LOCAL,
                            price_fen_per_device_hour=price,
                            free_devices=rng.choice([count // 4, count // 2, count]))
                batch.append(registry.pool_row_values(site, device, pool, now))
        session.execute(insert(PoolRow), batch)


def stats(label: str, samples_s: list[float], unit: str = "ms") -> None:
    ordered = sorted(samples_s)
    scale = 1000 if unit == "ms" else 1
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * scale
    print(f"{label:<58} n={len(ordered):>4} p50={statistics.median(ordered) * scale:8.2f} "
          f"p99={pick(0.99):8.2f} max={ordered[-1] * scale:8.2f} {unit}")


def run(url: str, label: str, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        router, nodes, runtimes = build_tree(url, Path(tmp))
        try:
            for authority, province in ((f"CN.{r}", p) for r, p in REGIONS.items()):
                fill(nodes[authority][1], authority, province, rng)
            national_db = nodes["CN"][1]
            summarise, pushes, sizes = [], [], []
            for authority in (f"CN.{r}" for r in REGIONS):
                db = nodes[authority][1]
                with db.unit_of_work() as session:
                    started = time.perf_counter()
                    groups = federated_catalog.local_summary(session)
                    summarise.append(time.perf_counter() - started)
                before = router.bytes_sent
                started = time.perf_counter()
                runtimes[authority]._sync()
                pushes.append(time.perf_counter() - started)
                sizes.append(router.bytes_sent - before)
            with national_db.unit_of_work() as session:
                rows = federated_catalog.query(session, SystemClock().now(), limit=5000)
            print(f"[{label}] national holds {len(rows):,} summary rows for "
                  f"{sum(r['pools'] for r in rows):,} pools / "
                  f"{sum(r['devices'] for r in rows):,} devices of 10 platforms "
                  f"(~{len(groups)} groups per platform)")
            stats(f"[{label}] summarise 1,000 pools at a sub-platform", summarise)
            stats(f"[{label}] first push to CN (sign, send, verify, store)", pushes)
            print(f"[{label}] first push size: median {statistics.median(sizes) / 1024:.0f} KiB")
            steady = []
            for authority in (f"CN.{r}" for r in REGIONS):
                runtimes[authority].settings.catalog_pull_s = 0.1
                time.sleep(0.11)
                before = router.bytes_sent
                started = time.perf_counter()
                runtimes[authority]._sync()
                steady.append(time.perf_counter() - started)
            stats(f"[{label}] steady push, nothing changed (+ tree back)", steady)
            changes = []
            for authority in (f"CN.{r}" for r in REGIONS):
                db = nodes[authority][1]
                with db.unit_of_work() as session:
                    pool_id = session.scalar(text("SELECT id FROM pools ORDER BY id LIMIT 1"))
                    session.execute(update(PoolRow).where(PoolRow.id == pool_id)
                                    .values(free_devices=0))
                started = time.perf_counter()
                runtimes[authority]._sync()
                with national_db.unit_of_work() as session:
                    federated_catalog.query(session, SystemClock().now(), platform=authority,
                                            limit=5000)
                changes.append(time.perf_counter() - started)
            stats(f"[{label}] one pool changes -> visible at CN (one loop pass)", changes)
            query(label, national_db, nodes["CN"], router, rng)
        finally:
            for _, db, _, _ in nodes.values():
                if db.schema:
                    with db.engine.begin() as connection:
                        connection.execute(text(f'DROP SCHEMA "{db.schema}" CASCADE'))
                db.dispose()


def query(label: str, db, national, router: Router, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog().all()
    mixes = []
    for _ in range(300):
        kwargs = {}
        for name in rng.sample(["accelerator", "province", "vendor", "min_free_devices"],
                               rng.randint(0, 2)):
            kwargs[name] = {"accelerator": lambda: rng.choice(catalog).key,
                            "province": lambda: rng.choice(list(REGIONS.values())),
                            "vendor": lambda: rng.choice(["NVIDIA", "Huawei", "Intel"]),
                            "min_free_devices": lambda: rng.choice([8, 64])}[name]()
        mixes.append(kwargs)
    service, http = [], []
    for kwargs in mixes:
        started = time.perf_counter()
        with db.unit_of_work() as session:
            federated_catalog.query(session, SystemClock().now(), limit=100, **kwargs)
        service.append(time.perf_counter() - started)
    client = router.clients[national[2]]
    for kwargs in mixes[:200]:
        started = time.perf_counter()
        response = client.get("/v1/federation/catalog", headers=national[3],
                              params={**kwargs, "limit": 100})
        http.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    stats(f"[{label}] national query over the tree (service)", service)
    stats(f"[{label}] national query over the tree (HTTP, in-process)", http)
    body = client.get("/v1/federation/catalog", headers=national[3],
                      params={"limit": 5000}).content
    print(f"[{label}] the whole tree's catalog as one answer: {len(json.loads(body)['items'])} "
          f"rows, {len(body) / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("SUANLI_BENCH_POSTGRES"))
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")
    run("sqlite://", "SQLite", args.seed)
    if args.postgres:
        run(args.postgres, "PostgreSQL", args.seed)


if __name__ == "__main__":
    main()
