"""The book's event log, LOBSTER-like: (time, type, order id, size, price, direction).

LOBSTER's message file has six columns; ours adds what an exact replay needs: a sequence
number per book (an order's time priority), the contra order of an execution, and a resting
order's owner, minimum fill and good-till time. `lobster_row` writes the six columns with
LOBSTER's type codes (1 submission, 2 partial cancellation, 3 deletion, 4 execution of a
visible order, 6 cross trade), so research tools read the log as they read LOBSTER's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class EventKind(StrEnum):
    SUBMIT = "submit"  # a limit order (or what is left of it after matching) rests in the book
    REDUCE = "reduce"  # its owner took `size` off a resting order; it keeps its priority
    CANCEL = "cancel"  # its owner took the whole resting order (`size` was left) off the book
    EXPIRE = "expire"  # its good-till time came; `size` was left
    EXECUTE = "execute"  # the resting `order_id` traded `size` at `price` with `contra_id`
    CROSS = "cross"  # a call auction traded buy `order_id` with sell `contra_id` at `price`


LOBSTER_TYPE = {EventKind.SUBMIT: 1, EventKind.REDUCE: 2, EventKind.CANCEL: 3,
                EventKind.EXPIRE: 3, EventKind.EXECUTE: 4, EventKind.CROSS: 6}
TRADES = frozenset({EventKind.EXECUTE, EventKind.CROSS})


class Event(NamedTuple):
    seq: int  # 1, 2, ... per book, no gaps
    at_ms: int  # epoch milliseconds
    kind: EventKind
    order_id: str
    size: int
    price: int  # fen per unit-hour
    direction: int  # 1 buy, -1 sell: the side of `order_id`
    contra_id: str = ""  # EXECUTE: the incoming order; CROSS: the sell order
    owner: str = ""  # SUBMIT only, like the three fields after it
    min_fill: int = 0
    good_till_ms: int = 0  # 0: no good-till time


class Trade(NamedTuple):
    """A trade read off the log: who bought from whom, how much, at what price."""

    seq: int
    at_ms: int
    price: int
    quantity: int
    buy_order_id: str
    sell_order_id: str
    aggressor: int  # 1 a buy order took liquidity, -1 a sell order did, 0 a call auction


def trade_of(event: Event) -> Trade:
    assert event.kind in TRADES, event
    if event.kind is EventKind.CROSS:
        return Trade(event.seq, event.at_ms, event.price, event.size, event.order_id,
                     event.contra_id, 0)
    if event.direction == 1:  # a resting bid was hit by an incoming ask
        return Trade(event.seq, event.at_ms, event.price, event.size, event.order_id,
                     event.contra_id, -1)
    return Trade(event.seq, event.at_ms, event.price, event.size, event.contra_id,
                 event.order_id, 1)


def trades_of(events: list[Event]) -> list[Trade]:
    return [trade_of(event) for event in events if event.kind in TRADES]


def lobster_row(event: Event) -> tuple[float, int, str, int, int, int]:
    """LOBSTER's message columns: time in seconds, type, order id, size, price, direction."""
    return (event.at_ms / 1000, LOBSTER_TYPE[event.kind], event.order_id, event.size,
            event.price, event.direction)
