"""The exchange through its services on a real database: backing, escrow, matching, trades that
become reservations, settlement, expiry, call auctions; the ledger's invariants after each."""

from __future__ import annotations

import pytest

from suanli.domain.errors import Conflict, Forbidden, InsufficientFunds, ValidationFailed
from suanli.domain.market.orders import LegState, OrderRequest, OrderState, Shape, Side
from suanli.domain.market.products import MatchingRule, block_label
from suanli.domain.market.rfq import QuoteRequest
from suanli.domain.market.settlement import FEE_BPS
from suanli.services.market import data, exchange, reservations, rfq, settlement
from tests.market.conftest import ACCELERATOR, H, Market, at, block


def _ok(market: Market) -> None:
    report = market.check()
    assert report.ok, report.problems


def test_an_ask_and_a_bid_match_into_a_reservation_paid_from_escrow(market: Market) -> None:
    buyer = market.make_buyer()
    start = block(market.clock, 2)
    ask = market.order(market.seller, Side.ASK, 1_000, start, 6, client="a1")
    bid = market.order(buyer, Side.BID, 1_200, start, 4, client="b1")
    assert [leg.state for leg in bid.legs] == [LegState.FILLED]
    assert bid.order.state is OrderState.DONE and bid.filled == 4
    wallet = market.wallet(buyer)
    assert wallet.wallet.balance_fen == 1_000_000 - 4_000  # the ask's price, not the limit
    assert wallet.wallet.debits_pending_fen == 0
    with market.db.unit_of_work() as session:
        tape = data.tape(session, product_id=bid.legs[0].product_id, accelerator_class=None,
                         location=None, since_ms=None, limit=10)
        bought = reservations.reserved_pools(session, buyer.tenant_id, market.clock.now())
        held = reservations.list_reservations(session, buyer, as_role="buyer", active_at=None,
                                              limit=10)
        ask = exchange.get(session, market.seller, ask.order.id)
    assert [(t.price_fen_per_unit_hour, t.quantity, t.aggressor) for t in tape] == [(1_000, 4, 1)]
    assert bought == {}  # the block has not started
    assert [(r.pool_id, r.devices, r.value_fen, r.starts_s) for r in held] == [
        (market.pool_id, 4, 4_000, start)]
    assert ask.legs[0].remaining == 2 and ask.legs[0].backing_devices == 6
    _ok(market)


def test_a_bid_the_wallet_cannot_cover_stores_nothing(market: Market) -> None:
    poor = market.make_buyer("poor", deposit_fen=1_000)
    start = block(market.clock, 2)
    with pytest.raises(InsufficientFunds):
        market.order(poor, Side.BID, 1_000, start, 2, hours=1, client="b1")
    nobody = market.make_buyer("nobody", deposit_fen=0)
    with pytest.raises(InsufficientFunds):
        market.order(nobody, Side.BID, 1, start, 1, client="b1")
    with market.db.unit_of_work() as session:
        assert exchange.list_orders(session, market.operator, state=None, limit=10) == []
    assert market.wallet(poor).wallet.available_fen == 1_000
    _ok(market)


def test_a_pool_never_sells_more_devices_than_it_has(market: Market) -> None:
    start = block(market.clock, 2)
    market.order(market.seller, Side.ASK, 1_000, start, 5, client="a1")
    with pytest.raises(Conflict) as caught:
        market.order(market.seller, Side.ASK, 900, start, 4, client="a2")
    assert caught.value.field == "counts"
    market.order(market.seller, Side.ASK, 900, start + H, 8, client="a3")  # another hour
    buyer = market.make_buyer()
    market.order(buyer, Side.BID, 1_000, start, 3, client="b1")
    cancelled = market.cancel(market.seller, exchange.order_id_for(market.seller.tenant_id,
                                                                   "a1"))
    assert cancelled.legs[0].backing_devices == 3  # what it sold stays held
    market.order(market.seller, Side.ASK, 900, start, 5, client="a4")
    with pytest.raises(Conflict):
        market.order(market.seller, Side.ASK, 900, start, 1, client="a5")
    _ok(market)


def test_asks_come_only_from_the_sellers_own_matching_pool(market: Market) -> None:
    start = block(market.clock, 2)
    other = market.make_buyer("not the owner")
    with pytest.raises(Forbidden):
        market.order(other, Side.ASK, 1_000, start, 1, client="x")
    with pytest.raises(ValidationFailed) as caught:
        market.order(market.seller, Side.ASK, 1_000, start, 1, client="y",
                     accelerator_class="nvidia-h100-sxm")
    assert caught.value.field == "accelerator_class"
    with pytest.raises(ValidationFailed) as caught:
        market.order(market.seller, Side.ASK, 1_000, start, 1, client="z", location="CN-GZ")
    assert caught.value.field == "location"


def test_the_same_client_order_id_is_the_same_order(market: Market) -> None:
    buyer = market.make_buyer()
    start = block(market.clock, 2)
    first = market.order(buyer, Side.BID, 1_000, start, 2, client="b1")
    again = market.order(buyer, Side.BID, 1_000, start, 2, client="b1")
    assert again.order.id == first.order.id
    assert market.wallet(buyer).wallet.debits_pending_fen == 2_000
    with pytest.raises(Conflict) as caught:
        market.order(buyer, Side.BID, 1_100, start, 2, client="b1")
    assert caught.value.field == "client_order_id"


def test_cancel_and_replace_keep_the_hold_equal_to_the_worst_case(market: Market) -> None:
    buyer = market.make_buyer(deposit_fen=50_000)
    start = block(market.clock, 2)
    placed = market.order(buyer, Side.BID, 1_000, start, 3, hours=2, client="b1")
    assert market.wallet(buyer).wallet.debits_pending_fen == 6_000
    with market.db.unit_of_work() as session:
        exchange.replace_order(session, buyer, placed.order.id, market.clock.now(),
                               price_fen_per_unit_hour=1_500, counts=(4,))
    assert market.wallet(buyer).wallet.debits_pending_fen == 12_000
    with pytest.raises(InsufficientFunds), market.db.unit_of_work() as session:
        exchange.replace_order(session, buyer, placed.order.id, market.clock.now(),
                               price_fen_per_unit_hour=10_000)
    assert market.wallet(buyer).wallet.debits_pending_fen == 12_000
    market.order(market.seller, Side.ASK, 1_400, start, 1, client="a1")
    assert market.wallet(buyer).wallet.debits_pending_fen == 1_500 * 3 + 1_500 * 4
    done = market.cancel(buyer, placed.order.id)
    assert done.order.state is OrderState.DONE
    assert [leg.state for leg in done.legs] == [LegState.CANCELLED, LegState.CANCELLED]
    assert market.wallet(buyer).wallet.debits_pending_fen == 0
    assert market.wallet(buyer).wallet.balance_fen == 50_000 - 1_500  # the resting price
    with pytest.raises(Forbidden):
        market.cancel(market.seller, placed.order.id)
    _ok(market)


def test_escrow_pays_the_seller_as_the_block_is_delivered(market: Market) -> None:
    buyer = market.make_buyer()
    start = block(market.clock, 1)
    market.order(market.seller, Side.ASK, 2_000, start, 4, client="a1")
    market.order(buyer, Side.BID, 2_000, start, 4, client="b1")
    value, fee = 8_000, 8_000 * FEE_BPS // 10_000
    at(market.clock, start + H // 4)
    market.sweep()
    with market.db.unit_of_work() as session:
        now_reserved = reservations.reserved_pools(session, buyer.tenant_id,
                                                   market.clock.now())
    assert now_reserved == {market.pool_id: 4}
    receivable = market.wallet(market.seller).receivable
    assert receivable.balance_fen == (value - fee) // 4
    _ok(market)
    at(market.clock, start + H + 1)
    report = market.sweep()
    assert report.settled == 1
    assert market.wallet(market.seller).receivable.balance_fen == value - fee
    assert market.wallet(buyer).wallet.balance_fen == 1_000_000 - value
    _ok(market)
    assert market.sweep().settled == 0  # nothing left to pay


def test_orders_expire_at_their_good_till_time_and_release_the_hold(market: Market) -> None:
    buyer = market.make_buyer()
    start = block(market.clock, 3)
    till = int(market.clock.now().timestamp()) + 600
    market.order(buyer, Side.BID, 1_000, start, 2, client="b1", good_till_s=till)
    market.order(market.seller, Side.ASK, 1_500, start, 2, client="a1")
    assert market.wallet(buyer).wallet.debits_pending_fen == 2_000
    at(market.clock, till)
    report = market.sweep()
    assert report.books.expired == 1
    assert market.wallet(buyer).wallet.debits_pending_fen == 0
    at(market.clock, start)
    assert market.sweep().books.expired == 1  # the ask, at its block's start
    _ok(market)


def test_far_blocks_trade_in_hourly_call_auctions(market: Market) -> None:
    start = block(market.clock, 24)
    buyers = [market.make_buyer(f"b{i}") for i in range(2)]
    market.order(market.seller, Side.ASK, 900, start, 3, client="a1")
    market.order(market.seller, Side.ASK, 1_100, start, 3, client="a2")
    market.order(buyers[0], Side.BID, 1_200, start, 2, client="b1")
    market.order(buyers[1], Side.BID, 1_000, start, 3, client="b2")
    product_id = f"{ACCELERATOR}:ningxia:{block_label(start)}"
    with market.db.unit_of_work() as session:
        snapshot = data.book(session, product_id, 5)
    assert snapshot.product.rule is MatchingRule.CALL_AUCTION
    assert snapshot.bids[0].price == 1_200 and snapshot.asks[0].price == 900  # crossed
    # 3 trade anywhere in 900..1000 with 2 bought over: no last price, so the lower price
    indicative = snapshot.indicative
    assert (indicative.price, indicative.volume, indicative.imbalance) == (900, 3, 2)
    at(market.clock, snapshot.product.next_uncross_s)
    report = market.sweep()
    assert (report.books.uncrossed, report.books.trades) == (1, 2)
    with market.db.unit_of_work() as session:
        tape = data.tape(session, product_id=product_id, accelerator_class=None,
                         location=None, since_ms=None, limit=10)
        after = data.book(session, product_id, 5)
        replayed = data.replay(session, product_id)
    assert {t.price_fen_per_unit_hour for t in tape} == {900}
    assert sum(t.quantity for t in tape) == 3
    assert after.bids[0].price < after.asks[0].price
    assert [(level.price, level.quantity) for level in after.asks] == [(1_100, 3)]
    assert replayed.depth(5) == (after.bids, after.asks)
    # the buyer paid the uniform price, not its limit
    assert market.wallet(buyers[0]).wallet.balance_fen == 1_000_000 - 2 * 900
    _ok(market)


def test_an_operator_refunds_what_a_seller_did_not_deliver(market: Market) -> None:
    buyer = market.make_buyer()
    start = block(market.clock, 1)
    market.order(market.seller, Side.ASK, 1_000, start, 2, client="a1")
    market.order(buyer, Side.BID, 1_000, start, 2, client="b1")
    at(market.clock, start + H // 2)
    with market.db.unit_of_work() as session:
        held = reservations.list_reservations(session, buyer, as_role="buyer", active_at=None,
                                              limit=1)
        with pytest.raises(Forbidden):
            settlement.refund(session, buyer, held[0].id, market.clock.now())
        refunded = settlement.refund(session, market.operator, held[0].id, market.clock.now())
    assert refunded.state == "refunded" and refunded.refunded_fen == 1_000
    assert market.wallet(buyer).wallet.balance_fen == 1_000_000 - 1_000
    _ok(market)


def test_a_request_for_quote_prices_each_pool_that_fits(market: Market) -> None:
    start = block(market.clock, 2)
    request = QuoteRequest(ACCELERATOR, "ningxia", Shape(((start, start + 2 * H),), (4,)))
    with market.db.unit_of_work() as session:
        quotes = rfq.quote(session, request, market.clock.now())
        too_big = rfq.quote(session, QuoteRequest(ACCELERATOR, "ningxia",
                                                  Shape(((start, start + H),), (9,))),
                            market.clock.now())
    assert [q.pool_id for q in quotes] == [market.pool_id] and too_big == []
    assert quotes[0].price_fen_per_unit_hour > 0
    assert quotes[0].value_fen == quotes[0].price_fen_per_unit_hour * 8


def test_bad_orders_are_refused_before_anything_is_stored(market: Market) -> None:
    buyer = market.make_buyer()
    past = block(market.clock, 0)
    with pytest.raises(ValidationFailed) as caught:
        market.order(buyer, Side.BID, 1_000, past, 1, client="b1")
    assert caught.value.field == "intervals"
    request = OrderRequest(Side.BID, "nvidia-a800-sxm4-80gb", "ningxia", 1_000,
                           Shape(((past + H, past + 2 * H),), (2,)), "b2", min_fill=3)
    with pytest.raises(ValidationFailed), market.db.unit_of_work() as session:
        exchange.place(session, buyer, request, market.clock.now())
    with market.db.unit_of_work() as session:
        assert data.products(session, accelerator_class=None, location=None,
                             now=market.clock.now(), limit=10) == []
