"""The order book and its call auction, by property: random command sequences against the
rules in docs/market.md (no oversell, no crossed book, exact replay, maximal auction volume)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from suanli.domain.errors import Conflict, NotFound, ValidationFailed
from suanli.domain.market.auction import clearing_price
from suanli.domain.market.book import BUY, SELL, OrderBook
from suanli.domain.market.events import EventKind, lobster_row, trades_of
from suanli.domain.market.products import MatchingRule

PRICES = st.integers(90, 110)
SIZES = st.integers(1, 12)

submit = st.tuples(st.just("submit"), st.sampled_from([BUY, SELL]), PRICES, SIZES,
                   st.integers(0, 3),  # owner
                   st.sampled_from(["none", "aon", "min"]),
                   st.sampled_from([0, 0, 5, 40]))  # good-till offset (0: none)
cancel = st.tuples(st.just("cancel"), st.integers(0, 200))
replace = st.tuples(st.just("replace"), st.integers(0, 200), PRICES, SIZES)
advance = st.tuples(st.just("advance"), st.integers(1, 20))
expire = st.tuples(st.just("expire"))
commands = st.lists(st.one_of(submit, submit, submit, cancel, replace, advance, expire),
                    max_size=120)


def run(book: OrderBook, script: list[tuple]) -> tuple[list, dict[str, tuple[int, int, int]]]:
    """Drive a book through a script; return its events and each order's (side, limit, size
    asked for on its last submit or replace)."""
    events = []
    ids: list[str] = []
    limits: dict[str, tuple[int, int, int]] = {}
    now = 1_000
    for command in script:
        kind = command[0]
        if kind == "submit":
            _, direction, price, size, owner, fill, till = command
            order_id = f"o{len(ids)}"
            ids.append(order_id)
            min_fill = {"none": 0, "aon": size, "min": (size + 1) // 2}[fill]
            got = book.submit(order_id, direction, price, size, now, owner=f"m{owner}",
                              min_fill=min_fill, good_till_ms=now + till if till else 0)
            _check_taker(got, order_id, direction, price, size, min_fill)
            limits[order_id] = (direction, price, size)
            events += got
        elif kind == "cancel" and ids:
            order_id = ids[command[1] % len(ids)]
            if order_id in book.orders:
                events += book.cancel(order_id, now)
            else:
                with pytest.raises(NotFound):
                    book.cancel(order_id, now)
        elif kind == "replace" and ids:
            order_id = ids[command[1] % len(ids)]
            old = book.orders.get(order_id)
            if old is not None and 0 < old.good_till_ms <= now:  # due: it cannot live on
                with pytest.raises(ValidationFailed):
                    book.replace(order_id, now, price=command[2], size=command[3])
            elif old is not None:
                limits[order_id] = (old.direction, command[2], command[3])
                events += book.replace(order_id, now, price=command[2], size=command[3])
        elif kind == "advance":
            now += command[1]
        elif kind == "expire":
            events += book.expire(now)
        book.check_invariants()
    return events, limits


def _check_taker(events: list, order_id: str, direction: int, price: int, size: int,
                 min_fill: int) -> None:
    """An incoming order trades what it can at its limit or better, at least its minimum
    fill or nothing, and rests the rest: its fills and its resting size add up to its size."""
    filled = sum(e.size for e in events if e.kind is EventKind.EXECUTE
                 and e.contra_id == order_id)
    resting = sum(e.size for e in events if e.kind is EventKind.SUBMIT
                  and e.order_id == order_id)
    assert filled + resting == size
    assert filled == 0 or filled >= min_fill
    for e in events:
        if e.kind is EventKind.EXECUTE:
            assert e.direction == -direction
            assert (e.price <= price) if direction == BUY else (e.price >= price)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands)
def test_continuous_matching_never_oversells_never_crosses_and_replays(script) -> None:
    book = OrderBook("p", MatchingRule.CONTINUOUS)
    events, limits = run(book, script)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Replaying the log rebuilds the very same book (orders, queues, priorities, last price).
    assert OrderBook.replay(events).state() == book.state()
    # No order trades more than it offered, nor beyond its limit, nor with its own owner.
    resting: dict[str, tuple[int, str]] = {}  # price and owner as it last rested
    for event in events:
        if event.kind is EventKind.SUBMIT:
            resting[event.order_id] = (event.price, event.owner)
        elif event.kind is EventKind.EXECUTE:  # at the resting order's price
            assert event.price == resting[event.order_id][0]
    target(float(len(trades_of(events))))
    for trade in trades_of(events):
        taker = trade.buy_order_id if trade.aggressor == 1 else trade.sell_order_id
        maker = trade.sell_order_id if trade.aggressor == 1 else trade.buy_order_id
        assert limits[taker][0] == trade.aggressor
        assert resting[maker][1] != _owner_of(script, taker)
    _conserves(events, book)


def _owner_of(script: list[tuple], order_id: str) -> str:
    submits = [command for command in script if command[0] == "submit"]
    return f"m{submits[int(order_id[1:])][4]}"


def _conserves(events: list, book: OrderBook) -> None:
    """Per resting order: what rested, less what was reduced, cancelled, expired and traded
    off it, is what rests now."""
    balance: dict[str, int] = defaultdict(int)
    for e in events:
        if e.kind is EventKind.SUBMIT:
            balance[e.order_id] += e.size
        elif e.kind in (EventKind.REDUCE, EventKind.CANCEL, EventKind.EXPIRE,
                        EventKind.EXECUTE):
            balance[e.order_id] -= e.size
        elif e.kind is EventKind.CROSS:
            balance[e.order_id] -= e.size
            balance[e.contra_id] -= e.size
        assert balance[e.order_id] >= 0
    for order_id, left in balance.items():
        resting = book.orders.get(order_id)
        assert left == (resting.remaining if resting else 0), order_id


def test_price_time_priority_and_self_trade_prevention() -> None:
    book = OrderBook("p")
    book.submit("a1", SELL, 100, 3, 1, owner="s1")
    book.submit("a2", SELL, 100, 3, 2, owner="s2")
    book.submit("a3", SELL, 99, 2, 3, owner="b")  # the buyer's own ask: passed over
    got = book.submit("b1", BUY, 100, 4, 4, owner="b")
    assert [(e.order_id, e.size, e.price) for e in got] == [("a1", 3, 100), ("a2", 1, 100)]
    assert book.orders["a3"].remaining == 2 and book.orders["a2"].remaining == 2


def test_all_or_none_rests_whole_and_is_passed_over_until_met() -> None:
    book = OrderBook("p")
    book.submit("a1", SELL, 100, 3, 1, owner="s")
    got = book.submit("b1", BUY, 100, 5, 2, owner="b", min_fill=5)
    assert [e.kind for e in got] == [EventKind.SUBMIT] and got[0].size == 5
    got = book.submit("a2", SELL, 100, 2, 3, owner="t")  # 2 < 5: passes the resting AON bid
    assert [e.kind for e in got] == [EventKind.SUBMIT]
    got = book.submit("a3", SELL, 95, 6, 4, owner="u")
    assert [(e.kind, e.order_id, e.size, e.price) for e in got] == [
        (EventKind.EXECUTE, "b1", 5, 100), (EventKind.SUBMIT, "a3", 1, 95)]


def test_reduce_keeps_priority_other_changes_lose_it() -> None:
    book = OrderBook("p")
    book.submit("a1", SELL, 100, 5, 1)
    book.submit("a2", SELL, 100, 5, 2)
    assert [e.kind for e in book.replace("a1", 3, size=2)] == [EventKind.REDUCE]
    assert [o.id for o in book.resting()] == ["a1", "a2"]
    kinds = [e.kind for e in book.replace("a1", 4, size=6)]
    assert kinds == [EventKind.CANCEL, EventKind.SUBMIT]
    assert [o.id for o in book.resting()] == ["a2", "a1"]


def test_expired_orders_never_trade() -> None:
    book = OrderBook("p")
    book.submit("a1", SELL, 100, 5, 1, good_till_ms=10)
    got = book.submit("b1", BUY, 100, 5, 10)
    assert [e.kind for e in got] == [EventKind.EXPIRE, EventKind.SUBMIT]


def test_bad_commands_change_nothing() -> None:
    book = OrderBook("p")
    book.submit("a1", SELL, 100, 5, 10)
    before = book.state()
    for call in (lambda: book.submit("a1", SELL, 100, 5, 11),
                 lambda: book.submit("x", SELL, 0, 5, 11),
                 lambda: book.submit("x", SELL, 100, 0, 11),
                 lambda: book.submit("x", BUY, 100, 5, 11, min_fill=6),
                 lambda: book.submit("x", BUY, 100, 5, 9),
                 lambda: book.submit("x", BUY, 100, 5, 11, good_till_ms=11),
                 lambda: book.replace("a1", 11, price=0),
                 lambda: book.cancel("nope", 11)):
        with pytest.raises((Conflict, NotFound, ValidationFailed)):
            call()
    assert book.state() == before


# -- the call auction ------------------------------------------------------------------------

levels = st.lists(st.tuples(st.integers(1, 60), st.integers(1, 9)), max_size=25)


def _brute_force(bids, asks, reference):
    """Every integer price from 0 to 61 with the tie rules applied literally."""
    best = None
    for price in range(0, 62):
        demand = sum(q for p, q in bids if p >= price)
        supply = sum(q for p, q in asks if p <= price)
        volume = min(demand, supply)
        if not volume:
            continue
        rank = (-volume, abs(demand - supply),
                0 if reference is None else abs(price - reference), price)
        best = min(best, (rank, price, volume)) if best else (rank, price, volume)
    return None if best is None else best[1:]


@settings(max_examples=400, deadline=None)
@given(levels, levels, st.one_of(st.none(), st.integers(1, 60)))
def test_clearing_price_maximises_volume_with_the_tie_rules(bids, asks, reference) -> None:
    found = clearing_price(bids, asks, reference)
    expected = _brute_force(bids, asks, reference)
    assert (None if found is None else (found.price, found.volume)) == expected


orders = st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 40), SIZES,
                            st.integers(0, 4), st.booleans()), max_size=60)


@settings(max_examples=300, deadline=None)
@given(orders, st.booleans())
def test_uncross_trades_the_maximal_volume_at_one_price_and_leaves_no_cross(rows, minimums
                                                                             ) -> None:
    book = OrderBook("p", MatchingRule.CALL_AUCTION)
    log = []
    for index, (direction, price, size, owner, aon) in enumerate(rows):
        log += book.submit(f"o{index}", direction, price, size, index + 1,
                           owner=f"m{owner}", min_fill=size if (aon and minimums) else 0)
    indicative = book.indicative()
    bids = [(p, s) for d, p, s, *_ in rows if d == BUY]
    asks = [(p, s) for d, p, s, *_ in rows if d == SELL]
    expected = _brute_force(bids, asks, None)
    crosses = book.uncross(len(rows) + 1)
    log += crosses
    traded = sum(e.size for e in crosses)
    assert {e.price for e in crosses} <= ({indicative.price} if indicative else set())
    if expected is None:
        assert not crosses
    elif not minimums:
        assert (indicative.price, traded) == expected
    else:
        assert traded <= expected[1]
        # every order with a minimum got it or nothing
        by_order: dict[str, int] = defaultdict(int)
        for e in crosses:
            by_order[e.order_id] += e.size
            by_order[e.contra_id] += e.size
        for index, (_, _, size, _, aon) in enumerate(rows):
            assert by_order[f"o{index}"] in ((0, size) if aon else range(size + 1))
    book.check_invariants()
    if not minimums and book.best_bid() is not None and book.best_ask() is not None:
        assert book.best_bid() < book.best_ask()
    assert OrderBook.replay(log, rule=MatchingRule.CALL_AUCTION).state() == book.state()


def test_auction_prefers_the_reference_price_inside_the_tie_range() -> None:
    book = OrderBook("p", MatchingRule.CALL_AUCTION, last_price=97)
    book.submit("b", BUY, 100, 5, 1)
    book.submit("s", SELL, 90, 5, 2)
    indicative = book.indicative()
    assert (indicative.price, indicative.volume, indicative.imbalance) == (97, 5, 0)
    events = book.uncross(3)
    assert [(e.kind, e.price, e.size) for e in events] == [(EventKind.CROSS, 97, 5)]


def test_lobster_rows_carry_the_six_columns() -> None:
    book = OrderBook("p")
    events = book.submit("a", SELL, 100, 5, 1500) + book.submit("b", BUY, 100, 2, 2500)
    assert [lobster_row(e) for e in events] == [(1.5, 1, "a", 5, 100, -1),
                                                (2.5, 4, "a", 2, 100, -1)]
