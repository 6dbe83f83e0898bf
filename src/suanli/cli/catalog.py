"""`suanli accelerators`: the accelerator catalog (加速卡目录) the platform rates and prices by."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request
from suanli.cli.names import device_kind, vendor_name

console = Console()


def _memory(item: dict[str, Any]) -> str:
    return "-" if item.get("memory_gb") is None else f"{item['memory_gb']:g} GB"


def accelerators(
    vendor: Annotated[str | None, typer.Option(help="e.g. NVIDIA, Huawei, Cambricon (any case)")]
    = None,
    kind: Annotated[str | None, typer.Option(help="gpu, npu, dcu, xpu or cpu")] = None,
    min_memory_gb: Annotated[float | None, typer.Option(help="at least this much memory")]
    = None,
    search: Annotated[str | None, typer.Option(
        help="text in the key or model name, e.g. h100 or 910")] = None,
    workload_class: Annotated[str, typer.Option(
        help="units column: general, training, inference or hpc")] = "general",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the accelerator catalog: key, vendor, model, memory and compute units per hour.

    The key is what `--accelerator` takes in `pools search`, `jobs submit` and `pools create`.
    """
    body = request("GET", "/v1/catalog/accelerators",
                   params={"vendor": vendor_name(vendor), "kind": device_kind(kind, "--kind")},
                   authenticated=False)
    items = [a for a in body["items"]
             if (min_memory_gb is None or (a.get("memory_gb") or 0) >= min_memory_gb)
             and (search is None or search.lower() in (a["key"] + " " + a["model"]).lower())]
    if as_json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"accelerators ({len(items)} of the catalog)")
    for column in ("key", "vendor", "model", "kind", "memory", f"units/h ({workload_class})"):
        table.add_column(column, justify="right" if column.startswith(("memory", "units"))
                         else "left")
    for a in items:
        units = a.get("units_per_device_hour", {}).get(workload_class, "-")
        table.add_row(a["key"], a["vendor"], a["model"], a["kind"], _memory(a), units)
    console.print(table)
    if not items:
        console.print("no accelerator matches; `suanli accelerators` lists them all")
