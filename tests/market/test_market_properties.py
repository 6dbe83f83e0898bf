"""Random sequences of orders, cancels, replaces, sweeps and time through the market's
services on a real database: after every step the ledger balances, escrow equals what open
bids hold plus what reservations have not paid out, no pool is oversold, fills equal the
tape, and every book rebuilt from its resting legs equals the book replayed from its log."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from suanli.adapters.clock import FixedClock
from suanli.domain.errors import Conflict, InsufficientFunds
from suanli.domain.market.orders import Side
from suanli.services.market import data, exchange
from tests.conftest import START
from tests.databases import empty_database
from tests.market.conftest import H, build_market

place = st.tuples(st.just("place"), st.integers(0, 3),  # who: 0 the seller, 1-3 buyers
                  st.integers(0, 2),  # which block: +1 h, +2 h, +12 h (a call auction)
                  st.integers(8, 12), st.integers(1, 4), st.booleans(), st.booleans())
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
replace = st.tuples(st.just("replace"), st.integers(0, 50), st.integers(8, 12),
                    st.integers(1, 5))
advance = st.tuples(st.just("advance"), st.sampled_from([600, 1800, 3600]))
sweep = st.tuples(st.just("sweep"))
steps = st.lists(st.one_of(place, place, place, cancel, replace, advance, sweep),
                 min_size=4, max_size=20)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps)
def test_random_sequences_keep_the_market_and_the_ledger_consistent(database, script) -> None:
    empty_database(database)
    clock = FixedClock(START)
    market = build_market(database, clock)
    buyers = [market.make_buyer(f"b{i}", deposit_fen=6_000) for i in range(3)]
    who = [market.seller, *buyers]
    now_s = int(START.timestamp())
    blocks = [now_s - now_s % H + hours * H for hours in (1, 2, 12)]
    orders: list[tuple[object, str]] = []
    products: set[str] = set()
    for index, step in enumerate(script):
        kind = step[0]
        if kind == "place":
            _, person, which, price, count, aon, _ = step
            side = Side.ASK if person == 0 else Side.BID
            if blocks[which] <= int(clock.now().timestamp()):
                continue
            try:
                placed = market.order(who[person], side, price * 100, blocks[which], count,
                                      client=f"c{index}", all_or_none=aon)
            except (InsufficientFunds, Conflict):  # no money, or no free devices: refused
                continue
            orders.append((who[person], placed.order.id))
            products |= {leg.product_id for leg in placed.legs}
        elif kind == "cancel" and orders:
            person, order_id = orders[step[1] % len(orders)]
            market.cancel(person, order_id)  # type: ignore[arg-type]
        elif kind == "replace" and orders:
            person, order_id = orders[step[1] % len(orders)]
            try:
                with database.unit_of_work() as session:
                    exchange.replace_order(session, person, order_id, clock.now(),  # type: ignore[arg-type]
                                           price_fen_per_unit_hour=step[2] * 100,
                                           counts=(step[3],))
            except (InsufficientFunds, Conflict):
                pass
        elif kind == "advance":
            clock.advance(step[1])
        elif kind == "sweep":
            market.sweep()
        report = market.check()
        assert report.ok, (step, report.problems)
    with database.unit_of_work() as session:
        target(float(len(data.tape(session, product_id=None, accelerator_class=None,
                                   location=None, since_ms=None, limit=1_000))))
        for product_id in sorted(products):
            _, from_legs = data.rebuild(session, product_id)
            from_legs.check_invariants()
            assert data.replay(session, product_id).state() == from_legs.state()
