"""`suanli wallet|bills|tariffs|programmes|ledger ...`: money from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request

console = Console()
wallet_app = typer.Typer(help="Wallets and deposits (钱包).", no_args_is_help=True)
bills_app = typer.Typer(help="Monthly bills and provider payouts (账单).", no_args_is_help=True)
tariffs_app = typer.Typer(help="Pool tariffs and price guidance (资费).", no_args_is_help=True)
programmes_app = typer.Typer(help="Voucher programmes and grants (算力券).",
                             no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger (账本).", no_args_is_help=True)

Tenant = Annotated[str | None, typer.Option("--tenant", help="operators: another tenant")]


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
def wallet_deposit(tenant_id: str, amount_fen: int,
                   key: Annotated[str, typer.Option(help="idempotency key, e.g. the bank "
                                                         "transfer's reference")],
                   reference: str = "") -> None:
    """Operators: record money paid in for a tenant (the same --key again is a no-op)."""
    body = request("POST", f"/v1/tenants/{tenant_id}/deposits",
                   json={"amount_fen": amount_fen, "reference": reference},
                   headers={"Idempotency-Key": key})
    console.print(f"deposit {body['transfer']['id']}: {_cny(body['transfer']['amount_fen'])}; "
                  f"balance {_cny(body['wallet']['wallet']['balance_fen'])}")


@wallet_app.command("mode")
def wallet_mode(tenant_id: str, mode: Annotated[str, typer.Argument(help="prepaid or postpaid")]
                ) -> None:
    """Operators: choose how a tenant pays."""
    body = request("PUT", f"/v1/tenants/{tenant_id}/billing-mode", json={"mode": mode})
    console.print(f"{body['tenant_id']} is {body['billing_mode']}")


@bills_app.command("show")
def bills_show(period: Annotated[str, typer.Argument(help="YYYY-MM")], tenant: Tenant = None,
               fmt: Annotated[str, typer.Option("--format", help="table, json, csv or html")]
               = "table",
               output: Annotated[Path | None, typer.Option(help="write to this file")] = None
               ) -> None:
    """A month's bill: one line per job, with units, tiers, bands and vouchers."""
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
    table = Table(title=f"bill {period} for {bill['tenant_id']}")
    for column in ("job", "pool", "units", "amount", "voucher", "payable"):
        table.add_column(column)
    for line in bill["lines"]:
        table.add_row(line["job_name"] or line["job_id"], line["pool_id"],
                      line["compute_unit_hours"], _cny(line["amount_fen"]),
                      _cny(line["discount_fen"]), _cny(line["payable_fen"]))
    console.print(table)
    t = bill["totals"]
    console.print(f"total {_cny(t['amount_fen'])}, vouchers {_cny(t['discount_fen'])}, "
                  f"payable {_cny(t['payable_fen'])} (due {_cny(t['unpaid_fen'])})")


@bills_app.command("payout")
def bills_payout(period: Annotated[str, typer.Argument(help="YYYY-MM")],
                 tenant: Tenant = None) -> None:
    """Providers: what tenants and vouchers paid, the platform fee, and your net."""
    body = request("GET", f"/v1/payouts/{period}", params={"tenant_id": tenant})
    t = body["totals"]
    console.print(f"{body['provider_tenant_id']} {period}: {len(body['lines'])} records; "
                  f"tenants paid {_cny(t['tenant_paid_fen'])}, vouchers "
                  f"{_cny(t['voucher_paid_fen'])}, fee {_cny(t['fee_fen'])}, net "
                  f"{_cny(t['net_fen'])}")


@tariffs_app.command("show")
def tariffs_show(pool_id: str) -> None:
    body = request("GET", f"/v1/pools/{pool_id}/tariff")
    console.print_json(json.dumps(body, ensure_ascii=False))


@tariffs_app.command("set")
def tariffs_set(pool_id: str, path: Annotated[Path, typer.Argument(help="tariff JSON")]) -> None:
    """Providers: set a pool's tariff from a JSON file (see docs/billing.md)."""
    body = request("PUT", f"/v1/pools/{pool_id}/tariff", json=_json_file(path))
    console.print(f"pool {body['pool_id']}: tariff version {body['version']} "
                  f"({body['tariff']['id']})")


@tariffs_app.command("guidance")
def tariffs_guidance(pool_id: str, capex_fen: int | None = None,
                     utilisation: str | None = None) -> None:
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
    rows = request("GET", "/v1/programmes")
    table = Table(title="voucher programmes")
    for column in ("id", "issuer", "coverage", "budget", "remaining", "vouchers"):
        table.add_column(column)
    for p in rows:
        table.add_row(p["id"], p["issuer"], p["coverage"], _cny(p["budget_fen"]),
                      _cny(p["remaining_fen"]), str(p["vouchers"]))
    console.print(table)


@programmes_app.command("grant")
def programmes_grant(programme_id: str, tenant_id: str, granted_fen: int,
                     key: Annotated[str, typer.Option(help="idempotency key")]) -> None:
    """Operators: grant a tenant a voucher."""
    body = request("POST", f"/v1/programmes/{programme_id}/grants",
                   json={"tenant_id": tenant_id, "granted_fen": granted_fen},
                   headers={"Idempotency-Key": key})
    console.print(f"voucher {body['id']} for {body['tenant_id']}: {_cny(body['granted_fen'])}")


@programmes_app.command("vouchers")
def programmes_vouchers(tenant: Tenant = None) -> None:
    """Your vouchers and what remains of each."""
    for v in request("GET", "/v1/vouchers", params={"tenant_id": tenant}):
        console.print(f"{v['id']} ({v['programme_id']}): {_cny(v['remaining_fen'])} of "
                      f"{_cny(v['granted_fen'])} left")


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
def ledger_account(account_id: str, limit: int = 20) -> None:
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
