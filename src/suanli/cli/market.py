"""`suanli market ...`: the compute exchange (算力交易) from the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request

console = Console()
market_app = typer.Typer(help="The compute exchange (算力交易): orders, books, trades, the index.",
                         no_args_is_help=True)

Start = Annotated[str, typer.Option(help="first hour, ISO 8601 with a zone, e.g. "
                                         "2026-11-02T10:00+08:00 (default: the next hour)")]
Hours = Annotated[int, typer.Option(help="how many hour blocks from --start")]
Count = Annotated[int, typer.Option(help="devices per hour (SCU for scu-* classes)")]


def _hours(start: str | None, hours: int) -> list[list[str]]:
    if start:
        try:
            first = datetime.fromisoformat(start)
        except ValueError:
            console.print(f"[red]--start: not an ISO 8601 time: {start}[/red]")
            raise typer.Exit(1) from None
    else:
        now = datetime.now(UTC)
        first = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return [[first.isoformat(), (first + timedelta(hours=hours)).isoformat()]]


def _order_line(order: dict[str, Any]) -> str:
    return (f"{order['id']} {order['side']} {order['accelerator_class']}@{order['location']} "
            f"{order['price_fen_per_unit_hour']} fen/unit-h: filled {order['filled']}, "
            f"open {order['remaining']} ({order['state']})")


@market_app.command("place")
def place(side: Annotated[str, typer.Argument(help="bid or ask")],
          accelerator_class: Annotated[str, typer.Argument(help="catalog key or scu-<class>")],
          location: Annotated[str, typer.Argument(help="hub (ningxia) or province (CN-GZ)")],
          price: Annotated[int, typer.Option(help="limit price, fen per unit-hour")],
          client_order_id: Annotated[str, typer.Option("--client-id",
                                                       help="idempotency: same id, same order")],
          count: Count = 1, hours: Hours = 1, start: Start = "",
          pool_id: Annotated[str | None, typer.Option(help="an ask's pool")] = None,
          all_or_none: Annotated[bool, typer.Option(
              "--all-or-none", help="fill each hour block whole or not at all")] = False,
          min_fill: Annotated[int, typer.Option(help="least fill per hour block")] = 0,
          good_till: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None) -> None:
    """Place a bid or an ask for `count` units in each of `hours` hour blocks."""
    body = {"client_order_id": client_order_id, "side": side,
            "accelerator_class": accelerator_class, "location": location,
            "price_fen_per_unit_hour": price,
            "shape": {"intervals": _hours(start or None, hours), "counts": [count]},
            "min_fill": min_fill, "all_or_none": all_or_none, "good_till": good_till,
            "pool_id": pool_id}
    console.print(_order_line(request("POST", "/v1/market/orders", json=body)))


@market_app.command("orders")
def orders(state: Annotated[str | None, typer.Option(help="open or done")] = None) -> None:
    """Your orders, newest first."""
    for order in request("GET", "/v1/market/orders", params={"state": state}):
        console.print(_order_line(order))


@market_app.command("show")
def show(order_id: Annotated[str, typer.Argument(help="the order's id (as placed)")]) -> None:
    """One order with its hour blocks."""
    order = request("GET", f"/v1/market/orders/{order_id}")
    console.print(_order_line(order))
    for leg in order["legs"]:
        console.print(f"  {leg['block_start']}: {leg['filled']}/{leg['count']} filled, "
                      f"{leg['remaining']} resting ({leg['state']}), held {leg['hold_fen']} fen")


@market_app.command("cancel")
def cancel(order_id: Annotated[str, typer.Argument(help="the order's id (as placed)")]) -> None:
    """Take an order's open hour blocks off their books; holds go back to the wallet."""
    console.print(_order_line(request("DELETE", f"/v1/market/orders/{order_id}")))


@market_app.command("replace")
def replace(order_id: Annotated[str, typer.Argument(help="the order's id (as placed)")],
            price: Annotated[int | None, typer.Option(
                help="new limit price, fen per unit-hour")] = None,
            count: Annotated[int | None, typer.Option(help="new total per hour")] = None,
            good_till: Annotated[str | None, typer.Option(help="when the order lapses (ISO 8601)")] = None) -> None:
    """New price, count or good-till time for the open hour blocks of a one-interval order."""
    body = {"price_fen_per_unit_hour": price,
            "counts": None if count is None else [count], "good_till": good_till}
    console.print(_order_line(request("PATCH", f"/v1/market/orders/{order_id}", json=body)))


@market_app.command("products")
def products(accelerator_class: Annotated[str | None, typer.Option(
                 "--class", help="catalog key or effective-unit class")] = None,
             location: Annotated[str | None, typer.Option(help="hub or province")] = None) -> None:
    """Products with books, earliest block first."""
    table = Table("product", "rule", "last price", "next uncross")
    for p in request("GET", "/v1/market/products",
                     params={"accelerator_class": accelerator_class, "location": location}):
        table.add_row(p["id"], p["rule"], str(p["last_price_fen_per_unit_hour"] or "-"),
                      p["next_uncross_at"] or "-")
    console.print(table)


@market_app.command("book")
def book(product_id: Annotated[str, typer.Argument(help="product id")],
         depth: Annotated[int, typer.Option(help="price levels per side")] = 10) -> None:
    """The L2 book; for a call auction, the indicative price and imbalance."""
    body = request("GET", f"/v1/market/products/{product_id}/book", params={"depth": depth})
    table = Table("bid qty", "bid", "ask", "ask qty")
    for i in range(max(len(body["bids"]), len(body["asks"]))):
        bid = body["bids"][i] if i < len(body["bids"]) else None
        ask = body["asks"][i] if i < len(body["asks"]) else None
        table.add_row(str(bid["quantity"]) if bid else "",
                      str(bid["price_fen_per_unit_hour"]) if bid else "",
                      str(ask["price_fen_per_unit_hour"]) if ask else "",
                      str(ask["quantity"]) if ask else "")
    console.print(f"{product_id} ({body['product']['rule']})")
    console.print(table)
    if body["indicative"] and body["product"]["rule"] == "call_auction":
        i = body["indicative"]
        console.print(f"indicative: {i['volume']} at {i['price_fen_per_unit_hour']} fen, "
                      f"imbalance {i['imbalance']}")


@market_app.command("trades")
def trades(product_id: Annotated[str | None, typer.Option("--product", help="product id")]
           = None,
           limit: Annotated[int, typer.Option(help="at most this many trades")] = 50) -> None:
    """The trade tape."""
    for t in request("GET", "/v1/market/trades", params={"product_id": product_id,
                                                         "limit": limit}):
        console.print(f"{t['at']} {t['product_id']} {t['quantity']} @ "
                      f"{t['price_fen_per_unit_hour']} ({t['aggressor']})")


@market_app.command("events")
def events(product_id: Annotated[str, typer.Argument(help="product id")],
           lobster: Annotated[bool, typer.Option("--lobster", help="LOBSTER message CSV")]
           = False,
           after_seq: Annotated[int, typer.Option(help="events after this number")] = 0) -> None:
    """A book's event log (--lobster: LOBSTER's message CSV)."""
    params = {"after_seq": after_seq, "format": "lobster" if lobster else "json"}
    if lobster:
        console.print(request("GET", f"/v1/market/products/{product_id}/events", params=params,
                              text=True), end="")
        return
    for e in request("GET", f"/v1/market/products/{product_id}/events", params=params):
        console.print(f"{e['seq']} {e['at']} {e['type']} {e['order_id']} {e['size']} @ "
                      f"{e['price']} ({e['direction']})")


@market_app.command("index")
def index(accelerator_class: Annotated[str, typer.Argument(help="catalog key or unit class")],
          location: Annotated[str, typer.Argument(help="hub or province")],
          period: Annotated[str, typer.Option(help="hour or day")] = "day") -> None:
    """The price index (算力价格指数): volume-weighted, from trades only."""
    body = request("GET", "/v1/market/index", params={
        "accelerator_class": accelerator_class, "location": location, "period": period})
    table = Table("start", "vwap fen/unit-h", "volume", "low", "high", "published")
    for bar in body["bars"]:
        table.add_row(bar["start"], bar["vwap_fen_per_unit_hour"], str(bar["volume"]),
                      str(bar["low"]), str(bar["high"]), "yes" if bar["published"] else "no")
    console.print(f"{body['series']} ({body['period']}): {body['methodology']}")
    console.print(table)


@market_app.command("reservations")
def reservations(as_role: Annotated[str, typer.Option("--as", help="buyer or seller")] = "buyer"
                 ) -> None:
    """Capacity your trades reserved, and how it was paid."""
    for r in request("GET", "/v1/market/reservations", params={"as": as_role}):
        console.print(f"{r['id']}: {r['devices_held']} devices of {r['pool_id']} "
                      f"{r['starts_at']}..{r['ends_at']}, {r['value_fen']} fen "
                      f"({r['in_escrow_fen']} in escrow, {r['state']})")


@market_app.command("resell")
def resell(reservation_id: Annotated[str, typer.Argument(help="your reservation's id")],
           price: Annotated[int, typer.Option(help="limit price, fen per unit-hour")],
           client_order_id: Annotated[str, typer.Option(
               "--client-id", help="idempotency: same id, same order")],
           count: Annotated[int, typer.Option(help="units of the reservation to offer")] = 1,
           all_or_none: Annotated[bool, typer.Option(
               "--all-or-none", help="fill it whole or not at all")] = False,
           min_fill: Annotated[int, typer.Option(help="least fill per match")] = 0,
           good_till: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None) -> None:
    """Offer unused reserved time again: an ask for `count` units of the reservation's block."""
    body = {"client_order_id": client_order_id, "price_fen_per_unit_hour": price,
            "count": count, "min_fill": min_fill, "all_or_none": all_or_none,
            "good_till": good_till}
    console.print(_order_line(request("POST", f"/v1/market/reservations/{reservation_id}/resell",
                                      json=body)))


@market_app.command("quote")
def quote(accelerator_class: Annotated[str, typer.Argument(help="catalog key or unit class")],
          location: Annotated[str, typer.Argument(help="hub or province")],
          count: Count = 1, hours: Hours = 1,
          start: Start = "") -> None:
    """Request for quote: every pool that can serve it answers with a price."""
    body = {"accelerator_class": accelerator_class, "location": location,
            "shape": {"intervals": _hours(start or None, hours), "counts": [count]}}
    for q in request("POST", "/v1/market/quotes", json=body):
        console.print(f"{q['pool_id']} ({q['provider_id']}): {q['price_fen_per_unit_hour']} "
                      f"fen/unit-h, {q['value_fen']} fen in all")


@market_app.command("uncross")
def uncross(product_id: Annotated[str, typer.Argument(help="product id")]) -> None:
    """Operators: run a call auction now."""
    body = request("POST", f"/v1/market/products/{product_id}/uncross")
    console.print(f"{body['trades']} trades")


@market_app.command("sweep")
def sweep() -> None:
    """Operators: expire, run due auctions, settle, publish the index now."""
    body = request("POST", "/v1/market/sweep")
    console.print(", ".join(f"{k} {v}" for k, v in body.items()))


@market_app.command("check")
def check() -> None:
    """Operators: the market's and the ledger's invariants."""
    body = request("GET", "/v1/market/check")
    console.print("ok" if body["ok"] else "[red]problems:[/red]")
    for problem in body["problems"]:
        console.print(f"  {problem}")
    if not body["ok"]:
        raise typer.Exit(1)
