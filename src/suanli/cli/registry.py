"""`suanli providers|sites|pools ...`: the registry from the command line."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suanli.cli.client import request
from suanli.cli.names import accelerator_key, device_kind, vendor_name

console = Console(highlight=False)
providers = typer.Typer(help="Providers (算力提供方): owners of compute.", no_args_is_help=True)
sites = typer.Typer(help="Sites (算力节点): a provider's data centres.", no_args_is_help=True)
pools = typer.Typer(help="Resource pools (资源池): search them, or register your own.",
                    no_args_is_help=True)

Limit = Annotated[int, typer.Option(min=1, max=200, help="at most this many")]


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if row.get(c) is None else escape(str(row.get(c))) for c in columns])
    return table


@providers.command("create")
def provider_create(
    name: Annotated[str, typer.Argument(help="the provider's name")],
    kind: Annotated[str, typer.Option(help="telecom, cloud, computing-centre, university or "
                                           "enterprise")] = "enterprise",
    country: Annotated[str, typer.Option(help="ISO 3166 country code")] = "CN",
) -> None:
    """Providers: register your organisation as a provider."""
    row = request("POST", "/v1/providers", json={"name": name, "kind": kind, "country": country})
    console.print(f"created provider {row['id']}")


@providers.command("list")
def provider_list(mine: Annotated[bool, typer.Option(help="only your own")] = False,
                  limit: Limit = 50) -> None:
    """The providers this platform knows."""
    page = request("GET", "/v1/providers", params={"mine": mine, "limit": limit})
    console.print(_table("providers", page["items"], ["id", "name", "kind", "country"]))


@sites.command("create")
def site_create(
    provider_id: Annotated[str, typer.Argument(help="your provider's id")],
    name: Annotated[str, typer.Argument(help="the site's name")],
    province: Annotated[str, typer.Argument(help="ISO 3166-2:CN code, e.g. CN-GZ")],
    city: Annotated[str, typer.Argument(help="the city, e.g. Guiyang")],
    latitude: Annotated[float, typer.Argument(help="degrees north")],
    longitude: Annotated[float, typer.Argument(help="degrees east")],
    pue: Annotated[str, typer.Option(help="power usage effectiveness, 1.0-3.0")] = "1.3",
    electricity_fen_per_kwh: Annotated[int, typer.Option(help="what the site pays for power")]
    = 60,
    green_share: Annotated[str, typer.Option(help="share of renewable power, 0-1")] = "0.3",
    kind: Annotated[str, typer.Option(help="hub or edge")] = "hub",
    hub: Annotated[str | None, typer.Option(
        help="the national hub it belongs to, e.g. guizhou, ningxia")] = None,
) -> None:
    """Providers: register a site (data centre) of your provider."""
    body = {"name": name, "province": province, "city": city, "latitude": latitude,
            "longitude": longitude, "pue": str(Decimal(pue)),
            "electricity_fen_per_kwh": electricity_fen_per_kwh,
            "green_share": str(Decimal(green_share)), "kind": kind, "hub": hub}
    row = request("POST", f"/v1/providers/{provider_id}/sites", json=body)
    console.print(f"created site {row['id']}")


@sites.command("list")
def site_list(provider_id: Annotated[str | None, typer.Option(help="of this provider")] = None,
              hub: Annotated[str | None, typer.Option(help="in this hub")] = None,
              province: Annotated[str | None, typer.Option(help="in this province")] = None,
              limit: Limit = 50) -> None:
    """Sites, filtered by provider, hub or province."""
    page = request("GET", "/v1/sites", params={"provider_id": provider_id, "hub": hub,
                                               "province": province, "limit": limit})
    console.print(_table("sites", page["items"],
                         ["id", "name", "province", "city", "hub", "kind", "pue", "green_share"]))


@pools.command("create")
def pool_create(
    site_id: Annotated[str, typer.Argument(help="your site's id")],
    name: Annotated[str, typer.Argument(help="the pool's name")],
    accelerator: Annotated[str, typer.Argument(
        help="catalog key or model, e.g. nvidia-a800 or 910B (`suanli accelerators`)")],
    device_count: Annotated[int, typer.Argument(help="accelerators (or CPU sockets)")],
    price_fen_per_device_hour: Annotated[int, typer.Argument(help="list price")],
    engine: Annotated[str, typer.Option(help="local, slurm, ray or kubernetes")] = "local",
    interconnect: Annotated[str | None, typer.Option(
        help="a fabric id shared by pools that can host one gang together")] = None,
) -> None:
    """Providers: register a pool of identical devices at your site."""
    body = {"name": name, "accelerator": accelerator_key(accelerator, "ACCELERATOR"),
            "device_count": device_count, "engine": engine,
            "price_fen_per_device_hour": price_fen_per_device_hour, "interconnect": interconnect}
    row = request("POST", f"/v1/sites/{site_id}/pools", json=body)
    console.print(f"created pool {row['id']}")


@pools.command("search")
def pool_search(
    vendor: Annotated[str | None, typer.Option(help="e.g. NVIDIA, Huawei (any case)")] = None,
    device_kind_: Annotated[str | None, typer.Option(
        "--device-kind", help="gpu, npu, dcu, xpu or cpu")] = None,
    architecture: Annotated[str | None, typer.Option(help="e.g. Hopper, Da Vinci")] = None,
    accelerator: Annotated[str | None, typer.Option(
        help="catalog key or model, e.g. H800 (`suanli accelerators`)")] = None,
    min_memory_gb: Annotated[float | None, typer.Option(help="device memory at least")] = None,
    min_units: Annotated[str | None, typer.Option(help="free compute units at least")] = None,
    workload_class: Annotated[str, typer.Option(
        help="prices per unit for: general, training, inference or hpc")] = "general",
    province: Annotated[str | None, typer.Option(help="ISO 3166-2:CN code, e.g. CN-GZ")]
    = None,
    hub: Annotated[str | None, typer.Option(help="a national hub, e.g. guizhou")] = None,
    max_fen_per_unit_hour: Annotated[str | None, typer.Option(
        help="price per compute-unit-hour at most")] = None,
    max_fen_per_device_hour: Annotated[int | None, typer.Option(
        help="list price per device-hour at most")] = None,
    min_green_share: Annotated[str | None, typer.Option(help="renewable share at least, 0-1")]
    = None,
    sort: Annotated[str, typer.Option(help="price_per_unit, price, latency, green or free")]
    = "price_per_unit",
    near_city: Annotated[str | None, typer.Option(
        help="with --sort latency: the users' city, e.g. Shenzhen")] = None,
    limit: Limit = 20,
    offset: Annotated[int, typer.Option(min=0, help="skip this many (paging)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Find pools (可查询): filter, sort by price per effective unit or latency, page."""
    params = {"vendor": vendor_name(vendor), "device_kind": device_kind(device_kind_),
              "architecture": architecture, "accelerator": accelerator_key(accelerator),
              "min_memory_gb": min_memory_gb, "min_units": min_units,
              "workload_class": workload_class, "province": province, "hub": hub,
              "max_fen_per_unit_hour": max_fen_per_unit_hour,
              "max_fen_per_device_hour": max_fen_per_device_hour,
              "min_green_share": min_green_share, "sort": sort, "near_city": near_city,
              "limit": limit, "offset": offset, "count": True}
    page = request("GET", "/v1/pools", params=params)
    if as_json:
        print(json.dumps(page, indent=2, ensure_ascii=False))
        return
    columns = ["id", "accelerator", "free_devices", "city", "hub", "price_fen_per_device_hour",
               "fen_per_unit_hour", "green_share"]
    if near_city:
        columns.append("latency_ms")
    console.print(_table(f"pools ({page.get('total')} match)", page["items"], columns))
    if page.get("next_offset") is not None:
        console.print(f"more: --offset {page['next_offset']}")
