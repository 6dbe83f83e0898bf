"""The uniform-price call auction (集合竞价): one price per uncross, the volume-maximising one.

At a price p, demand D(p) is every bid at p or above and supply S(p) every ask at p or below;
p can trade min(D(p), S(p)). The clearing price, in order of the tie rules (docs/market.md):

1. the most volume;
2. the least imbalance |D(p) - S(p)|;
3. the closest to the reference price (the book's last trade), when there is one;
4. the lower price.

Volume and imbalance are constant between two neighbouring limit prices, so the search looks
at each limit price and at each open gap between two of them (where rule 3 may pick a price no
order named): O(levels log levels), not O(price range).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

MAX_ALLOCATION_PASSES = 32  # minimum fills can shrink the volume; past this, they sit it out


@dataclass(frozen=True, slots=True)
class Indicative:
    """What an uncross now would do; published before the uncross."""

    price: int
    volume: int  # min(buy_volume, sell_volume)
    buy_volume: int  # D(price)
    sell_volume: int  # S(price)

    @property
    def imbalance(self) -> int:
        """Positive: buyers left over at this price; negative: sellers."""
        return self.buy_volume - self.sell_volume


def clearing_price(bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]],
                   reference: int | None) -> Indicative | None:
    """The clearing price of (price, quantity) levels by the tie rules above; None when no
    price trades anything."""
    if not bids or not asks:
        return None
    bid_at: dict[int, int] = {}
    for price, quantity in bids:
        bid_at[price] = bid_at.get(price, 0) + quantity
    ask_at: dict[int, int] = {}
    for price, quantity in asks:
        ask_at[price] = ask_at.get(price, 0) + quantity
    prices = sorted(bid_at.keys() | ask_at.keys())
    demand = [0] * len(prices)
    total = 0
    for i in range(len(prices) - 1, -1, -1):
        total += bid_at.get(prices[i], 0)
        demand[i] = total
    best: tuple[tuple[int, int, int, int], Indicative] | None = None
    supply = 0
    for i, price in enumerate(prices):
        supply += ask_at.get(price, 0)
        segments = [(price, price, demand[i])]
        if i + 1 < len(prices) and prices[i + 1] - price > 1:  # the gap up to the next price
            segments.append((price + 1, prices[i + 1] - 1, demand[i + 1]))
        for low, high, buy in segments:
            volume = min(buy, supply)
            if not volume:
                continue
            point = low if reference is None else min(max(reference, low), high)
            rank = (-volume, abs(buy - supply),
                    0 if reference is None else abs(point - reference), point)
            if best is None or rank < best[0]:
                best = (rank, Indicative(point, volume, buy, supply))
    return None if best is None else best[1]


class Resting(Protocol):
    id: str
    remaining: int
    min_fill: int
    owner: str


R = TypeVar("R", bound=Resting)


def allocate(bids: Sequence[R], asks: Sequence[R], volume: int
             ) -> tuple[list[tuple[R, int]], list[tuple[R, int]]]:
    """Fill `volume` on each side in priority order; an order whose minimum fill the rest of
    the volume cannot meet is passed over. Passing over shrinks one side, so the volume shrinks
    until both sides agree (at most MAX_ALLOCATION_PASSES, after which orders with a minimum
    fill sit this auction out and the plain orders trade)."""
    target = volume
    for _ in range(MAX_ALLOCATION_PASSES):
        bid_fills, bid_total = _greedy(bids, target, plain_only=False)
        ask_fills, ask_total = _greedy(asks, target, plain_only=False)
        if bid_total == ask_total:
            return bid_fills, ask_fills
        target = min(bid_total, ask_total)
    plain = min(sum(o.remaining for o in bids if not o.min_fill),
                sum(o.remaining for o in asks if not o.min_fill), target)
    bid_fills, bid_total = _greedy(bids, plain, plain_only=True)
    ask_fills, ask_total = _greedy(asks, plain, plain_only=True)
    assert bid_total == ask_total == plain, (bid_total, ask_total, plain)
    return bid_fills, ask_fills


def _greedy(orders: Sequence[R], target: int, *, plain_only: bool
            ) -> tuple[list[tuple[R, int]], int]:
    fills: list[tuple[R, int]] = []
    left = target
    for order in orders:
        if not left:
            break
        if plain_only and order.min_fill:
            continue
        quantity = min(order.remaining, left)
        if quantity < min(order.min_fill, order.remaining):
            continue
        fills.append((order, quantity))
        left -= quantity
    return fills, target - left


def pair(bid_fills: list[tuple[R, int]], ask_fills: list[tuple[R, int]]
         ) -> list[tuple[R, R, int]]:
    """Match the allocated quantities bid by bid and ask by ask, both in priority order."""
    pairs = []
    bid_index = ask_index = 0
    bid_left = bid_fills[0][1] if bid_fills else 0
    ask_left = ask_fills[0][1] if ask_fills else 0
    while bid_index < len(bid_fills) and ask_index < len(ask_fills):
        quantity = min(bid_left, ask_left)
        pairs.append((bid_fills[bid_index][0], ask_fills[ask_index][0], quantity))
        bid_left -= quantity
        ask_left -= quantity
        if not bid_left:
            bid_index += 1
            bid_left = bid_fills[bid_index][1] if bid_index < len(bid_fills) else 0
        if not ask_left:
            ask_index += 1
            ask_left = ask_fills[ask_index][1] if ask_index < len(ask_fills) else 0
    assert bid_index == len(bid_fills) and ask_index == len(ask_fills)
    return pairs
