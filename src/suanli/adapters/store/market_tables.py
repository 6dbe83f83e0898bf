"""Tables of the exchange: products, orders and their legs, the event log, trades,
reservations and the published index bars. Money is BIGINT fen; times of the book are epoch
milliseconds (BIGINT) beside the timestamps a reader filters by."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from suanli.adapters.store.tables import Base

PRODUCT_ID = String(96)  # <class>:<location>:<YYYY-MM-DDTHHZ>
ORDER_ID = String(40)
LEG_ID = String(48)  # <order id>.<leg index>
TRADE_ID = String(120)  # <product id>#<seq>
LEDGER_ID = String(128)


class MarketProductRow(Base):
    """One product's book header: its rule and the state a rebuilt book continues from. Every
    command on the book first writes this row, which serialises the product's commands."""

    __tablename__ = "market_products"
    id: Mapped[str] = mapped_column(PRODUCT_ID, primary_key=True)
    accelerator_class: Mapped[str] = mapped_column(String(48))
    location: Mapped[str] = mapped_column(String(24))
    block_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rule: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger)  # the last event's sequence number
    last_at_ms: Mapped[int] = mapped_column(BigInteger)
    last_price_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    next_uncross_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_market_products_series", "accelerator_class", "location", "block_start"),
        Index("ix_market_products_uncross", "next_uncross_at"),
    )


class MarketOrderRow(Base):
    """An order as its member placed it; idempotent by (tenant, client order id)."""

    __tablename__ = "market_orders"
    id: Mapped[str] = mapped_column(ORDER_ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    client_order_id: Mapped[str] = mapped_column(String(64))
    request_sha256: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    accelerator_class: Mapped[str] = mapped_column(String(48))
    location: Mapped[str] = mapped_column(String(24))
    price_fen_per_unit_hour: Mapped[int] = mapped_column(BigInteger)
    shape: Mapped[dict] = mapped_column(JSON)  # {"intervals": [[start_s, end_s]], "counts": []}
    min_fill: Mapped[int] = mapped_column(Integer)
    all_or_none: Mapped[bool] = mapped_column(Boolean)
    good_till: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("pools.id"), nullable=True)
    # a resale: the reservation whose time the ask offers (docs/market.md)
    reservation_id: Mapped[str | None] = mapped_column(TRADE_ID, nullable=True)
    state: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("tenant_id", "client_order_id", name="uq_market_orders_client_id"),
        Index("ix_market_orders_tenant_created", "tenant_id", "created_at"),
    )


class MarketLegRow(Base):
    """One hour block of an order: what rests on that block's book, and its money or capacity."""

    __tablename__ = "market_legs"
    id: Mapped[str] = mapped_column(LEG_ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("market_orders.id"), index=True)
    leg_index: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str] = mapped_column(ForeignKey("market_products.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    side: Mapped[str] = mapped_column(String(4))
    price_fen_per_unit_hour: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    filled: Mapped[int] = mapped_column(Integer)
    min_fill: Mapped[int] = mapped_column(Integer)
    good_till_ms: Mapped[int] = mapped_column(BigInteger)
    priority: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # seq when resting
    state: Mapped[str] = mapped_column(String(12))
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("pools.id"), nullable=True)
    block_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    backing_devices: Mapped[int] = mapped_column(Integer)  # an ask's devices on its pool
    hold_transfer_id: Mapped[str | None] = mapped_column(LEDGER_ID, nullable=True)
    hold_fen: Mapped[int] = mapped_column(BigInteger)  # a bid's open hold
    hold_serial: Mapped[int] = mapped_column(Integer)
    reservation_id: Mapped[str | None] = mapped_column(TRADE_ID, nullable=True)  # a resale

    __table_args__ = (
        CheckConstraint("remaining >= 0 AND filled >= 0 AND remaining + filled <= count",
                        name="quantities"),
        CheckConstraint("hold_fen >= 0 AND backing_devices >= 0", name="backing"),
        Index("ix_market_legs_book", "product_id", "state", "priority"),
        Index("ix_market_legs_pool_block", "pool_id", "block_start"),
        Index("ix_market_legs_reservation", "reservation_id"),
        # The sweep's question, "which open legs are due", reads only open legs.
        Index("ix_market_legs_open_till", "good_till_ms",
              postgresql_where=text("state = 'open'"), sqlite_where=text("state = 'open'")),
    )


class MarketEventRow(Base):
    """The event log of each book (LOBSTER-like); the book replays from it exactly."""

    __tablename__ = "market_events"
    product_id: Mapped[str] = mapped_column(ForeignKey("market_products.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    order_id: Mapped[str] = mapped_column(LEG_ID)
    size: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(BigInteger)
    direction: Mapped[int] = mapped_column(SmallInteger)
    contra_id: Mapped[str] = mapped_column(LEG_ID)
    owner: Mapped[str] = mapped_column(String(72))
    min_fill: Mapped[int] = mapped_column(Integer)
    good_till_ms: Mapped[int] = mapped_column(BigInteger)


class MarketTradeRow(Base):
    """A trade printed on the tape; immutable."""

    __tablename__ = "market_trades"
    id: Mapped[str] = mapped_column(TRADE_ID, primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("market_products.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    accelerator_class: Mapped[str] = mapped_column(String(48))
    location: Mapped[str] = mapped_column(String(24))
    price_fen_per_unit_hour: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    buy_leg_id: Mapped[str] = mapped_column(ForeignKey("market_legs.id"))
    sell_leg_id: Mapped[str] = mapped_column(ForeignKey("market_legs.id"))
    buyer_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    seller_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"))
    aggressor: Mapped[int] = mapped_column(SmallInteger)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("quantity > 0 AND value_fen > 0 AND fee_fen >= 0 AND "
                        "fee_fen <= value_fen", name="amounts"),
        Index("ix_market_trades_series_time", "accelerator_class", "location", "at_ms"),
        Index("ix_market_trades_product_seq", "product_id", "seq"),
        Index("ix_market_trades_time", "at_ms"),
    )


class MarketReservationRow(Base):
    """Capacity a trade reserved on the seller's pool for its block, and how it was paid."""

    __tablename__ = "market_reservations"
    id: Mapped[str] = mapped_column(TRADE_ID, primary_key=True)  # the trade's id
    trade_id: Mapped[str] = mapped_column(ForeignKey("market_trades.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("market_products.id"))
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"))
    buyer_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    seller_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    accelerator_class: Mapped[str] = mapped_column(String(48))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    quantity: Mapped[int] = mapped_column(Integer)
    devices: Mapped[int] = mapped_column(Integer)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    paid_seller_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fee_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger)
    resold: Mapped[int] = mapped_column(Integer, server_default="0")  # units sold on again
    resold_devices: Mapped[int] = mapped_column(Integer, server_default="0")
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("paid_seller_fen + paid_fee_fen + refunded_fen <= value_fen AND "
                        "paid_fee_fen <= fee_fen", name="paid_within_value"),
        CheckConstraint("resold >= 0 AND resold <= quantity AND resold_devices >= 0 "
                        "AND resold_devices <= devices", name="resold_within_quantity"),
        Index("ix_market_reservations_buyer_time", "buyer_tenant_id", "starts_at"),
        Index("ix_market_reservations_pool_time", "pool_id", "starts_at"),
        Index("ix_market_reservations_state", "state"),
    )


class MarketIndexBarRow(Base):
    """A published bar of the price index: written once its period has ended, never changed."""

    __tablename__ = "market_index_bars"
    accelerator_class: Mapped[str] = mapped_column(String(48), primary_key=True)
    location: Mapped[str] = mapped_column(String(24), primary_key=True)
    period: Mapped[str] = mapped_column(String(4), primary_key=True)
    start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    open_fen: Mapped[int] = mapped_column(BigInteger)
    high_fen: Mapped[int] = mapped_column(BigInteger)
    low_fen: Mapped[int] = mapped_column(BigInteger)
    close_fen: Mapped[int] = mapped_column(BigInteger)
    volume: Mapped[int] = mapped_column(BigInteger)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    trades: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MarketIndexMarkRow(Base):
    """How far each period's index has been published (every bar before `through_s` is final
    and written); the publisher resumes from here."""

    __tablename__ = "market_index_marks"
    period: Mapped[str] = mapped_column(String(4), primary_key=True)
    through_s: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
