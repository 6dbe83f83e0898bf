"""The federation, roaming and clearing repositories on a real database: each main record
goes in and comes back out equal (times compared as instants), and the reads that filter,
lock or sum see what was written."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from suanli.adapters.store import Database
from suanli.adapters.store.repositories import clearing as clearing_store
from suanli.adapters.store.repositories import federation as federation_store
from suanli.adapters.store.repositories import roaming as roaming_store
from suanli.bootstrap import parse_authority
from suanli.domain.federation_records import (
    CatalogGroup,
    CatalogOrigin,
    ClearingCycle,
    ClearingStatement,
    Enrolment,
    Entitlement,
    GuestJob,
    NewDispute,
    Platform,
    PlatformKey,
    RoamingRecord,
)
from suanli.domain.tenants import Role, TenantClass
from suanli.domain.time import aware
from suanli.services import tenants

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _same(left: Any, right: Any) -> None:
    """Equal field by field, datetimes as instants (SQLite hands them back naive UTC)."""
    assert type(left) is type(right)
    for f in fields(left):
        a, b = getattr(left, f.name), getattr(right, f.name)
        if isinstance(a, datetime) and isinstance(b, datetime):
            assert aware(a) == aware(b), f.name
        else:
            assert a == b, f.name


def _tenant(database: Database) -> str:
    with database.unit_of_work() as session:
        tenant = tenants.create_tenant(session, parse_authority("CN"), "acme", Role.CONSUMER,
                                       TenantClass.ENTERPRISE, NOW)
        return str(tenant.tenant_id)


def test_platforms_keys_enrolments_and_state_round_trip(database: Database) -> None:
    operator = _tenant(database)
    gd = Platform(authority="CN.GD", name="Guangdong", level="regional", parent="CN",
                  endpoint="https://gd.test", is_self=False, guest_tenant_id=None,
                  state="active", created_at=NOW, updated_at=NOW)
    me = replace(gd, authority="CN", name="National", level="national", parent=None,
                 is_self=True)
    key = PlatformKey(key_id="CN.GD:0123456789abcdef", authority="CN.GD",
                      public_key="A" * 43, created_at=NOW)
    enrolment = Enrolment(authority="CN.GD", token_sha256="f" * 64, level="regional",
                          name="Guangdong", created_by=operator, created_at=NOW)
    with database.unit_of_work() as session:
        federation_store.save_platform(session, gd)
        federation_store.save_platform(session, me)
        federation_store.save_key(session, key)
        federation_store.save_enrolment(session, enrolment)
        federation_store.put_state(session, "last_sync", {"at": 1.5}, NOW)
    with database.unit_of_work() as session:
        held = federation_store.get_platform(session, "CN.GD")
        assert held is not None
        _same(held, gd)
        mine = federation_store.self_platform(session)
        assert mine is not None and mine.authority == "CN"
        assert [p.authority for p in federation_store.list_platforms(session)] == ["CN", "CN.GD"]
        assert federation_store.count_platforms(session) == 2
        stored_key = federation_store.get_key(session, key.key_id)
        assert stored_key is not None
        _same(stored_key, key)
        newest = federation_store.newest_active_key(session, "CN.GD")
        assert newest is not None and newest.key_id == key.key_id
        stored_enrolment = federation_store.get_enrolment(session, "CN.GD")
        assert stored_enrolment is not None
        _same(stored_enrolment, enrolment)
        assert federation_store.get_state(session, "last_sync") == {"at": 1.5}
        # an update writes the changed fields; revoking a key hides it from newest_active_key
        federation_store.save_platform(session, replace(held, state="suspended",
                                                        last_seen_at=NOW))
        federation_store.save_key(session, replace(key, revoked_at=NOW))
    with database.unit_of_work() as session:
        held = federation_store.get_platform(session, "CN.GD")
        assert held is not None and held.state == "suspended"
        assert held.last_seen_at is not None and aware(held.last_seen_at) == NOW
        assert federation_store.newest_active_key(session, "CN.GD") is None


def test_nonces_are_taken_once_and_purged_after_expiry(database: Database) -> None:
    with database.unit_of_work() as session:
        assert federation_store.add_nonce(session, "CN.GD:k", "n" * 16, NOW)
        assert not federation_store.add_nonce(session, "CN.GD:k", "n" * 16, NOW)
    with database.unit_of_work() as session:
        assert federation_store.purge_nonces(session, NOW + timedelta(seconds=1)) == 1


def test_catalog_groups_and_origins_round_trip(database: Database) -> None:
    group = CatalogGroup(origin="CN.SC", accelerator="nvidia-a100-80g", province="CN-SC",
                         hub="chengyu", vendor="NVIDIA", device_kind="gpu", pools=2,
                         devices=16, free_devices=8, max_free_in_pool=8,
                         min_price_fen_per_device_hour=1200,
                         min_unit_prices={"training": "3.5"})
    origin = CatalogOrigin(origin="CN.SC", generated_at=NOW, received_at=NOW, via="CN.SC",
                           digest="d" * 64, groups=1)
    sc = Platform(authority="CN.SC", name="Sichuan", level="regional", parent="CN",
                  endpoint="https://sc.test", is_self=False, guest_tenant_id=None,
                  state="active", created_at=NOW, updated_at=NOW)
    with database.unit_of_work() as session:
        federation_store.save_platform(session, sc)
        federation_store.replace_groups(session, "CN.SC", [group])
        federation_store.save_origin(session, origin)
    with database.unit_of_work() as session:
        assert federation_store.groups_of(session, "CN.SC") == [group]
        held = federation_store.get_origin(session, "CN.SC")
        assert held is not None
        _same(held, origin)
        found = federation_store.query_groups(
            session, accelerator=None, vendor="nvidia", device_kind=None, province=None,
            hub=None, platform="CN", min_free_devices=4, limit=10)
        assert [g for g, _ in found] == [group]
        offers = federation_store.remote_groups(session, "CN", min_free_in_pool=8,
                                                accelerators=["nvidia-a100-80g"],
                                                provinces=None, limit=10)
        assert [o.group for o in offers] == [group]
        assert federation_store.remote_groups(session, "CN", min_free_in_pool=9,
                                              accelerators=None, provinces=None,
                                              limit=10) == []
        federation_store.delete_origin(session, "CN.SC")
    with database.unit_of_work() as session:
        assert federation_store.get_origin(session, "CN.SC") is None
        assert federation_store.groups_of(session, "CN.SC") == []


def test_guest_jobs_round_trip(database: Database) -> None:
    guest = GuestJob(home="CN.GD", home_job_id="job-1", attempt=1, job_id=None,
                     outcome="withdrawn", reason="withdrawn by the home platform",
                     home_tenant_id="", spec_sha256="", pushed_state=None,
                     pushed_digest=None, next_push_at=None, tries=0, created_at=NOW,
                     updated_at=NOW)
    with database.unit_of_work() as session:
        federation_store.save_guest_job(session, guest)
    with database.unit_of_work() as session:
        held = federation_store.get_guest_job(session, "CN.GD", "job-1", 1)
        assert held is not None
        _same(held, guest)


def _record(record_id: str, role: str, amount_fen: int, **changes: Any) -> RoamingRecord:
    return replace(RoamingRecord(
        id=record_id, role=role, home="CN.GD", host="CN.SC", home_job_id="job-1",
        host_job_id="hjob-1", tenant_id="tenant-1", business_date="2026-11-01",
        amount_fen=amount_fen, units_micro=1_000_000, document={"record_id": record_id},
        signature="s" * 86, key_id="CN.SC:0123456789abcdef", digest="d" * 64,
        state="issued", tries=0, next_try_at=NOW, charge={"provider_fen": amount_fen},
        cycle_id=None, settled_at=None, created_at=NOW), **changes)


def test_roaming_records_disputes_and_a_clearing_cycle(database: Database) -> None:
    first, second = _record("rec-1", "host", 700), _record("rec-2", "host", 300)
    with database.unit_of_work() as session:
        roaming_store.add_record(session, first)
        roaming_store.add_record(session, second)
    with database.unit_of_work() as session:
        held = roaming_store.get_record(session, "rec-1")
        assert held is not None
        _same(held, first)
        assert roaming_store.amount_issued_for_host_job(session, "host", "hjob-1") == 1000
        due = roaming_store.records_due(session, "host", "issued", NOW, 10)
        assert sorted(r.id for r in due) == ["rec-1", "rec-2"]
        with_peer = roaming_store.records_with_peer(session, "CN.GD", home="home", host="host",
                                                    since="2026-11-01", through=None,
                                                    after="rec-1", limit=10)
        assert [r.id for r in with_peer] == ["rec-2"]
        roaming_store.save_record(session, replace(held, state="delivered", next_try_at=None))
        # the house's cycle: take the records in, settle one, let the other go
        clearing_store.take_records_into_cycle(session, "2026-11-01.01", "2026-11-01",
                                               also_from_other_cycles=True, keep=[])
        sides = clearing_store.cycle_sides(session, "2026-11-01.01", None, 10)
        assert [(s.id, s.amount_fen) for s in sides] == [("rec-1", 700), ("rec-2", 300)]
        clearing_store.mark_settled(session, ["rec-1"], NOW)
        clearing_store.release_records(session, "2026-11-01.01", ["rec-2"])
    with database.unit_of_work() as session:
        settled = roaming_store.get_record(session, "rec-1")
        released = roaming_store.get_record(session, "rec-2")
        assert settled is not None and settled.state == "delivered"
        assert settled.settled_at is not None and released is not None
        assert released.cycle_id is None
        assert [s.id for s in clearing_store.unsettled_sides(session)] == ["rec-2"]

        new = NewDispute(cycle_id=None, record_id="rec-2", raised_by="CN.GD",
                         counterparty="CN.SC", kind="mismatch", detail="differs",
                         amount_fen=300, created_at=NOW)
        opened = roaming_store.add_dispute(session, new)
        found = roaming_store.find_open_dispute(session, new)
        assert found is not None and found.id == opened.id
        roaming_store.save_dispute(session, replace(opened, state="resolved",
                                                    resolution="paid", resolved_at=NOW))
    with database.unit_of_work() as session:
        assert roaming_store.find_open_dispute(session, new) is None
        [resolved] = roaming_store.list_disputes(session, "resolved", 10)
        assert resolved.resolution == "paid"


def test_cycles_and_statements_round_trip(database: Database) -> None:
    cycle = ClearingCycle(id="2026-11-01.01", through_date="2026-11-01", state="issued",
                          summary={"records_cleared": 2}, created_by="ops", created_at=NOW)
    statement = ClearingStatement(cycle_id=cycle.id, platform="CN.GD", role="issued",
                                  document={"net_fen": -400}, signature="s" * 86,
                                  key_id="CN:0123456789abcdef", net_fen=-400, state="issued",
                                  tries=0, next_try_at=NOW, created_at=NOW, updated_at=NOW)
    with database.unit_of_work() as session:
        clearing_store.add_cycle(session, cycle)
        clearing_store.add_statement(session, statement)
    with database.unit_of_work() as session:
        [held_cycle] = clearing_store.list_cycles(session, 5)
        _same(held_cycle, cycle)
        assert clearing_store.last_cycle_id(session, "2026-11-01") == cycle.id
        held = clearing_store.get_statement(session, cycle.id, "CN.GD")
        assert held is not None
        _same(held, statement)
        assert clearing_store.statement_cycles(session, "CN.GD", "issued", "issued", 10) == [
            cycle.id]
        assert [s.platform for s in clearing_store.statements_due(session, "issued", "issued",
                                                                  NOW, 10)] == ["CN.GD"]
        clearing_store.save_statement(session, replace(held, state="delivered",
                                                       next_try_at=None))
    with database.unit_of_work() as session:
        assert clearing_store.has_statement_in_state(session, "CN.GD", "delivered")
        assert clearing_store.statements_due(session, "issued", "issued", NOW, 10) == []


def test_entitlements_round_trip_and_lock_in_draw_order(database: Database) -> None:
    tenant_id = _tenant(database)
    later = Entitlement(id="ent_later", tenant_id=tenant_id, idempotency_key="k1",
                        units_micro=5_000_000, remaining_units_micro=5_000_000,
                        price_fen=500, remaining_fen=500, valid_until=None, created_at=NOW)
    sooner = replace(later, id="ent_sooner", idempotency_key="k2",
                     valid_until=NOW + timedelta(days=30))
    expired = replace(later, id="ent_expired", idempotency_key="k3",
                      valid_until=NOW - timedelta(days=1))
    with database.unit_of_work() as session:
        assert roaming_store.add_entitlement(session, later)
        assert roaming_store.add_entitlement(session, sooner)
        assert roaming_store.add_entitlement(session, expired)
        assert not roaming_store.add_entitlement(session, replace(later, id="ent_other"))
    with database.unit_of_work() as session:
        held = roaming_store.get_entitlement(session, "ent_later")
        assert held is not None
        _same(held, later)
        drawable = roaming_store.lock_drawable_entitlements(session, tenant_id, NOW, 10)
        assert [e.id for e in drawable] == ["ent_sooner", "ent_later"]
        roaming_store.save_entitlement(session, replace(drawable[0], remaining_fen=100,
                                                        remaining_units_micro=1_000_000))
    with database.unit_of_work() as session:
        listed = roaming_store.list_entitlements(session, tenant_id)
        assert {e.id: e.remaining_fen for e in listed} == {
            "ent_later": 500, "ent_sooner": 100, "ent_expired": 500}
