"""Backing (交割保障): an ask offers only capacity its pool really has free for those hours.

Free devices of a pool in a block = its devices, less what asks already hold there (resting or
sold: an ask leg keeps its devices until it closes, then what it sold), less the devices of
active leases whose job's time limit reaches into the block. A pool that is not active sells
nothing.

A resale ask is backed by a reservation instead: the units its buyer bought and has not yet
offered again (the devices stay held once, by the first seller's ask).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.billing_records import PricedPool
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.market.products import QuantityUnit, unit_of, workload_of
from suanli.domain.market.records import Reservation, ReservationState
from suanli.domain.resources import PoolState
from suanli.domain.tenants import Principal, require_owner
from suanli.services.billing import tariffs
from suanli.services.registry import inventory as registry


class BackingPool(PricedPool, Protocol):
    """What backing reads of a pool (a registry pool, or a `MarketPool`)."""

    @property
    def state(self) -> str: ...
    @property
    def device_count(self) -> int: ...


def rating(pool: PricedPool, accelerator_class: str) -> Decimal:
    """Units one device of the pool delivers in an hour of this product: 1 for a device
    product, the pool's SCU rating in the product's workload class for an SCU product."""
    if unit_of(accelerator_class) is QuantityUnit.DEVICE:
        return Decimal(1)
    return tariffs.units_rating(pool, workload_of(accelerator_class))


def devices_for(quantity: int, units_per_device: Decimal) -> int:
    """Whole devices that deliver `quantity` units in an hour."""
    assert quantity >= 0 and units_per_device > 0
    return math.ceil(Decimal(quantity) / units_per_device)


def pool_for_ask(session: Session, principal: Principal, pool_id: str, accelerator_class: str,
                 location: str) -> BackingPool:
    """The pool an ask names, if the caller may sell from it and it serves the product."""
    pool = registry.get_pool(session, pool_id)
    try:
        require_owner(principal, pool.tenant_id, f"pool {pool.id}")
    except Forbidden as exc:
        raise Forbidden(exc.detail, field="pool_id") from None
    if pool.state != PoolState.ACTIVE.value:
        raise ValidationFailed(f"pool {pool.id} is {pool.state}, not active", field="pool_id")
    if unit_of(accelerator_class) is QuantityUnit.DEVICE:
        if pool.accelerator != accelerator_class:
            raise ValidationFailed(f"pool {pool.id} holds {pool.accelerator}, not "
                                   f"{accelerator_class}", field="accelerator_class")
    elif rating(pool, accelerator_class) <= 0:
        raise ValidationFailed(f"pool {pool.id} has no {accelerator_class} rating",
                               field="accelerator_class")
    if location not in (pool.hub, pool.province):
        raise ValidationFailed(f"pool {pool.id} is in {pool.province} (hub {pool.hub}), not "
                               f"{location}", field="location")
    return pool


def lock_pool(session: Session, pool_id: str) -> None:
    """Serialise asks on one pool (PostgreSQL; SQLite's one writer already does)."""
    repo.lock_pool(session, pool_id)


def free_devices(session: Session, pool: BackingPool, block_starts: Iterable[int]
                 ) -> dict[int, int]:
    """Devices of the pool no ask and no running job holds, per block start (epoch s)."""
    starts = sorted(set(block_starts))
    if pool.state != PoolState.ACTIVE.value:
        return dict.fromkeys(starts, 0)
    committed = repo.committed_devices(session, pool.id, starts)
    leases = repo.leased_devices(session, pool.id)
    return {start: max(0, pool.device_count - committed[start]
                       - sum(devices for devices, ends_s in leases if ends_s > start))
            for start in starts}


def reservation_for_resale(session: Session, principal: Principal, reservation_id: str
                           ) -> Reservation:
    """The caller's reservation, locked (after the products: docs/market.md), if it can still
    be resold: reserved, its block not begun (the product trades until then)."""
    found = repo.reservations(session, reservation_id=reservation_id, limit=1, for_update=True)
    if not found:
        raise NotFound(f"reservation {reservation_id} does not exist", field="reservation_id")
    reservation = found[0]
    if reservation.buyer_tenant_id != principal.tenant_id:
        raise Forbidden(f"reservation {reservation_id} is not yours", field="reservation_id")
    if reservation.state != ReservationState.RESERVED:
        raise Conflict(f"reservation {reservation_id} is {reservation.state}",
                       field="reservation_id")
    return reservation


def resale_room(session: Session, reservation: Reservation) -> int:
    """Units of the reservation no resale ask offers or sold yet: what a new one may offer."""
    room = reservation.quantity - repo.resale_offered(session, reservation.id)
    assert room >= 0, reservation.id
    return room
