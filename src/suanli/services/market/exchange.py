"""Orders (委托): place, cancel, replace, idempotent by client order id; and the commands the
sweep runs on the books (expiry, due call auctions) and an operator may run (an uncross now).

Lock order: the order's products (in id order), then an ask's pool, then the ledger accounts
(matching.Command.finish). See docs/market.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.market.book import BUY, SELL
from suanli.domain.market.events import EventKind
from suanli.domain.market.orders import (
    LegSpec,
    LegState,
    OrderRequest,
    OrderState,
    Shape,
    Side,
)
from suanli.domain.market.products import MatchingRule, block_label
from suanli.domain.market.records import LegRecord, OrderRecord
from suanli.domain.market.settlement import FEE_BPS
from suanli.domain.tenants import Principal, require_owner
from suanli.services.market import backing
from suanli.services.market.matching import Command, epoch_ms, new_product

MAX_DUE_PRODUCTS = 200  # books one sweep expires or uncrosses


@dataclass(frozen=True)
class OrderView:
    order: OrderRecord
    legs: list[LegRecord]

    @property
    def filled(self) -> int:
        return sum(leg.filled for leg in self.legs)

    @property
    def remaining(self) -> int:
        return sum(leg.remaining for leg in self.legs)


def request_digest(request: OrderRequest) -> str:
    """What makes two placements with one client order id the same order."""
    document = {"side": request.side.value, "class": request.accelerator_class,
                "location": request.location, "price": request.price_fen_per_unit_hour,
                "intervals": [list(i) for i in request.shape.intervals],
                "counts": list(request.shape.counts), "min_fill": request.min_fill,
                "aon": request.all_or_none, "good_till": request.good_till_s,
                "pool": request.pool_id}
    if request.reservation_id is not None:  # absent before resale: old digests still match
        document["reservation"] = request.reservation_id
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def order_id_for(tenant_id: str, client_order_id: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}\n{client_order_id}".encode()).hexdigest()
    return f"mo-{digest[:24]}"


def view(session: Session, order_id: str) -> OrderView:
    order = repo.get_order(session, order_id)
    if order is None:
        raise NotFound(f"order {order_id} does not exist", field="order_id")
    return OrderView(order, repo.legs_of_orders(session, [order_id]))


def get(session: Session, principal: Principal, order_id: str) -> OrderView:
    found = view(session, order_id)
    require_owner(principal, found.order.tenant_id, f"order {order_id}")
    return found


def list_orders(session: Session, principal: Principal, *, state: OrderState | None,
                limit: int, tenant_id: str | None = None) -> list[OrderView]:
    """The caller's orders, newest first (an operator: any tenant's, or all)."""
    if tenant_id is not None and tenant_id != principal.tenant_id and not principal.is_operator:
        raise Forbidden("you may only list your own orders", field="tenant_id")
    scope = tenant_id if principal.is_operator else principal.tenant_id
    orders = repo.list_orders(session, tenant_id=scope, state=state, limit=limit)
    legs = repo.legs_of_orders(session, [o.id for o in orders])
    return [OrderView(o, [leg for leg in legs if leg.order_id == o.id]) for o in orders]


# -- placing ---------------------------------------------------------------------------------

def place(session: Session, principal: Principal, request: OrderRequest, now: datetime,
          fee_bps: int = FEE_BPS) -> tuple[OrderView, bool]:
    """Place an order; the same client order id again returns the first (created=False), a
    different order under it is a 409. Nothing is stored if any check fails."""
    digest = request_digest(request)
    existing = repo.order_by_client_id(session, principal.tenant_id, request.client_order_id)
    if existing is not None:
        return _same(session, existing, digest), False
    now_s = int(now.timestamp())
    specs = request.legs(now_s)
    pool = None
    if request.side is Side.ASK and request.reservation_id is None:
        assert request.pool_id is not None
        pool = backing.pool_for_ask(session, principal, request.pool_id,
                                    request.accelerator_class, request.location)
    command = Command(session, now, fee_bps)
    command.lock((spec.product.id for spec in specs),
                 opening={spec.product.id: new_product(spec.product, now_s) for spec in specs})
    if request.reservation_id is not None:
        _back_resale(session, principal, request, specs)
    units = backing.rating(pool, request.accelerator_class) if pool is not None else None
    if pool is not None and units is not None:
        backing.lock_pool(session, pool.id)
        free = backing.free_devices(session, pool, [s.product.block_start_s for s in specs])
        for spec in specs:
            need = backing.devices_for(spec.count, units)
            if need > free[spec.product.block_start_s]:
                raise Conflict(
                    f"pool {pool.id} has {free[spec.product.block_start_s]} devices free in "
                    f"block {block_label(spec.product.block_start_s)}; the ask needs {need}",
                    field="counts")
    order_id = order_id_for(principal.tenant_id, request.client_order_id)
    order = OrderRecord(order_id, principal.tenant_id, request, digest, OrderState.OPEN, now_s)
    try:
        with session.begin_nested():
            repo.insert_order(session, order, now)
    except IntegrityError:  # the same client order id, placed concurrently, won
        raced = repo.order_by_client_id(session, principal.tenant_id, request.client_order_id)
        if raced is None:
            raise
        return _same(session, raced, digest), False
    # load the books before this order's legs exist
    command.load_books(spec.product.id for spec in specs)
    legs = [LegRecord(
        f"{order_id}.{spec.index}", order_id, spec.index, spec.product.id, principal.tenant_id,
        request.side, request.price_fen_per_unit_hour, spec.count, spec.count, 0,
        spec.min_fill, spec.good_till_s * 1000, None, LegState.OPEN, request.pool_id,
        spec.product.block_start_s,
        backing.devices_for(spec.count, units) if units is not None else 0, None, 0, 0,
        request.reservation_id)
        for spec in specs]
    repo.insert_legs(session, legs)
    command.complete_orders.add(order_id)
    direction = BUY if request.side is Side.BID else SELL
    for leg in legs:
        command.set_leg(leg)
        if leg.side is Side.BID:
            leg = command.rehold(leg, leg.price_fen_per_unit_hour * leg.count)
        command.taker_starts(leg)
        book = command.book(leg.product_id)
        events = book.submit(leg.id, direction, leg.price_fen_per_unit_hour, leg.count,
                             command.at_ms(leg.product_id), owner=leg.tenant_id,
                             min_fill=leg.min_fill, good_till_ms=leg.good_till_ms)
        command.absorb(leg.product_id, events)
    command.finish()
    placed = replace(order, state=command.states[order_id])
    return OrderView(placed, [command.legs[leg.id] for leg in legs]), True


def _back_resale(session: Session, principal: Principal, request: OrderRequest,
                 specs: list[LegSpec]) -> None:
    """A resale ask offers its reservation's own block, on its pool, at most what no other
    resale ask of the reservation offers or sold (the reservation row is locked)."""
    assert request.reservation_id is not None
    reservation = backing.reservation_for_resale(session, principal, request.reservation_id)
    if [spec.product.id for spec in specs] != [reservation.product_id]:
        raise ValidationFailed(f"a resale offers the reserved block {reservation.product_id} "
                               "and nothing else", field="intervals")
    if request.pool_id != reservation.pool_id:
        raise ValidationFailed(f"reservation {reservation.id} is on pool "
                               f"{reservation.pool_id}", field="pool_id")
    room = backing.resale_room(session, reservation)
    if specs[0].count > room:
        raise Conflict(f"reservation {reservation.id} has {room} units left to resell; the "
                       f"ask offers {specs[0].count}", field="counts")


def _same(session: Session, existing: OrderRecord, digest: str) -> OrderView:
    if existing.request_sha256 != digest:
        raise Conflict("this client_order_id was used for a different order",
                       field="client_order_id")
    return view(session, existing.id)


# -- cancelling and replacing ----------------------------------------------------------------

def cancel(session: Session, principal: Principal, order_id: str, now: datetime,
           fee_bps: int = FEE_BPS) -> OrderView:
    """Take every open leg off its book and release what it held; a done order is returned
    as it is (cancelling twice is no error)."""
    found = get(session, principal, order_id)
    open_legs = [leg for leg in found.legs if leg.state is LegState.OPEN]
    if not open_legs:
        return found
    command = Command(session, now, fee_bps)
    command.lock(leg.product_id for leg in open_legs)
    for leg in open_legs:
        book = command.book_swept(leg.product_id)
        if leg.id in book.orders:  # it may have filled or expired since it was read
            command.absorb(leg.product_id, book.cancel(leg.id, command.at_ms(leg.product_id)))
    command.finish()
    return view(session, order_id)


def replace_order(session: Session, principal: Principal, order_id: str, now: datetime, *,
                  price_fen_per_unit_hour: int | None = None,
                  counts: tuple[int, ...] | None = None, good_till_s: int | None = None,
                  fee_bps: int = FEE_BPS) -> OrderView:
    """Cancel/replace the open legs: a new limit price, new counts per interval (what each
    block should total, fills included), a new good-till time. A leg keeps its time priority
    only when its size goes down and nothing else changes; a leg whose new count its fills
    already reach is cancelled. Closed legs stay closed."""
    found = get(session, principal, order_id)
    old = found.order.request
    if good_till_s is not None and good_till_s <= int(now.timestamp()):
        raise ValidationFailed("must be in the future", field="good_till")
    request = replace(
        old,
        price_fen_per_unit_hour=old.price_fen_per_unit_hour if price_fen_per_unit_hour is None
        else price_fen_per_unit_hour,
        shape=old.shape if counts is None else Shape(old.shape.intervals, tuple(counts)),
        good_till_s=old.good_till_s if good_till_s is None else good_till_s)
    new_counts = [count for _, count in request.shape.blocks()]
    open_legs = [leg for leg in found.legs if leg.state is LegState.OPEN]
    command = Command(session, now, fee_bps)
    command.lock(leg.product_id for leg in open_legs)
    free = _free_for(session, principal, command, request, open_legs)
    for leg in open_legs:
        book = command.book_swept(leg.product_id)
        if leg.id not in book.orders:
            continue
        leg = command.legs[leg.id]
        at_ms = command.at_ms(leg.product_id)
        left = new_counts[leg.index] - leg.filled
        if left <= 0:
            command.absorb(leg.product_id, book.cancel(leg.id, at_ms))
            continue
        leg = _resize(command, leg, request, left, free)
        till_s = leg.block_start_s if request.good_till_s is None else min(
            leg.block_start_s, request.good_till_s)
        min_fill = left if request.all_or_none else min(request.min_fill, left)
        # A replace that loses priority logs CANCEL, then the leg matches as an incoming
        # order (its remaining is 0 after the CANCEL) and a SUBMIT rests what is left.
        command.absorb(leg.product_id, book.replace(
            leg.id, at_ms, price=request.price_fen_per_unit_hour, size=left, min_fill=min_fill,
            good_till_ms=till_s * 1000))
    repo.update_order(session, replace(found.order, request=request), now)
    command.finish()
    return view(session, order_id)


def _free_for(session: Session, principal: Principal, command: Command,
              request: OrderRequest, legs: list[LegRecord]) -> dict[int, int]:
    if request.side is not Side.ASK or not legs:
        return {}
    if request.reservation_id is not None:  # a resale: room left on the reservation
        reservation = backing.reservation_for_resale(session, principal,
                                                     request.reservation_id)
        return {leg.block_start_s: backing.resale_room(session, reservation) for leg in legs}
    assert request.pool_id is not None
    pool = command.pool(request.pool_id)
    backing.lock_pool(session, pool.id)
    return backing.free_devices(session, pool, [leg.block_start_s for leg in legs])


def _resize(command: Command, leg: LegRecord, request: OrderRequest, left: int,
            free: dict[int, int]) -> LegRecord:
    """Back the leg's new size before the book sees it: devices for an ask, money for a bid."""
    if leg.side is Side.ASK and leg.reservation_id is not None:
        extra = left - leg.remaining  # what the resale offers beyond what it offered
        if extra > free[leg.block_start_s]:
            raise Conflict(f"reservation {leg.reservation_id} has {free[leg.block_start_s]} "
                           f"units left to resell; the new size needs {extra} more",
                           field="counts")
        command.set_leg(leg)
        return leg
    if leg.side is Side.ASK:
        assert leg.pool_id is not None
        units = backing.rating(command.pool(leg.pool_id), request.accelerator_class)
        devices = backing.devices_for(leg.filled + left, units)
        extra = devices - leg.backing_devices
        if extra > free[leg.block_start_s]:
            raise Conflict(f"pool {leg.pool_id} has {free[leg.block_start_s]} devices free in "
                           f"block {block_label(leg.block_start_s)}; the new size needs "
                           f"{extra} more", field="counts")
        command.set_leg(replace(leg, backing_devices=devices))
        return command.legs[leg.id]
    command.set_leg(leg)
    return command.rehold(leg, request.price_fen_per_unit_hour * left)


# -- commands on whole books -----------------------------------------------------------------

@dataclass(frozen=True)
class DueReport:
    products: int
    expired: int
    uncrossed: int
    trades: int


def run_due(session: Session, now: datetime, fee_bps: int = FEE_BPS,
            limit: int = MAX_DUE_PRODUCTS) -> DueReport:
    """The sweep's book step: expire legs whose good-till time has come, and uncross the call
    auctions that are due (on the hour)."""
    due = set(repo.due_product_ids(session, epoch_ms(now), limit))
    due |= set(repo.products_to_uncross(session, now, limit))
    if not due:
        return DueReport(0, 0, 0, 0)
    command = Command(session, now, fee_bps)
    command.lock(sorted(due)[:limit])
    uncrossed = expired = 0
    now_s = int(now.timestamp())
    for product_id, product in sorted(command.products.items()):
        book = command.book(product_id)
        at_ms = command.at_ms(product_id)
        if product.rule is MatchingRule.CALL_AUCTION and product.next_uncross_s is not None \
                and product.next_uncross_s <= now_s:
            events = book.uncross(at_ms)
            command.after_uncross(product_id)
            uncrossed += 1
        else:
            events = book.expire(at_ms)
        expired += sum(1 for e in events if e.kind is EventKind.EXPIRE)
        command.absorb(product_id, events)
    command.finish()
    return DueReport(len(command.products), expired, uncrossed, len(command.trades))


def uncross_now(session: Session, principal: Principal, product_id: str, now: datetime,
                fee_bps: int = FEE_BPS) -> int:
    """An operator uncrosses a call-auction product now; returns the trades it printed."""
    if not principal.is_operator:
        raise Forbidden("only an operator uncrosses a book out of schedule")
    command = Command(session, now, fee_bps)
    command.lock([product_id])
    product = command.products.get(product_id)
    if product is None:
        raise NotFound(f"product {product_id} has no book", field="product_id")
    if product.rule is not MatchingRule.CALL_AUCTION:
        raise Conflict(f"product {product_id} trades continuously", field="product_id")
    book = command.book(product_id)
    command.absorb(product_id, book.uncross(command.at_ms(product_id)))
    command.after_uncross(product_id)
    command.finish()
    return len(command.trades)
