"""Requests for quote (询价), Akash style: a buyer states a need, each provider's pricing
function answers for each pool that can serve all of it, within a deadline.

A pricing function is pluggable per provider; the default prices at cost plus a margin from
the cost model of `domain.costing` (what an hour of the device costs at the pool's site).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from suanli.domain.costing import CostBreakdown
from suanli.domain.errors import ValidationFailed
from suanli.domain.market.orders import MAX_PRICE_FEN_PER_UNIT_HOUR, Shape
from suanli.domain.market.products import QuantityUnit, check_accelerator_class, check_location

MAX_DEADLINE_S = 5.0  # Akash's bid engines answer within 5 s
MAX_OFFERS = 1_000  # pools asked for one request
DEFAULT_MARGIN = Decimal("0.25")


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    accelerator_class: str
    location: str
    shape: Shape

    def __post_init__(self) -> None:
        check_accelerator_class(self.accelerator_class)
        check_location(self.location)


@dataclass(frozen=True, slots=True)
class Offer:
    """What one pool can offer for the request: the facts a pricing function needs."""

    pool_id: str
    provider_id: str
    unit: QuantityUnit
    free_per_block: tuple[int, ...]  # units free in each block of the request's shape
    list_price_fen_per_unit_hour: int
    costs: CostBreakdown
    units_per_device_hour: Decimal  # in the request's workload class


class PricingFunction(Protocol):
    def __call__(self, request: QuoteRequest, offer: Offer) -> int | None:
        """A price in fen per unit-hour, or None to decline."""


@dataclass(frozen=True, slots=True)
class Quote:
    pool_id: str
    provider_id: str
    price_fen_per_unit_hour: int
    value_fen: int  # the whole shape at this price


def cost_plus(margin: Decimal = DEFAULT_MARGIN) -> PricingFunction:
    """Cost of a sold hour (domain.costing) x (1 + margin), per device or per SCU."""
    def price(request: QuoteRequest, offer: Offer) -> int | None:
        per_device = offer.costs.cost_fen_per_sold_device_hour * (1 + margin)
        per_unit = per_device if offer.unit is QuantityUnit.DEVICE else (
            per_device / offer.units_per_device_hour)
        fen = max(1, math.ceil(per_unit))
        return fen if fen <= MAX_PRICE_FEN_PER_UNIT_HOUR else None
    return price


def list_price(request: QuoteRequest, offer: Offer) -> int | None:
    """The pool's list price, for providers who quote what they publish."""
    return offer.list_price_fen_per_unit_hour or None


def collect(request: QuoteRequest, offers: Sequence[Offer],
            pricing: Mapping[str, PricingFunction], default: PricingFunction, *,
            deadline_s: float, elapsed_s: Callable[[], float]) -> list[Quote]:
    """Ask each pool that can serve the whole shape for a price, cheapest first; a pricing
    function that answers after the deadline is not heard (nor are those after it)."""
    if not (0 < deadline_s <= MAX_DEADLINE_S):
        raise ValidationFailed(f"0-{MAX_DEADLINE_S} s", field="deadline_s")
    if len(offers) > MAX_OFFERS:
        raise ValidationFailed(f"at most {MAX_OFFERS} pools", field="offers")
    counts = [count for _, count in request.shape.blocks()]
    quotes = []
    for offer in offers:
        assert len(offer.free_per_block) == len(counts), offer.pool_id
        if any(free < count for free, count in zip(offer.free_per_block, counts, strict=True)):
            continue
        if elapsed_s() > deadline_s:
            break
        price = pricing.get(offer.provider_id, default)(request, offer)
        if elapsed_s() > deadline_s:
            break
        if price is None or not (1 <= price <= MAX_PRICE_FEN_PER_UNIT_HOUR):
            continue
        quotes.append(Quote(offer.pool_id, offer.provider_id, price, price * sum(counts)))
    return sorted(quotes, key=lambda q: (q.price_fen_per_unit_hour, q.pool_id))
