"""Billing's records round-trip through repositories/billing.py on a real database (SQLite, or
PostgreSQL with SUANLI_TEST_DATABASE_URL): what is written is what is read back."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import billing as repo
from suanli.domain.accounts import POSTPAID, PREPAID, HoldState, fund_account_id
from suanli.domain.billing_records import ProgrammeRecord, StoredTariff, VoucherRecord
from suanli.domain.jobs import JobState
from suanli.domain.ledger import Account, AccountKind
from suanli.domain.metering import billing_period
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.domain.time import aware
from suanli.services.billing import vouchers as vouchers_store
from suanli.services.dispatch import agents
from tests.api.conftest import app, client, make_tenant, operator, provider  # noqa: F401
from tests.billing.conftest import TARIFF, World, world  # noqa: F401


def test_tariff_versions_round_trip(world: World, database, clock) -> None:  # noqa: F811
    now = clock.now()
    first = StoredTariff(f"{world.pool_id}/v1", world.pool_id, 1,
                         {"id": f"{world.pool_id}/v1", "pool_id": world.pool_id, **TARIFF},
                         world.provider.id, now)
    second = StoredTariff(f"{world.pool_id}/v2", world.pool_id, 2, {**first.document,
                                                                    "id": f"{world.pool_id}/v2"},
                          world.provider.id, now + timedelta(seconds=1))
    with database.unit_of_work() as session:
        assert repo.latest_tariff(session, world.pool_id) is None
        assert repo.max_tariff_version(session, world.pool_id) == 0
        repo.lock_pool_for_tariff(session, world.pool_id)
        repo.add_tariff(session, first)
        repo.add_tariff(session, second)
    with database.unit_of_work() as session:
        assert _same(repo.latest_tariff(session, world.pool_id), second)
        versions = repo.tariff_versions(session, world.pool_id, 10)
        assert [_same(v, w) for v, w in zip(versions, [second, first], strict=True)] == [
            True, True]
        assert [v.version for v in repo.tariff_versions(session, world.pool_id, 1)] == [2]
        assert repo.max_tariff_version(session, world.pool_id) == 2
        pool = repo.get_pool_facts(session, world.pool_id)
        assert pool is not None and pool.price_fen_per_device_hour == 900
        site = repo.get_site_costs(session, pool.site_id)
        assert site is not None and Decimal(site.pue) == Decimal("1.15")
        assert site.electricity_fen_per_kwh == 32
        assert repo.pool_names(session, {pool.id, "nope"}) == {pool.id: "a800"}


def test_programmes_vouchers_and_billing_modes_round_trip(world: World, make_tenant,  # noqa: F811
                                                        database, clock) -> None:
    now = clock.now()
    tenant = make_tenant("consumer", "a start-up", "start-up")
    programme = ProgrammeRecord(
        id="rt-2026", name="Round trip", issuer="Test DRC", budget_fen=10_000,
        coverage_e4=3_000, western_extra_coverage_e4=1_000, cap_fen_per_tenant=5_000,
        eligible_tenant_classes=["start-up"], eligible_hubs=["ningxia"],
        eligible_provinces=None, eligible_provider_ids=None,
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30),
        fund_account_id=fund_account_id("rt-2026"), created_by=world.operator.id,
        created_at=now)
    voucher = VoucherRecord("v-rt-1", programme.id, tenant.id, "key-1", 2_000, 2_000,
                            now + timedelta(days=10), now)
    with database.unit_of_work() as session:
        ledger_store.open_account(session, Account.open(programme.fund_account_id,
                                                        AccountKind.PROGRAMME_FUND), now)
        assert repo.add_programme(session, programme) == programme
        assert repo.add_voucher(session, voucher) == voucher
        assert repo.billing_mode(session, tenant.id) is None
        repo.ensure_billing_mode(session, tenant.id, PREPAID, world.operator.id, now)
        repo.ensure_billing_mode(session, tenant.id, POSTPAID, world.operator.id, now)
    with database.unit_of_work() as session:
        assert repo.billing_mode(session, tenant.id) == PREPAID  # the first one stays
        repo.save_billing_mode(session, tenant.id, POSTPAID, world.operator.id, now)
        assert repo.billing_mode(session, tenant.id) == POSTPAID
        stored = repo.get_programme(session, programme.id)
        assert stored is not None
        assert _same(stored, programme)
        locked = repo.lock_programme(session, programme.id)
        assert locked is not None and _same(locked, programme)
        assert repo.get_programme(session, "nope") is None
        domain = repo.programme_from_row(stored)
        assert domain.coverage == Decimal("0.3") and domain.western_extra_coverage == Decimal(
            "0.1")
        assert domain.eligible_tenant_classes == frozenset({TenantClass.START_UP})
        assert [_same(p, programme) for p in repo.list_programmes(session, 10)] == [True]
        assert [p.id for p in repo.lock_programmes(session, [programme.id])] == [programme.id]
        assert repo.programmes_with_usable_vouchers(session, tenant.id) == [programme.id]
        [usable] = repo.lock_usable_vouchers(session, tenant.id, [programme.id], 10)
        assert _same(usable, voucher)
        assert _same(repo.voucher_by_key(session, programme.id, "key-1"), voucher)
        assert repo.voucher_by_key(session, programme.id, "key-2") is None
        repo.set_voucher_remaining(session, voucher.id, 1_500)
    with database.unit_of_work() as session:
        [mine] = repo.vouchers_of_tenant(session, tenant.id, 10)
        assert mine.remaining_fen == 1_500 and mine.granted_fen == 2_000
        assert repo.voucher_from_row(mine).remaining_fen == 1_500
        assert [v.id for v in repo.vouchers_of_programme(session, programme.id, 10)] == [
            voucher.id]
        assert repo.voucher_use_by_programme(session, tenant.id, [programme.id]) == {
            programme.id: 500}
        assert repo.granted_totals(session, programme.id) == (2_000, 1)
        assert repo.granted_to_tenant_fen(session, programme.id, tenant.id) == 2_000
        assert repo.promised_fen(session, programme.id, now) == 1_500
        assert repo.promised_fen(session, programme.id, now + timedelta(days=11)) == 0
        # what the roaming entitlements read through the vouchers service
        record = vouchers_store.get_programme(session, programme.id, lock=True)
        assert vouchers_store.programme_from_row(record) == domain


def test_holds_charges_and_bill_reads_round_trip(world: World, make_tenant,  # noqa: F811
                                                 database, clock) -> None:
    tenant = make_tenant("consumer", "a start-up", "start-up")
    assert world.deposit(tenant, 1_000_000, "d1").status_code == 201
    job = world.submit(tenant, "j1")
    [assignment] = world.claim()
    lease_id = assignment["lease_id"]
    with database.unit_of_work() as session:
        hold = repo.get_hold(session, lease_id)
        assert hold is not None and hold.state == HoldState.OPEN.value
        assert hold.job_id == job["id"] and hold.tenant_id == tenant.id
        assert hold.amount_fen > 0 and hold.transfer_id == f"{lease_id}:hold"
        assert hold.tariff["pool_id"] == world.pool_id
        assert repo.stale_open_holds(session, HoldState.OPEN.value, "active", 10) == []
        assert repo.get_job_spec(session, job["id"])["time_limit_s"] == 3600
        assert repo.get_tenant_class(session, tenant.id) == "start-up"
        assert repo.job_names(session, {job["id"]}) == {job["id"]: "j1"}
    clock.advance(1800)
    with database.unit_of_work() as session:
        agents.report(session, Principal(world.provider.id, Role.PROVIDER), world.agent_id,
                      lease_id, assignment["fence"], JobState.SUCCEEDED, clock.now(),
                      usage={"wall_s": 1800.0})
    with database.unit_of_work() as session:
        hold = repo.get_hold(session, lease_id)
        assert hold is not None and hold.state == HoldState.POSTED.value
        [charge] = repo.charges_of_tenant(session, tenant.id, charge_period(clock), 10)
        assert charge.job_id == job["id"] and charge.amount_fen > 0
        assert charge.payable_fen == charge.amount_fen - charge.discount_fen
        assert repo.get_charge(session, charge.usage_record_id) == charge
        assert repo.charges_of_provider(session, world.provider.id, charge.period, 10) == [
            charge]
        assert repo.quantity_this_month_micro(session, tenant.id, world.pool_id,
                                              charge.period, charge.basis) == (
            charge.quantity_micro)
        assert repo.job_rated_fen(session, job["id"], world.pool_id) == charge.amount_fen
        items = repo.charge_items(session, [charge.usage_record_id])
        assert sum(i.amount_fen for i in items[charge.usage_record_id]) == charge.amount_fen
        repo.set_hold_state(session, lease_id, HoldState.VOIDED.value, clock.now())
    with database.unit_of_work() as session:
        hold = repo.get_hold(session, lease_id)
        assert hold is not None and hold.state == HoldState.VOIDED.value


def charge_period(clock) -> str:  # type: ignore[no-untyped-def]
    year, month = billing_period(clock.now())
    return f"{year:04d}-{month:02d}"


def _same(a: object, b: object) -> bool:
    """Equal field by field, times compared as instants (SQLite hands back naive UTC)."""

    def norm(value: object) -> object:
        return aware(value) if isinstance(value, datetime) else value

    return all(norm(getattr(a, f.name)) == norm(getattr(b, f.name))
               for f in fields(b))  # type: ignore[arg-type]
