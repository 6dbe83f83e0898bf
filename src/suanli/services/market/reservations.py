"""Reservations: what trades bought, for the buyer, the seller and the scheduler."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.errors import Forbidden, ValidationFailed
from suanli.domain.market.records import Reservation, ReservationState
from suanli.domain.tenants import Principal

MAX_RESERVED_POOLS = 100


def list_reservations(session: Session, principal: Principal, *, as_role: str,
                      active_at: datetime | None, limit: int,
                      tenant_id: str | None = None) -> list[Reservation]:
    """The caller's reservations as buyer or as seller (an operator: any tenant's)."""
    if as_role not in ("buyer", "seller"):
        raise ValidationFailed("buyer or seller", field="as")
    if tenant_id is not None and tenant_id != principal.tenant_id and not principal.is_operator:
        raise Forbidden("you may only see your own reservations", field="tenant_id")
    who = tenant_id or principal.tenant_id
    if as_role == "buyer":
        return repo.reservations(session, buyer_tenant_id=who, active_at=active_at,
                                 limit=limit)
    return repo.reservations(session, seller_tenant_id=who, active_at=active_at, limit=limit)


def reserved_pools(session: Session, tenant_id: str, now: datetime) -> dict[str, int]:
    """Pools where the tenant holds reserved devices right now, with how many: the scheduler
    runs the tenant's jobs there first."""
    held: dict[str, int] = {}
    for reservation in repo.reservations(session, buyer_tenant_id=tenant_id, active_at=now,
                                         state=ReservationState.RESERVED,
                                         limit=MAX_RESERVED_POOLS):
        if reservation.devices_held:
            held[reservation.pool_id] = (held.get(reservation.pool_id, 0)
                                         + reservation.devices_held)
    return held
