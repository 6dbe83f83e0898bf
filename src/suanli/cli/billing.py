"""`suanli wallet|bills|tariffs|programmes|ledger ...`: money from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request
from suanli.domain.metering import billing_period

console = Console()
wallet_app = typer.Typer(help="Wallets and deposits (钱包).", no_args_is_help=True)
bills_app = typer.Typer(help="Monthly bills and provider payouts (账单).", no_args_is_help=True)
tariffs_app = typer.Typer(help="Pool tariffs and price guidance (资费).", no_args_is_help=True)
programmes_app = typer.Typer(help="Voucher programmes and grants (算力券).",
                             no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger (账本).", no_args_is_help=True)

Tenant = Annotated[str | None, typer.Option("--tenant", help="operators: another tenant")]
TenantId = Annotated[str, typer.Argument(help="the tenant's id, e.g. CN.T000003-3")]
PoolId = Annotated[str, typer.Argument(help="the pool's id")]


def _cny(fen: int) -> str:
    return f"{fen / 100:,.2f} CNY" if abs(fen) < 10**15 else f"{fen} fen"


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {path}: {exc}[/red]")
        raise typer.Exit(1) from None


@wallet_app.command("show")
def wallet_show(tenant: Tenant = None) -> None:
    """Your wallet: balance, what holds reserve, what is available."""
    body = request("GET", "/v1/wallet", params={"tenant_id": tenant})
    w = body["wallet"]
    console.print(f"{body['tenant_id']} ({body['billing_mode']}): balance {_cny(w['balance_fen'])}"
                  f", held {_cny(body['held_fen'])}, available {_cny(w['available_fen'])}")
    if body.get("receivable"):
        console.print(f"owed to you (receivable): {_cny(body['receivable']['balance_fen'])}")


@wallet_app.command("deposit")
def wallet_deposit(tenant_id: TenantId, amount_fen: Annotated[int, typer.Argument(
                       help="the amount paid in, in fen (100 fen = 1 CNY)")],
                   key: Annotated[str, typer.Option(help="idempotency key, e.g. the bank "
                                                         "transfer's reference")],
                   reference: Annotated[str, typer.Option(
                       help="a note kept with the transfer")] = "") -> None:
    """Operators: record money paid in for a tenant (the same --key again is a no-op)."""
    body = request("POST", f"/v1/tenants/{tenant_id}/deposits",
                   json={"amount_fen": amount_fen, "reference": reference},
                   headers={"Idempotency-Key": key})
    console.print(f"deposit {body['transfer']['id']}: {_cny(body['transfer']['amount_fen'])}; "
                  f"balance {_cny(body['wallet']['wallet']['balance_fen'])}")


@wallet_app.command("mode")
def wallet_mode(tenant_id: TenantId,
                mode: Annotated[str, typer.Argument(help="prepaid or postpaid")]) -> None:
    """Operators: choose how a tenant pays."""
    body = request("PUT", f"/v1/tenants/{tenant_id}/billing-mode", json={"mode": mode})
    console.print(f"{body['tenant_id']} is {body['billing_mode']}")


def _this_month() -> str:
    """The current billing period: the calendar month in Asia/Shanghai."""
    year, month = billing_period(datetime.now(UTC))
    return f"{year:04d}-{month:02d}"


Period = Annotated[str | None, typer.Argument(help="YYYY-MM (Asia/Shanghai); default: "
                                                   "this month")]


def _items_text(items: list[dict[str, Any]], key: str) -> str:
    values = ["-" if item.get(key) is None else str(item[key]) for item in items
              if item["kind"] != "minimum"]
    return ", ".join(dict.fromkeys(values)) or "-"


@bills_app.command("show")
def bills_show(period: Period = None, tenant: Tenant = None,
               fmt: Annotated[str, typer.Option("--format", help="table, json, csv or html")]
               = "table",
               output: Annotated[Path | None, typer.Option(help="write to this file")] = None
               ) -> None:
    """A month's bill: one line per job's usage, with its units, tier, time-of-use band,
    voucher and what is payable."""
    period = period or _this_month()
    if fmt in ("csv", "html"):
        text = request("GET", f"/v1/bills/{period}", params={"tenant_id": tenant, "format": fmt},
                       text=True)
        if output:
            output.write_text(text, encoding="utf-8")
            console.print(f"wrote {output}")
        else:
            print(text, end="")
        return
    bill = request("GET", f"/v1/bills/{period}", params={"tenant_id": tenant})
    if fmt == "json" or output:
        rendered = json.dumps(bill, indent=2, ensure_ascii=False)
        if output:
            output.write_text(rendered, encoding="utf-8")
            console.print(f"wrote {output}")
        else:
            print(rendered)
        return
    table = Table(title=f"bill {period} for {bill['tenant_id']} ({bill['billing_mode']})")
    for column in ("job", "pool", "accelerator", "units", "tier", "band", "amount", "voucher",
                   "payable"):
        table.add_column(column, justify="right" if column in (
            "units", "amount", "voucher", "payable") else "left")
    for line in bill["lines"]:
        table.add_row(line["job_id"], line["pool_id"], line["accelerator"],
                      line["compute_unit_hours"], _items_text(line["items"], "tier"),
                      _items_text(line["items"], "band"), _cny(line["amount_fen"]),
                      _cny(line["discount_fen"]), _cny(line["payable_fen"]))
    console.print(table)
    if not bill["lines"]:
        console.print(f"no usage charged in {period}")
    t = bill["totals"]
    console.print(f"total {_cny(t['amount_fen'])}, vouchers {_cny(t['discount_fen'])}, "
                  f"payable {_cny(t['payable_fen'])} (due {_cny(t['unpaid_fen'])})")
    console.print("tiers count from 0 (the first tier); bands: critical-peak, peak, flat, valley "
                  "(Asia/Shanghai time of use)")


@bills_app.command("payout")
def bills_payout(period: Period = None, tenant: Tenant = None) -> None:
    """Providers: what tenants and vouchers paid, the platform fee, and your net."""
    period = period or _this_month()
    body = request("GET", f"/v1/payouts/{period}", params={"tenant_id": tenant})
    t = body["totals"]
    console.print(f"{body['provider_tenant_id']} {period}: {len(body['lines'])} records; "
                  f"tenants paid {_cny(t['tenant_paid_fen'])}, vouchers "
                  f"{_cny(t['voucher_paid_fen'])}, fee {_cny(t['fee_fen'])}, net "
                  f"{_cny(t['net_fen'])}")


@tariffs_app.command("show")
def tariffs_show(pool_id: PoolId) -> None:
    """The tariff in force on a pool (its list price when it has none of its own)."""
    body = request("GET", f"/v1/pools/{pool_id}/tariff")
    console.print_json(json.dumps(body, ensure_ascii=False))


@tariffs_app.command("set")
def tariffs_set(pool_id: PoolId, path: Annotated[Path, typer.Argument(help="tariff JSON")]) -> None:
    """Providers: set a pool's tariff from a JSON file (see docs/billing.md)."""
    body = request("PUT", f"/v1/pools/{pool_id}/tariff", json=_json_file(path))
    console.print(f"pool {body['pool_id']}: tariff version {body['version']} "
                  f"({body['tariff']['id']})")


@tariffs_app.command("guidance")
def tariffs_guidance(pool_id: PoolId,
                     capex_fen: Annotated[int | None, typer.Option(
                         help="purchase price of a device in fen (default: illustrative)")]
                     = None,
                     utilisation: Annotated[str | None, typer.Option(
                         help="share of hours sold, 0-1 (default 0.6)")] = None) -> None:
    """The cost-based price band for a pool, and whether its prices are inside it."""
    body = request("GET", f"/v1/pools/{pool_id}/price-guidance",
                   params={"capex_fen": capex_fen, "utilisation": utilisation})
    console.print(f"{body['pool_id']}: fair {body['basis']} price {body['low_fen']} .. "
                  f"{body['high_fen']} fen (cost {body['costs']['cost_fen_per_sold_device_hour']}"
                  f" fen per sold device-hour)")
    for finding in body["findings"]:
        console.print(f"  {finding['field']} = {finding['unit_price_fen']}: {finding['verdict']}")
    if body["defaults_used"]:
        console.print(f"[yellow]defaults used: {', '.join(body['defaults_used'])}[/yellow]")


@programmes_app.command("create")
def programmes_create(path: Annotated[Path, typer.Argument(help="programme JSON")]) -> None:
    """Operators: create and fund a voucher programme from a JSON file."""
    body = request("POST", "/v1/programmes", json=_json_file(path))
    console.print(f"programme {body['id']}: budget {_cny(body['budget_fen'])}")


@programmes_app.command("list")
def programmes_list() -> None:
    """Voucher programmes, with their budget left and vouchers granted."""
    rows = request("GET", "/v1/programmes")
    table = Table(title="voucher programmes")
    for column in ("id", "issuer", "coverage", "budget", "remaining", "vouchers"):
        table.add_column(column)
    for p in rows:
        table.add_row(p["id"], p["issuer"], p["coverage"], _cny(p["budget_fen"]),
                      _cny(p["remaining_fen"]), str(p["vouchers"]))
    console.print(table)


@programmes_app.command("grant")
def programmes_grant(programme_id: Annotated[str, typer.Argument(help="the programme's id")],
                     tenant_id: TenantId,
                     granted_fen: Annotated[int, typer.Argument(help="the voucher's value "
                                                                     "in fen")],
                     key: Annotated[str, typer.Option(help="idempotency key")]) -> None:
    """Operators: grant a tenant a voucher."""
    body = request("POST", f"/v1/programmes/{programme_id}/grants",
                   json={"tenant_id": tenant_id, "granted_fen": granted_fen},
                   headers={"Idempotency-Key": key})
    console.print(f"voucher {body['id']} for {body['tenant_id']}: {_cny(body['granted_fen'])}")


@programmes_app.command("vouchers")
def programmes_vouchers(tenant: Tenant = None) -> None:
    """Your vouchers and what remains of each."""
    vouchers = request("GET", "/v1/vouchers", params={"tenant_id": tenant})
    for v in vouchers:
        console.print(f"{v['id']} ({v['programme_id']}): {_cny(v['remaining_fen'])} of "
                      f"{_cny(v['granted_fen'])} left")
    if not vouchers:
        console.print("no vouchers" + (f" for {tenant}" if tenant else "")
                      + "; an operator grants them with `suanli programmes grant`")


@ledger_app.command("check")
def ledger_check() -> None:
    """Operators: run the ledger's invariant check; exits 1 when the books do not balance."""
    body = request("GET", "/v1/ledger/check")
    console.print(f"{body['accounts']} accounts, {body['transfers']} transfers; posted "
                  f"{body['debits_posted_fen']} = {body['credits_posted_fen']} fen")
    if not body["ok"]:
        for problem in body["problems"]:
            console.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    console.print("[green]the books balance[/green]")


@ledger_app.command("account")
def ledger_account(account_id: Annotated[str, typer.Argument(
                       help="e.g. wallet:<tenant id>, receivable:<tenant id>, platform:fees")],
                   limit: Annotated[int, typer.Option(min=1, max=200,
                                                      help="latest transfers to show")] = 20
                   ) -> None:
    """An account's balances and its latest transfers (yours, or any for operators)."""
    body = request("GET", f"/v1/ledger/accounts/{account_id}", params={"limit": limit})
    a = body["account"]
    console.print(f"{a['id']} ({a['kind']}): balance {_cny(a['balance_fen'])}, available "
                  f"{_cny(a['available_fen'])}")
    table = Table()
    for column in ("time", "id", "code", "kind", "state", "debit", "credit", "fen"):
        table.add_column(column)
    for t in body["transfers"]:
        table.add_row(t["timestamp"], t["id"], t["code"], t["kind"], t["state"],
                      t["debit_account_id"], t["credit_account_id"], str(t["amount_fen"]))
    console.print(table)
