"""The registry's and the tenants' repositories round-trip their records on a real database
(SQLite by default; PostgreSQL with SUANLI_TEST_DATABASE_URL)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

from suanli.adapters.store.ledger import aware
from suanli.adapters.store.repositories import registry as repo
from suanli.adapters.store.repositories import tenants as tenants_repo
from suanli.domain.registry import (
    CalibrationRecord,
    DelegationRecord,
    PoolRecord,
    ProviderRecord,
    SiteRecord,
)
from suanli.domain.search import PoolQuery, SortKey
from suanli.domain.tenants import ApiKeyRecord, TenantRecord

TENANT = "CN-T1"
PROVIDER = "CN-P1"
SITE = "CN-P1-S1"


def _same(stored: object, written: object) -> None:
    """Field by field, times compared as instants (SQLite gives them back without an offset)."""
    for field in dataclasses.fields(written):
        a, b = getattr(stored, field.name), getattr(written, field.name)
        if hasattr(b, "tzinfo") and b is not None:
            a, b = aware(a), aware(b)
        assert a == b, (field.name, a, b)


def _tenant(now: datetime) -> TenantRecord:
    return TenantRecord(id=TENANT, name="West Cloud", role="provider", tenant_class="enterprise",
                        created_at=now, disabled=False)


def _pool(site: SiteRecord, now: datetime, pool_id: str, price: int) -> PoolRecord:
    return PoolRecord(
        id=pool_id, site_id=site.id, provider_id=site.provider_id, tenant_id=site.tenant_id,
        name="h20 pool", accelerator="nvidia-h20", vendor="nvidia", architecture="hopper",
        device_kind="gpu", memory_gb=96.0, device_count=8, free_devices=6, interconnect="nvlink",
        engine="slurm", state="active", price_fen_per_device_hour=price,
        units_per_device_hour=Decimal("148.0000"), fen_per_unit_hour_general=Decimal("20.0000"),
        fen_per_unit_hour_training=Decimal("21.5000"), fen_per_unit_hour_inference=None,
        fen_per_unit_hour_hpc=None, province=site.province, city=site.city, hub=site.hub,
        site_kind=site.kind, green_share=site.green_share, latitude=site.latitude,
        longitude=site.longitude, geo_x=0.1, geo_y=0.2, geo_z=0.3, labels={"rack": "a1"},
        illustrative=False, version=1, created_at=now, updated_at=now)


def test_registry_records_round_trip(database, clock) -> None:
    now = clock.now()
    provider = ProviderRecord(id=PROVIDER, tenant_id=TENANT, name="West Cloud", kind="cloud",
                              country="CN", retired=False, illustrative=False, created_at=now,
                              updated_at=now)
    site = SiteRecord(id=SITE, provider_id=PROVIDER, tenant_id=TENANT, name="Gui'an 1",
                      province="CN-GZ", city="Guiyang", latitude=26.6, longitude=106.7,
                      pue=Decimal("1.25"), electricity_fen_per_kwh=35,
                      green_share=Decimal("0.6000"), kind="hub", hub="guizhou", retired=False,
                      illustrative=False, created_at=now, updated_at=now)
    with database.unit_of_work() as session:
        tenants_repo.insert_tenant(session, _tenant(now))
        repo.insert_provider(session, provider)
        repo.insert_site(session, site)
        for serial, price in ((1, 3000), (2, 2000)):
            repo.insert_pool(session, _pool(site, now, f"{SITE}-L{serial}", price))
    later = now + timedelta(hours=1)
    with database.unit_of_work() as session:
        _same(repo.get_provider(session, PROVIDER), provider)
        _same(repo.get_site(session, SITE), site)
        stored = repo.get_pool(session, f"{SITE}-L1")
        assert stored is not None
        _same(stored, _pool(site, now, f"{SITE}-L1", 3000))
        repo.save_pool(session, dataclasses.replace(stored, free_devices=0, version=2,
                                                    updated_at=later))
        repo.save_provider(session, dataclasses.replace(provider, name="West", updated_at=later))
        assert repo.get_pool(session, "CN-P9-S9-L9") is None
    with database.unit_of_work() as session:
        changed = repo.get_pool(session, f"{SITE}-L1")
        assert changed is not None and (changed.free_devices, changed.version) == (0, 2)
        assert sorted(p.id for p in repo.pools_of_site(session, SITE)) == [f"{SITE}-L1",
                                                                          f"{SITE}-L2"]
        assert [p.name for p in repo.list_providers(session, tenant_id=TENANT,
                                                    include_retired=False, limit=5,
                                                    offset=0)] == ["West"]
        assert [s.id for s in repo.sites_of_provider(session, PROVIDER)] == [SITE]
        query = PoolQuery(sort=SortKey.PRICE, available_only=False, limit=1)
        page = repo.search_pools(session, query, unindexed=False)
        assert [p.id for p in page] == [f"{SITE}-L2", f"{SITE}-L1"]  # the page and one more
        assert repo.count_pools(session, query) == 2
        assert repo.count_pools(session, PoolQuery()) == 1  # L1 has no free devices
        assert repo.pool_ids_passing(session, PoolQuery(), [f"{SITE}-L1", f"{SITE}-L2"]) \
            == {f"{SITE}-L2"}
        assert set(repo.get_pools(session, [f"{SITE}-L2", "CN-P9-S9-L9"])) == {f"{SITE}-L2"}
        assert [s.id for s in repo.site_positions(session, PoolQuery(province="CN-GZ"))] == [SITE]
        rows, _exact = repo.searchable_columns(session, ("id", "green_share"), {"green_share"})
        assert [row[0] for row in rows] == [f"{SITE}-L1", f"{SITE}-L2"]


def test_delegations_calibrations_and_counters_round_trip(database, clock) -> None:
    now = clock.now()
    delegation = DelegationRecord(authority="CN.GD", name="Guangdong", level="regional",
                                  endpoint="https://gd.example", created_at=now)
    with database.unit_of_work() as session:
        tenants_repo.insert_tenant(session, _tenant(now))
        repo.insert_delegation(session, delegation)
        assert repo.next_serial(session, "CN", "pool") is None
        assert repo.create_counter(session, "CN", "pool")
        assert repo.next_serial(session, "CN", "pool") == 2
        assert repo.last_serial(session, "CN", "pool") == 2
    with database.unit_of_work() as session:
        _same(repo.get_delegation(session, "CN.GD"), delegation)
        assert [d.authority for d in repo.list_delegations(session)] == ["CN.GD"]
        site = SiteRecord(id=SITE, provider_id=PROVIDER, tenant_id=TENANT, name="s",
                          province="CN-GZ", city="Guiyang", latitude=26.6, longitude=106.7,
                          pue=Decimal("1.25"), electricity_fen_per_kwh=35,
                          green_share=Decimal("0.6000"), kind="hub", hub=None, retired=False,
                          illustrative=False, created_at=now, updated_at=now)
        repo.insert_provider(session, ProviderRecord(PROVIDER, TENANT, "p", "cloud", "CN",
                                                     False, False, now, now))
        repo.insert_site(session, site)
        repo.insert_pool(session, _pool(site, now, f"{SITE}-L1", 3000))
        written = CalibrationRecord(
            pool_id=f"{SITE}-L1", tenant_id=TENANT, accelerator="nvidia-h20", backend="torch",
            device_kind="gpu", device_name="H20", devices=2, measured={"bf16_tflops": 280.0},
            datasheet={"bf16_tflops": 148.0}, ratios={"bf16_tflops": 0.9459}, best_ratio=0.9459,
            verdict="as declared", over_declared=False, notes=[], probe_version="1",
            host="node1", probe={"duration_s": 3.5}, created_at=now)
        stored = repo.insert_calibration(session, written)
        assert stored.id is not None
    with database.unit_of_work() as session:
        [read] = repo.list_calibrations(session, f"{SITE}-L1", limit=5, offset=0)
        _same(read, dataclasses.replace(written, id=stored.id))
        assert repo.count_calibrations(session, f"{SITE}-L1") == 1


def test_tenants_keys_and_audit_round_trip(database, clock) -> None:
    now = clock.now()
    key = ApiKeyRecord(prefix="0123456789", tenant_id=TENANT, key_sha256="ab" * 32,
                       created_at=now, revoked_at=None, name="ci", scopes=["read"],
                       expires_at=now + timedelta(days=1), created_by=TENANT, rotated_from=None)
    with database.unit_of_work() as session:
        tenants_repo.insert_tenant(session, _tenant(now))
        tenants_repo.insert_api_key(session, key)
        first = tenants_repo.append_audit(session, {
            "at": now, "actor_tenant_id": TENANT, "actor_key_id": key.prefix,
            "actor_role": "provider", "client": "cli", "action": "keys.create",
            "method": "POST", "path": "/v1/keys", "target": "key 0123456789",
            "idempotency_key": None, "status": 201, "outcome": "ok"})
    with database.unit_of_work() as session:
        _same(tenants_repo.get_tenant(session, TENANT), _tenant(now))
        _same(tenants_repo.get_api_key(session, key.prefix), key)
        assert tenants_repo.first_tenant_id_with_role(session, "provider") == TENANT
        assert tenants_repo.first_enabled_tenant_named(session, "West Cloud", "provider")
        assert tenants_repo.count_unrevoked_keys(session, TENANT) == 1
        locked = tenants_repo.lock_api_key(session, key.prefix)
        assert locked is not None and locked.prefix == key.prefix
        tenants_repo.set_key_revoked(session, key.prefix, now)
    with database.unit_of_work() as session:
        [read] = tenants_repo.keys_of_tenant(session, TENANT, 10)
        assert read.revoked_at is not None and aware(read.revoked_at) == now
        assert tenants_repo.count_unrevoked_keys(session, TENANT) == 0
        [entry] = tenants_repo.query_audit(session, actor=TENANT, action=None, target="0123",
                                           since=now, until=None, after_id=None, limit=10)
        assert entry.id == first and entry.status == 201 and aware(entry.at) == now
        assert tenants_repo.query_audit(session, actor=None, action=None, target=None,
                                        since=None, until=None, after_id=first, limit=10) == []
