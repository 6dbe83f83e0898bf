"""Orders (委托): a bid or an ask for a time-shaped quantity of one accelerator class.

A shape is SF Compute's `{intervals[], counts[]}`: during each interval (whole hours) the order
wants (or offers) `counts[i]` devices or compute units. The exchange splits an order into one
leg per hour block; each leg rests on that block's product book and fills on its own, so the
minimum fill and all-or-none apply to each leg (docs/market.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from suanli.domain.errors import ValidationFailed
from suanli.domain.market.products import (
    BLOCK_S,
    MAX_HORIZON_S,
    ProductKey,
    check_accelerator_class,
    check_location,
)

MAX_INTERVALS = 168
MAX_LEGS = 168  # one week of hour blocks in one order
MAX_COUNT = 100_000  # devices or compute units in one block of one order
MAX_PRICE_FEN_PER_UNIT_HOUR = 10_000_000  # 100,000 CNY a unit-hour: a sanity bound
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class Side(StrEnum):
    BID = "bid"  # buy
    ASK = "ask"  # sell

    @property
    def direction(self) -> int:
        """LOBSTER's direction: 1 buy, -1 sell."""
        return 1 if self is Side.BID else -1


class OrderState(StrEnum):
    OPEN = "open"  # at least one leg rests in a book
    DONE = "done"  # every leg filled, cancelled or expired


class LegState(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def check_client_order_id(value: object) -> str:
    if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
        raise ValidationFailed("1-64 characters of letters, digits and ._:-",
                               field="client_order_id")
    return value


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise ValidationFailed(f"must be an integer between {low} and {high}", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Shape:
    """Intervals [start_s, end_s) on whole hours, sorted and disjoint, each with a count."""

    intervals: tuple[tuple[int, int], ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (1 <= len(self.intervals) <= MAX_INTERVALS):
            raise ValidationFailed(f"1-{MAX_INTERVALS} intervals", field="intervals")
        if len(self.counts) != len(self.intervals):
            raise ValidationFailed("one count per interval", field="counts")
        previous_end = None
        blocks = 0
        for index, (start, end) in enumerate(self.intervals):
            where = f"intervals[{index}]"
            for value in (start, end):
                if isinstance(value, bool) or not isinstance(value, int) or value % BLOCK_S:
                    raise ValidationFailed("starts and ends on the hour", field=where)
            if end <= start:
                raise ValidationFailed("ends after it starts", field=where)
            if previous_end is not None and start < previous_end:
                raise ValidationFailed("intervals are sorted and do not overlap", field=where)
            previous_end = end
            blocks += (end - start) // BLOCK_S
            _int(self.counts[index], f"counts[{index}]", 1, MAX_COUNT)
        if blocks > MAX_LEGS:
            raise ValidationFailed(f"at most {MAX_LEGS} hour blocks in one order",
                                   field="intervals")

    def blocks(self) -> list[tuple[int, int]]:
        """(block start, count) for every hour the shape covers, in time order."""
        return [(start, count)
                for (first, end), count in zip(self.intervals, self.counts, strict=True)
                for start in range(first, end, BLOCK_S)]


@dataclass(frozen=True, slots=True)
class LegSpec:
    """One hour block of an order: what rests on that block's book."""

    index: int
    product: ProductKey
    count: int
    min_fill: int  # 0: any fill; == count: all or none
    good_till_s: int  # the leg leaves the book at this instant (at the latest at block start)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as a member states it; every field is checked here, before anything is
    stored. Prices are fen per unit-hour (a device-hour or an SCU-hour)."""

    side: Side
    accelerator_class: str
    location: str
    price_fen_per_unit_hour: int
    shape: Shape
    client_order_id: str
    min_fill: int = 0  # per leg; 0 = any
    all_or_none: bool = False  # per leg: fill the whole count or nothing
    good_till_s: int | None = None  # None: each leg rests until its block starts
    pool_id: str | None = None  # an ask names the pool that backs it
    reservation_id: str | None = None  # a resale: the reservation whose time the ask offers

    def __post_init__(self) -> None:
        if not isinstance(self.side, Side):
            raise ValidationFailed("bid or ask", field="side")
        check_accelerator_class(self.accelerator_class)
        check_location(self.location)
        _int(self.price_fen_per_unit_hour, "price_fen_per_unit_hour", 1,
             MAX_PRICE_FEN_PER_UNIT_HOUR)
        check_client_order_id(self.client_order_id)
        _int(self.min_fill, "min_fill", 0, MAX_COUNT)
        if self.all_or_none and self.min_fill:
            raise ValidationFailed("all_or_none already fixes the minimum fill", field="min_fill")
        if self.side is Side.ASK and not self.pool_id:
            raise ValidationFailed("an ask names the pool that backs it", field="pool_id")
        if self.side is Side.BID and self.pool_id is not None:
            raise ValidationFailed("only an ask names a pool", field="pool_id")
        if self.side is Side.BID and self.reservation_id is not None:
            raise ValidationFailed("only an ask resells a reservation", field="reservation_id")

    def legs(self, now_s: int) -> list[LegSpec]:
        """The order's legs, checked against the clock: every block starts in the future and
        within MAX_HORIZON_S, and the good-till time (if any) is in the future."""
        if self.good_till_s is not None and self.good_till_s <= now_s:
            raise ValidationFailed("must be in the future", field="good_till")
        legs = []
        for index, (start, count) in enumerate(self.shape.blocks()):
            if start <= now_s:
                raise ValidationFailed("a block must start in the future", field="intervals")
            if start - now_s > MAX_HORIZON_S:
                raise ValidationFailed(f"blocks trade at most {MAX_HORIZON_S // 86_400} days "
                                       "ahead", field="intervals")
            if self.min_fill > count:
                raise ValidationFailed(f"exceeds the count of block {index} ({count})",
                                       field="min_fill")
            good_till = start if self.good_till_s is None else min(start, self.good_till_s)
            min_fill = count if self.all_or_none else self.min_fill
            legs.append(LegSpec(index, ProductKey(self.accelerator_class, self.location, start),
                                count, min_fill, good_till))
        return legs


def worst_case_fen(price_fen_per_unit_hour: int, count: int) -> int:
    """What a bid leg can cost at most: its limit price for count units over one block."""
    assert BLOCK_S == 3600  # one block is one hour, so unit-hours == count
    return price_fen_per_unit_hour * count
