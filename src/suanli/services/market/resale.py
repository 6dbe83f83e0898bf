"""Resale (转售) of reserved time: a buyer offers the unused block of its reservation as a new
ask. The ask is backed by the reservation, not by the pool's free devices (those stay held
once, by the first seller's ask); a trade moves that many units (and their devices) of the
reservation to the new buyer, who pays the reseller through escrow as for any trade."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.errors import NotFound
from suanli.domain.market.orders import OrderRequest, Shape, Side
from suanli.domain.market.products import parse_product_id
from suanli.domain.market.settlement import FEE_BPS
from suanli.domain.tenants import Principal
from suanli.services.market import exchange


def resell(session: Session, principal: Principal, reservation_id: str, *,
           price_fen_per_unit_hour: int, count: int, client_order_id: str, now: datetime,
           min_fill: int = 0, all_or_none: bool = False, good_till_s: int | None = None,
           fee_bps: int = FEE_BPS) -> tuple[exchange.OrderView, bool]:
    """Offer `count` units of the caller's reservation at a limit price, as an ask on its
    block's book; idempotent by client order id like any order (exchange.place checks the
    reservation under its lock)."""
    found = repo.reservations(session, reservation_id=reservation_id, limit=1)
    if not found:
        raise NotFound(f"reservation {reservation_id} does not exist", field="reservation_id")
    reservation = found[0]
    key = parse_product_id(reservation.product_id)
    request = OrderRequest(Side.ASK, key.accelerator_class, key.location,
                           price_fen_per_unit_hour,
                           Shape(((key.block_start_s, key.block_end_s),), (count,)),
                           client_order_id, min_fill, all_or_none, good_till_s,
                           reservation.pool_id, reservation.id)
    return exchange.place(session, principal, request, now, fee_bps)
