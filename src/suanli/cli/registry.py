"""`suanli providers|sites|pools ...`: the registry from the command line."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request

console = Console()
providers = typer.Typer(help="Providers (算力提供方).", no_args_is_help=True)
sites = typer.Typer(help="Sites (算力节点).", no_args_is_help=True)
pools = typer.Typer(help="Resource pools (资源池).", no_args_is_help=True)


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    return table


@providers.command("create")
def provider_create(name: str, kind: Annotated[str, typer.Option(help="telecom, cloud, "
                    "computing-centre, university, enterprise")] = "enterprise",
                    country: str = "CN") -> None:
    row = request("POST", "/v1/providers", json={"name": name, "kind": kind, "country": country})
    console.print(f"created provider [bold]{row['id']}[/bold]")


@providers.command("list")
def provider_list(mine: bool = False, limit: int = 50) -> None:
    page = request("GET", "/v1/providers", params={"mine": mine, "limit": limit})
    console.print(_table("providers", page["items"], ["id", "name", "kind", "country"]))


@sites.command("create")
def site_create(provider_id: str, name: str, province: str, city: str,
                latitude: float, longitude: float,
                pue: Annotated[str, typer.Option()] = "1.3",
                electricity_fen_per_kwh: Annotated[int, typer.Option()] = 60,
                green_share: Annotated[str, typer.Option()] = "0.3",
                kind: Annotated[str, typer.Option(help="hub or edge")] = "hub",
                hub: Annotated[str | None, typer.Option()] = None) -> None:
    body = {"name": name, "province": province, "city": city, "latitude": latitude,
            "longitude": longitude, "pue": str(Decimal(pue)),
            "electricity_fen_per_kwh": electricity_fen_per_kwh,
            "green_share": str(Decimal(green_share)), "kind": kind, "hub": hub}
    row = request("POST", f"/v1/providers/{provider_id}/sites", json=body)
    console.print(f"created site [bold]{row['id']}[/bold]")


@sites.command("list")
def site_list(provider_id: str | None = None, hub: str | None = None,
              province: str | None = None, limit: int = 50) -> None:
    page = request("GET", "/v1/sites", params={"provider_id": provider_id, "hub": hub,
                                               "province": province, "limit": limit})
    console.print(_table("sites", page["items"],
                         ["id", "name", "province", "city", "hub", "kind", "pue", "green_share"]))


@pools.command("create")
def pool_create(site_id: str, name: str, accelerator: str, device_count: int,
                price_fen_per_device_hour: int,
                engine: Annotated[str, typer.Option(help="local, slurm, ray, kubernetes")] = "local",
                interconnect: str | None = None) -> None:
    body = {"name": name, "accelerator": accelerator, "device_count": device_count,
            "engine": engine, "price_fen_per_device_hour": price_fen_per_device_hour,
            "interconnect": interconnect}
    row = request("POST", f"/v1/sites/{site_id}/pools", json=body)
    console.print(f"created pool [bold]{row['id']}[/bold]")


@pools.command("search")
def pool_search(
    vendor: str | None = None, architecture: str | None = None,
    accelerator: str | None = None, min_memory_gb: float | None = None,
    min_units: str | None = None, workload_class: str = "general",
    province: str | None = None, hub: str | None = None,
    max_fen_per_unit_hour: str | None = None, max_fen_per_device_hour: int | None = None,
    min_green_share: str | None = None,
    sort: Annotated[str, typer.Option(help="price_per_unit, price, latency, green, free")]
    = "price_per_unit",
    near_city: str | None = None, limit: int = 20, offset: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Find pools (可查询): filter, sort by price per effective unit or latency, page."""
    params = {"vendor": vendor, "architecture": architecture, "accelerator": accelerator,
              "min_memory_gb": min_memory_gb, "min_units": min_units,
              "workload_class": workload_class, "province": province, "hub": hub,
              "max_fen_per_unit_hour": max_fen_per_unit_hour,
              "max_fen_per_device_hour": max_fen_per_device_hour,
              "min_green_share": min_green_share, "sort": sort, "near_city": near_city,
              "limit": limit, "offset": offset, "count": True}
    page = request("GET", "/v1/pools", params=params)
    if as_json:
        console.print_json(json.dumps(page))
        return
    columns = ["id", "accelerator", "free_devices", "city", "hub", "price_fen_per_device_hour",
               "fen_per_unit_hour", "green_share"]
    if near_city:
        columns.append("latency_ms")
    console.print(_table(f"pools ({page.get('total')} match)", page["items"], columns))
    if page.get("next_offset") is not None:
        console.print(f"more: --offset {page['next_offset']}")
