"""`suanli federation ...`: platforms, the tree's catalog, enrolment, clearing, reconciliation."""

from __future__ import annotations

import json
import shlex
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request
from suanli.cli.names import accelerator_key, vendor_name
from suanli.cli.names import device_kind as parse_device_kind

console = Console()
federation_app = typer.Typer(help="Federation (多级互联互通), roaming and clearing.",
                             no_args_is_help=True)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


@federation_app.command("platforms")
def platforms() -> None:
    """The platforms this node knows: itself, its parent, peers and sub-platforms."""
    data = request("GET", "/v1/federation/platforms")
    table = Table(title=f"platforms known at {data['platform']} (clearing house {data['house']})")
    for column in ("authority", "name", "level", "parent", "endpoint", "state", "last seen"):
        table.add_column(column)
    for item in data["platforms"]:
        mark = " (this)" if item.get("self") else ""
        table.add_row(item["authority"] + mark, item["name"], item["level"],
                      item.get("parent") or "-", item.get("endpoint") or "-", item["state"],
                      item.get("last_seen_at") or "-")
    console.print(table)
    revoked = [k for k in data["keys"] if k["revoked_at"]]
    console.print(f"{len(data['keys'])} keys, {len(revoked)} revoked; this node signs as "
                  f"{data['key_id']}")


@federation_app.command("enrol")
def enrol(authority: Annotated[str, typer.Argument(
              help="the sub-platform's authority, directly below this one, e.g. CN.GD")],
          name: Annotated[str, typer.Option(help="its name, e.g. Guangdong")],
          level: Annotated[str, typer.Option(help="regional or industry")] = "regional") -> None:
    """Operators: admit a sub-platform; prints the `suanli serve` command that starts it, with
    its one-time enrolment token."""
    data = request("POST", "/v1/federation/enrolments",
                   json={"authority": authority, "name": name, "level": level})
    console.print(f"{data['authority']} may now register with {data['parent']}:")
    console.print(f"  suanli serve --authority {data['authority']} --name {shlex.quote(name)} "
                  f"--parent {data['parent_url']} --enrolment-token {data['enrolment_token']}",
                  soft_wrap=True)


@federation_app.command("catalog")
def catalog(
    accelerator: Annotated[str | None, typer.Option(
        "--accelerator", "--accelerator-model",
        help="catalog key or model, e.g. nvidia-h100-sxm or H100-SXM")] = None,
    vendor: Annotated[str | None, typer.Option(help="e.g. NVIDIA, Huawei (any case)")] = None,
    device_kind: Annotated[str | None, typer.Option(help="gpu, npu, dcu, xpu or cpu")] = None,
    province: Annotated[str | None, typer.Option(help="ISO 3166-2:CN code, e.g. CN-GD")]
    = None,
    hub: Annotated[str | None, typer.Option(help="a national hub, e.g. guizhou")] = None,
    platform: Annotated[str | None, typer.Option(help="only this platform's, e.g. CN.GD")]
    = None,
    min_free_devices: Annotated[int, typer.Option(min=0, help="free devices at least")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many rows")] = 100,
) -> None:
    """Pool summaries over the whole tree, cheapest first, with how fresh each one is."""
    data = request("GET", "/v1/federation/catalog", params={
        "accelerator": accelerator_key(accelerator), "vendor": vendor_name(vendor),
        "device_kind": parse_device_kind(device_kind),
        "province": province, "hub": hub, "platform": platform,
        "min_free_devices": min_free_devices, "limit": limit})
    table = Table(title=f"catalog at {data['platform']}: {data['totals']['pools']} pools, "
                        f"{data['totals']['free_devices']}/{data['totals']['devices']} "
                        "devices free")
    for column in ("platform", "accelerator", "province", "hub", "pools", "free/devices",
                   "min fen/device-h", "age s"):
        table.add_column(column)
    for item in data["items"]:
        table.add_row(item["platform"], item["accelerator"], item["province"], item["hub"] or "-",
                      str(item["pools"]), f"{item['free_devices']}/{item['devices']}",
                      str(item["min_price_fen_per_device_hour"]), f"{item['age_s']:.1f}")
    console.print(table)


@federation_app.command("job")
def job(job_id: Annotated[str, typer.Argument(help="the job's id at this platform")]
        ) -> None:
    """Where a job roamed: its forward attempts, their answers, its roaming records."""
    console.print_json(json.dumps(request("GET", f"/v1/federation/jobs/{job_id}")))


@federation_app.command("settle")
def settle(through: Annotated[str, typer.Option(help="business date YYYY-MM-DD, Asia/Shanghai")]
           ) -> None:
    """Run a clearing cycle now at the national platform, and show the net positions."""
    data = request("POST", "/v1/federation/clearing/cycles", json={"through_date": through})
    console.print(f"cycle [bold]{data['cycle_id']}[/bold]: {data['records_cleared']} records "
                  f"cleared, gross {_yuan(data['gross_fen'])} CNY; {data['missing']} missing, "
                  f"{data['mismatched']} mismatched left for later")
    if data["unreachable"]:
        console.print(f"[yellow]unreachable: {', '.join(data['unreachable'])}[/yellow]")
    table = Table(title="net positions (multilateral, through the house)")
    table.add_column("platform")
    table.add_column("net CNY", justify="right")
    for platform, net in data["net_positions"].items():
        table.add_row(platform, _yuan(net))
    console.print(table)
    for pair, net in data["bilateral"].items():
        a, b = pair.split("|")
        payer, payee = (a, b) if net > 0 else (b, a)
        console.print(f"  bilateral: {payer} owes {payee} {_yuan(abs(net))} CNY net")


@federation_app.command("statements")
def statements(cycle: Annotated[str | None, typer.Option(help="only this clearing cycle")]
               = None,
               platform: Annotated[str | None, typer.Option(help="only this platform's")]
               = None) -> None:
    """Signed settlement statements of clearing cycles, per platform."""
    data = request("GET", "/v1/federation/clearing/statements",
                   params={"cycle_id": cycle, "platform": platform})
    table = Table(title="settlement statements")
    for column in ("cycle", "platform", "role", "state", "net CNY", "records", "signed by"):
        table.add_column(column)
    for item in data["items"]:
        table.add_row(item["cycle_id"], item["platform"], item["role"], item["state"],
                      _yuan(item["net_fen"]), str(item["statement"]["records"]), item["key_id"])
    console.print(table)


@federation_app.command("positions")
def positions() -> None:
    """Unsettled positions per peer and the ledger's clearing accounts."""
    console.print_json(json.dumps(request("GET", "/v1/federation/positions")))


@federation_app.command("reconcile")
def reconcile(peer: Annotated[str, typer.Option(help="the other platform, e.g. CN.SC")],
              since: Annotated[str | None, typer.Option(help="from this date, YYYY-MM-DD")]
              = None,
              through: Annotated[str | None, typer.Option(help="to this date, YYYY-MM-DD")]
              = None,
              repair: Annotated[bool, typer.Option(
                  help="take in signed records missing here, re-send ours")] = False) -> None:
    """Compare the roaming records held here and at a peer; report (and repair) differences."""
    data = request("POST", "/v1/federation/reconcile",
                   json={"peer": peer, "since": since, "through": through, "repair": repair})
    console.print(f"{data['platform']} <-> {data['peer']}: {data['here']} records here, "
                  f"{data['there']} there, {data['matched']} matched")
    for label in ("missing_here", "missing_there", "mismatched", "repaired"):
        if data[label]:
            console.print(f"  {label.replace('_', ' ')}: {', '.join(data[label])}")
    if data["redelivered"]:
        console.print(f"  re-sent {data['redelivered']} records to {data['peer']}")
    if data["mismatched"] or (data["missing_here"] and not repair) or data["missing_there"]:
        raise typer.Exit(3)


@federation_app.command("disputes")
def disputes(state: Annotated[str | None, typer.Option(help="only disputes in this state, "
                                                         "e.g. open")] = None) -> None:
    """Disputes over roaming records between this platform and its peers."""
    data = request("GET", "/v1/federation/disputes", params={"state": state})
    table = Table(title="disputes")
    for column in ("id", "state", "kind", "with", "record", "cycle", "detail"):
        table.add_column(column)
    for item in data["items"]:
        table.add_row(str(item["id"]), item["state"], item["kind"], item["counterparty"],
                      item["record_id"] or "-", item["cycle_id"] or "-", item["detail"])
    console.print(table)


@federation_app.command("entitle")
def entitle(tenant_id: Annotated[str, typer.Argument(help="the tenant's id")],
            units: Annotated[str, typer.Option(help="compute-unit hours")],
            programme: Annotated[str | None, typer.Option(
                help="pay from this voucher programme's fund instead of the wallet")] = None,
            idempotency_key: Annotated[str | None, typer.Option(
                help="the same key again is the same grant (default: a new one)")] = None
            ) -> None:
    """Operators: grant a tenant prepaid compute-unit hours, usable when its jobs roam
    (跨省通用), at the platform's price (`suanli federation entitlement-price`)."""
    body = {"tenant_id": tenant_id, "units": units,
            "pay_from": "programme" if programme else "wallet", "programme_id": programme}
    data = request("POST", "/v1/federation/entitlements", json=body,
                   headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})
    console.print(f"entitlement {data['id']}: {data['units']} unit-hours for "
                  f"{_yuan(data['price_fen'])} CNY")


@federation_app.command("entitlement-price")
def entitlement_price(set_fen_per_unit_hour: Annotated[str | None, typer.Option(
        "--set", help="operators: the new price, fen per compute-unit hour")] = None) -> None:
    """The platform's price of one compute-unit hour of entitlement (operators set it)."""
    data = (request("PUT", "/v1/federation/entitlement-price",
                    json={"fen_per_unit_hour": set_fen_per_unit_hour})
            if set_fen_per_unit_hour is not None
            else request("GET", "/v1/federation/entitlement-price"))
    console.print(f"{data['fen_per_unit_hour']} fen per compute-unit hour (set by "
                  f"{data['set_by']} at {data['set_at']})")
