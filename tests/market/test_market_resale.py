"""Resale of reserved time: a buyer offers its reservation's unused block as an ask backed by
the reservation (not the pool's free devices); a trade moves those units to the new buyer, who
pays the reseller through escrow; nothing is resold twice."""

from __future__ import annotations

import pytest

from suanli.adapters.store import ledger as ledger_store
from suanli.domain.accounts import receivable_account_id
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.market.orders import LegState, OrderRequest, Shape, Side
from suanli.domain.market.records import Reservation
from suanli.services.market import exchange, reservations
from tests.market.conftest import ACCELERATOR, H, Market, at, block


def _held(market: Market, who) -> list[Reservation]:  # type: ignore[no-untyped-def]
    with market.db.unit_of_work() as session:
        return reservations.list_reservations(session, who, as_role="buyer", active_at=None,
                                              limit=10)


def _ok(market: Market) -> None:
    report = market.check()
    assert report.ok, report.problems


def test_a_buyer_resells_part_of_its_reservation_and_the_block_moves(market: Market) -> None:
    first, second = market.make_buyer("first"), market.make_buyer("second")
    start = block(market.clock, 2)
    market.order(market.seller, Side.ASK, 1_000, start, 8, client="a1")  # the whole pool
    market.order(first, Side.BID, 1_000, start, 8, client="b1")
    [bought] = _held(market, first)
    # The pool has nothing free, yet the reservation backs its own resale.
    with pytest.raises(Conflict):
        market.order(market.seller, Side.ASK, 900, start, 1, client="a2")
    offer = market.resell(first, bought.id, 1_500, 3, client="r1")
    assert offer.order.request.reservation_id == bought.id
    assert offer.legs[0].backing_devices == 0
    again = market.resell(first, bought.id, 1_500, 3, client="r1")  # idempotent
    assert again.order.id == offer.order.id
    market.resell(first, bought.id, 1_700, 4, client="r2")
    with pytest.raises(Conflict) as twice:  # only 1 unit is left to offer
        market.resell(first, bought.id, 1_400, 2, client="r3")
    assert twice.value.field == "counts"
    _ok(market)

    market.order(second, Side.BID, 1_600, start, 2, client="b2")
    [moved] = _held(market, second)
    assert (moved.pool_id, moved.quantity, moved.devices, moved.seller_tenant_id) == (
        market.pool_id, 2, 2, first.tenant_id)
    assert moved.value_fen == 1_500 * 2
    [left] = _held(market, first)
    assert (left.resold, left.devices_held) == (2, 6)
    assert market.wallet(second).wallet.balance_fen == 1_000_000 - 3_000
    _ok(market)

    # In the block, each buyer's jobs go first to what it holds; escrow pays both sellers.
    at(market.clock, start + 60)
    with market.db.unit_of_work() as session:
        assert reservations.reserved_pools(session, first.tenant_id, market.clock.now()) == {
            market.pool_id: 6}
        assert reservations.reserved_pools(session, second.tenant_id, market.clock.now()) == {
            market.pool_id: 2}
    at(market.clock, start + H)
    assert market.sweep().settled == 2
    with market.db.unit_of_work() as session:
        reseller = ledger_store.get_account(session, receivable_account_id(first.tenant_id))
    assert reseller is not None and reseller.balance_fen == 3_000 - 3_000 // 100
    _ok(market)


def test_only_the_buyer_resells_only_its_block_and_never_after_it_starts(market: Market) -> None:
    buyer, other = market.make_buyer("buyer"), market.make_buyer("other")
    start = block(market.clock, 2)
    market.order(market.seller, Side.ASK, 1_000, start, 2, client="a1")
    market.order(buyer, Side.BID, 1_000, start, 2, client="b1")
    [bought] = _held(market, buyer)
    with pytest.raises(Forbidden):
        market.resell(other, bought.id, 1_000, 1, client="r1")
    with pytest.raises(NotFound):
        market.resell(buyer, "no-such-reservation", 1_000, 1, client="r1")
    with pytest.raises(Conflict):
        market.resell(buyer, bought.id, 1_000, 3, client="r1")
    wrong_block = OrderRequest(Side.ASK, ACCELERATOR, "ningxia", 1_000,
                               Shape(((start + H, start + 2 * H),), (1,)), "r2",
                               pool_id=market.pool_id, reservation_id=bought.id)
    with pytest.raises(ValidationFailed) as outside, market.db.unit_of_work() as session:
        exchange.place(session, buyer, wrong_block, market.clock.now())
    assert outside.value.field == "intervals"
    at(market.clock, start + 60)
    with pytest.raises(ValidationFailed):  # the block has begun: it no longer trades
        market.resell(buyer, bought.id, 1_000, 1, client="r3")
    _ok(market)


def test_a_cancelled_resale_frees_its_units_to_offer_again(market: Market) -> None:
    buyer = market.make_buyer()
    start = block(market.clock, 2)
    market.order(market.seller, Side.ASK, 1_000, start, 2, client="a1")
    market.order(buyer, Side.BID, 1_000, start, 2, client="b1")
    [bought] = _held(market, buyer)
    offer = market.resell(buyer, bought.id, 2_000, 2, client="r1")
    market.cancel(buyer, offer.order.id)
    market.resell(buyer, bought.id, 1_800, 2, client="r2")
    with market.db.unit_of_work() as session:  # closed stays closed: r2 holds the units
        closed = exchange.replace_order(session, buyer, offer.order.id, market.clock.now(),
                                        counts=(2,))
    assert closed.legs[0].state is LegState.CANCELLED
    with pytest.raises(Conflict):
        market.resell(buyer, bought.id, 1_800, 1, client="r3")
    _ok(market)
