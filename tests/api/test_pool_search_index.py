"""The in-memory search index answers exactly as SQL does, and is never stale."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from suanli.adapters.store import create_database
from suanli.adapters.store.tables import PoolRow, SiteRow
from suanli.bootstrap import parse_authority
from suanli.catalog import load_catalog, load_cities
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.resources import Engine, Hub, Pool
from suanli.domain.search import PoolQuery, SortKey
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.domain.units import WORKLOAD_CLASSES
from suanli.services import tenants
from suanli.services.jobs import leases
from suanli.services.registry import inventory as registry
from suanli.services.registry import search
from suanli.services.registry.pool_index import PoolIndex

STATES = ["active"] * 6 + ["draining", "maintenance"]


def _registry(database, clock,  # type: ignore[no-untyped-def]
              rng: random.Random, pools: int) -> list[str]:
    """Random pools on few cities (co-located sites tie on distance) with few distinct
    prices and green shares (ties on every key), unrated devices (no unit price), pools of
    every state, many without free devices."""
    authority = parse_authority("CN")
    places = rng.sample(load_cities().all(), 4)
    devices = [a.key for a in load_catalog().all()]
    now = clock.now()
    with database.unit_of_work() as session:
        owner = tenants.create_tenant(session, authority, "owner", Role.PROVIDER,
                                      TenantClass.ENTERPRISE, now)
        principal = Principal(owner.tenant_id, Role.PROVIDER)
        providers = [registry.create_provider(session, principal, authority, name=f"p{i}",
                                              kind="cloud", now=now).id for i in range(3)]
        sites = []
        for i in range(10):
            place = rng.choice(places)
            sites.append(registry.create_site(session, principal, rng.choice(providers), {
                "name": f"s{i}", "province": place.province, "city": place.name,
                "latitude": place.latitude, "longitude": place.longitude, "pue": "1.2",
                "electricity_fen_per_kwh": 40, "green_share": rng.choice(["0.2", "0.5", "0.7"]),
                "kind": "hub", "hub": rng.choice([h.value for h in Hub])}, now).id)
        ids = []
        for i in range(pools):
            count = rng.choice([1, 4, 8, 64])
            row = registry.create_pool(session, principal, rng.choice(sites),
                                       accelerator=rng.choice(devices), now=now, fields={
                "name": f"r{i}", "device_count": count, "engine": "slurm",
                "price_fen_per_device_hour": rng.choice([100, 250, 800, 2000]),
                "free_devices": rng.choice([0, 0, count // 2, count]),
                "state": rng.choice(STATES)})
            if rng.random() < 0.05:
                registry.retire_pool(session, principal, row.id, now)
            ids.append(row.id)
    return ids


def _query(rng: random.Random, pool_ids: list[str]) -> PoolQuery:
    catalog = load_catalog().all()
    places = load_cities().all()
    sort = rng.choice([SortKey.PRICE_PER_UNIT, SortKey.PRICE, SortKey.GREEN, SortKey.LATENCY])
    kwargs: dict = {"sort": sort, "workload_class": rng.choice(WORKLOAD_CLASSES),
                    "limit": rng.choice([1, 3, 7, 20]), "offset": rng.choice([0, 1, 5, 20, 60]),
                    "available_only": rng.random() < 0.7}
    for name in rng.sample(["vendor", "accelerator", "memory", "units", "province", "hub",
                            "price", "unit_price", "green", "provider"], rng.randint(0, 3)):
        if name == "vendor":
            kwargs["vendor"] = rng.choice(catalog).vendor
        elif name == "accelerator":
            kwargs["accelerator"] = rng.choice(catalog).key
        elif name == "memory":
            kwargs["min_memory_gb"] = rng.choice([16, 32, 80])
        elif name == "units":
            kwargs["min_units"] = Decimal(rng.choice(["0", "1", "10", "100"]))
        elif name == "province":
            kwargs["province"] = rng.choice(places).province
        elif name == "hub":
            kwargs["hub"] = rng.choice(list(Hub)).value
        elif name == "price":
            kwargs["max_fen_per_device_hour"] = rng.choice([100, 250, 800])
        elif name == "unit_price":
            kwargs["max_fen_per_unit_hour"] = Decimal(rng.choice(["50", "123.4567", "800"]))
        elif name == "green":
            kwargs["min_green_share"] = Decimal(rng.choice(["0.2", "0.5", "0.7"]))
        else:
            kwargs["provider_id"] = str(ComputeId.parse(rng.choice(pool_ids)).parent.parent)
    if sort is SortKey.LATENCY:
        place = rng.choice(places)
        kwargs["near"] = (place.latitude, place.longitude)
    return PoolQuery(**kwargs)


def _page(page: search.PoolPage) -> tuple:
    return ([(h.pool.id, h.pool.free_devices, h.fen_per_unit_hour, h.latency_ms)
             for h in page.items], page.next_offset)


@pytest.mark.parametrize("round_ids", [search.INDEX_ROUND_IDS, 3])  # 3: many rounds, fallbacks
@pytest.mark.parametrize("seed", range(4))
def test_index_pages_are_exactly_the_sql_pages(database, clock, monkeypatch, seed: int,
                                               round_ids: int) -> None:
    monkeypatch.setattr(search, "INDEX_ROUND_IDS", round_ids)
    rng = random.Random(seed)
    pool_ids = _registry(database, clock, rng, pools=rng.choice([40, 150]))
    index = PoolIndex()
    for _ in range(120):
        query = _query(rng, pool_ids)
        with database.unit_of_work() as session:
            expected = _page(search.search_pools(session, query))
            assert _page(search.search_pools(session, query, index)) == expected, query
    assert index.loads == 1


def test_pages_of_one_search_chain_without_gaps_or_overlaps(database, clock) -> None:
    rng = random.Random(11)
    _registry(database, clock, rng, pools=150)
    index = PoolIndex()
    query = PoolQuery(sort=SortKey.GREEN, limit=200, available_only=False)
    with database.unit_of_work() as session:
        whole = [hit.pool.id for hit in search.search_pools(session, query, index).items]
        paged, offset = [], 0
        while offset is not None:
            page = search.search_pools(session, PoolQuery(sort=SortKey.GREEN, limit=7,
                                                          offset=offset, available_only=False),
                                       index)
            paged += [hit.pool.id for hit in page.items]
            offset = page.next_offset
    assert paged == whole and len(whole) > 100


def test_a_lease_taking_the_last_devices_is_seen_by_the_next_search_at_once(database,
                                                                           clock) -> None:
    _registry(database, clock, random.Random(3), pools=60)
    index = PoolIndex()
    query = PoolQuery(sort=SortKey.PRICE, limit=5)
    with database.unit_of_work() as session:
        first = search.search_pools(session, query, index).items[0].pool
    with database.unit_of_work() as session:
        assert leases.take_devices(session, first.id, first.free_devices)
    with database.unit_of_work() as session:
        after = [hit.pool.id for hit in search.search_pools(session, query, index).items]
        assert first.id not in after
        assert after == [hit.pool.id for hit in search.search_pools(session, query).items]
    with database.unit_of_work() as session:
        leases.give_back_devices(session, first.id, first.free_devices)
    with database.unit_of_work() as session:
        assert search.search_pools(session, query, index).items[0].pool.id == first.id
    assert index.loads == 1  # leases change no searchable column: the index was not reloaded


def test_registry_writes_through_another_database_are_seen_by_the_next_search(database,
                                                                              clock) -> None:
    _registry(database, clock, random.Random(5), pools=60)
    index = PoolIndex()
    query = PoolQuery(sort=SortKey.PRICE, limit=3, available_only=False)
    with database.unit_of_work() as session:
        before = search.search_pools(session, query, index).items
    url = database.engine.url.render_as_string(hide_password=False)
    other = create_database(url, schema=database.schema)  # another process's connection pool
    try:
        with other.unit_of_work() as session:  # an ORM update, as the registry service does
            last = session.scalars(select(PoolRow).order_by(PoolRow.id.desc())).first()
            last.price_fen_per_device_hour = 1
            last.state = "active"
        with database.unit_of_work() as session:
            assert search.search_pools(session, query, index).items[0].pool.id == last.id
        with other.unit_of_work() as session:  # a bulk insert, as the benchmark does
            site = session.scalars(select(SiteRow)).first()
            device = load_catalog().get("nvidia-h20")
            new_id = str(ComputeId.parse(site.id).child(IdKind.POOL, 999))
            pool = Pool(id=new_id, site_id=site.id, name="bulk", accelerator=device.key,
                        device_count=8, engine=Engine.SLURM, price_fen_per_device_hour=0)
            session.execute(insert(PoolRow), [registry.pool_row_values(site, device, pool,
                                                                       clock.now())])
        with database.unit_of_work() as session:
            assert search.search_pools(session, query, index).items[0].pool.id == new_id
        with other.unit_of_work() as session:  # a raw retire
            session.execute(update(PoolRow).where(PoolRow.id == new_id).values(state="retired"))
        with database.unit_of_work() as session:
            hits = search.search_pools(session, query, index).items
            assert [h.pool.id for h in hits] == [h.pool.id
                                                 for h in search.search_pools(session, query).items]
            assert new_id not in [h.pool.id for h in hits]
    finally:
        other.dispose()
    assert index.loads == 4


def test_search_through_the_api_uses_the_index_and_can_turn_it_off(database, clock, app,
                                                                   consumer) -> None:
    from fastapi.testclient import TestClient

    from suanli.api.app import create_app
    from suanli.settings import Settings

    _registry(database, clock, random.Random(8), pools=40)
    params = {"sort": "price", "limit": 10}
    index = app.state.ctx.pool_index
    client = TestClient(app)
    # A node reloads in the background: the first search is answered in SQL meanwhile.
    first = client.get("/v1/pools", params=params, headers=consumer.headers)
    _wait_for(lambda: index.loads == 1)
    with_index = client.get("/v1/pools", params=params, headers=consumer.headers)
    assert index.served == 1 and index.loads == 1
    assert first.json() == with_index.json()
    plain = create_app(Settings(database_url="sqlite://", auto_migrate=False,
                                search_index=False), database=database, clock=clock)
    assert plain.state.ctx.pool_index is None
    without = TestClient(plain).get("/v1/pools", params=params, headers=consumer.headers)
    assert with_index.status_code == without.status_code == 200
    assert with_index.json() == without.json() and with_index.json()["items"]


def _wait_for(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the background reload did not finish in time"
        time.sleep(0.01)


def test_a_background_reload_never_makes_a_search_wait(database, clock) -> None:
    rng = random.Random(9)
    _registry(database, clock, rng, pools=30)
    index = PoolIndex(background=True)
    query = PoolQuery(sort=SortKey.PRICE, limit=10)
    with database.unit_of_work() as session:
        by_sql = search.search_pools(session, query, index)  # stale: SQL now, reload started
    _wait_for(lambda: index.loads == 1)
    with database.unit_of_work() as session:
        by_index = search.search_pools(session, query, index)
    assert index.served == 1
    assert [h.pool.id for h in by_sql.items] == [h.pool.id for h in by_index.items]


def test_a_failed_background_reload_leaves_searches_on_sql(database, clock,
                                                           monkeypatch) -> None:
    from suanli.services.registry import pool_index

    _registry(database, clock, random.Random(10), pools=20)

    def broken(session):  # type: ignore[no-untyped-def]
        raise RuntimeError("the database went away mid-reload")

    monkeypatch.setattr(pool_index, "load_columns", broken)
    index = PoolIndex(background=True)
    query = PoolQuery(sort=SortKey.PRICE, limit=5)
    with database.unit_of_work() as session:
        assert search.search_pools(session, query, index).items
    _wait_for(lambda: index._retry_at > 0)
    with database.unit_of_work() as session:  # within the retry pause: SQL, no new thread
        assert search.search_pools(session, query, index).items
    assert index.loads == 0 and index.served == 0
