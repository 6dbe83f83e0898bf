"""What the exchange stores, as pure records: the repository reads and writes these, the
service reasons about them, the API shows them. Times are epoch seconds (s) or ms."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from suanli.domain.market.orders import LegState, OrderRequest, OrderState, Side
from suanli.domain.market.products import MatchingRule, ProductKey
from suanli.domain.market.settlement import Due


@dataclass(frozen=True, slots=True)
class ProductRecord:
    key: ProductKey
    rule: MatchingRule
    seq: int  # the book's last event
    last_at_ms: int
    last_price_fen: int | None
    next_uncross_s: int | None  # a call-auction product's next uncross

    @property
    def id(self) -> str:
        return self.key.id


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    tenant_id: str
    request: OrderRequest
    request_sha256: str
    state: OrderState
    created_s: int


@dataclass(frozen=True, slots=True)
class LegRecord:
    """One hour block of an order. A bid's open hold is `hold_transfer_id` for `hold_fen`;
    an ask holds `backing_devices` of `pool_id` in its block."""

    id: str
    order_id: str
    index: int
    product_id: str
    tenant_id: str
    side: Side
    price_fen_per_unit_hour: int
    count: int
    remaining: int
    filled: int
    min_fill: int
    good_till_ms: int
    priority: int | None
    state: LegState
    pool_id: str | None
    block_start_s: int
    backing_devices: int
    hold_transfer_id: str | None
    hold_fen: int
    hold_serial: int
    reservation_id: str | None = None  # a resale ask: backed by this reservation, not devices

    def __post_init__(self) -> None:
        assert 0 <= self.remaining and 0 <= self.filled
        assert self.remaining + self.filled <= self.count, self.id
        assert self.state is not LegState.OPEN or self.remaining > 0, self.id


@dataclass(frozen=True, slots=True)
class TradeRecord:
    id: str  # <product id>#<seq>
    product_id: str
    seq: int
    at_ms: int
    accelerator_class: str
    location: str
    price_fen_per_unit_hour: int
    quantity: int
    buy_leg_id: str
    sell_leg_id: str
    buyer_tenant_id: str
    seller_tenant_id: str
    pool_id: str
    aggressor: int
    value_fen: int
    fee_fen: int


class ReservationState:
    RESERVED = "reserved"  # the block has not ended; escrow pays out as it is delivered
    SETTLED = "settled"  # the block ended and escrow paid the seller and the fee in full
    REFUNDED = "refunded"  # the seller could not deliver; the undelivered rest went back


@dataclass(frozen=True, slots=True)
class Reservation:
    """A trade's capacity on the seller's pool for its block; the buyer's jobs run there first."""

    id: str
    trade_id: str
    product_id: str
    pool_id: str
    buyer_tenant_id: str
    seller_tenant_id: str
    accelerator_class: str
    starts_s: int
    ends_s: int
    quantity: int
    devices: int
    value_fen: int
    fee_fen: int
    paid: Due
    refunded_fen: int
    state: str
    resold: int = 0  # units a resale ask sold on: they belong to that trade's buyer now
    resold_devices: int = 0

    @property
    def in_escrow_fen(self) -> int:
        return self.value_fen - self.paid.total_fen - self.refunded_fen

    @property
    def devices_held(self) -> int:
        """Devices its buyer still holds: what it bought less what it resold."""
        return self.devices - self.resold_devices


@dataclass(frozen=True, slots=True)
class MarketPool:
    """A pool as the exchange reads it to quote and back asks."""

    id: str
    tenant_id: str
    provider_id: str
    accelerator: str
    state: str
    hub: str | None
    province: str
    device_count: int
    price_fen_per_device_hour: int
    units_per_device_hour: Decimal
