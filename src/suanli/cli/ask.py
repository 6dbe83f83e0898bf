"""`suanli ask "..."`: a request in Chinese or English, read without any model, shown back,
then searched and quoted; it submits only a command given after `--`, and asks first."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suanli.catalog import ALIASES, load_catalog, load_cities
from suanli.cli.client import request
from suanli.domain import ask as asking

console = Console(highlight=False, soft_wrap=True)
QUOTE_OPTIONS = 3
QUOTE_CANDIDATES = 10  # priced, then ordered by what the request asked for


def _vocabulary() -> tuple[asking.Vocabulary, dict[str, tuple[str, ...]]]:
    cities = load_cities()
    return (asking.build_vocabulary(load_catalog().all(), cities, ALIASES),
            asking.hub_provinces(cities))


def _yuan(fen: int | None) -> str:
    return "-" if fen is None else f"{fen // 100:,}.{fen % 100:02d}"


def _show_understanding(parsed: asking.Ask) -> None:
    console.print("understood:")
    for line in parsed.understood or ("nothing",):
        console.print(f"  {escape(line)}")
    if parsed.unknown:
        console.print(f"[yellow]not understood: {escape(', '.join(parsed.unknown))}[/yellow]")
    for line in parsed.ambiguous:
        console.print(f"[yellow]ambiguous: {escape(line)}[/yellow]")


def _search(planned: asking.Plan, limit: int) -> list[dict[str, Any]]:
    """One search, or one per hub when the request named several (the API takes one)."""
    hubs = planned.searches_per_hub or (None,)
    hits: list[dict[str, Any]] = []
    for hub in hubs:
        params = {**planned.search, "hub": hub or planned.search.get("hub"), "limit": limit}
        hits += request("GET", "/v1/pools", params=params)["items"]
    sort = planned.search.get("sort", "price")
    keys = {"green": lambda h: -float(h["green_share"]),
            "latency": lambda h: h.get("latency_ms") or 0.0,
            "free": lambda h: -h["free_devices"]}
    hits.sort(key=keys.get(str(sort), lambda h: h["price_fen_per_device_hour"]))
    return hits[:limit]


def _print_pools(hits: list[dict[str, Any]]) -> None:
    table = Table(title=f"pools ({len(hits)})")
    for column in ("pool", "accelerator", "city", "hub", "free", "fen/device-h", "green"):
        table.add_column(column)
    for h in hits:
        table.add_row(h["id"], h["accelerator"], h["city"], h["hub"] or "-",
                      f"{h['free_devices']}/{h['device_count']}",
                      str(h["price_fen_per_device_hour"]), str(h["green_share"]))
    console.print(table)


def _ordered(quote: dict[str, Any], sort: str | None) -> dict[str, Any]:
    """The placement's own ranking, unless the request asked for the cheapest or the
    greenest: then by estimated cost or estimated carbon; the first QUOTE_OPTIONS."""
    options = list(quote["options"])
    if sort == "price":
        options.sort(key=lambda o: o["estimate"]["estimated_cost_fen"] or 0)
    elif sort == "green":
        # only the placement's shortlist carries a carbon estimate; the rest go last
        options.sort(key=lambda o: o["placement"].get("estimated_carbon_kg", float("inf")))
    return {**quote, "options": options[:QUOTE_OPTIONS]}


def _print_quote(body: dict[str, Any], budget_fen: int | None) -> None:
    table = Table(title=f"quote: {body['devices']} device(s) for up to "
                        f"{body['time_limit_s'] / 3600:g} h ({body['candidates']} pools could "
                        "take it now)")
    for column in ("placement rank", "pool", "accelerator", "city", "estimated yuan", "kg CO2",
                   "within budget"):
        table.add_column(column)
    for o in body["options"]:
        cost = o["estimate"]["estimated_cost_fen"]
        fits = "-" if budget_fen is None or cost is None else \
            ("yes" if cost <= budget_fen else "no")
        table.add_row(str(o["rank"]), o["pool_id"], o["accelerator"], o["city"], _yuan(cost),
                      str(o["placement"].get("estimated_carbon_kg", "-")), fits)
    console.print(table)
    if body.get("message"):
        console.print(body["message"])


def ask(
    text: Annotated[str, typer.Argument(help="what you need, e.g. \"8 H800 near Shenzhen for "
                                             "2 days, cheapest\" or \"西部64张昇腾卡 训练3天\"")],
    command: Annotated[list[str] | None, typer.Argument(
        help="after --: the program to run; without it nothing is submitted")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="submit without asking")] = False,
    limit: Annotated[int, typer.Option(min=1, max=20, help="pools to show")] = 5,
) -> None:
    """Ask for compute in words (Chinese or English): shows what it understood, the pools
    and a quote; with `-- CMD` it offers to submit the best option within your budget."""
    vocabulary, hub_provinces = _vocabulary()
    try:
        parsed = asking.parse(text, vocabulary)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="TEXT") from None
    _show_understanding(parsed)
    planned = asking.plan(parsed, hub_provinces)
    _print_pools(_search(planned, limit))
    spec = {"name": "ask", "command": command or ["true"], **planned.quote}
    quote = _ordered(request("POST", "/v1/quotes", json=spec,
                             params={"limit": QUOTE_CANDIDATES}), parsed.sort)
    _print_quote(quote, parsed.budget_fen)
    if not command:
        console.print("nothing submitted: add `-- COMMAND` to run a program there")
        return
    _offer(parsed, spec, quote, yes)


def _offer(parsed: asking.Ask, spec: dict[str, Any], quote: dict[str, Any], yes: bool) -> None:
    if not parsed.clear:
        console.print("[red]not submitted: rephrase the words not understood first; nothing "
                      "is guessed when money is involved[/red]")
        raise typer.Exit(1)
    budget = parsed.budget_fen
    options = [o for o in quote["options"] if budget is None or (  # unrated: over any budget
        o["estimate"]["estimated_cost_fen"] is not None
        and o["estimate"]["estimated_cost_fen"] <= budget)]
    if not options:
        console.print("[red]not submitted: no option within the budget[/red]")
        raise typer.Exit(1)
    best = options[0]
    cost = best["estimate"]["estimated_cost_fen"]
    if not yes and not typer.confirm(f"submit to {best['pool_id']} for an estimated "
                                     f"{_yuan(cost)} yuan?", default=False):
        console.print("not submitted")
        raise typer.Exit(1)
    body = {**spec, "pool_id": best["pool_id"],
            "max_price_fen_per_device_hour": best["price_fen_per_device_hour"]}
    job = request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    console.print(f"submitted {job['id']} ({job['state']}) to {best['pool_id']}; "
                  f"`suanli jobs get {job['id']}` shows it")
