"""Random sequences of orders, cancels, replaces, resales, sweeps and time through the market's
services on a real database: after every step the ledger balances, escrow equals what open
bids hold plus what reservations have not paid out, no pool is oversold and no reservation
resold beyond what it holds, fills equal the tape, and every book rebuilt from its resting
legs equals the book replayed from its log."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from suanli.adapters.store.repositories import market as repo

from suanli.adapters.clock import FixedClock
from suanli.domain.errors import Conflict, InsufficientFunds, ValidationFailed
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
resell = st.tuples(st.just("resell"), st.integers(0, 50), st.integers(8, 14),
                   st.integers(1, 4))
advance = st.tuples(st.just("advance"), st.sampled_from([600, 1800, 3600]))
sweep = st.tuples(st.just("sweep"))
steps = st.lists(st.one_of(place, place, place, cancel, replace, resell, resell, advance,
                           sweep), min_size=4, max_size=24)
POOL_DEVICES = 8


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
        elif kind == "resell":
            with database.unit_of_work() as session:
                held = repo.reservations(session, limit=1_000)
            if not held:
                continue
            bought = held[step[1] % len(held)]
            buyer = next(p for p in who if p.tenant_id == bought.buyer_tenant_id)
            try:
                placed = market.resell(buyer, bought.id, step[2] * 100, step[3],
                                       client=f"c{index}")
            except (Conflict, ValidationFailed):  # nothing left to offer, or the block began
                continue
            orders.append((buyer, placed.order.id))
            event("a reservation offered again")
        elif kind == "advance":
            clock.advance(step[1])
        elif kind == "sweep":
            market.sweep()
        report = market.check()
        assert report.ok, (step, report.problems)
        _no_reservation_oversold(database)
    with database.unit_of_work() as session:
        target(float(len(data.tape(session, product_id=None, accelerator_class=None,
                                   location=None, since_ms=None, limit=1_000))))
        for product_id in sorted(products):
            _, from_legs = data.rebuild(session, product_id)
            from_legs.check_invariants()
            assert data.replay(session, product_id).state() == from_legs.state()


def _no_reservation_oversold(database) -> None:  # type: ignore[no-untyped-def]
    """Reservations never hold more devices of a pool in a block than it has, and none resold
    more than it bought."""
    held: dict[tuple[str, int], int] = defaultdict(int)
    with database.unit_of_work() as session:
        for reservation in repo.reservations(session, limit=1_000):
            assert 0 <= reservation.resold <= reservation.quantity, reservation
            if reservation.resold:
                event("a resale traded")
            assert 0 <= reservation.devices_held <= reservation.devices, reservation
            held[reservation.pool_id, reservation.starts_s] += reservation.devices_held
    assert all(devices <= POOL_DEVICES for devices in held.values()), held
