"""Many orders in one unit of work (`POST /v1/market/orders:batch`): each order gets its own
answer or error, and the batch costs one transaction and one write of each kind - orders,
legs, events (the journal), trades, reservations, ledger transfers - instead of one of each
per order.

Every check that can refuse one order runs before anything is written, in the batch's order:
the request itself and its client order id; an ask's pool; then, under the locks (products,
then pools, in id order, as `exchange.place` takes them), an ask's free devices and a bid's
funds, each counting what the orders before it in the batch took. An order refused there is
left out and the others go on. Two things still fail the whole batch: the same client order
id placed concurrently by another request (retry the batch: the orders it placed come back as
they are), and a wallet that another command emptied between the funds check and the ledger's
own (the ledger refuses the hold: 402).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import market as repo
from suanli.domain.accounts import wallet_account_id
from suanli.domain.errors import Conflict, InsufficientFunds, SuanliError, ValidationFailed
from suanli.domain.market.book import BUY, SELL
from suanli.domain.market.orders import LegSpec, LegState, OrderRequest, OrderState, Side
from suanli.domain.market.products import block_label
from suanli.domain.market.records import LegRecord, OrderRecord
from suanli.domain.market.settlement import FEE_BPS
from suanli.domain.tenants import Principal
from suanli.services.market import backing
from suanli.services.market.exchange import OrderView, order_id_for, request_digest, view
from suanli.services.market.matching import Command, new_product

MAX_BATCH = 500  # orders in one batch


@dataclass(frozen=True)
class Answer:
    """One order's answer: the order (created, or found by its client order id) or an error."""

    order: OrderView | None = None
    created: bool = False
    error: SuanliError | None = None


@dataclass
class _Entry:
    index: int
    request: OrderRequest
    digest: str
    specs: list[LegSpec]
    pool: backing.BackingPool | None = None


def place_many(session: Session, principal: Principal,
               requests: Sequence[OrderRequest | SuanliError], now: datetime,
               fee_bps: int = FEE_BPS) -> list[Answer]:
    """Place the orders in turn; an item that is already an error (a body that did not
    parse) is answered with it. Returns one answer per item, in order."""
    if len(requests) > MAX_BATCH:
        raise ValidationFailed(f"at most {MAX_BATCH} orders in one batch", field="orders")
    answers: list[Answer | None] = [None] * len(requests)
    entries, repeats = _admit(session, principal, requests, now, answers)
    if entries:
        _place(session, principal, entries, now, fee_bps, answers)
    for index, first_index in repeats:  # the same order twice: answered as the first time
        first = answers[first_index]
        assert first is not None
        answers[index] = Answer(first.order, False, first.error)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def _place(session: Session, principal: Principal, entries: list[_Entry], now: datetime,
           fee_bps: int, answers: list[Answer | None]) -> None:
    command = Command(session, now, fee_bps)
    now_s = int(now.timestamp())
    command.lock((s.product.id for e in entries for s in e.specs),
                 opening={s.product.id: new_product(s.product, now_s)
                          for e in entries for s in e.specs})
    entries = _backed(session, entries, answers)
    entries = _funded(session, principal, entries, answers)
    orders = [OrderRecord(order_id_for(principal.tenant_id, e.request.client_order_id),
                          principal.tenant_id, e.request, e.digest, OrderState.OPEN, now_s)
              for e in entries]
    try:
        with session.begin_nested():
            repo.insert_orders(session, orders, now)
    except IntegrityError:
        raise Conflict("an order of this batch was placed at the same time by another "
                       "request; place the batch again", field="client_order_id") from None
    # load the books before this batch's legs exist
    command.load_books(s.product.id for e in entries for s in e.specs)
    legs = {order.id: _legs(order, entry) for order, entry in zip(orders, entries, strict=True)}
    repo.insert_legs(session, [leg for order_legs in legs.values() for leg in order_legs])
    for order in orders:
        command.complete_orders.add(order.id)
        _match(command, legs[order.id])
    command.finish()
    for order, entry in zip(orders, entries, strict=True):
        placed = replace(order, state=command.states[order.id])
        answers[entry.index] = Answer(OrderView(placed, [command.legs[leg.id]
                                                         for leg in legs[order.id]]), True)


def _admit(session: Session, principal: Principal,
           requests: Sequence[OrderRequest | SuanliError], now: datetime,
           answers: list[Answer | None]) -> tuple[list[_Entry], list[tuple[int, int]]]:
    """The checks that need no lock: the request, its client order id (one read for the
    batch), an ask's pool. Also returns (index, index of its first sending) for an order sent
    twice in the batch."""
    now_s = int(now.timestamp())
    client_ids = [r.client_order_id for r in requests if isinstance(r, OrderRequest)]
    existing = repo.orders_by_client_ids(session, principal.tenant_id, client_ids)
    first: dict[str, _Entry] = {}
    repeats: list[tuple[int, int]] = []
    pools: dict[tuple[str, str, str], backing.BackingPool | SuanliError] = {}
    entries = []
    for index, request in enumerate(requests):
        try:
            if isinstance(request, SuanliError):
                raise request
            if request.reservation_id is not None:
                raise ValidationFailed("resell through /v1/market/reservations/{id}/resell",
                                       field="reservation_id")
            digest = request_digest(request)
            found = existing.get(request.client_order_id)
            if found is not None:
                if found.request_sha256 != digest:
                    raise _clash()
                answers[index] = Answer(view(session, found.id), False)
                continue
            earlier = first.get(request.client_order_id)
            if earlier is not None:
                if earlier.digest != digest:
                    raise _clash()
                repeats.append((index, earlier.index))
                continue
            entry = _Entry(index, request, digest, request.legs(now_s))
            if request.side is Side.ASK:
                entry.pool = _pool(session, principal, request, pools)
            first[request.client_order_id] = entry
            entries.append(entry)
        except SuanliError as exc:
            answers[index] = Answer(error=exc)
    return entries, repeats


def _clash() -> Conflict:
    return Conflict("this client_order_id was used for a different order",
                    field="client_order_id")


def _pool(session: Session, principal: Principal, request: OrderRequest,
          pools: dict[tuple[str, str, str], backing.BackingPool | SuanliError]
          ) -> backing.BackingPool:
    assert request.pool_id is not None
    key = (request.pool_id, request.accelerator_class, request.location)
    if key not in pools:
        try:
            pools[key] = backing.pool_for_ask(session, principal, request.pool_id,
                                              request.accelerator_class, request.location)
        except SuanliError as exc:
            pools[key] = exc
    found = pools[key]
    if isinstance(found, SuanliError):
        raise found
    return found


def _backed(session: Session, entries: list[_Entry], answers: list[Answer | None]
            ) -> list[_Entry]:
    """Asks whose pool has the devices free, counting the asks before them in the batch."""
    asks = [e for e in entries if e.pool is not None]
    free: dict[str, dict[int, int]] = {}
    for pool_id in sorted({e.pool.id for e in asks if e.pool is not None}):
        pool = next(e.pool for e in asks if e.pool is not None and e.pool.id == pool_id)
        assert pool is not None
        backing.lock_pool(session, pool_id)
        free[pool_id] = backing.free_devices(
            session, pool, [s.product.block_start_s for e in asks if e.pool is not None
                            and e.pool.id == pool_id for s in e.specs])
    kept = []
    for entry in entries:
        if entry.pool is None:
            kept.append(entry)
            continue
        left = free[entry.pool.id]
        units = backing.rating(entry.pool, entry.request.accelerator_class)
        need = {s.product.block_start_s: backing.devices_for(s.count, units)
                for s in entry.specs}
        short = [start for start, devices in need.items() if devices > left[start]]
        if short:
            answers[entry.index] = Answer(error=Conflict(
                f"pool {entry.pool.id} has {left[short[0]]} devices free in block "
                f"{block_label(short[0])}; the ask needs {need[short[0]]}", field="counts"))
            continue
        for start, devices in need.items():
            left[start] -= devices
        kept.append(entry)
    return kept


def _funded(session: Session, principal: Principal, entries: list[_Entry],
            answers: list[Answer | None]) -> list[_Entry]:
    """Bids whose worst case the wallet covers, after the bids before them in the batch."""
    wallet = wallet_account_id(principal.tenant_id)
    if not any(e.request.side is Side.BID for e in entries):
        return entries
    account = ledger_store.get_accounts(session, [wallet]).get(wallet)
    available = account.available_fen if account is not None else 0
    kept = []
    for entry in entries:
        if entry.request.side is Side.BID:
            worst = sum(entry.request.price_fen_per_unit_hour * s.count for s in entry.specs)
            if worst > available:
                answers[entry.index] = Answer(error=InsufficientFunds(
                    f"the bid holds {worst} fen; wallet {wallet} has {available} available "
                    "after the bids before it in this batch", field="price_fen_per_unit_hour"))
                continue
            available -= worst
        kept.append(entry)
    return kept


def _legs(order: OrderRecord, entry: _Entry) -> list[LegRecord]:
    request = order.request
    units = (backing.rating(entry.pool, request.accelerator_class)
             if entry.pool is not None else None)
    return [LegRecord(
        f"{order.id}.{spec.index}", order.id, spec.index, spec.product.id, order.tenant_id,
        request.side, request.price_fen_per_unit_hour, spec.count, spec.count, 0,
        spec.min_fill, spec.good_till_s * 1000, None, LegState.OPEN, request.pool_id,
        spec.product.block_start_s,
        backing.devices_for(spec.count, units) if units is not None else 0, None, 0, 0)
        for spec in entry.specs]


def _match(command: Command, legs: list[LegRecord]) -> None:
    """What `exchange.place` does with a new order's legs: hold, then match, then rest."""
    for leg in legs:
        direction = BUY if leg.side is Side.BID else SELL
        command.set_leg(leg)
        if leg.side is Side.BID:
            leg = command.rehold(leg, leg.price_fen_per_unit_hour * leg.count)
        command.taker_starts(leg)
        book = command.book(leg.product_id)
        command.absorb(leg.product_id, book.submit(
            leg.id, direction, leg.price_fen_per_unit_hour, leg.count,
            command.at_ms(leg.product_id), owner=leg.tenant_id, min_fill=leg.min_fill,
            good_till_ms=leg.good_till_ms))
