"""Monthly statements: a tenant's bill (JSON, CSV, HTML) and a provider's payout statement,
built as domain.bills values from the stored charges.

A period is a calendar month in Asia/Shanghai; a usage record belongs to the period of its
last instant (docs/pricing.md). The wallet section sums the ledger's posted transfers on the
tenant's wallet whose timestamps fall in the period.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import billing as billing_repo
from suanli.domain.accounts import receivable_account_id, wallet_account_id
from suanli.domain.bills import (
    Bill,
    BillItem,
    BillLine,
    BillTotals,
    Payout,
    PayoutLine,
    PayoutTotals,
    voucher_totals,
)
from suanli.domain.billing_records import UsageCharge
from suanli.domain.errors import Forbidden, ValidationFailed
from suanli.domain.metering import SHANGHAI, period_close
from suanli.domain.tenants import Principal, Role
from suanli.domain.time import aware
from suanli.services import tenants
from suanli.services.billing import wallets as billing

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")
MAX_BILL_CHARGES = 10_000  # a bill past this asks for paging (not yet offered): refuse clearly
CSV_COLUMNS = ("period", "tenant_id", "usage_record_id", "job_id", "job_name", "pool_id",
               "accelerator", "hub", "start", "end", "kind", "tier", "band", "quantity",
               "basis", "unit_price_fen", "amount_fen", "discount_fen", "payable_fen",
               "vouchers")


def parse_period(text: str) -> tuple[int, int, datetime, datetime]:
    """'YYYY-MM' -> (year, month, start, end) with start/end the period's instants."""
    match = _PERIOD_RE.match(text)
    if not match or not (2000 <= int(match[1]) <= 2100 and 1 <= int(match[2]) <= 12):
        raise ValidationFailed("must be YYYY-MM, a month between 2000 and 2100", field="period")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    return year, month, start, period_close(year, month)


def _tenant(session: Session, principal: Principal, tenant_id: str | None) -> Any:
    return tenants.get_tenant(session, tenants.scoped_tenant(principal, tenant_id))


def _bounded(charges: list[UsageCharge]) -> list[UsageCharge]:
    if len(charges) > MAX_BILL_CHARGES:
        raise ValidationFailed(f"more than {MAX_BILL_CHARGES} charges in the period",
                               field="period")
    return charges


def statement(session: Session, principal: Principal, period: str,
              tenant_id: str | None = None) -> Bill:
    """The tenant's bill for a month: a line per usage record (job, pool, units, tier and band
    items, vouchers), totals, and the wallet's movement in the month."""
    _, _, start, end = parse_period(period)
    tenant = _tenant(session, principal, tenant_id)
    charges = _bounded(billing_repo.charges_of_tenant(session, tenant.id, period,
                                                      MAX_BILL_CHARGES + 1))
    items = billing_repo.charge_items(session, [c.usage_record_id for c in charges])
    jobs = billing_repo.job_names(session, {c.job_id for c in charges})
    pools = billing_repo.pool_names(session, {c.pool_id for c in charges})
    lines = tuple(_line(c, items.get(c.usage_record_id, ()), jobs, pools) for c in charges)
    return Bill(tenant_id=tenant.id, tenant_name=tenant.name, period=period,
                billing_mode=billing.billing_mode(session, tenant.id),
                period_start=start, period_end=end, lines=lines, totals=BillTotals.of(lines),
                vouchers=voucher_totals(lines),
                wallet=billing_repo.wallet_movement(session, wallet_account_id(tenant.id),
                                                    start, end))


def _line(c: UsageCharge, items: tuple[BillItem, ...], jobs: dict[str, str],
          pools: dict[str, str]) -> BillLine:
    return BillLine(
        usage_record_id=c.usage_record_id, job_id=c.job_id, job_name=jobs.get(c.job_id, ""),
        lease_id=c.lease_id, pool_id=c.pool_id, pool_name=pools.get(c.pool_id, ""),
        provider_id=c.provider_id, accelerator=c.accelerator, hub=c.hub, province=c.province,
        start=aware(c.started_at), end=aware(c.ended_at), tariff_id=c.tariff_id,
        basis=c.basis, spot=c.spot, device_hours_micro=c.device_hours_micro,
        compute_unit_hours_micro=c.compute_unit_hours_micro, quantity_micro=c.quantity_micro,
        facility_energy_wh=c.facility_energy_wh, items=items, amount_fen=c.amount_fen,
        discount_fen=c.discount_fen, payable_fen=c.payable_fen,
        collected_fen=c.collected_fen, unpaid_fen=c.unpaid_fen,
        transfer_ids=tuple(c.transfer_ids or ()))


# A cell starting with one of these is read as a formula by spreadsheets (OWASP: CSV
# injection); a job's name is the consumer's own text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _SafeWriter:
    """A csv writer whose text cells cannot start a formula: such a cell gets a leading '."""

    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([f"'{cell}" if isinstance(cell, str)
                               and cell.startswith(_FORMULA_STARTS) else cell for cell in row])


def to_csv(bill: Bill) -> str:
    """One row per rated item; a job without items (nothing to rate) gets one row."""
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(list(CSV_COLUMNS))
    for line in bill.lines:
        base = [bill.period, bill.tenant_id, line.usage_record_id, line.job_id, line.job_name,
                line.pool_id, line.accelerator, line.hub or "", line.start.isoformat(),
                line.end.isoformat()]
        if not line.items:
            writer.writerow(base + ["none", "", "", "0", line.basis, "0", 0, 0, 0, ""])
        for item in line.items:
            vouchers = ";".join(f"{v.voucher_id}={v.discount_fen}" for v in item.vouchers)
            writer.writerow(base + [item.kind, "" if item.tier is None else item.tier,
                                    item.band or "", str(item.quantity), line.basis,
                                    str(item.unit_price_fen), item.amount_fen,
                                    item.discount_fen, item.payable_fen, vouchers])
    totals = bill.totals
    writer.writerow([bill.period, bill.tenant_id] + [""] * 8
                    + ["total", "", "", "", "", "", totals.amount_fen,
                       totals.discount_fen, totals.payable_fen, ""])
    return out.getvalue()


def _fen(value: int) -> str:
    return f"{Decimal(value) / 100:,.2f}"


def to_html(bill: Bill) -> str:
    """A printable page; every value is escaped."""
    e = html.escape
    rows = []
    for line in bill.lines:
        for item in line.items:
            cells = [line.job_name or line.job_id, line.pool_name or line.pool_id,
                     line.accelerator, line.hub or "", item.kind,
                     "" if item.tier is None else str(item.tier), item.band or "",
                     f"{str(item.quantity)} {line.basis}", str(item.unit_price_fen),
                     _fen(item.amount_fen), _fen(item.discount_fen), _fen(item.payable_fen)]
            rows.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    head = ["job", "pool", "accelerator", "hub", "kind", "tier", "band", "quantity",
            "unit price (fen)", "amount (CNY)", "voucher (CNY)", "payable (CNY)"]
    totals, wallet = bill.totals, bill.wallet
    start, end = bill.period_start.isoformat(), bill.period_end.isoformat()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>suanli bill {e(bill.period)} {e(bill.tenant_id)}</title>
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 6px;text-align:right}}</style></head><body>
<h1>Bill {e(bill.period)} &mdash; {e(bill.tenant_name)} ({e(bill.tenant_id)})</h1>
<p>Period {e(start)} to {e(end)} ({e(bill.timezone)}),
amounts in CNY.</p>
<table><thead><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p>Rated {_fen(totals.amount_fen)}; vouchers {_fen(totals.discount_fen)};
payable {_fen(totals.payable_fen)}; paid from wallet {_fen(totals.collected_fen)};
due {_fen(totals.unpaid_fen)}.</p>
<p>Wallet: opening {_fen(wallet.opening_balance_fen)}, in {_fen(wallet.credits_fen)},
out {_fen(wallet.debits_fen)}, closing {_fen(wallet.closing_balance_fen)}.</p>
</body></html>
"""


def payout(session: Session, principal: Principal, period: str,
           tenant_id: str | None = None) -> Payout:
    """A provider's statement for a month: per usage record what the tenant paid, what
    vouchers paid, the platform fee and the provider's net."""
    parse_period(period)
    provider = _tenant(session, principal, tenant_id)
    if provider.role != Role.PROVIDER.value:
        raise Forbidden(f"tenant {provider.id} is a {provider.role}, not a provider")
    charges = _bounded(billing_repo.charges_of_provider(session, provider.id, period,
                                                        MAX_BILL_CHARGES + 1))
    lines = tuple(PayoutLine(
        usage_record_id=c.usage_record_id, job_id=c.job_id, pool_id=c.pool_id,
        tenant_id=c.tenant_id, accelerator=c.accelerator, end=aware(c.ended_at),
        compute_unit_hours_micro=c.compute_unit_hours_micro, amount_fen=c.amount_fen,
        tenant_paid_fen=c.collected_fen, voucher_paid_fen=c.discount_fen,
        unpaid_fen=c.unpaid_fen, fee_fen=c.fee_fen, net_fen=c.provider_fen) for c in charges)
    account = billing.wallet(session, principal, provider.id).receivable
    return Payout(provider_tenant_id=provider.id, period=period, lines=lines,
                  totals=PayoutTotals.of(lines),
                  receivable_account_id=receivable_account_id(provider.id),
                  receivable_balance_fen=0 if account is None else account.balance_fen)
