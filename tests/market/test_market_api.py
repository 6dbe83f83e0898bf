"""The exchange over HTTP: a provider's ask and a consumer's bid match, the trade is a
reservation the consumer's job then runs on, escrow pays the provider as the hour passes; bad
input is a 422 naming the field with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import Tenant, app, client, make_tenant, operator, provider  # noqa: F401
from tests.market.conftest import ACCELERATOR, SITE

FEE_BPS = 100


def _hour(moment: datetime, hours_ahead: int) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours_ahead)


def _order(client_order_id: str, side: str, price: int, start: datetime, count: int,
           **changes: Any) -> dict[str, Any]:
    return {"client_order_id": client_order_id, "side": side, "accelerator_class": ACCELERATOR,
            "location": "ningxia", "price_fen_per_unit_hour": price,
            "shape": {"intervals": [[start.isoformat(), (start + timedelta(hours=1)).isoformat()]],
                      "counts": [count]}, **changes}


@pytest.fixture
def pools(client, provider) -> dict[str, str]:  # noqa: F811
    """Two A800 pools at one Ningxia site: `dear` (900 fen a device-hour) sells on the
    exchange; `cheap` (500) is where the scheduler would put a job without a reservation."""
    p = client.post("/v1/providers", json={"name": "West Cloud", "kind": "cloud"},
                    headers=provider.headers).json()
    site = client.post(f"/v1/providers/{p['id']}/sites", json=SITE,
                       headers=provider.headers).json()
    ids = {}
    for name, price in (("dear", 900), ("cheap", 500)):
        made = client.post(f"/v1/sites/{site['id']}/pools",
                           json={"name": name, "accelerator": ACCELERATOR, "device_count": 4,
                                 "engine": "local", "price_fen_per_device_hour": price},
                           headers=provider.headers)
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    return ids


def test_ask_and_bid_match_into_a_reservation_the_job_runs_on_and_money_settles(
        client, clock, operator, provider, make_tenant, pools) -> None:  # noqa: F811
    consumer = make_tenant("consumer", "Yinchuan AI", "start-up")
    deposit = client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 100_000},
                          headers={**operator.headers, "Idempotency-Key": "dep-1"})
    assert deposit.status_code == 201, deposit.text
    start = _hour(clock.now(), 1)
    ask = client.post("/v1/market/orders", json=_order("ask-1", "ask", 1_000, start, 2,
                                                       pool_id=pools["dear"]),
                      headers=provider.headers)
    assert ask.status_code == 201, ask.text
    bid_body = _order("bid-1", "bid", 1_200, start, 2)
    bid = client.post("/v1/market/orders", json=bid_body, headers=consumer.headers)
    assert bid.status_code == 201, bid.text
    assert (bid.json()["state"], bid.json()["filled"]) == ("done", 2)
    again = client.post("/v1/market/orders", json=bid_body, headers=consumer.headers)
    assert again.status_code == 200 and again.json()["id"] == bid.json()["id"]
    clash = client.post("/v1/market/orders", json={**bid_body, "price_fen_per_unit_hour": 1_300},
                        headers=consumer.headers)
    assert clash.status_code == 409 and clash.json()["errors"][0]["field"] == "client_order_id"

    product_id = bid.json()["legs"][0]["product_id"]
    tape = client.get("/v1/market/trades", params={"product_id": product_id},
                      headers=consumer.headers).json()
    assert [(t["price_fen_per_unit_hour"], t["quantity"], t["aggressor"]) for t in tape] == [
        (1_000, 2, "buy")]
    held = client.get("/v1/market/reservations", headers=consumer.headers).json()
    assert [(r["pool_id"], r["devices"], r["value_fen"], r["state"]) for r in held] == [
        (pools["dear"], 2, 2_000, "reserved")]
    sold = client.get("/v1/market/reservations", params={"as": "seller"},
                      headers=provider.headers).json()
    assert [r["id"] for r in sold] == [held[0]["id"]]
    wallet = client.get("/v1/wallet", headers=consumer.headers).json()
    assert wallet["wallet"]["balance_fen"] == 100_000 - 2_000

    # In the reserved hour the consumer's job goes to the reserved pool, not the cheaper one.
    clock.advance((start - clock.now()).total_seconds() + 60)
    job = client.post("/v1/jobs", json={"name": "train", "command": ["train"], "devices": 2,
                                        "accelerator": ACCELERATOR, "time_limit_s": 1800},
                      headers={**consumer.headers, "Idempotency-Key": "job-1"})
    assert job.status_code == 201, job.text
    assert job.json()["pool_id"] == pools["dear"]
    other = make_tenant("consumer", "no reservation", "start-up")
    client.post(f"/v1/tenants/{other.id}/deposits", json={"amount_fen": 100_000},
                headers={**operator.headers, "Idempotency-Key": "dep-2"})
    theirs = client.post("/v1/jobs", json={"name": "t", "command": ["t"], "devices": 1,
                                           "accelerator": ACCELERATOR, "time_limit_s": 600},
                         headers={**other.headers, "Idempotency-Key": "job-2"})
    assert theirs.json()["pool_id"] == pools["cheap"]

    # The hour ends: escrow has paid the provider and the platform's fee in full.
    clock.advance(3600)
    swept = client.post("/v1/market/sweep", headers=operator.headers)
    assert swept.status_code == 200 and swept.json()["settled"] == 1, swept.text
    receivable = client.get("/v1/wallet", headers=provider.headers).json()["receivable"]
    assert receivable["balance_fen"] == 2_000 - 2_000 * FEE_BPS // 10_000
    check = client.get("/v1/market/check", headers=operator.headers).json()
    assert check["ok"] and check["ledger"]["ok"], check
    index = client.get("/v1/market/index", params={"accelerator_class": ACCELERATOR,
                                                   "location": "ningxia", "period": "hour"},
                       headers=consumer.headers).json()
    assert [(b["vwap_fen_per_unit_hour"], b["volume"], b["published"]) for b in index["bars"]] \
        == [("1000.00", 2, True)]
    lobster = client.get(f"/v1/market/products/{product_id}/events",
                         params={"format": "lobster"}, headers=consumer.headers)
    assert lobster.headers["content-type"].startswith("text/csv")
    assert [line.split(",")[1] for line in lobster.text.splitlines()] == ["1", "4"]


@pytest.mark.parametrize(("change", "field"), [
    ({"price_fen_per_unit_hour": 0}, "price_fen_per_unit_hour"),
    ({"side": "sell"}, "side"),
    ({"location": "atlantis"}, "location"),
    ({"client_order_id": "has space"}, "client_order_id"),
    ({"shape": {"intervals": [["2026-11-02T10:30:00+00:00", "2026-11-02T11:00:00+00:00"]],
                "counts": [1]}}, "shape.intervals[0]"),
    ({"shape": {"intervals": [["2026-11-02T10:00:00", "2026-11-02T11:00:00"]],
                "counts": [1]}}, "shape.intervals[0][0]"),
    ({"shape": {"intervals": [["2026-11-02T10:00:00+00:00", "2026-11-02T11:00:00+00:00"]],
                "counts": [0]}}, "shape.counts[0]"),
    ({"min_fill": 5}, "min_fill"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_orders_are_422_naming_the_field_and_store_nothing(
        client, clock, consumer_with_money, change, field) -> None:  # noqa: F811
    start = _hour(clock.now(), 2)
    body = {**_order("bad-1", "bid", 1_000, start, 2), **change}
    response = client.post("/v1/market/orders", json=body, headers=consumer_with_money.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    listed = client.get("/v1/market/orders", headers=consumer_with_money.headers).json()
    assert listed == []
    wallet = client.get("/v1/wallet", headers=consumer_with_money.headers).json()
    assert wallet["held_fen"] == 0


@pytest.fixture
def consumer_with_money(client, operator, make_tenant) -> Tenant:  # noqa: F811
    consumer = make_tenant("consumer", "c", "start-up")
    client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 100_000},
                headers={**operator.headers, "Idempotency-Key": "dep-c"})
    return consumer


def test_a_far_block_shows_its_indicative_price_before_the_operator_uncrosses_it(
        client, clock, operator, provider, pools, consumer_with_money) -> None:  # noqa: F811
    start = _hour(clock.now(), 30)
    client.post("/v1/market/orders", json=_order("a", "ask", 900, start, 3,
                                                  pool_id=pools["dear"]),
                headers=provider.headers)
    bid = client.post("/v1/market/orders", json=_order("b", "bid", 1_100, start, 2),
                      headers=consumer_with_money.headers)
    assert bid.status_code == 201 and bid.json()["filled"] == 0
    product_id = bid.json()["legs"][0]["product_id"]
    book = client.get(f"/v1/market/products/{product_id}/book",
                      headers=consumer_with_money.headers).json()
    assert book["product"]["rule"] == "call_auction"
    assert book["indicative"] == {"price_fen_per_unit_hour": 900, "volume": 2,
                                  "buy_volume": 2, "sell_volume": 3, "imbalance": -1}
    refused = client.post(f"/v1/market/products/{product_id}/uncross",
                          headers=consumer_with_money.headers)
    assert refused.status_code == 403
    done = client.post(f"/v1/market/products/{product_id}/uncross", headers=operator.headers)
    assert done.json()["trades"] == 1
    order = client.get(f"/v1/market/orders/{bid.json()['id']}",
                       headers=consumer_with_money.headers).json()
    assert (order["filled"], order["state"]) == (2, "done")
    quotes = client.post("/v1/market/quotes", json={
        "accelerator_class": ACCELERATOR, "location": "CN-NX",
        "shape": {"intervals": [[start.isoformat(), (start + timedelta(hours=1)).isoformat()]],
                  "counts": [1]}}, headers=consumer_with_money.headers)
    assert quotes.status_code == 200, quotes.text
    assert sorted(q["pool_id"] for q in quotes.json()) == sorted(pools.values())
    assert datetime.fromisoformat(book["product"]["block_start"]) == start.astimezone(UTC)


def _run(client, provider, agent_id: str, clock, wall_s: int) -> None:  # noqa: F811
    """The provider's agent claims the one waiting job, runs it `wall_s` and reports usage."""
    claimed = client.post(f"/v1/agents/{agent_id}/claim", json={}, headers=provider.headers)
    [assignment] = claimed.json()["assignments"]
    url = f"/v1/agents/{agent_id}/leases/{assignment['lease_id']}/report"
    running = client.post(url, json={"fence": assignment["fence"], "state": "running"},
                          headers=provider.headers)
    assert running.status_code == 200, running.text
    clock.advance(wall_s)
    done = client.post(url, json={"fence": assignment["fence"], "state": "succeeded",
                                  "exit_code": 0, "usage": {"wall_s": float(wall_s)}},
                       headers=provider.headers)
    assert done.status_code == 200, done.text


def _wallet_debits(client, consumer) -> list[tuple[str, int]]:  # noqa: F811
    """Posted transfers that took money out of the consumer's wallet: (code, fen)."""
    account = f"wallet:{consumer.id}"
    detail = client.get(f"/v1/ledger/accounts/{account}", headers=consumer.headers).json()
    return sorted((t["code"], t["amount_fen"]) for t in detail["transfers"]
                  if t["debit_account_id"] == account and t["state"] == "posted"
                  and t["kind"] != "pending")


def test_a_job_on_reserved_capacity_is_paid_once_through_escrow_not_again_at_the_tariff(
        client, clock, operator, provider, make_tenant, pools) -> None:  # noqa: F811
    consumer = make_tenant("consumer", "Yinchuan AI", "start-up")
    client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 100_000},
                headers={**operator.headers, "Idempotency-Key": "dep-1"})
    agent = client.post("/v1/agents", json={"name": "a1", "pools": list(pools.values())},
                        headers=provider.headers)
    assert agent.status_code == 201, agent.text
    start = _hour(clock.now(), 1)
    ask = client.post("/v1/market/orders", json=_order("ask-1", "ask", 1_000, start, 2,
                                                       pool_id=pools["dear"]),
                      headers=provider.headers)
    bid = client.post("/v1/market/orders", json=_order("bid-1", "bid", 1_200, start, 2),
                      headers=consumer.headers)
    assert (ask.status_code, bid.status_code, bid.json()["filled"]) == (201, 201, 2), bid.text
    value = 1_000 * 2  # the trade prints at the resting ask's price

    # A 2-device job for 20 minutes inside the reserved hour: wholly on the reservation.
    clock.advance((start - clock.now()).total_seconds() + 60)
    job = client.post("/v1/jobs", json={"name": "train", "command": ["train"], "devices": 2,
                                        "accelerator": ACCELERATOR, "time_limit_s": 1800},
                      headers={**consumer.headers, "Idempotency-Key": "job-1"})
    assert job.status_code == 201 and job.json()["pool_id"] == pools["dear"], job.text
    _run(client, provider, agent.json()["id"], clock, 1200)
    wallet = client.get("/v1/wallet", headers=consumer.headers).json()["wallet"]
    assert (wallet["balance_fen"], wallet["debits_pending_fen"]) == (100_000 - value, 0)
    assert _wallet_debits(client, consumer) == [("market-buy", value)]  # once, and only once

    # A 3-device job for 10 minutes: 2 devices on the reservation, 1 at the pool's tariff.
    job = client.post("/v1/jobs", json={"name": "more", "command": ["more"], "devices": 3,
                                        "accelerator": ACCELERATOR, "time_limit_s": 600},
                      headers={**consumer.headers, "Idempotency-Key": "job-2"})
    assert job.json()["pool_id"] == pools["dear"], job.text
    _run(client, provider, agent.json()["id"], clock, 600)
    beyond = 150  # 1 device x 1/6 h x 900 fen a device-hour
    assert _wallet_debits(client, consumer) == [("job-charge", beyond), ("market-buy", value)]
    wallet = client.get("/v1/wallet", headers=consumer.headers).json()["wallet"]
    assert wallet["balance_fen"] == 100_000 - value - beyond

    shanghai = clock.now() + timedelta(hours=8)
    bill = client.get(f"/v1/bills/{shanghai:%Y-%m}", headers=consumer.headers).json()
    items = [[(i["kind"], i["quantity"], i["amount_fen"]) for i in line["items"]]
             for line in bill["lines"]]
    assert items == [[("reservation", "0.666667", 0)],
                     [("usage", "0.166667", beyond), ("reservation", "0.333333", 0)]]
    assert bill["totals"]["payable_fen"] == beyond

    clock.advance(3600)
    assert client.post("/v1/market/sweep", headers=operator.headers).status_code == 200
    check = client.get("/v1/market/check", headers=operator.headers).json()
    assert check["ok"] and check["ledger"]["ok"], check
    receivable = client.get("/v1/wallet", headers=provider.headers).json()["receivable"]
    fee = value * FEE_BPS // 10_000
    assert receivable["balance_fen"] == value - fee + beyond - beyond * 5 // 100


def test_a_reservation_is_resold_over_http_once_and_only_by_its_buyer(
        client, clock, operator, provider, make_tenant, pools) -> None:  # noqa: F811
    buyers = [make_tenant("consumer", name, "start-up") for name in ("first", "second")]
    for n, buyer in enumerate(buyers):
        client.post(f"/v1/tenants/{buyer.id}/deposits", json={"amount_fen": 100_000},
                    headers={**operator.headers, "Idempotency-Key": f"dep-{n}"})
    start = _hour(clock.now(), 2)
    client.post("/v1/market/orders", json=_order("ask-1", "ask", 1_000, start, 2,
                                                 pool_id=pools["dear"]), headers=provider.headers)
    client.post("/v1/market/orders", json=_order("bid-1", "bid", 1_000, start, 2),
                headers=buyers[0].headers)
    [held] = client.get("/v1/market/reservations", headers=buyers[0].headers).json()
    url = f"/v1/market/reservations/{held['id']}/resell"
    body = {"client_order_id": "resell-1", "price_fen_per_unit_hour": 1_300, "count": 2}
    assert client.post(url, json=body, headers=buyers[1].headers).status_code == 403
    too_many = client.post(url, json={**body, "count": 3}, headers=buyers[0].headers)
    assert too_many.status_code == 409 and too_many.json()["errors"][0]["field"] == "counts"
    bad = client.post(url, json={**body, "count": 0}, headers=buyers[0].headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "count"
    offer = client.post(url, json=body, headers=buyers[0].headers)
    assert offer.status_code == 201, offer.text
    assert (offer.json()["side"], offer.json()["reservation_id"]) == ("ask", held["id"])
    assert client.post(url, json=body, headers=buyers[0].headers).status_code == 200
    bid = client.post("/v1/market/orders", json=_order("bid-2", "bid", 1_400, start, 2),
                      headers=buyers[1].headers)
    assert bid.json()["filled"] == 2, bid.text
    [moved] = client.get("/v1/market/reservations", headers=buyers[1].headers).json()
    assert (moved["devices_held"], moved["value_fen"]) == (2, 2_600)
    [first] = client.get("/v1/market/reservations", headers=buyers[0].headers).json()
    assert (first["resold"], first["devices_held"]) == (2, 0)
    again = client.post(url, json={**body, "client_order_id": "resell-2", "count": 1},
                        headers=buyers[0].headers)
    assert again.status_code == 409  # all of it was sold on: nothing is resold twice
    check = client.get("/v1/market/check", headers=operator.headers).json()
    assert check["ok"], check


def test_a_batch_answers_each_order_on_its_own_in_one_transaction(
        client, clock, operator, provider, make_tenant, pools) -> None:  # noqa: F811
    consumer = make_tenant("consumer", "batcher", "start-up")
    client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 10_000},
                headers={**operator.headers, "Idempotency-Key": "dep-1"})
    start = _hour(clock.now(), 1)
    asks = [_order(f"ask-{n}", "ask", 1_000 + n, start, 2, pool_id=pools["dear"])
            for n in range(3)]  # the third needs 2 more devices than the pool's 4
    sold = client.post("/v1/market/orders:batch", json={"orders": asks},
                       headers=provider.headers)
    assert sold.status_code == 200, sold.text
    assert [a["status"] for a in sold.json()["answers"]] == [201, 201, 409]
    assert sold.json()["answers"][2]["error"]["errors"][0]["field"] == "counts"
    bids = [_order("bid-1", "bid", 1_000, start, 2),  # takes ask-0
            {**_order("bid-bad", "bid", 1_000, start, 1), "price_fen_per_unit_hour": 0},
            _order("bid-2", "bid", 2_100, start, 4),  # 8,400 fen: more than is left
            _order("bid-3", "bid", 900, start, 1),  # rests
            _order("bid-1", "bid", 1_000, start, 2)]  # the first again: the same order
    bought = client.post("/v1/market/orders:batch", json={"orders": bids},
                         headers=consumer.headers)
    answers = bought.json()["answers"]
    assert [a["status"] for a in answers] == [201, 422, 402, 201, 200], answers
    assert answers[1]["error"]["errors"][0]["field"] == "price_fen_per_unit_hour"
    assert (answers[0]["order"]["filled"], answers[3]["order"]["remaining"]) == (2, 1)
    assert answers[4]["order"]["id"] == answers[0]["order"]["id"]
    again = client.post("/v1/market/orders:batch", json={"orders": bids[:1]},
                        headers=consumer.headers)
    assert again.json()["answers"][0]["status"] == 200
    mine = client.get("/v1/market/orders", headers=consumer.headers).json()
    assert sorted(o["client_order_id"] for o in mine) == ["bid-1", "bid-3"]
    wallet = client.get("/v1/wallet", headers=consumer.headers).json()["wallet"]
    assert (wallet["balance_fen"], wallet["available_fen"]) == (10_000 - 2_000, 10_000 - 2_900)
    check = client.get("/v1/market/check", headers=operator.headers).json()
    assert check["ok"], check
