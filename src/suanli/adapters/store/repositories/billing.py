"""Billing in the database: tariffs, voucher programmes and grants, billing modes, lease
holds, usage charges and their lines; pure records in, pure records out.

Lock order (services.billing.charging): ledger accounts (the ledger store locks those, in id
order), then voucher programme rows (`lock_programmes`), then voucher rows
(`lock_usable_vouchers`). `lock_pool_for_tariff` serialises a pool's tariff versions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from suanli.adapters.store.billing_tables import (
    BillingProfileRow,
    ChargeLineRow,
    LeaseHoldRow,
    LedgerTransferRow,
    PoolTariffRow,
    UsageChargeRow,
    VoucherProgrammeRow,
    VoucherRow,
)
from suanli.adapters.store.job_tables import JobRow, LeaseRow, UsageRecordRow
from suanli.adapters.store.ledger import insert_if_absent
from suanli.adapters.store.tables import PoolRow, SiteRow, TenantRow
from suanli.domain.billing_records import (
    ChargeLine,
    HoldRecord,
    PoolFacts,
    ProgrammeRecord,
    SiteCosts,
    StoredTariff,
    UsageCharge,
    VoucherRecord,
)
from suanli.domain.bills import BillItem, VoucherShare, WalletMovement
from suanli.domain.ledger import TransferKind
from suanli.domain.market.netting import MAX_SPANS, Span, epoch_us
from suanli.domain.resources import Hub
from suanli.domain.tenants import TenantClass
from suanli.domain.time import aware
from suanli.domain.vouchers import Programme, Voucher

MAX_IN_LIST = 500  # ids in one IN (...)
MAX_ROWS = 10_000  # rows one read returns
_E4 = Decimal(10_000)


def _record(cls: type[Any], row: Any) -> Any:
    """A record from a row whose columns carry the record's field names."""
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


# -- facts of other contexts billing reads ---------------------------------------------------

def get_pool_facts(session: Session, pool_id: str) -> PoolFacts | None:
    row = session.get(PoolRow, pool_id)
    return None if row is None else _record(PoolFacts, row)


def get_site_costs(session: Session, site_id: str) -> SiteCosts | None:
    row = session.get(SiteRow, site_id)
    return None if row is None else SiteCosts(row.id, row.pue, row.electricity_fen_per_kwh)


def get_job_spec(session: Session, job_id: str) -> dict[str, Any] | None:
    """The job's stored spec (JSON), or None when there is no such job."""
    row = session.get(JobRow, job_id)
    return None if row is None else row.spec


def get_tenant_class(session: Session, tenant_id: str) -> str | None:
    row = session.get(TenantRow, tenant_id)
    return None if row is None else row.tenant_class


def _names(session: Session, table: Any, ids: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), MAX_IN_LIST):
        chunk = ordered[start:start + MAX_IN_LIST]
        found.update(session.execute(select(table.id, table.name)
                                     .where(table.id.in_(chunk))).all())
    return found


def job_names(session: Session, job_ids: set[str]) -> dict[str, str]:
    """Job id -> name, for the jobs that exist."""
    return _names(session, JobRow, job_ids)


def pool_names(session: Session, pool_ids: set[str]) -> dict[str, str]:
    """Pool id -> name, for the pools that exist."""
    return _names(session, PoolRow, pool_ids)


# -- tariffs ---------------------------------------------------------------------------------

def latest_tariff(session: Session, pool_id: str) -> StoredTariff | None:
    """The pool's highest tariff version, or None when it has none of its own."""
    row = session.scalars(select(PoolTariffRow).where(PoolTariffRow.pool_id == pool_id)
                          .order_by(PoolTariffRow.version.desc()).limit(1)).first()
    return None if row is None else _record(StoredTariff, row)


def latest_tariffs(session: Session) -> dict[str, StoredTariff]:
    """Every pool's highest tariff version, by pool id (pools without one are absent): the
    tariffs in force for a whole placement table, in one query."""
    latest = (select(PoolTariffRow.pool_id, func.max(PoolTariffRow.version).label("version"))
              .group_by(PoolTariffRow.pool_id).subquery())
    rows = session.scalars(select(PoolTariffRow).join(
        latest, (latest.c.pool_id == PoolTariffRow.pool_id)
        & (latest.c.version == PoolTariffRow.version))).all()
    return {row.pool_id: _record(StoredTariff, row) for row in rows}


def tariff_versions(session: Session, pool_id: str, limit: int) -> list[StoredTariff]:
    """The pool's tariff versions, newest first."""
    assert 1 <= limit <= MAX_ROWS
    rows = session.scalars(select(PoolTariffRow).where(PoolTariffRow.pool_id == pool_id)
                           .order_by(PoolTariffRow.version.desc()).limit(limit)).all()
    return [_record(StoredTariff, row) for row in rows]


def lock_pool_for_tariff(session: Session, pool_id: str) -> None:
    """Lock the pool row: it makes tariff versions sequential under concurrent writes."""
    session.execute(select(PoolRow.id).where(PoolRow.id == pool_id).with_for_update())


def max_tariff_version(session: Session, pool_id: str) -> int:
    """The pool's highest tariff version, 0 when it has none."""
    return session.scalar(select(func.max(PoolTariffRow.version))
                          .where(PoolTariffRow.pool_id == pool_id)) or 0


def add_tariff(session: Session, tariff: StoredTariff) -> None:
    session.add(PoolTariffRow(**_values(tariff)))
    session.flush()


# -- billing modes ---------------------------------------------------------------------------

def billing_mode(session: Session, tenant_id: str) -> str | None:
    """The tenant's chosen billing mode, None when it has no billing profile."""
    row = session.get(BillingProfileRow, tenant_id)
    return None if row is None else row.mode


def save_billing_mode(session: Session, tenant_id: str, mode: str, updated_by: str | None,
                      now: datetime) -> None:
    row = session.get(BillingProfileRow, tenant_id)
    if row is None:
        session.add(BillingProfileRow(tenant_id=tenant_id, mode=mode, updated_by=updated_by,
                                      updated_at=now))
    else:
        row.mode, row.updated_by, row.updated_at = mode, updated_by, now
    session.flush()


def ensure_billing_mode(session: Session, tenant_id: str, mode: str, updated_by: str | None,
                        now: datetime) -> None:
    """Give the tenant this mode unless it has one (a concurrent insert is no error)."""
    insert_if_absent(session, BillingProfileRow, {
        "tenant_id": tenant_id, "mode": mode, "updated_by": updated_by, "updated_at": now})


# -- voucher programmes and vouchers ---------------------------------------------------------

def _optional(values: list[Any] | None,
              convert: Callable[[Any], Any] = str) -> frozenset[Any] | None:
    return None if values is None else frozenset(convert(v) for v in values)


def programme_from_row(row: VoucherProgrammeRow | ProgrammeRecord) -> Programme:
    """The domain programme of a stored one (a row or its record)."""
    return Programme(
        id=row.id, issuer=row.issuer, budget_fen=row.budget_fen,
        coverage=Decimal(row.coverage_e4) / _E4,
        cap_fen_per_tenant=row.cap_fen_per_tenant,
        eligible_tenant_classes=frozenset(TenantClass(c) for c in row.eligible_tenant_classes),
        valid_from=aware(row.valid_from), valid_until=aware(row.valid_until),
        eligible_hubs=_optional(row.eligible_hubs, Hub),
        eligible_provinces=_optional(row.eligible_provinces),
        eligible_provider_ids=_optional(row.eligible_provider_ids),
        western_extra_coverage=Decimal(row.western_extra_coverage_e4) / _E4)


def voucher_from_row(row: VoucherRow | VoucherRecord) -> Voucher:
    """The domain voucher of a stored one (a row or its record)."""
    return Voucher(row.id, row.programme_id, row.tenant_id, row.granted_fen, row.remaining_fen,
                   None if row.valid_until is None else aware(row.valid_until))


def _programme(row: VoucherProgrammeRow) -> ProgrammeRecord:
    record: ProgrammeRecord = _record(ProgrammeRecord, row)
    return record


def _voucher(row: VoucherRow) -> VoucherRecord:
    record: VoucherRecord = _record(VoucherRecord, row)
    return record


def get_programme(session: Session, programme_id: str) -> ProgrammeRecord | None:
    row = session.get(VoucherProgrammeRow, programme_id)
    return None if row is None else _programme(row)


def lock_programme(session: Session, programme_id: str) -> ProgrammeRecord | None:
    """Read the programme row FOR UPDATE (after its fund account, as charges lock them)."""
    row = session.get(VoucherProgrammeRow, programme_id, with_for_update=True)
    return None if row is None else _programme(row)


def add_programme(session: Session, programme: ProgrammeRecord) -> ProgrammeRecord:
    session.add(VoucherProgrammeRow(**_values(programme)))
    session.flush()
    return programme


def list_programmes(session: Session, limit: int, offset: int = 0) -> list[ProgrammeRecord]:
    """Programmes in the order they were created."""
    assert 1 <= limit <= MAX_ROWS
    rows = session.scalars(select(VoucherProgrammeRow).order_by(
        VoucherProgrammeRow.created_at, VoucherProgrammeRow.id).limit(limit).offset(offset))
    return [_programme(row) for row in rows]


def lock_programmes(session: Session, programme_ids: Sequence[str]) -> list[ProgrammeRecord]:
    """Lock programme rows in id order (after the ledger accounts, before voucher rows)."""
    rows = session.scalars(
        select(VoucherProgrammeRow).where(VoucherProgrammeRow.id.in_(programme_ids))
        .order_by(VoucherProgrammeRow.id).with_for_update()).all()
    return [_programme(row) for row in rows]


def programmes_with_usable_vouchers(session: Session, tenant_id: str) -> list[str]:
    """Ids of the programmes the tenant holds a voucher with money left from."""
    return list(session.scalars(
        select(VoucherRow.programme_id).where(VoucherRow.tenant_id == tenant_id,
                                              VoucherRow.remaining_fen > 0).distinct()).all())


def lock_usable_vouchers(session: Session, tenant_id: str, programme_ids: Sequence[str],
                         limit: int) -> list[VoucherRecord]:
    """Lock the tenant's vouchers with money left from these programmes, in id order."""
    rows = session.scalars(
        select(VoucherRow).where(VoucherRow.tenant_id == tenant_id,
                                 VoucherRow.programme_id.in_(programme_ids),
                                 VoucherRow.remaining_fen > 0)
        .order_by(VoucherRow.id).limit(limit).with_for_update()).all()
    return [_voucher(row) for row in rows]


def voucher_use_by_programme(session: Session, tenant_id: str,
                             programme_ids: Sequence[str]) -> dict[str, int]:
    """Programme id -> fen the tenant's vouchers from it have paid so far."""
    used = session.execute(
        select(VoucherRow.programme_id,
               func.sum(VoucherRow.granted_fen - VoucherRow.remaining_fen))
        .where(VoucherRow.tenant_id == tenant_id, VoucherRow.programme_id.in_(programme_ids))
        .group_by(VoucherRow.programme_id)).all()
    return {programme_id: int(total or 0) for programme_id, total in used}


def set_voucher_remaining(session: Session, voucher_id: str, remaining_fen: int) -> None:
    """What is left of a (locked) voucher; never more than was left."""
    row = session.get(VoucherRow, voucher_id)
    assert row is not None and remaining_fen <= row.remaining_fen
    row.remaining_fen = remaining_fen


def promised_fen(session: Session, programme_id: str, now: datetime) -> int:
    """What the programme's vouchers usable at `now` can still claim."""
    return int(session.scalar(
        select(func.coalesce(func.sum(VoucherRow.remaining_fen), 0))
        .where(VoucherRow.programme_id == programme_id, VoucherRow.remaining_fen > 0,
               (VoucherRow.valid_until.is_(None)) | (VoucherRow.valid_until > now))) or 0)


def granted_totals(session: Session, programme_id: str) -> tuple[int, int]:
    """(fen granted, number of vouchers) of the programme."""
    granted, count = session.execute(
        select(func.coalesce(func.sum(VoucherRow.granted_fen), 0), func.count())
        .where(VoucherRow.programme_id == programme_id)).one()
    return int(granted), int(count)


def granted_to_tenant_fen(session: Session, programme_id: str, tenant_id: str) -> int:
    """The fen the tenant has been granted from the programme."""
    return int(session.scalar(select(func.coalesce(func.sum(VoucherRow.granted_fen), 0))
                              .where(VoucherRow.programme_id == programme_id,
                                     VoucherRow.tenant_id == tenant_id)) or 0)


def voucher_by_key(session: Session, programme_id: str,
                   idempotency_key: str) -> VoucherRecord | None:
    """The grant made under this idempotency key of the programme, if any."""
    row = session.scalar(select(VoucherRow).where(VoucherRow.programme_id == programme_id,
                                                  VoucherRow.idempotency_key == idempotency_key))
    return None if row is None else _voucher(row)


def add_voucher(session: Session, voucher: VoucherRecord) -> VoucherRecord:
    """Insert and flush (an IntegrityError propagates: the caller holds a savepoint)."""
    session.add(VoucherRow(**_values(voucher)))
    session.flush()
    return voucher


def vouchers_of_tenant(session: Session, tenant_id: str, limit: int) -> list[VoucherRecord]:
    assert 1 <= limit <= MAX_ROWS
    rows = session.scalars(select(VoucherRow).where(VoucherRow.tenant_id == tenant_id)
                           .order_by(VoucherRow.created_at, VoucherRow.id).limit(limit))
    return [_voucher(row) for row in rows]


def vouchers_of_programme(session: Session, programme_id: str, limit: int,
                          offset: int = 0) -> list[VoucherRecord]:
    assert 1 <= limit <= MAX_ROWS
    rows = session.scalars(select(VoucherRow).where(VoucherRow.programme_id == programme_id)
                           .order_by(VoucherRow.created_at, VoucherRow.id)
                           .limit(limit).offset(offset))
    return [_voucher(row) for row in rows]


# -- lease holds -----------------------------------------------------------------------------

def _hold(row: LeaseHoldRow) -> HoldRecord:
    record: HoldRecord = _record(HoldRecord, row)
    return record


def get_hold(session: Session, lease_id: str) -> HoldRecord | None:
    row = session.get(LeaseHoldRow, lease_id)
    return None if row is None else _hold(row)


def add_hold(session: Session, hold: HoldRecord) -> HoldRecord:
    session.add(LeaseHoldRow(**_values(hold)))
    session.flush()
    return hold


def set_hold_state(session: Session, lease_id: str, state: str, settled_at: datetime) -> None:
    """The hold settled: posted, voided or expired."""
    row = session.get(LeaseHoldRow, lease_id)
    assert row is not None, lease_id
    row.state, row.settled_at = state, settled_at


def stale_open_holds(session: Session, open_state: str, active_lease_state: str,
                     limit: int) -> list[HoldRecord]:
    """Holds still open whose lease is no longer active, in lease id order."""
    assert 1 <= limit <= MAX_ROWS
    rows = session.scalars(
        select(LeaseHoldRow).join(LeaseRow, LeaseRow.id == LeaseHoldRow.lease_id)
        .where(LeaseHoldRow.state == open_state, LeaseRow.state != active_lease_state)
        .order_by(LeaseHoldRow.lease_id).limit(limit)).all()
    return [_hold(row) for row in rows]


def set_holds_state_by_transfer(session: Session, transfer_ids: Iterable[str], state: str,
                                settled_at: datetime) -> None:
    """Every hold whose ledger transfer is one of these gets this state."""
    ids = list(transfer_ids)
    for start in range(0, len(ids), MAX_IN_LIST):
        for row in session.scalars(select(LeaseHoldRow).where(
                LeaseHoldRow.transfer_id.in_(ids[start:start + MAX_IN_LIST]))):
            row.state, row.settled_at = state, settled_at


# -- usage charges ---------------------------------------------------------------------------

def _charge(row: UsageChargeRow) -> UsageCharge:
    record: UsageCharge = _record(UsageCharge, row)
    return record


def get_charge(session: Session, usage_record_id: str) -> UsageCharge | None:
    row = session.get(UsageChargeRow, usage_record_id)
    return None if row is None else _charge(row)


def add_charge(session: Session, charge: UsageCharge,
               lines: Sequence[ChargeLine]) -> UsageCharge:
    """Insert the charge, flush, then its lines."""
    session.add(UsageChargeRow(**_values(charge)))
    session.flush()
    for line in lines:
        session.add(ChargeLineRow(**_values(line)))
    return charge


def quantity_this_month_micro(session: Session, tenant_id: str, pool_id: str, period: str,
                              basis: str) -> int:
    """The tenant's charged quantity on the pool in the period, in this basis."""
    return int(session.scalar(
        select(func.coalesce(func.sum(UsageChargeRow.quantity_micro), 0))
        .where(UsageChargeRow.tenant_id == tenant_id, UsageChargeRow.pool_id == pool_id,
               UsageChargeRow.period == period, UsageChargeRow.basis == basis)) or 0)


def charged_spans(session: Session, tenant_id: str, pool_id: str, start: datetime,
                  end: datetime) -> list[Span]:
    """The billed intervals (with their devices) of the tenant's charged usage on the pool
    that overlap [start, end): what earlier charges drew from its reservations."""
    statement = (select(UsageChargeRow.started_at, UsageChargeRow.ended_at,
                        UsageRecordRow.devices)
                 .join(UsageRecordRow, UsageRecordRow.id == UsageChargeRow.usage_record_id)
                 .where(UsageChargeRow.tenant_id == tenant_id, UsageChargeRow.pool_id == pool_id,
                        UsageChargeRow.started_at < end, UsageChargeRow.ended_at > start)
                 .limit(MAX_SPANS))
    return [Span(epoch_us(a), epoch_us(b), devices)
            for a, b, devices in session.execute(statement)]


def job_rated_fen(session: Session, job_id: str, pool_id: str) -> int:
    """What the job's earlier usage on the pool was rated at."""
    return int(session.scalar(
        select(func.coalesce(func.sum(UsageChargeRow.amount_fen), 0))
        .where(UsageChargeRow.job_id == job_id, UsageChargeRow.pool_id == pool_id)) or 0)


def _charges_where(session: Session, column: Any, tenant_id: str, period: str,
                   limit: int) -> list[UsageCharge]:
    assert 1 <= limit <= MAX_ROWS + 1
    rows = session.scalars(select(UsageChargeRow).where(column == tenant_id,
                                                        UsageChargeRow.period == period)
                           .order_by(UsageChargeRow.ended_at, UsageChargeRow.usage_record_id)
                           .limit(limit)).all()
    return [_charge(row) for row in rows]


def charges_of_tenant(session: Session, tenant_id: str, period: str,
                      limit: int) -> list[UsageCharge]:
    """The tenant's charges of the period, by end time."""
    return _charges_where(session, UsageChargeRow.tenant_id, tenant_id, period, limit)


def charges_of_provider(session: Session, provider_tenant_id: str, period: str,
                        limit: int) -> list[UsageCharge]:
    """The charges of the period on the provider's pools, by end time."""
    return _charges_where(session, UsageChargeRow.provider_tenant_id, provider_tenant_id,
                          period, limit)


def charge_items(session: Session, usage_record_ids: Sequence[str]
                 ) -> dict[str, tuple[BillItem, ...]]:
    """Usage record id -> its rated lines as bill items, in line order."""
    found: dict[str, list[BillItem]] = {}
    for chunk in range(0, len(usage_record_ids), MAX_IN_LIST):
        rows = session.scalars(select(ChargeLineRow).where(
            ChargeLineRow.usage_record_id.in_(usage_record_ids[chunk:chunk + MAX_IN_LIST]))
            .order_by(ChargeLineRow.usage_record_id, ChargeLineRow.seq)).all()
        for row in rows:
            found.setdefault(row.usage_record_id, []).append(BillItem(
                kind=row.kind, tier=row.tier, band=row.band, quantity_micro=row.quantity_micro,
                unit_price_fen_e4=row.unit_price_fen_e4, amount_fen=row.amount_fen,
                discount_fen=row.discount_fen, payable_fen=row.payable_fen,
                vouchers=tuple(VoucherShare(v["voucher_id"], v["programme_id"],
                                            v["discount_fen"]) for v in row.vouchers or ())))
    return {record_id: tuple(items) for record_id, items in found.items()}


def wallet_movement(session: Session, account_id: str, start: datetime,
                    end: datetime) -> WalletMovement:
    """The account's posted transfers: its balance before `start` and its movement up to
    `end`, in total and by transfer code."""
    t = LedgerTransferRow
    moved = t.kind.in_((TransferKind.POSTED.value, TransferKind.POST_PENDING.value))

    def total(side: Any, *conditions: Any) -> int:
        return int(session.scalar(select(func.coalesce(func.sum(t.amount_fen), 0))
                                  .where(side == account_id, moved, *conditions)) or 0)

    before, within = t.timestamp < start, and_(t.timestamp >= start, t.timestamp < end)
    opening = total(t.credit_account_id, before) - total(t.debit_account_id, before)
    credits, debits = total(t.credit_account_id, within), total(t.debit_account_id, within)
    by_code = dict(session.execute(
        select(t.code, func.sum(t.amount_fen)).where(
            or_(t.debit_account_id == account_id, t.credit_account_id == account_id),
            moved, within).group_by(t.code)).all())
    return WalletMovement(account_id=account_id, opening_balance_fen=opening,
                          credits_fen=credits, debits_fen=debits,
                          by_code_fen={code: int(v) for code, v in sorted(by_code.items())})
