"""`suanli market ...` against a real `suanli serve --demo`: an ask on a demo pool, a bid that
takes it, the book, the tape, the LOBSTER log, the reservation, its resale and the invariant
check."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import run_cli


def test_an_ask_and_a_bid_trade_from_the_cli(node_factory) -> None:
    node = node_factory("--demo")
    assert node.operator_key and node.demo_key
    hits = httpx.get(node.url + "/v1/pools", params={"hub": "ningxia", "limit": 1},
                     headers={"Authorization": f"Bearer {node.operator_key}"}).json()["items"]
    pool = hits[0]
    accelerator, pool_id = pool["accelerator"], pool["id"]
    # The operator may sell from any pool (the demo provider's key is not printed).
    ask = run_cli("market", "place", "ask", accelerator, "ningxia", "--price", "1500",
                  "--count", "1", "--hours", "2", "--client-id", "ask-1", "--pool-id", pool_id,
                  url=node.url, key=node.operator_key)
    assert ask.returncode == 0, ask.stderr
    assert "filled 0, open 2 (open)" in ask.stdout
    bid = run_cli("market", "place", "bid", accelerator, "ningxia", "--price", "1600",
                  "--count", "1", "--client-id", "bid-1", url=node.url, key=node.demo_key)
    assert bid.returncode == 0, bid.stderr
    assert "filled 1, open 0 (done)" in bid.stdout
    order_id = bid.stdout.split()[0]
    shown = run_cli("market", "show", order_id, url=node.url, key=node.demo_key)
    tape = run_cli("market", "trades", url=node.url, key=node.demo_key).stdout
    assert tape.count(" @ 1500 (buy)") == 1, tape  # at the resting ask's price
    product_id = tape.split()[1]
    assert "1/1 filled" in shown.stdout
    book = run_cli("market", "book", product_id, url=node.url, key=node.demo_key)
    assert book.returncode == 0 and "continuous" in book.stdout
    lobster = run_cli("market", "events", product_id, "--lobster", url=node.url,
                      key=node.demo_key)
    assert [line.split(",")[1] for line in lobster.stdout.split()] == ["1", "4"]
    held = run_cli("market", "reservations", url=node.url, key=node.demo_key)
    assert f"1 devices of {pool_id}" in held.stdout
    [bought] = httpx.get(node.url + "/v1/market/reservations",
                         headers={"Authorization": f"Bearer {node.demo_key}"}).json()
    resold = run_cli("market", "resell", bought["id"], "--price", "1700", "--count", "1",
                     "--client-id", "resell-1", url=node.url, key=node.demo_key)
    assert resold.returncode == 0, resold.stderr
    assert "ask" in resold.stdout and "filled 0, open 1 (open)" in resold.stdout
    twice = run_cli("market", "resell", bought["id"], "--price", "1800", "--count", "1",
                    "--client-id", "resell-2", url=node.url, key=node.demo_key)
    assert twice.returncode == 1 and "counts" in twice.stderr
    bad = run_cli("market", "place", "bid", accelerator, "atlantis", "--price", "1",
                  "--client-id", "x", url=node.url, key=node.demo_key)
    assert bad.returncode == 1 and "location" in bad.stderr
    check = run_cli("market", "check", url=node.url, key=node.operator_key)
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stdout
