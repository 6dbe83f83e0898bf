"""The demo's keys: a provider key for the demo pools' tenant, kept across restarts; a new key
never means a new funded wallet; a key that does not authenticate is never reused."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from suanli.adapters.store.tables import TenantRow
from suanli.bootstrap import load_demo, parse_authority
from suanli.cli import demo as demo_files
from suanli.services.demo_access import demo_pool_ids


def _tenants(database) -> int:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(TenantRow)))


def test_saved_keys_are_reused_and_the_provider_key_serves_the_demo_pools(
        database, clock, client) -> None:
    first = load_demo(database, parse_authority("CN"), clock)
    keys = first.keys
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {keys.provider_key}"}).json()
    assert me["id"] == keys.provider_tenant_id and me["role"] == "provider"
    with database.unit_of_work() as session:
        pools = demo_pool_ids(session)
    assert len(pools) == first.pools
    agent = client.post("/v1/agents", json={"name": "demo", "pools": pools},
                        headers={"Authorization": f"Bearer {keys.provider_key}"})
    assert agent.status_code == 201, agent.text
    tenants = _tenants(database)
    again = load_demo(database, parse_authority("CN"), clock, saved_keys=keys)
    assert again.keys == keys and again.keys_reused and not again.loaded_now
    assert _tenants(database) == tenants


def test_lost_or_forged_keys_are_replaced_without_a_new_wallet(database, clock, client) -> None:
    keys = load_demo(database, parse_authority("CN"), clock).keys
    tenants = _tenants(database)
    forged = replace(keys, consumer_key="sl_0000000000_forged", provider_key="sl_1_x")
    fixed = load_demo(database, parse_authority("CN"), clock, saved_keys=forged)
    assert not fixed.keys_reused
    assert fixed.keys.consumer_tenant_id == keys.consumer_tenant_id
    assert fixed.keys.consumer_key not in (keys.consumer_key, forged.consumer_key)
    lost = load_demo(database, parse_authority("CN"), clock)  # no key file at all
    assert lost.keys.consumer_tenant_id == keys.consumer_tenant_id
    assert _tenants(database) == tenants, "no new tenant"
    wallet = client.get("/v1/wallet", headers={"Authorization": f"Bearer {lost.consumer_key}"})
    assert wallet.json()["wallet"]["balance_fen"] == 1_000_000, "funded once"


def test_the_key_file_sits_beside_the_database_readable_by_its_owner_only(
        database, clock, tmp_path: Path) -> None:
    keys = load_demo(database, parse_authority("CN"), clock).keys
    path = demo_files.key_file(f"sqlite:///{tmp_path / 'suanli-CN.db'}", "CN")
    assert path == tmp_path / "suanli-CN-demo-keys.json"
    assert demo_files.key_file("postgresql+psycopg://u@h/db", "cn.gd") == \
        Path("suanli-CN.GD-demo-keys.json")
    assert demo_files.read_keys(path) is None
    demo_files.write_keys(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_files.read_keys(path) == keys
    path.chmod(0o644)
    with pytest.raises(demo_files.DemoKeyFileError, match="chmod 600"):
        demo_files.read_keys(path)
