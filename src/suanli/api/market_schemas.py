"""Request and response bodies of the exchange (/v1/market). Prices are integer fen per
unit-hour (a device-hour, or an SCU-hour for `scu-*` classes); times are ISO 8601 with a zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from suanli.api.billing_schemas import LedgerCheckOut
from suanli.domain.market.orders import (
    MAX_COUNT,
    MAX_INTERVALS,
    MAX_PRICE_FEN_PER_UNIT_HOUR,
)
from suanli.domain.market.rfq import MAX_DEADLINE_S

Price = Annotated[int, Field(ge=1, le=MAX_PRICE_FEN_PER_UNIT_HOUR,
                             description="fen per unit-hour (device-hour or SCU-hour)")]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT, description="devices, or SCU for scu-* classes")]
ClientOrderId = Annotated[str, Field(min_length=1, max_length=64,
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
AcceleratorClass = Annotated[str, Field(min_length=2, max_length=48,
                                        description="a catalog key, or scu-<workload class>")]
Location = Annotated[str, Field(min_length=2, max_length=24,
                                description="a hub (e.g. ningxia) or a province (e.g. CN-GZ)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShapeIn(Strict):
    """SF Compute's contract shape: during each interval (whole hours), `counts[i]` units."""

    intervals: list[tuple[AwareDatetime, AwareDatetime]] = Field(
        min_length=1, max_length=MAX_INTERVALS,
        description="[start, end] pairs on whole hours, sorted, not overlapping")
    counts: list[Count] = Field(min_length=1, max_length=MAX_INTERVALS)


class ShapeOut(BaseModel):
    intervals: list[tuple[datetime, datetime]]
    counts: list[int]


class OrderIn(Strict):
    client_order_id: ClientOrderId = Field(description="the same id again is the same order")
    side: Literal["bid", "ask"]
    accelerator_class: AcceleratorClass
    location: Location
    price_fen_per_unit_hour: Price
    shape: ShapeIn
    min_fill: int = Field(default=0, ge=0, le=MAX_COUNT,
                          description="per hour block: the least one match may fill")
    all_or_none: bool = Field(default=False, description="per hour block: all or nothing")
    good_till: AwareDatetime | None = Field(
        default=None, description="default: each block's order rests until the block starts")
    pool_id: str | None = Field(default=None, max_length=72,
                                description="an ask: the pool that backs it")


class BatchIn(Strict):
    # Each order is checked on its own, so that one bad order is its own 422 and the others
    # go on: the items are validated as OrderIn one by one by the route.
    orders: list[dict[str, Any]] = Field(min_length=1, max_length=500,
                                         description="orders, each an OrderIn")


class ProblemItemOut(BaseModel):
    field: str
    reason: str


class ProblemOut(BaseModel):
    title: str
    status: int
    detail: str
    errors: list[ProblemItemOut] = []


class ResellIn(Strict):
    client_order_id: ClientOrderId = Field(description="the same id again is the same order")
    price_fen_per_unit_hour: Price
    count: int = Field(ge=1, le=MAX_COUNT, description="units of the reservation to offer")
    min_fill: int = Field(default=0, ge=0, le=MAX_COUNT,
                          description="the least one match may fill")
    all_or_none: bool = Field(default=False, description="all or nothing")
    good_till: AwareDatetime | None = Field(
        default=None, description="default: the ask rests until the block starts")


class ReplaceIn(Strict):
    price_fen_per_unit_hour: Price | None = None
    counts: list[Count] | None = Field(default=None, min_length=1, max_length=MAX_INTERVALS,
                                       description="new totals per interval, fills included")
    good_till: AwareDatetime | None = None


class LegOut(BaseModel):
    id: str
    index: int
    product_id: str
    block_start: datetime
    price_fen_per_unit_hour: int
    count: int
    remaining: int
    filled: int
    min_fill: int
    state: str
    good_till: datetime
    hold_fen: int = Field(description="a bid: what its escrow hold reserves now")
    backing_devices: int = Field(description="an ask: the pool's devices it holds")


class OrderOut(BaseModel):
    id: str
    client_order_id: str
    tenant_id: str
    side: str
    accelerator_class: str
    location: str
    price_fen_per_unit_hour: int
    shape: ShapeOut
    min_fill: int
    all_or_none: bool
    good_till: datetime | None
    pool_id: str | None
    reservation_id: str | None = Field(default=None,
                                       description="a resale: the reservation it offers")
    state: str
    filled: int
    remaining: int
    created_at: datetime
    legs: list[LegOut]


class ProductOut(BaseModel):
    id: str
    accelerator_class: str
    location: str
    unit: str
    block_start: datetime
    block_end: datetime
    rule: str = Field(description="continuous or call_auction")
    last_price_fen_per_unit_hour: int | None
    next_uncross_at: datetime | None
    seq: int = Field(description="the book's last event")


class LevelOut(BaseModel):
    price_fen_per_unit_hour: int
    quantity: int
    orders: int


class IndicativeOut(BaseModel):
    price_fen_per_unit_hour: int
    volume: int
    buy_volume: int
    sell_volume: int
    imbalance: int = Field(description="buy_volume - sell_volume at that price")


class BookOut(BaseModel):
    product: ProductOut
    bids: list[LevelOut]
    asks: list[LevelOut]
    indicative: IndicativeOut | None = Field(
        description="what an uncross now would trade (published before it)")


class TradeOut(BaseModel):
    id: str
    product_id: str
    seq: int
    at: datetime
    accelerator_class: str
    location: str
    price_fen_per_unit_hour: int
    quantity: int
    aggressor: Literal["buy", "sell", "auction"]
    value_fen: int


class EventOut(BaseModel):
    seq: int
    at: datetime
    type: str
    lobster_type: int
    order_id: str
    size: int
    price: int
    direction: int
    contra_id: str


class BarOut(BaseModel):
    start: datetime
    end: datetime
    open: int
    high: int
    low: int
    close: int
    volume: int
    value_fen: int
    trades: int
    vwap_fen_per_unit_hour: str = Field(description="value / volume, 2 places, the index value")
    final: bool = Field(description="its period has ended")
    published: bool = Field(description="written to the index, never to change")


class SeriesOut(BaseModel):
    series: str
    period: str
    methodology: str
    bars: list[BarOut]


class ReservationOut(BaseModel):
    id: str
    product_id: str
    pool_id: str
    buyer_tenant_id: str
    seller_tenant_id: str
    accelerator_class: str
    starts_at: datetime
    ends_at: datetime
    quantity: int
    devices: int
    value_fen: int
    fee_fen: int
    paid_seller_fen: int
    paid_fee_fen: int
    refunded_fen: int
    in_escrow_fen: int
    resold: int = Field(description="units resold on the exchange: no longer the buyer's")
    devices_held: int = Field(description="devices the buyer still holds")
    state: str


class QuoteIn(Strict):
    accelerator_class: AcceleratorClass
    location: Location
    shape: ShapeIn
    deadline_s: float = Field(default=1.0, gt=0, le=MAX_DEADLINE_S)


class QuoteOut(BaseModel):
    pool_id: str
    provider_id: str
    price_fen_per_unit_hour: int
    value_fen: int


class SweepOut(BaseModel):
    products: int
    expired: int
    uncrossed: int
    trades: int
    settled: int
    bars_published: int


class MarketCheckOut(BaseModel):
    ok: bool
    members: int
    problems: list[str]
    ledger: LedgerCheckOut


class AnswerOut(BaseModel):
    """One order of a batch: its HTTP status as if placed alone, and the order or the error."""

    status: int
    order: OrderOut | None = None
    error: ProblemOut | None = None


class BatchOut(BaseModel):
    answers: list[AnswerOut]
