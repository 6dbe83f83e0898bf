"""The order book of one product (订单簿): price levels with FIFO queues, continuous matching.

Pure and deterministic: time comes in as `at_ms`, every change goes out as an `Event`, and
`replay(events)` rebuilds the same book. Per side, a dict maps a price to its level and a sorted
list of keys (the price for bids, minus the price for asks) keeps the best level at the end, so
the best price is `keys[-1]`, an empty best level is a `pop()`, and a new level a `bisect`
over the levels (not the orders). Orders leave a queue lazily: a cancelled or filled order is
marked dead and dropped when it reaches the front (or when dead orders outnumber the live).

Matching rules (docs/market.md):
- price-time priority; a trade prints at the resting order's price;
- an order never trades with a resting order of the same owner (self-trade prevention);
- a minimum fill (all-or-none is a minimum fill of the whole size) binds each matching event:
  an order trades at least min(min_fill, what is left of it) in one event, or nothing then.
  A resting order whose minimum an incoming order cannot meet keeps its place and is passed
  over; an incoming order that cannot get its own minimum rests whole.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from functools import partial
from heapq import heapify, heappop, heappush

from suanli.domain.errors import Conflict, NotFound, ValidationFailed
from suanli.domain.market import auction
from suanli.domain.market.events import Event, EventKind
from suanli.domain.market.levels import BUY, SELL, BookOrder, BookSide, Level, LevelView
from suanli.domain.market.orders import MAX_COUNT, MAX_PRICE_FEN_PER_UNIT_HOUR
from suanli.domain.market.products import MatchingRule

__all__ = ["BUY", "SELL", "BookOrder", "LevelView", "OrderBook"]

MAX_ORDERS = 1_000_000  # resting orders in one book
COMPACT_MIN_DEAD = 32  # a queue is rebuilt once it holds more dead orders than this and live
_SUBMIT, _REDUCE, _CANCEL = EventKind.SUBMIT, EventKind.REDUCE, EventKind.CANCEL
_EXPIRE, _EXECUTE, _CROSS = EventKind.EXPIRE, EventKind.EXECUTE, EventKind.CROSS
# Event((...)) without the NamedTuple's Python-level __new__: a quarter of a submit's time.
_event = partial(tuple.__new__, Event)


class OrderBook:
    """One product's book. Errors are raised before anything changes."""

    def __init__(self, product_id: str = "", rule: MatchingRule = MatchingRule.CONTINUOUS, *,
                 seq: int = 0, last_at_ms: int = 0, last_price: int | None = None) -> None:
        self.product_id = product_id
        self.rule = rule
        self.bids = BookSide(BUY)
        self.asks = BookSide(SELL)
        self.orders: dict[str, BookOrder] = {}
        self.seq = seq
        self.last_at_ms = last_at_ms
        self.last_price = last_price
        self._continuous = rule is MatchingRule.CONTINUOUS
        self._expiries: list[tuple[int, int, str]] = []

    # -- commands ----------------------------------------------------------------------------

    def submit(self, order_id: str, direction: int, price: int, size: int, at_ms: int, *,
               owner: str = "", min_fill: int = 0, good_till_ms: int = 0) -> list[Event]:
        """A new limit order: matched at once in a continuous book, then what is left rests."""
        if at_ms < self.last_at_ms:
            raise ValidationFailed("time must not go backwards", field="at")
        if not (1 <= price <= MAX_PRICE_FEN_PER_UNIT_HOUR and 1 <= size <= MAX_COUNT
                and 0 <= min_fill <= size and (direction == BUY or direction == SELL)
                and (not good_till_ms or good_till_ms > at_ms)):
            _check_order(direction, price, size, min_fill, good_till_ms, at_ms)
        orders = self.orders
        if order_id in orders:
            raise Conflict(f"order {order_id} is already in the book", field="order_id")
        if len(orders) >= MAX_ORDERS:
            raise Conflict(f"the book holds {MAX_ORDERS} orders", field="order_id")
        events: list[Event] = []
        remaining = size
        if self._continuous:
            # Only walk the other side when its best price crosses this order's limit.
            if direction == BUY:
                opposite = self.asks
                crosses = opposite.keys and -opposite.keys[-1] <= price
            else:
                opposite = self.bids
                crosses = opposite.keys and opposite.keys[-1] >= price
            if crosses and (
                    not min_fill
                    or self._fill(opposite, order_id, direction, price, size, owner, at_ms,
                                  None) >= min_fill):
                remaining -= self._fill(opposite, order_id, direction, price, size, owner,
                                        at_ms, events)
        if remaining:
            self.seq = seq = self.seq + 1
            order = BookOrder(order_id, direction, price, remaining, min_fill, owner,
                              good_till_ms, seq)
            if good_till_ms:
                self._insert(order)
            else:  # the hot path of _insert, inlined: a resting order without expiry
                side = self.bids if direction == BUY else self.asks
                level = side.levels.get(price)
                if level is None:
                    level = side.levels[price] = Level(price)
                    key = price if direction == BUY else -price
                    keys = side.keys
                    if not keys or key > keys[-1]:
                        keys.append(key)
                    else:
                        insort(keys, key)
                level.queue.append(order)
                level.quantity += remaining
                level.live += 1
                orders[order_id] = order
            events.append(_event((seq, at_ms, _SUBMIT, order_id, remaining, price, direction,
                                  "", owner, min_fill, good_till_ms)))
        self.last_at_ms = at_ms
        return events

    def cancel(self, order_id: str, at_ms: int) -> list[Event]:
        if at_ms < self.last_at_ms:
            raise ValidationFailed("time must not go backwards", field="at")
        order = self.orders.pop(order_id, None)
        if order is None:
            raise NotFound(f"order {order_id} is not resting in the book", field="order_id")
        self.last_at_ms = at_ms
        # _take_off, inlined (the order is already out of the index)
        size = order.remaining
        side = self.bids if order.direction == BUY else self.asks
        level = side.levels[order.price]
        order.live = False
        level.quantity -= size
        level.live -= 1
        level.dead += 1
        self._tidy(side, level)
        self.seq = seq = self.seq + 1
        return [_event((seq, at_ms, _CANCEL, order_id, size, order.price, order.direction, "",
                        "", 0, 0))]

    def replace(self, order_id: str, at_ms: int, *, price: int | None = None,
                size: int | None = None, min_fill: int | None = None,
                good_till_ms: int | None = None) -> list[Event]:
        """Cancel/replace; `size` is the new quantity left. Only a smaller size at the same
        price, minimum and good-till keeps the order's time priority (a REDUCE event);
        anything else takes it off and submits it again under the same id."""
        self._check_time(at_ms)
        order = self._get(order_id)
        new_price = order.price if price is None else price
        new_size = order.remaining if size is None else size
        new_min = min(order.min_fill, new_size) if min_fill is None else min_fill
        new_till = order.good_till_ms if good_till_ms is None else good_till_ms
        _check_order(order.direction, new_price, new_size, new_min, new_till, at_ms)
        if (new_price, new_size, new_min, new_till) == (
                order.price, order.remaining, order.min_fill, order.good_till_ms):
            return []
        self.last_at_ms = at_ms
        if (new_price, new_min, new_till) == (order.price, order.min_fill, order.good_till_ms) \
                and new_size < order.remaining:
            cut = order.remaining - new_size
            order.remaining = new_size
            self._level_of(order).quantity -= cut
            self.seq += 1
            return [Event(self.seq, at_ms, _REDUCE, order.id, cut, order.price, order.direction)]
        events = [self._take_off(order, _CANCEL, at_ms)]
        return events + self.submit(order_id, order.direction, new_price, new_size, at_ms,
                                    owner=order.owner, min_fill=new_min, good_till_ms=new_till)

    def expire(self, at_ms: int) -> list[Event]:
        """Take off every order whose good-till time has come, earliest first."""
        self._check_time(at_ms)
        heap = self._expiries
        events = []
        while heap and heap[0][0] <= at_ms:
            _, priority, order_id = heappop(heap)
            order = self.orders.get(order_id)
            if order is not None and order.priority == priority:
                events.append(self._take_off(order, _EXPIRE, at_ms))
        self.last_at_ms = at_ms
        return events

    def uncross(self, at_ms: int) -> list[Event]:
        """The call auction: expire what is due, then trade the volume-maximising quantity at
        one price (auction.clearing_price, tie rules there) and leave the rest resting."""
        events = self.expire(at_ms)
        indicative = self.indicative()
        if indicative is None:
            return events
        bid_fills, ask_fills = auction.allocate(self._eligible(self.bids, indicative.price),
                                                self._eligible(self.asks, indicative.price),
                                                indicative.volume)
        price = indicative.price
        for bid, ask, quantity in auction.pair(bid_fills, ask_fills):
            self.seq += 1
            events.append(Event(self.seq, at_ms, _CROSS, bid.id, quantity, price, BUY, ask.id))
        for order, quantity in bid_fills + ask_fills:
            self._reduce(order, quantity)
        if bid_fills:
            self.last_price = price
        return events

    # -- reading -----------------------------------------------------------------------------

    def indicative(self) -> auction.Indicative | None:
        """The price and volume an uncross now would trade, with the imbalance left over."""
        return auction.clearing_price(
            [(level.price, level.quantity) for level in self.bids.levels.values()],
            [(level.price, level.quantity) for level in self.asks.levels.values()],
            self.last_price)

    def best_bid(self) -> int | None:
        return self.bids.price_of(self.bids.keys[-1]) if self.bids.keys else None

    def best_ask(self) -> int | None:
        return self.asks.price_of(self.asks.keys[-1]) if self.asks.keys else None

    def depth(self, levels: int = 10) -> tuple[list[LevelView], list[LevelView]]:
        """The L2 view: the best `levels` price levels of each side, best first."""
        return tuple(  # type: ignore[return-value]
            [LevelView(level.price, level.quantity, level.live)
             for level in side.in_priority()[:levels]]
            for side in (self.bids, self.asks))

    def resting(self) -> list[BookOrder]:
        """Every live order, bids then asks, each side in priority order."""
        return [order for side in (self.bids, self.asks) for level in side.in_priority()
                for order in level.queue if order.live]

    def state(self) -> tuple[object, ...]:
        """What two equal books share: every resting order in queue order, seq, last price."""
        return (self.seq, self.last_price, tuple(
            (o.id, o.direction, o.price, o.remaining, o.min_fill, o.owner, o.good_till_ms,
             o.priority) for o in self.resting()))

    # -- rebuilding --------------------------------------------------------------------------

    def restore(self, order_id: str, direction: int, price: int, remaining: int, *,
                owner: str, min_fill: int, good_till_ms: int, priority: int) -> None:
        """Put back a stored resting order; callers restore in priority order."""
        assert order_id not in self.orders and 0 < priority <= self.seq, (order_id, priority)
        _check_order(direction, price, remaining, min_fill, 0, 0)
        order = BookOrder(order_id, direction, price, remaining, min_fill, owner, good_till_ms,
                          priority)
        queue = self._side(direction).levels.get(price)
        assert queue is None or not queue.queue or queue.queue[-1].priority < priority
        self._insert(order)

    def apply(self, event: Event) -> None:
        """Replay one logged event (no matching: the log already says what matched)."""
        assert event.seq == self.seq + 1 and event.at_ms >= self.last_at_ms, event
        kind = event.kind
        self.seq = event.seq
        self.last_at_ms = event.at_ms
        if kind is _SUBMIT:
            self._insert(BookOrder(event.order_id, event.direction, event.price, event.size,
                                   event.min_fill, event.owner, event.good_till_ms, event.seq))
        elif kind is _REDUCE:
            order = self.orders[event.order_id]
            order.remaining -= event.size
            self._level_of(order).quantity -= event.size
        elif kind is _CANCEL or kind is _EXPIRE:
            order = self.orders[event.order_id]
            assert order.remaining == event.size, event
            level = self._level_of(order)
            self._drop(order, level)
            self._tidy(self._side(order.direction), level)
        else:
            assert kind is _EXECUTE or kind is _CROSS, event
            self._reduce(self.orders[event.order_id], event.size)
            if kind is _CROSS:
                self._reduce(self.orders[event.contra_id], event.size)
            self.last_price = event.price

    @classmethod
    def replay(cls, events: list[Event], product_id: str = "",
               rule: MatchingRule = MatchingRule.CONTINUOUS) -> OrderBook:
        book = cls(product_id, rule)
        for event in events:
            book.apply(event)
        return book

    # -- invariants --------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Raise AssertionError if the book is inconsistent; O(orders)."""
        live: dict[str, BookOrder] = {}
        for side in (self.bids, self.asks):
            _require(side.keys == sorted(side.key(p) for p in side.levels), "keys out of step")
            for price, level in side.levels.items():
                orders = [o for o in level.queue if o.live]
                _require(level.price == price and level.live == len(orders) > 0,
                         f"level {price} counts")
                _require(level.quantity == sum(o.remaining for o in orders),
                         f"level {price} quantity")
                _require(level.dead == len(level.queue) - len(orders), f"level {price} dead")
                priorities = [o.priority for o in orders]
                _require(priorities == sorted(priorities), f"level {price} out of time order")
                for order in orders:
                    _require(order.price == price and order.direction == side.direction
                             and 0 < order.remaining <= MAX_COUNT, f"order {order.id}")
                    live[order.id] = order
        _require(live == self.orders, "order index out of step")
        if self.rule is MatchingRule.CONTINUOUS:
            _require(not self._plain_cross(), "crossed book")

    def _plain_cross(self) -> bool:
        """Whether a bid and an ask of different owners, neither with a minimum fill, cross:
        continuous matching never leaves one."""
        def best(side: BookSide) -> list[tuple[int, str]]:
            by_owner: dict[str, int] = {}
            for level in side.in_priority():
                for o in level.queue:
                    owner = o.owner or f"\0{o.id}"
                    if o.live and not o.min_fill and owner not in by_owner:
                        by_owner[owner] = o.price
                if len(by_owner) >= 2:
                    break
            return [(price, owner) for owner, price in by_owner.items()][:2]
        return any(bid >= ask and bid_owner != ask_owner
                   for bid, bid_owner in best(self.bids) for ask, ask_owner in best(self.asks))

    # -- internals ---------------------------------------------------------------------------

    def _fill(self, opposite: BookSide, taker_id: str, direction: int, price: int,
              quantity: int, owner: str, at_ms: int, events: list[Event] | None) -> int:
        """Walk the opposite side from its best level while prices cross; returns how much
        the incoming order fills. `events` None: a dry run that changes nothing."""
        keys = opposite.keys
        levels = opposite.levels
        left = quantity
        index = len(keys) - 1
        while left and index >= 0:
            level_price = keys[index] if opposite.direction == BUY else -keys[index]
            if (level_price > price) if direction == BUY else (level_price < price):
                break
            level = levels[level_price]
            left = self._fill_level(level, taker_id, left, owner, at_ms, events)
            if events is not None:
                if level.live:
                    self._tidy(opposite, level)
                else:
                    del levels[level_price]
                    del keys[index]
            index -= 1
        return quantity - left

    def _fill_level(self, level: Level, taker_id: str, left: int, owner: str, at_ms: int,
                    events: list[Event] | None) -> int:
        commit = events is not None
        for order in level.queue:
            if not order.live:
                continue
            if order.good_till_ms and order.good_till_ms <= at_ms:
                if commit:  # due but not yet swept: it leaves now, it does not trade
                    size = order.remaining
                    self._drop(order, level)
                    self.seq += 1
                    events.append(Event(self.seq, at_ms, _EXPIRE, order.id, size,  # type: ignore[union-attr]
                                        order.price, order.direction))
                continue
            if owner and order.owner == owner:
                continue
            remaining = order.remaining
            if (order.min_fill if order.min_fill < remaining else remaining) > left:
                continue
            quantity = left if left < remaining else remaining
            left -= quantity
            if commit:
                order.remaining = remaining - quantity
                level.quantity -= quantity
                self.seq = seq = self.seq + 1
                events.append(_event((seq, at_ms, _EXECUTE, order.id, quantity,  # type: ignore[union-attr]
                                      order.price, order.direction, taker_id, "", 0, 0)))
                self.last_price = order.price
                if not order.remaining:
                    order.live = False
                    del self.orders[order.id]
                    level.live -= 1
                    level.dead += 1
            if not left:
                break
        return left

    def _eligible(self, side: BookSide, price: int) -> list[BookOrder]:
        """Orders that trade at `price` in an auction, in priority order."""
        eligible: list[BookOrder] = []
        for level in side.in_priority():
            if (level.price < price) if side.direction == BUY else (level.price > price):
                break
            eligible.extend(order for order in level.queue if order.live)
        return eligible

    def _insert(self, order: BookOrder) -> None:
        price = order.price
        side = self.bids if order.direction == BUY else self.asks
        level = side.levels.get(price)
        if level is None:
            level = side.levels[price] = Level(price)
            key = price if order.direction == BUY else -price
            keys = side.keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        level.queue.append(order)
        level.quantity += order.remaining
        level.live += 1
        self.orders[order.id] = order
        if order.good_till_ms:
            heappush(self._expiries, (order.good_till_ms, order.priority, order.id))
            if len(self._expiries) > 2 * len(self.orders) + 1024:
                self._expiries = [(o.good_till_ms, o.priority, o.id)
                                  for o in self.orders.values() if o.good_till_ms]
                heapify(self._expiries)

    def _take_off(self, order: BookOrder, kind: EventKind, at_ms: int) -> Event:
        size = order.remaining
        side = self.bids if order.direction == BUY else self.asks
        level = side.levels[order.price]
        self._drop(order, level)
        self._tidy(side, level)
        self.seq = seq = self.seq + 1
        return _event((seq, at_ms, kind, order.id, size, order.price, order.direction, "", "",
                       0, 0))

    def _reduce(self, order: BookOrder, quantity: int) -> None:
        assert 0 < quantity <= order.remaining and order.live, (order.id, quantity)
        side = self._side(order.direction)
        level = side.levels[order.price]
        order.remaining -= quantity
        level.quantity -= quantity
        if not order.remaining:
            self._drop(order, level)
        self._tidy(side, level)

    def _drop(self, order: BookOrder, level: Level) -> None:
        order.live = False
        del self.orders[order.id]
        level.quantity -= order.remaining
        level.live -= 1
        level.dead += 1

    def _tidy(self, side: BookSide, level: Level) -> None:
        if not level.live:
            level.dead = 0
            level.queue.clear()
            side.drop_level(level)
            return
        queue = level.queue
        while not queue[0].live:
            queue.popleft()
            level.dead -= 1
        if level.dead > COMPACT_MIN_DEAD and level.dead > level.live:
            level.queue = deque(order for order in queue if order.live)
            level.dead = 0

    def _side(self, direction: int) -> BookSide:
        return self.bids if direction == BUY else self.asks

    def _level_of(self, order: BookOrder) -> Level:
        return self._side(order.direction).levels[order.price]

    def _get(self, order_id: str) -> BookOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise NotFound(f"order {order_id} is not resting in the book", field="order_id")
        return order

    def _check_time(self, at_ms: int) -> None:
        if at_ms < self.last_at_ms:
            raise ValidationFailed("time must not go backwards", field="at")


def _check_order(direction: int, price: int, size: int, min_fill: int, good_till_ms: int,
                 at_ms: int) -> None:
    if direction != BUY and direction != SELL:
        raise ValidationFailed("1 (buy) or -1 (sell)", field="side")
    if not 1 <= price <= MAX_PRICE_FEN_PER_UNIT_HOUR:
        raise ValidationFailed(f"1-{MAX_PRICE_FEN_PER_UNIT_HOUR}",
                               field="price_fen_per_unit_hour")
    if not 1 <= size <= MAX_COUNT:
        raise ValidationFailed(f"1-{MAX_COUNT}", field="count")
    if not 0 <= min_fill <= size:
        raise ValidationFailed("between 0 and the size", field="min_fill")
    if good_till_ms and good_till_ms <= at_ms:
        raise ValidationFailed("must be in the future", field="good_till")


def _require(condition: bool, message: str) -> None:
    # Not `assert`: the book's invariants must hold under `python -O` too.
    if not condition:
        raise AssertionError(message)
