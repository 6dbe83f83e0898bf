"""One command on the books, start to finish: lock the products, rebuild their books from the
resting legs, run the domain, turn its events into leg changes, trades, reservations and
ledger transfers, and write them all in the caller's transaction.

Books are rebuilt per command from the open legs (time priority is stored), so any process may
run any command; the product row, written first, serialises the commands on one book.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.accounts import FEES_ACCOUNT, receivable_account_id, wallet_account_id
from suanli.domain.ledger import Transfer, post_pending, void_pending
from suanli.domain.market.book import OrderBook
from suanli.domain.market.events import Event, EventKind, trade_of
from suanli.domain.market.orders import LegState, OrderState, Side
from suanli.domain.market.products import (
    AUCTION_PERIOD_S,
    CONTINUOUS_HORIZON_S,
    MatchingRule,
    ProductKey,
    default_rule,
    parse_product_id,
)
from suanli.domain.market.records import (
    LegRecord,
    ProductRecord,
    Reservation,
    ReservationState,
    TradeRecord,
)
from suanli.domain.market.settlement import Due, escrow_account_id, fee_fen, trade_value_fen
from suanli.services.market import backing, escrow
from suanli.services.registry import inventory as registry

_CLOSED = {EventKind.CANCEL: LegState.CANCELLED, EventKind.EXPIRE: LegState.EXPIRED}


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def new_product(key: ProductKey, now_s: int) -> ProductRecord:
    rule = default_rule(key.block_start_s, now_s)
    uncross = next_uncross_s(now_s) if rule is MatchingRule.CALL_AUCTION else None
    return ProductRecord(key, rule, 0, 0, None, uncross)


def next_uncross_s(now_s: int) -> int:
    """Call auctions uncross on the hour."""
    return (now_s // AUCTION_PERIOD_S + 1) * AUCTION_PERIOD_S


class Command:
    """What one command does, collected while the books run and written by `finish`."""

    def __init__(self, session: Session, now: datetime, fee_bps: int) -> None:
        self.session = session
        self.now = now
        self.now_s = int(now.timestamp())
        self.fee_bps = fee_bps
        self.products: dict[str, ProductRecord] = {}
        self.books: dict[str, OrderBook] = {}
        self.legs: dict[str, LegRecord] = {}
        self.changed: set[str] = set()
        self.events: dict[str, list[Event]] = defaultdict(list)
        self.trades: list[TradeRecord] = []
        self.reservations: list[Reservation] = []
        self.transfers: list[Transfer] = []
        self.accounts: set[str] = set()
        self.buyers: set[str] = set()  # whose wallet and escrow the command moves
        self.sellers: set[str] = set()  # whose receivable it pays
        self.complete_orders: set[str] = set()  # orders whose every leg is in self.legs
        self.states: dict[str, OrderState] = {}  # what `finish` set each moved order to
        self._posted: dict[str, int] = defaultdict(int)
        self._pools: dict[str, backing.BackingPool] = {}
        self.resold: dict[str, Reservation] = {}  # reservations resale asks sold out of

    # -- setting up --------------------------------------------------------------------------

    def lock(self, product_ids: Iterable[str],
             opening: Mapping[str, ProductRecord] | None = None) -> None:
        """Lock every product the command touches, once and in id order, before anything;
        products in `opening` that do not exist yet are opened first."""
        assert not self.products, "a command locks its products once"
        ids = sorted(set(product_ids))
        opening = opening or {}
        self.products = repo.lock_products(self.session, ids, self.now)
        missing = [i for i in ids if i not in self.products and i in opening]
        if missing:
            for product_id in missing:
                repo.ensure_product(self.session, opening[product_id], self.now)
            # A product opened concurrently sorts anywhere; locking the new ones after the
            # old cannot deadlock: nobody else holds a product nobody has opened.
            self.products |= repo.lock_products(self.session, missing, self.now)

    def book(self, product_id: str) -> OrderBook:
        book = self.books.get(product_id)
        if book is None:
            book = self._rebuild(product_id, repo.resting_legs(self.session, product_id))
        return book

    def load_books(self, product_ids: Iterable[str]) -> None:
        """Rebuild the books of these products that are not loaded yet, in one read."""
        missing = sorted(set(product_ids) - self.books.keys())
        if missing:
            resting = repo.resting_legs_of(self.session, missing)
            for product_id in missing:
                self._rebuild(product_id, resting.get(product_id, []))

    def _rebuild(self, product_id: str, resting: list[LegRecord]) -> OrderBook:
        product = self.products[product_id]
        book = OrderBook(product_id, product.rule, seq=product.seq,
                         last_at_ms=product.last_at_ms, last_price=product.last_price_fen)
        for leg in resting:
            assert leg.priority is not None, leg.id
            book.restore(leg.id, leg.side.direction, leg.price_fen_per_unit_hour,
                         leg.remaining, owner=leg.tenant_id, min_fill=leg.min_fill,
                         good_till_ms=leg.good_till_ms, priority=leg.priority)
            self.legs.setdefault(leg.id, leg)
        self.books[product_id] = book
        return book

    def book_swept(self, product_id: str) -> OrderBook:
        """The book with its due orders expired first: a command never acts on an order
        whose good-till time has passed."""
        book = self.book(product_id)
        self.absorb(product_id, book.expire(self.at_ms(product_id)))
        return book

    def at_ms(self, product_id: str) -> int:
        """The command's time on this book: never before the book's last event."""
        return max(epoch_ms(self.now), self.book(product_id).last_at_ms)

    def set_leg(self, leg: LegRecord) -> None:
        self.legs[leg.id] = leg
        self.changed.add(leg.id)

    def pool(self, pool_id: str) -> backing.BackingPool:
        pool = self._pools.get(pool_id)
        if pool is None:
            pool = self._pools[pool_id] = registry.get_pool(self.session, pool_id)
        return pool

    def rehold(self, leg: LegRecord, amount_fen: int) -> LegRecord:
        """Make a bid leg's hold exactly `amount_fen` before it can trade (void the old one,
        hold anew): a fill then posts from a hold that covers it."""
        assert leg.side is Side.BID
        if leg.hold_fen == amount_fen and (amount_fen == 0) == (leg.hold_transfer_id is None):
            return leg
        self.buyers.add(leg.tenant_id)
        self.accounts |= {wallet_account_id(leg.tenant_id), escrow_account_id(leg.tenant_id)}
        serial = leg.hold_serial
        if leg.hold_transfer_id is not None:
            self.transfers.append(void_pending(f"{leg.id}:v{serial}", leg.hold_transfer_id,
                                               escrow.RELEASE, reference=leg.id))
        hold_id = None
        if amount_fen:
            serial += 1
            hold_id = f"{leg.id}:h{serial}"
            self.transfers.append(escrow.hold(hold_id, leg.tenant_id, amount_fen, leg.id))
        leg = replace(leg, hold_transfer_id=hold_id, hold_fen=amount_fen, hold_serial=serial)
        self.set_leg(leg)
        return leg

    # -- absorbing the book's events ---------------------------------------------------------

    def absorb(self, product_id: str, events: list[Event]) -> None:
        """Turn a book's events into leg changes, trades and reservations."""
        self.events[product_id] += events
        key = self.products[product_id].key
        for event in events:
            kind = event.kind
            if kind is EventKind.SUBMIT:
                leg = self.legs[event.order_id]
                self.set_leg(replace(leg, remaining=event.size, count=leg.filled + event.size,
                                     priority=event.seq, state=LegState.OPEN,
                                     min_fill=event.min_fill, good_till_ms=event.good_till_ms,
                                     price_fen_per_unit_hour=event.price))
            elif kind is EventKind.REDUCE:
                leg = self.legs[event.order_id]
                left = leg.remaining - event.size
                self.set_leg(replace(leg, remaining=left, count=leg.filled + left))
            elif kind in _CLOSED:
                leg = self.legs[event.order_id]
                self.set_leg(replace(leg, remaining=0, state=_CLOSED[kind]))
            else:
                self._trade(key, event)

    def _trade(self, key: ProductKey, event: Event) -> None:
        trade = trade_of(event)
        buy, sell = self.legs[trade.buy_order_id], self.legs[trade.sell_order_id]
        assert buy.side is Side.BID and sell.side is Side.ASK and sell.pool_id is not None
        for leg in (buy, sell):
            if event.kind is EventKind.CROSS or leg.id == event.order_id:  # resting
                left = leg.remaining - trade.quantity
                self.set_leg(replace(leg, filled=leg.filled + trade.quantity, remaining=left,
                                     state=LegState.OPEN if left else LegState.FILLED))
            else:
                # The incoming leg is not in the book (its remaining is 0 until its SUBMIT
                # says what is left): it has filled all it asked for, unless a SUBMIT follows.
                assert leg.remaining == 0, leg.id
                filled = leg.filled + trade.quantity
                self.set_leg(replace(leg, filled=filled, count=filled, state=LegState.FILLED))
        value = trade_value_fen(trade.price, trade.quantity)
        fee = fee_fen(value, self.fee_bps)
        record = TradeRecord(f"{key.id}:{trade.seq}", key.id, trade.seq, trade.at_ms,
                             key.accelerator_class, key.location, trade.price, trade.quantity,
                             buy.id, sell.id, buy.tenant_id, sell.tenant_id, sell.pool_id,
                             trade.aggressor, value, fee)
        self.trades.append(record)
        if sell.reservation_id is None:
            devices = backing.devices_for(trade.quantity, self._rating(sell.pool_id, key))
        else:
            devices = self._resell(sell.reservation_id, trade.quantity)
        self.reservations.append(Reservation(
            record.id, record.id, key.id, sell.pool_id, buy.tenant_id, sell.tenant_id,
            key.accelerator_class, key.block_start_s, key.block_end_s, trade.quantity, devices,
            value, fee, Due(0, 0), 0, ReservationState.RESERVED))
        self._posted[buy.id] += value
        self.sellers.add(sell.tenant_id)
        self.accounts |= {escrow_account_id(buy.tenant_id),
                          receivable_account_id(sell.tenant_id), FEES_ACCOUNT}

    def _resell(self, reservation_id: str, quantity: int) -> int:
        """A resale ask traded: `quantity` units of the reservation (and the devices they
        free) move to the trade's buyer. Returns those devices. The reservation row is locked
        here, after the products and before the accounts (docs/market.md)."""
        reservation = self.resold.get(reservation_id)
        if reservation is None:
            [reservation] = repo.reservations(self.session, reservation_id=reservation_id,
                                              limit=1, for_update=True)
        resold = reservation.resold + quantity
        assert resold <= reservation.quantity, (reservation_id, resold)
        rating = self._rating(reservation.pool_id, parse_product_id(reservation.product_id))
        held = backing.devices_for(reservation.quantity - resold, rating)
        held = min(held, reservation.devices)
        moved = reservation.devices_held - held
        self.resold[reservation_id] = replace(reservation, resold=resold,
                                              resold_devices=reservation.devices - held)
        return moved

    def _rating(self, pool_id: str, key: ProductKey) -> Decimal:
        return backing.rating(self.pool(pool_id), key.accelerator_class)

    def taker_starts(self, leg: LegRecord) -> None:
        """An incoming leg has nothing in the book until its SUBMIT: if none comes, it filled."""
        self.set_leg(replace(leg, remaining=0, state=LegState.FILLED, priority=None))

    # -- finishing ---------------------------------------------------------------------------

    def settle_legs(self) -> None:
        """Post each bid's fills from its hold and hold what is left again; give an ask that
        closed back the devices it did not sell."""
        for leg_id in sorted(self.changed):
            leg = self.legs[leg_id]
            if leg.side is Side.BID:
                self._settle_bid(leg)
            elif leg.state is not LegState.OPEN and leg.reservation_id is None:
                product = self.products[leg.product_id]
                assert leg.pool_id is not None
                sold = backing.devices_for(leg.filled, self._rating(leg.pool_id, product.key))
                assert sold <= leg.backing_devices, leg.id
                if sold != leg.backing_devices:
                    self.set_leg(replace(leg, backing_devices=sold))

    def _settle_bid(self, leg: LegRecord) -> None:
        posted = self._posted.pop(leg.id, 0)
        target = leg.price_fen_per_unit_hour * leg.remaining if leg.state is LegState.OPEN \
            else 0
        if not posted and target == leg.hold_fen:
            return
        self.accounts |= {wallet_account_id(leg.tenant_id), escrow_account_id(leg.tenant_id)}
        if posted:
            assert leg.hold_transfer_id is not None and posted <= leg.hold_fen, leg.id
            self.transfers.append(post_pending(f"{leg.id}:p{leg.hold_serial}",
                                               leg.hold_transfer_id, posted, escrow.BUY,
                                               reference=leg.id))
            leg = replace(leg, hold_transfer_id=None, hold_fen=0)
        self.rehold(leg, target)

    def finish(self) -> None:
        """Write everything; the ledger last, after every product lock is held."""
        assert not self._posted or all(leg_id in self.changed for leg_id in self._posted)
        self.settle_legs()
        assert not self._posted, self._posted
        session = self.session
        repo.update_legs(session, (self.legs[i] for i in sorted(self.changed)))
        repo.append_events_of(session, self.events)
        repo.insert_trades(session, self.trades)
        repo.insert_reservations(session, self.reservations, self.now)
        repo.set_resold(session, self.resold.values(), self.now)
        updated = []
        for product_id, book in self.books.items():
            product = self.products[product_id]
            if (book.seq, book.last_at_ms, book.last_price) != (
                    product.seq, product.last_at_ms, product.last_price_fen):
                product = replace(product, seq=book.seq, last_at_ms=book.last_at_ms,
                                  last_price_fen=book.last_price)
                self.products[product_id] = product
                updated.append(product)
        repo.save_products(session, updated, self.now)
        self._close_orders()
        if self.transfers:
            escrow.ensure_accounts(session, self.buyers, self.sellers, self.now)
        escrow.apply(session, self.transfers, self.accounts, self.now)

    def after_uncross(self, product_id: str) -> None:
        """A call-auction product uncrosses hourly until its block is within the continuous
        horizon: that uncross was its last, and it trades continuously from then on."""
        product = self.products[product_id]
        if product.key.block_start_s - self.now_s <= CONTINUOUS_HORIZON_S:
            product = replace(product, rule=MatchingRule.CONTINUOUS, next_uncross_s=None)
        else:
            product = replace(product, next_uncross_s=next_uncross_s(self.now_s))
        self.products[product_id] = product
        repo.save_products(self.session, [product], self.now)

    def order_states(self) -> dict[str, OrderState]:
        """Open while any of its legs is open, else done; for every order the command moved."""
        order_ids = {self.legs[i].order_id for i in self.changed}
        by_order: dict[str, list[LegRecord]] = defaultdict(list)
        for leg in self.legs.values():
            if leg.order_id in self.complete_orders:
                by_order[leg.order_id].append(leg)
        for leg in repo.legs_of_orders(self.session, order_ids - self.complete_orders):
            by_order[leg.order_id].append(self.legs.get(leg.id, leg))
        return {order_id: OrderState.OPEN if any(leg.state is LegState.OPEN for leg in legs)
                else OrderState.DONE for order_id, legs in by_order.items()}

    def _close_orders(self) -> None:
        if self.changed:
            self.states = self.order_states()
            repo.set_order_states(self.session, self.states, self.now)
