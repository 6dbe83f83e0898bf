"""The parts of an order book: resting orders, price levels with their FIFO queues, one side
of the book with its levels in price order."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

BUY, SELL = 1, -1


class BookOrder:
    """A resting order; `priority` is the sequence number of the event that placed it."""

    __slots__ = ("id", "direction", "price", "remaining", "min_fill", "owner", "good_till_ms",
                 "priority", "live")

    def __init__(self, order_id: str, direction: int, price: int, remaining: int,
                 min_fill: int, owner: str, good_till_ms: int, priority: int) -> None:
        self.id = order_id
        self.direction = direction
        self.price = price
        self.remaining = remaining
        self.min_fill = min_fill
        self.owner = owner
        self.good_till_ms = good_till_ms
        self.priority = priority
        self.live = True

    @property
    def need(self) -> int:
        """The least one matching event must give this order."""
        return self.min_fill if self.min_fill < self.remaining else self.remaining


class Level:
    __slots__ = ("price", "queue", "quantity", "live", "dead")

    def __init__(self, price: int) -> None:
        self.price = price
        self.queue: deque[BookOrder] = deque()
        self.quantity = 0  # the sum of the live orders' remaining sizes
        self.live = 0
        self.dead = 0  # marked dead, still queued


class BookSide:
    __slots__ = ("direction", "levels", "keys")

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []  # ascending; the best level's key is last

    def key(self, price: int) -> int:
        return price if self.direction == BUY else -price

    def price_of(self, key: int) -> int:
        return key if self.direction == BUY else -key

    def best(self) -> Level | None:
        return self.levels[self.price_of(self.keys[-1])] if self.keys else None

    def in_priority(self) -> list[Level]:
        return [self.levels[self.price_of(key)] for key in reversed(self.keys)]

    def drop_level(self, level: Level) -> None:
        assert level.live == 0 and level.quantity == 0, level.price
        del self.levels[level.price]
        key = self.key(level.price)
        if self.keys[-1] == key:
            self.keys.pop()
        else:
            del self.keys[bisect_left(self.keys, key)]


@dataclass(frozen=True, slots=True)
class LevelView:
    price: int
    quantity: int
    orders: int
