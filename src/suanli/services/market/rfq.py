"""Requests for quote (询价): the pools that can serve a buyer's whole need answer with a
price from their provider's pricing function (pluggable; cost plus margin by default), within
a deadline. Quotes commit nobody: the buyer then bids at a quoted price."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.errors import ValidationFailed
from suanli.domain.market import rfq
from suanli.domain.market.products import MAX_HORIZON_S, QuantityUnit, unit_of
from suanli.domain.market.records import MarketPool
from suanli.domain.resources import PoolState
from suanli.services.billing import tariffs
from suanli.services.market import backing

MAX_POOLS = 200  # pools asked for one request
DEFAULT_DEADLINE_S = 1.0


class PricingRegistry:
    """Each provider's pricing function; providers without one are priced by the default."""

    def __init__(self, default: rfq.PricingFunction | None = None) -> None:
        self.default = default or rfq.cost_plus()
        self._by_provider: dict[str, rfq.PricingFunction] = {}

    def register(self, provider_id: str, pricing: rfq.PricingFunction) -> None:
        self._by_provider[provider_id] = pricing

    def unregister(self, provider_id: str) -> None:
        self._by_provider.pop(provider_id, None)

    @property
    def by_provider(self) -> Mapping[str, rfq.PricingFunction]:
        return self._by_provider


PRICING = PricingRegistry()


def _pools(session: Session, request: rfq.QuoteRequest) -> list[MarketPool]:
    device = unit_of(request.accelerator_class) is QuantityUnit.DEVICE
    return repo.quotable_pools(session, state=PoolState.ACTIVE.value, location=request.location,
                               accelerator=request.accelerator_class if device else None,
                               limit=MAX_POOLS)


def _offer(session: Session, request: rfq.QuoteRequest, pool: MarketPool,
           blocks: list[int]) -> rfq.Offer | None:
    units = backing.rating(pool, request.accelerator_class)
    if units <= 0:
        return None
    free = backing.free_devices(session, pool, blocks)
    unit = unit_of(request.accelerator_class)
    free_units = tuple(free[b] if unit is QuantityUnit.DEVICE else math.floor(free[b] * units)
                       for b in blocks)
    list_price = pool.price_fen_per_device_hour if unit is QuantityUnit.DEVICE else math.ceil(
        pool.price_fen_per_device_hour / units)
    costs = tariffs.guidance(session, pool.id).costs
    return rfq.Offer(pool.id, pool.provider_id, unit, free_units, list_price, costs, units)


def quote(session: Session, request: rfq.QuoteRequest, now: datetime, *,
          deadline_s: float = DEFAULT_DEADLINE_S,
          pricing: PricingRegistry = PRICING) -> list[rfq.Quote]:
    now_s = int(now.timestamp())
    blocks = [start for start, _ in request.shape.blocks()]
    if blocks[0] <= now_s or blocks[-1] - now_s > MAX_HORIZON_S:
        raise ValidationFailed("blocks start in the future, at most 30 days ahead",
                               field="intervals")
    offers = [offer for pool in _pools(session, request)
              if (offer := _offer(session, request, pool, blocks)) is not None]
    started = time.monotonic()
    return rfq.collect(request, offers, pricing.by_provider, pricing.default,
                       deadline_s=deadline_s, elapsed_s=lambda: time.monotonic() - started)
