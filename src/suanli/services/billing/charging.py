"""Charging one usage record: meter it, rate it, discount it with vouchers, post the money.

Lock order, the same on every billing path so that none waits on another in a cycle:
ledger accounts (one statement, in id order), then voucher programme rows, then voucher rows.
The wallet's lock also serialises a tenant's charges, so month-to-date tiers and per-tenant
voucher caps are read and written by one transaction at a time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import billing as billing_repo
from suanli.adapters.store.repositories import market as market_repo
from suanli.domain.accounts import (
    FEES_ACCOUNT,
    PREPAID,
    HoldState,
    fund_account_id,
    receivable_account_id,
    wallet_account_id,
)
from suanli.domain.billing_records import (
    ChargeableUsage,
    ChargeLine,
    HoldRecord,
    PoolFacts,
    SiteCosts,
    UsageCharge,
)
from suanli.domain.jobs import JobSpec
from suanli.domain.ledger import Account, Transfer, TransferState, post_pending, void_pending
from suanli.domain.market.netting import Span, covered_device_us, covered_quantity_micro, epoch_us
from suanli.domain.metering import (
    MeteredUsage,
    UsageRecord,
    billed_record,
    billing_period,
    meter,
    record_period,
)
from suanli.domain.rating import RatedUsage, rate_usage
from suanli.domain.resources import Hub
from suanli.domain.tariffs import QUANTITY_DECIMALS, Tariff
from suanli.domain.tenants import TenantClass
from suanli.domain.time import aware
from suanli.domain.vouchers import (
    LineCategory,
    LineContext,
    ProgrammeBudget,
    Voucher,
    VoucherAllocation,
    apply_vouchers,
)
from suanli.services.billing import tariffs as tariff_store
from suanli.services.billing import wallets as billing

PLATFORM_FEE_RATE = Decimal("0.05")  # of what the provider earns (paid + voucher-covered)
RESERVATION_LINE = "reservation"  # a bill item: usage on capacity bought on the exchange
MAX_VOUCHERS_USED = 64


@dataclass
class _Money:
    transfers: list[Transfer]
    collected_fen: int
    unpaid_fen: int
    fee_fen: int
    held_fen: int
    released_fen: int
    hold_expired: bool = False  # the ledger hold was past its timeout: expired now


def domain_record(usage: ChargeableUsage, time_limit_s: int) -> UsageRecord | None:
    """The record as rating sees it (domain.metering.billed_record); None when nothing ran."""
    return billed_record(usage.id, usage.lease_id, usage.job_id, usage.tenant_id,
                         usage.pool_id, usage.devices, aware(usage.ended_at), usage.wall_s,
                         time_limit_s,
                         None if usage.energy_estimated else round(usage.energy_wh))


def charge(session: Session, usage: ChargeableUsage, now: datetime) -> UsageCharge:
    """Charge a usage record once; a second call returns the first charge."""
    existing = billing_repo.get_charge(session, usage.id)
    if existing is not None:
        return existing
    job_spec = billing_repo.get_job_spec(session, usage.job_id)
    pool = billing_repo.get_pool_facts(session, usage.pool_id)
    assert job_spec is not None and pool is not None
    site = billing_repo.get_site_costs(session, pool.site_id)
    tenant_class = billing_repo.get_tenant_class(session, usage.tenant_id)
    assert site is not None and tenant_class is not None
    spec = JobSpec.from_json(job_spec)
    hold = billing_repo.get_hold(session, usage.lease_id)
    tariff = (tariff_store.stored_tariff(hold.tariff) if hold is not None
              else tariff_store.current_tariff(session, pool).tariff)
    record = domain_record(usage, spec.time_limit_s)
    metered = _meter(record, usage, pool, site, spec)
    accounts = _lock(session, usage, now)
    budgets, vouchers = _lock_vouchers(session, usage.tenant_id, accounts)
    period = _period(record, usage)
    reserved_micro = _reserved_micro(session, usage, record, metered.quantity(tariff.basis))
    rated = _rate(session, tariff, metered, record, usage, period, spec, reserved_micro)
    context = LineContext(usage.tenant_id, TenantClass(tenant_class),
                          LineCategory.COMPUTE, _last_instant(record, usage), pool.provider_id,
                          pool.province, Hub(pool.hub) if pool.hub else None)
    lines, discounts, spent = _discount(rated, context, vouchers, budgets)
    discount = sum(discounts.values())
    prepaid = billing.billing_mode(session, usage.tenant_id) == PREPAID
    money = _money(session, usage, hold, accounts, rated.amount_fen - discount, discounts,
                   prepaid, now)
    if money.transfers:
        ledger_store.apply_many(session, money.transfers, now, linked=True)
    for voucher in spent.values():
        billing_repo.set_voucher_remaining(session, voucher.id, voucher.remaining_fen)
    if hold is not None and hold.state == HoldState.OPEN and not money.hold_expired:
        billing_repo.set_hold_state(session, hold.lease_id,
                                    (HoldState.POSTED if money.held_fen > money.released_fen
                                     else HoldState.VOIDED).value, now)
    return _write(session, usage, pool, tariff, spec, record, metered, rated, period, lines,
                  discount, money, now, reserved_micro)


def _meter(record: UsageRecord | None, usage: ChargeableUsage, pool: PoolFacts,
           site: SiteCosts, spec: JobSpec) -> MeteredUsage:
    if record is None:
        return MeteredUsage(usage.id, Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    units = tariff_store.units_rating(pool, spec.workload_class).quantize(Decimal("0.000001"))
    return meter(record, units, tariff_store.device_power_kw(pool.accelerator),
                 Decimal(site.pue).quantize(Decimal("0.01")))


def _lock(session: Session, usage: ChargeableUsage, now: datetime) -> dict[str, Account]:
    """Open what is missing, then lock every account this charge may touch, in id order."""
    billing.ensure_platform_accounts(session, now)
    billing.ensure_wallet(session, usage.tenant_id, now)
    billing.ensure_receivable(session, usage.provider_tenant_id, now)
    programme_ids = billing_repo.programmes_with_usable_vouchers(session, usage.tenant_id)
    ids = {wallet_account_id(usage.tenant_id), FEES_ACCOUNT,
           receivable_account_id(usage.provider_tenant_id)}
    ids |= {fund_account_id(p) for p in programme_ids}
    return ledger_store.lock_accounts(session, ids)


def _lock_vouchers(session: Session, tenant_id: str, accounts: dict[str, Account]
                   ) -> tuple[dict[str, ProgrammeBudget], list[Voucher]]:
    """The tenant's usable vouchers, of programmes whose fund account this charge holds locked;
    programme rows, then voucher rows, are locked after the accounts."""
    funded = [pid for pid in sorted(accounts) if pid.startswith("programme:")]
    programme_ids = [account_id.removeprefix("programme:") for account_id in funded]
    if not programme_ids:
        return {}, []
    programmes = billing_repo.lock_programmes(session, programme_ids)
    rows = billing_repo.lock_usable_vouchers(session, tenant_id, programme_ids,
                                             MAX_VOUCHERS_USED)
    used = billing_repo.voucher_use_by_programme(session, tenant_id, programme_ids)
    budgets = {}
    for row in programmes:
        programme = billing_repo.programme_from_row(row)
        fund = accounts[fund_account_id(row.id)]
        budgets[row.id] = ProgrammeBudget(programme, min(fund.available_fen, row.budget_fen),
                                          int(used.get(row.id) or 0))
    return budgets, [billing_repo.voucher_from_row(row) for row in rows]


def _period(record: UsageRecord | None, usage: ChargeableUsage) -> str:
    year, month = (record_period(record) if record is not None
                   else billing_period(aware(usage.ended_at)))
    return f"{year:04d}-{month:02d}"


def _last_instant(record: UsageRecord | None, usage: ChargeableUsage) -> datetime:
    end = record.end if record is not None else aware(usage.ended_at)
    return end - timedelta(microseconds=1)


def _reserved_micro(session: Session, usage: ChargeableUsage, record: UsageRecord | None,
                    quantity: Decimal) -> int:
    """The part of the record's quantity (micro-units) that ran on devices its tenant reserved
    on the pool through the exchange, left free by the tenant's earlier charges there
    (domain.market.netting). Read under the wallet's lock, which serialises the tenant's
    charges."""
    if record is None or usage.devices <= 0:
        return 0
    span = Span(epoch_us(record.start), epoch_us(record.end), usage.devices)
    reserved = market_repo.reserved_spans(session, usage.tenant_id, usage.pool_id,
                                          record.start, record.end)
    if not reserved:
        return 0
    earlier = billing_repo.charged_spans(session, usage.tenant_id, usage.pool_id,
                                         record.start, record.end)
    covered = covered_device_us(reserved, earlier, span)
    return covered_quantity_micro(_micro(quantity), covered, span)


def _rate(session: Session, tariff: Tariff, metered: MeteredUsage, record: UsageRecord | None,
          usage: ChargeableUsage, period: str, spec: JobSpec, reserved_micro: int = 0
          ) -> RatedUsage:
    """Rate under the tariff with the tenant's month-to-date use of this pool (same basis);
    what a reservation covered is not rated (its price was paid through escrow), and a record
    wholly covered takes no minimum charge either."""
    quantity = metered.quantity(tariff.basis) - Decimal(reserved_micro).scaleb(
        -QUANTITY_DECIMALS)
    assert quantity >= 0
    if reserved_micro and not quantity:
        return RatedUsage(tariff.id, (), 0)
    month_to_date = billing_repo.quantity_this_month_micro(
        session, usage.tenant_id, usage.pool_id, period, tariff.basis.value)
    job_before = billing_repo.job_rated_fen(session, usage.job_id, usage.pool_id)
    end = record.end if record is not None else aware(usage.ended_at)
    start = record.start if record is not None else end
    return rate_usage(tariff, quantity, start, end,
                      Decimal(int(month_to_date or 0)).scaleb(-QUANTITY_DECIMALS), spec.spot,
                      job_rated_before_fen=int(job_before or 0))


def _discount(rated: RatedUsage, context: LineContext, vouchers: list[Voucher],
              budgets: dict[str, ProgrammeBudget]
              ) -> tuple[list[tuple[int, tuple[VoucherAllocation, ...]]], dict[str, int],
                         dict[str, Voucher]]:
    """Apply the vouchers line by line; returns (discount, allocations) per line, the discount
    per programme, and the vouchers as they are left."""
    current = {voucher.id: voucher for voucher in vouchers}
    budgets = dict(budgets)
    per_line: list[tuple[int, tuple[VoucherAllocation, ...]]] = []
    per_programme: dict[str, int] = defaultdict(int)
    spent: dict[str, Voucher] = {}
    for line in rated.lines:
        if not current or line.amount_fen == 0:
            per_line.append((0, ()))
            continue
        outcome = apply_vouchers(line.amount_fen, context, list(current.values()), budgets)
        current |= outcome.vouchers
        spent |= outcome.vouchers
        budgets |= outcome.budgets
        for allocation in outcome.allocations:
            per_programme[allocation.programme_id] += allocation.discount_fen
        per_line.append((outcome.discount_fen, outcome.allocations))
    return per_line, dict(per_programme), spent


def _money(session: Session, usage: ChargeableUsage, hold: HoldRecord | None,
           accounts: dict[str, Account], payable_fen: int, discounts: dict[str, int],
           prepaid: bool, now: datetime) -> _Money:
    """The linked batch: settle the hold (post what is payable, release the rest), charge any
    excess from a prepaid wallet if it can pay (else, and for a postpaid tenant, it is unpaid:
    due on the bill), pay the voucher-covered part from
    each programme's fund, and take the platform fee from the provider's receivable."""
    wallet = wallet_account_id(usage.tenant_id)
    receivable = receivable_account_id(usage.provider_tenant_id)
    prefix = usage.id
    transfers: list[Transfer] = []
    held = settled = 0
    expired = False
    if hold is not None and hold.state == HoldState.OPEN:
        billing_hold, expired = _live_hold(session, hold, now)
        if billing_hold:
            held = hold.amount_fen
            settled = min(payable_fen, held)
            assert hold.transfer_id is not None
            transfers.append(
                post_pending(f"{prefix}:charge", hold.transfer_id, settled, "job-charge",
                             reference=usage.job_id) if settled else
                void_pending(f"{prefix}:release", hold.transfer_id, "job-release",
                             reference=usage.job_id))
    excess = payable_fen - settled
    available = accounts[wallet].available_fen + held - settled
    collected, unpaid = settled, 0
    if excess > 0 and prepaid and available >= excess:
        transfers.append(Transfer(f"{prefix}:excess" if held else f"{prefix}:charge", wallet,
                                  receivable, excess, "job-charge", reference=usage.job_id))
        collected += excess
    elif excess > 0:
        unpaid = excess
    for programme_id, amount in sorted(discounts.items()):
        if amount > 0:
            transfers.append(Transfer(f"{prefix}:voucher:{programme_id}",
                                      fund_account_id(programme_id), receivable, amount,
                                      "voucher", reference=usage.job_id))
    earned = collected + sum(discounts.values())
    fee = int((Decimal(earned) * PLATFORM_FEE_RATE).to_integral_value(ROUND_DOWN))
    if fee > 0:
        transfers.append(Transfer(f"{prefix}:fee", receivable, FEES_ACCOUNT, fee,
                                  "platform-fee", reference=usage.job_id))
    return _Money(transfers, collected, unpaid, fee, held, held - settled, expired)


def _live_hold(session: Session, hold: HoldRecord, now: datetime) -> tuple[bool, bool]:
    """Whether the ledger hold can still be settled, and whether it expired now (one past
    its timeout is expired now, and so is the lease's hold)."""
    assert hold.transfer_id is not None
    record = ledger_store.get_transfer(session, hold.transfer_id)
    assert record is not None
    if record.state == TransferState.PENDING and record.expires_at is not None and (
            now >= record.expires_at):
        ledger_store.expire(session, hold.transfer_id, now)
        billing_repo.set_hold_state(session, hold.lease_id, HoldState.EXPIRED.value, now)
        return False, True
    return record.state == TransferState.PENDING, False


def _write(session: Session, usage: ChargeableUsage, pool: PoolFacts, tariff: Tariff,
           spec: JobSpec, record: UsageRecord | None, metered: MeteredUsage, rated: RatedUsage,
           period: str, lines: list[tuple[int, tuple[VoucherAllocation, ...]]], discount: int,
           money: _Money, now: datetime, reserved_micro: int = 0) -> UsageCharge:
    end = record.end if record is not None else aware(usage.ended_at)
    payable = rated.amount_fen - discount
    charge = UsageCharge(
        usage_record_id=usage.id, job_id=usage.job_id, lease_id=usage.lease_id,
        tenant_id=usage.tenant_id, provider_tenant_id=usage.provider_tenant_id,
        pool_id=pool.id, provider_id=pool.provider_id, accelerator=pool.accelerator,
        hub=pool.hub, province=pool.province, tariff_id=tariff.id, basis=tariff.basis.value,
        spot=spec.spot, period=period, started_at=record.start if record else end,
        ended_at=end, device_hours_micro=_micro(metered.device_hours),
        compute_unit_hours_micro=_micro(metered.compute_unit_hours),
        quantity_micro=_micro(metered.quantity(tariff.basis)),
        it_energy_wh=int(metered.it_energy_kwh * 1000),
        facility_energy_wh=int(metered.facility_energy_kwh * 1000),
        amount_fen=rated.amount_fen, discount_fen=discount, payable_fen=payable,
        collected_fen=money.collected_fen, unpaid_fen=money.unpaid_fen, fee_fen=money.fee_fen,
        provider_fen=money.collected_fen + discount - money.fee_fen, held_fen=money.held_fen,
        released_fen=money.released_fen, transfer_ids=[t.id for t in money.transfers],
        created_at=now)
    charge_lines = [
        ChargeLine(
            usage_record_id=usage.id, seq=seq, kind=line.kind.value, tier=line.tier,
            band=None if line.band is None else line.band.value,
            quantity_micro=_micro(line.quantity),
            unit_price_fen_e4=int(line.unit_price_fen.scaleb(4)), amount_fen=line.amount_fen,
            discount_fen=line_discount, payable_fen=line.amount_fen - line_discount,
            vouchers=[{"voucher_id": a.voucher_id, "programme_id": a.programme_id,
                       "discount_fen": a.discount_fen} for a in allocations])
        for seq, (line, (line_discount, allocations)) in enumerate(
            zip(rated.lines, lines, strict=True))]
    if reserved_micro:
        charge_lines.append(ChargeLine(
            usage_record_id=usage.id, seq=len(charge_lines), kind=RESERVATION_LINE, tier=None,
            band=None, quantity_micro=reserved_micro, unit_price_fen_e4=0, amount_fen=0,
            discount_fen=0, payable_fen=0, vouchers=[]))
    return billing_repo.add_charge(session, charge, charge_lines)


def _micro(quantity: Decimal) -> int:
    return int(quantity.scaleb(QUANTITY_DECIMALS))
