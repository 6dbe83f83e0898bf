"""The bill and payout documents as services/billing/statements.py built them before bills
became dataclasses (domain/bills.py): nested dicts read by string keys. Kept verbatim as the
reference the new code must match byte for byte (tests/billing/test_bill_documents.py); delete
it with that test once nobody doubts the documents.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from suanli.adapters.store.billing_tables import ChargeLineRow, LedgerTransferRow, UsageChargeRow
from suanli.adapters.store.job_tables import JobRow
from suanli.adapters.store.tables import PoolRow, TenantRow
from suanli.domain.accounts import receivable_account_id, wallet_account_id
from suanli.domain.errors import Forbidden, ValidationFailed
from suanli.domain.ledger import TransferKind
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


def _micro(value: int) -> str:
    return str(Decimal(value).scaleb(-6))


def _tenant(session: Session, principal: Principal, tenant_id: str | None) -> TenantRow:
    return tenants.get_tenant(session, tenants.scoped_tenant(principal, tenant_id))


def _charges(session: Session, column: Any, tenant_id: str, period: str) -> list[UsageChargeRow]:
    rows = session.scalars(select(UsageChargeRow).where(column == tenant_id,
                                                        UsageChargeRow.period == period)
                           .order_by(UsageChargeRow.ended_at, UsageChargeRow.usage_record_id)
                           .limit(MAX_BILL_CHARGES + 1)).all()
    if len(rows) > MAX_BILL_CHARGES:
        raise ValidationFailed(f"more than {MAX_BILL_CHARGES} charges in the period",
                               field="period")
    return list(rows)


def statement(session: Session, principal: Principal, period: str,
              tenant_id: str | None = None) -> dict[str, Any]:
    """The tenant's bill for a month: a line per usage record (job, pool, units, tier and band
    items, vouchers), totals, and the wallet's movement in the month."""
    _, _, start, end = parse_period(period)
    tenant = _tenant(session, principal, tenant_id)
    charges = _charges(session, UsageChargeRow.tenant_id, tenant.id, period)
    items = _items(session, [c.usage_record_id for c in charges])
    jobs = _names(session, JobRow, {c.job_id for c in charges})
    pools = _names(session, PoolRow, {c.pool_id for c in charges})
    lines = [_line(c, items.get(c.usage_record_id, []), jobs, pools) for c in charges]
    totals = {name: sum(getattr(c, name) for c in charges)
              for name in ("amount_fen", "discount_fen", "payable_fen", "collected_fen",
                           "unpaid_fen")}
    totals["device_hours"] = _micro(sum(c.device_hours_micro for c in charges))
    totals["compute_unit_hours"] = _micro(sum(c.compute_unit_hours_micro for c in charges))
    totals["facility_energy_kwh"] = str(Decimal(sum(c.facility_energy_wh for c in charges))
                                        / 1000)
    vouchers: dict[tuple[str, str], int] = {}
    for line in lines:
        for item in line["items"]:
            for v in item["vouchers"]:
                key = (v["programme_id"], v["voucher_id"])
                vouchers[key] = vouchers.get(key, 0) + v["discount_fen"]
    return {
        "tenant_id": tenant.id, "tenant_name": tenant.name, "period": period,
        "currency": "CNY", "timezone": "Asia/Shanghai",
        "billing_mode": billing.billing_mode(session, tenant.id),
        "period_start": start.isoformat(), "period_end": end.isoformat(),
        "lines": lines, "totals": totals,
        "vouchers": [{"programme_id": p, "voucher_id": v, "discount_fen": amount}
                     for (p, v), amount in sorted(vouchers.items())],
        "wallet": _wallet_movement(session, wallet_account_id(tenant.id), start, end),
    }


def _names(session: Session, table: Any, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(session.execute(select(table.id, table.name).where(table.id.in_(ids))).all())


def _items(session: Session, record_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for chunk in range(0, len(record_ids), 500):
        rows = session.scalars(select(ChargeLineRow).where(
            ChargeLineRow.usage_record_id.in_(record_ids[chunk:chunk + 500]))
            .order_by(ChargeLineRow.usage_record_id, ChargeLineRow.seq)).all()
        for row in rows:
            found.setdefault(row.usage_record_id, []).append({
                "kind": row.kind, "tier": row.tier, "band": row.band,
                "quantity": _micro(row.quantity_micro),
                "unit_price_fen": str(Decimal(row.unit_price_fen_e4).scaleb(-4)),
                "amount_fen": row.amount_fen, "discount_fen": row.discount_fen,
                "payable_fen": row.payable_fen, "vouchers": list(row.vouchers or [])})
    return found


def _line(c: UsageChargeRow, items: list[dict[str, Any]], jobs: dict[str, str],
          pools: dict[str, str]) -> dict[str, Any]:
    return {
        "usage_record_id": c.usage_record_id, "job_id": c.job_id,
        "job_name": jobs.get(c.job_id, ""), "lease_id": c.lease_id, "pool_id": c.pool_id,
        "pool_name": pools.get(c.pool_id, ""), "provider_id": c.provider_id,
        "accelerator": c.accelerator, "hub": c.hub, "province": c.province,
        "start": aware(c.started_at).isoformat(), "end": aware(c.ended_at).isoformat(),
        "tariff_id": c.tariff_id, "basis": c.basis, "spot": c.spot,
        "device_hours": _micro(c.device_hours_micro),
        "compute_unit_hours": _micro(c.compute_unit_hours_micro),
        "quantity": _micro(c.quantity_micro),
        "facility_energy_kwh": str(Decimal(c.facility_energy_wh) / 1000),
        "items": items, "amount_fen": c.amount_fen, "discount_fen": c.discount_fen,
        "payable_fen": c.payable_fen, "collected_fen": c.collected_fen,
        "unpaid_fen": c.unpaid_fen, "transfer_ids": list(c.transfer_ids or []),
    }


def _wallet_movement(session: Session, account_id: str, start: datetime,
                     end: datetime) -> dict[str, Any]:
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
    return {"account_id": account_id, "opening_balance_fen": opening, "credits_fen": credits,
            "debits_fen": debits, "closing_balance_fen": opening + credits - debits,
            "by_code_fen": {code: int(v) for code, v in sorted(by_code.items())}}


def to_csv(bill: dict[str, Any]) -> str:
    """One row per rated item; a job without items (nothing to rate) gets one row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in bill["lines"]:
        base = [bill["period"], bill["tenant_id"], line["usage_record_id"], line["job_id"],
                line["job_name"], line["pool_id"], line["accelerator"], line["hub"] or "",
                line["start"], line["end"]]
        for item in line["items"] or [{"kind": "none", "tier": None, "band": None,
                                       "quantity": "0", "unit_price_fen": "0", "amount_fen": 0,
                                       "discount_fen": 0, "payable_fen": 0, "vouchers": []}]:
            vouchers = ";".join(f"{v['voucher_id']}={v['discount_fen']}"
                                for v in item["vouchers"])
            writer.writerow(base + [item["kind"], "" if item["tier"] is None else item["tier"],
                                    item["band"] or "", item["quantity"], line["basis"],
                                    item["unit_price_fen"], item["amount_fen"],
                                    item["discount_fen"], item["payable_fen"], vouchers])
    totals = bill["totals"]
    writer.writerow([bill["period"], bill["tenant_id"]] + [""] * 8
                    + ["total", "", "", "", "", "", totals["amount_fen"],
                       totals["discount_fen"], totals["payable_fen"], ""])
    return out.getvalue()


def _fen(value: int) -> str:
    return f"{Decimal(value) / 100:,.2f}"


def to_html(bill: dict[str, Any]) -> str:
    """A printable page; every value is escaped."""
    e = html.escape
    rows = []
    for line in bill["lines"]:
        for item in line["items"]:
            cells = [line["job_name"] or line["job_id"], line["pool_name"] or line["pool_id"],
                     line["accelerator"], line["hub"] or "", item["kind"],
                     "" if item["tier"] is None else str(item["tier"]), item["band"] or "",
                     f"{item['quantity']} {line['basis']}", item["unit_price_fen"],
                     _fen(item["amount_fen"]), _fen(item["discount_fen"]),
                     _fen(item["payable_fen"])]
            rows.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    head = ["job", "pool", "accelerator", "hub", "kind", "tier", "band", "quantity",
            "unit price (fen)", "amount (CNY)", "voucher (CNY)", "payable (CNY)"]
    totals, wallet = bill["totals"], bill["wallet"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>suanli bill {e(bill['period'])} {e(bill['tenant_id'])}</title>
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 6px;text-align:right}}</style></head><body>
<h1>Bill {e(bill['period'])} &mdash; {e(bill['tenant_name'])} ({e(bill['tenant_id'])})</h1>
<p>Period {e(bill['period_start'])} to {e(bill['period_end'])} ({e(bill['timezone'])}),
amounts in CNY.</p>
<table><thead><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p>Rated {_fen(totals['amount_fen'])}; vouchers {_fen(totals['discount_fen'])};
payable {_fen(totals['payable_fen'])}; paid from wallet {_fen(totals['collected_fen'])};
due {_fen(totals['unpaid_fen'])}.</p>
<p>Wallet: opening {_fen(wallet['opening_balance_fen'])}, in {_fen(wallet['credits_fen'])},
out {_fen(wallet['debits_fen'])}, closing {_fen(wallet['closing_balance_fen'])}.</p>
</body></html>
"""


def payout(session: Session, principal: Principal, period: str,
           tenant_id: str | None = None) -> dict[str, Any]:
    """A provider's statement for a month: per usage record what the tenant paid, what
    vouchers paid, the platform fee and the provider's net."""
    parse_period(period)
    provider = _tenant(session, principal, tenant_id)
    if provider.role != Role.PROVIDER.value:
        raise Forbidden(f"tenant {provider.id} is a {provider.role}, not a provider")
    charges = _charges(session, UsageChargeRow.provider_tenant_id, provider.id, period)
    lines = [{"usage_record_id": c.usage_record_id, "job_id": c.job_id, "pool_id": c.pool_id,
              "tenant_id": c.tenant_id, "accelerator": c.accelerator,
              "end": aware(c.ended_at).isoformat(),
              "compute_unit_hours": _micro(c.compute_unit_hours_micro),
              "amount_fen": c.amount_fen, "tenant_paid_fen": c.collected_fen,
              "voucher_paid_fen": c.discount_fen, "unpaid_fen": c.unpaid_fen,
              "fee_fen": c.fee_fen, "net_fen": c.provider_fen} for c in charges]
    totals = {name: sum(line[name] for line in lines)  # type: ignore[misc]
              for name in ("amount_fen", "tenant_paid_fen", "voucher_paid_fen", "unpaid_fen",
                           "fee_fen", "net_fen")}
    account = billing.wallet(session, principal, provider.id).receivable
    return {"provider_tenant_id": provider.id, "period": period, "currency": "CNY",
            "lines": lines, "totals": totals,
            "receivable_account_id": receivable_account_id(provider.id),
            "receivable_balance_fen": 0 if account is None else account.balance_fen}
