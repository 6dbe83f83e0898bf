"""The exchange in the database: pure market records in, pure records out.

Lock order (docs/market.md): the product rows a command touches, in id order
(`lock_products`), then the ledger accounts (the ledger store locks those, in id order, in
one statement per batch). No market command locks a product after an account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Table, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from suanli.adapters.store.job_tables import JobRow, LeaseRow
from suanli.adapters.store.ledger import insert_if_absent
from suanli.adapters.store.market_tables import (
    MarketEventRow,
    MarketIndexBarRow,
    MarketIndexMarkRow,
    MarketLegRow,
    MarketOrderRow,
    MarketProductRow,
    MarketReservationRow,
    MarketTradeRow,
)
from suanli.adapters.store.tables import PoolRow
from suanli.domain.market.events import Event, EventKind
from suanli.domain.market.index import Bar, Period
from suanli.domain.market.orders import LegState, OrderRequest, OrderState, Shape, Side
from suanli.domain.market.products import MatchingRule, parse_product_id
from suanli.domain.market.records import (
    LegRecord,
    MarketPool,
    OrderRecord,
    ProductRecord,
    Reservation,
    ReservationState,
    TradeRecord,
)
from suanli.domain.market.netting import MAX_SPANS, Span, epoch_us
from suanli.domain.market.settlement import Due

PRODUCTS: Table = MarketProductRow.__table__  # type: ignore[assignment]
ORDERS: Table = MarketOrderRow.__table__  # type: ignore[assignment]
LEGS: Table = MarketLegRow.__table__  # type: ignore[assignment]
EVENTS: Table = MarketEventRow.__table__  # type: ignore[assignment]
TRADES: Table = MarketTradeRow.__table__  # type: ignore[assignment]
RESERVATIONS: Table = MarketReservationRow.__table__  # type: ignore[assignment]
BARS: Table = MarketIndexBarRow.__table__  # type: ignore[assignment]
MARKS: Table = MarketIndexMarkRow.__table__  # type: ignore[assignment]
MAX_IN_LIST = 500  # ids in one IN (...)
MAX_ROWS = 10_000  # rows one read returns


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _s(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), MAX_IN_LIST):
        yield ids[start:start + MAX_IN_LIST]


# -- products --------------------------------------------------------------------------------

def _product(row: Mapping) -> ProductRecord:
    uncross = row["next_uncross_at"]
    return ProductRecord(parse_product_id(row["id"]), MatchingRule(row["rule"]), row["seq"],
                         row["last_at_ms"], row["last_price_fen"],
                         None if uncross is None else _s(uncross))


def ensure_product(session: Session, product: ProductRecord, now: datetime) -> None:
    """Open a product if it is not open yet (a concurrent open of the same id is no error)."""
    key = product.key
    insert_if_absent(session, PRODUCTS, {
        "id": key.id, "accelerator_class": key.accelerator_class, "location": key.location,
        "block_start": _at(key.block_start_s), "rule": product.rule.value, "seq": product.seq,
        "last_at_ms": product.last_at_ms, "last_price_fen": product.last_price_fen,
        "next_uncross_at": None if product.next_uncross_s is None
        else _at(product.next_uncross_s), "created_at": now, "updated_at": now})


def get_products(session: Session, product_ids: Iterable[str]) -> dict[str, ProductRecord]:
    found = {}
    for chunk in _chunks(sorted(set(product_ids))):
        for row in session.execute(select(PRODUCTS).where(PRODUCTS.c.id.in_(chunk))).mappings():
            found[row["id"]] = _product(row)
    return found


def lock_products(session: Session, product_ids: Iterable[str], now: datetime
                  ) -> dict[str, ProductRecord]:
    """Lock products for a command, in id order. On SQLite a write takes the database's one
    write lock before anything is read, so no reader can be overtaken mid-command."""
    ids = sorted(set(product_ids))
    locked = {}
    for chunk in _chunks(ids):
        if session.get_bind().dialect.name == "sqlite":
            session.execute(update(PRODUCTS).where(PRODUCTS.c.id.in_(chunk))
                            .values(updated_at=now))
            statement = select(PRODUCTS).where(PRODUCTS.c.id.in_(chunk))
        else:
            statement = (select(PRODUCTS).where(PRODUCTS.c.id.in_(chunk))
                         .order_by(PRODUCTS.c.id).with_for_update())
        for row in session.execute(statement).mappings():
            locked[row["id"]] = _product(row)
    return locked


def save_products(session: Session, products: Iterable[ProductRecord], now: datetime) -> None:
    rows = [{"b_id": p.id, "b_seq": p.seq, "b_at": p.last_at_ms, "b_price": p.last_price_fen,
             "b_uncross": None if p.next_uncross_s is None else _at(p.next_uncross_s),
             "b_rule": p.rule.value} for p in products]
    if rows:
        session.execute(update(PRODUCTS).where(PRODUCTS.c.id == bindparam("b_id")).values(
            seq=bindparam("b_seq"), last_at_ms=bindparam("b_at"),
            last_price_fen=bindparam("b_price"), next_uncross_at=bindparam("b_uncross"),
            rule=bindparam("b_rule"), updated_at=now), rows)


def products_to_uncross(session: Session, now: datetime, limit: int) -> list[str]:
    assert 1 <= limit <= MAX_ROWS
    return list(session.execute(
        select(PRODUCTS.c.id).where(PRODUCTS.c.next_uncross_at.is_not(None),
                                    PRODUCTS.c.next_uncross_at <= now)
        .order_by(PRODUCTS.c.next_uncross_at, PRODUCTS.c.id).limit(limit)).scalars())


def list_products(session: Session, *, accelerator_class: str | None, location: str | None,
                  since: datetime, limit: int) -> list[ProductRecord]:
    assert 1 <= limit <= MAX_ROWS
    statement = select(PRODUCTS).where(PRODUCTS.c.block_start >= since)
    if accelerator_class:
        statement = statement.where(PRODUCTS.c.accelerator_class == accelerator_class)
    if location:
        statement = statement.where(PRODUCTS.c.location == location)
    statement = statement.order_by(PRODUCTS.c.block_start, PRODUCTS.c.id).limit(limit)
    return [_product(row) for row in session.execute(statement).mappings()]


# -- orders and legs -------------------------------------------------------------------------

def _order(row: Mapping) -> OrderRecord:
    shape = Shape(tuple((int(a), int(b)) for a, b in row["shape"]["intervals"]),
                  tuple(int(c) for c in row["shape"]["counts"]))
    request = OrderRequest(
        Side(row["side"]), row["accelerator_class"], row["location"],
        row["price_fen_per_unit_hour"], shape, row["client_order_id"], row["min_fill"],
        bool(row["all_or_none"]), None if row["good_till"] is None else _s(row["good_till"]),
        row["pool_id"], row["reservation_id"])
    return OrderRecord(row["id"], row["tenant_id"], request, row["request_sha256"],
                       OrderState(row["state"]), _s(row["created_at"]))


def insert_order(session: Session, order: OrderRecord, now: datetime) -> None:
    r = order.request
    session.execute(insert(ORDERS).values(
        id=order.id, tenant_id=order.tenant_id, client_order_id=r.client_order_id,
        request_sha256=order.request_sha256, side=r.side.value,
        accelerator_class=r.accelerator_class, location=r.location,
        price_fen_per_unit_hour=r.price_fen_per_unit_hour,
        shape={"intervals": [list(i) for i in r.shape.intervals],
               "counts": list(r.shape.counts)},
        min_fill=r.min_fill, all_or_none=r.all_or_none,
        good_till=None if r.good_till_s is None else _at(r.good_till_s), pool_id=r.pool_id,
        reservation_id=r.reservation_id, state=order.state.value, created_at=now,
        updated_at=now))


def insert_orders(session: Session, orders: Sequence[OrderRecord], now: datetime) -> None:
    """Many new orders in one statement (a batch)."""
    if orders:
        session.execute(insert(ORDERS), [{
            "id": o.id, "tenant_id": o.tenant_id, "client_order_id": r.client_order_id,
            "request_sha256": o.request_sha256, "side": r.side.value,
            "accelerator_class": r.accelerator_class, "location": r.location,
            "price_fen_per_unit_hour": r.price_fen_per_unit_hour,
            "shape": {"intervals": [list(i) for i in r.shape.intervals],
                      "counts": list(r.shape.counts)},
            "min_fill": r.min_fill, "all_or_none": r.all_or_none,
            "good_till": None if r.good_till_s is None else _at(r.good_till_s),
            "pool_id": r.pool_id, "reservation_id": r.reservation_id,
            "state": o.state.value, "created_at": now, "updated_at": now}
            for o, r in ((o, o.request) for o in orders)])


def orders_by_client_ids(session: Session, tenant_id: str, client_order_ids: Iterable[str]
                         ) -> dict[str, OrderRecord]:
    """The tenant's orders under these client order ids, by client order id."""
    found = {}
    for chunk in _chunks(sorted(set(client_order_ids))):
        for row in session.execute(select(ORDERS).where(
                ORDERS.c.tenant_id == tenant_id,
                ORDERS.c.client_order_id.in_(chunk))).mappings():
            found[row["client_order_id"]] = _order(row)
    return found


def update_order(session: Session, order: OrderRecord, now: datetime) -> None:
    """Write what a replace or a fill may change: price, shape, good-till, state."""
    r = order.request
    session.execute(update(ORDERS).where(ORDERS.c.id == order.id).values(
        price_fen_per_unit_hour=r.price_fen_per_unit_hour,
        shape={"intervals": [list(i) for i in r.shape.intervals],
               "counts": list(r.shape.counts)},
        good_till=None if r.good_till_s is None else _at(r.good_till_s),
        state=order.state.value, updated_at=now))


def set_order_states(session: Session, states: Mapping[str, OrderState], now: datetime) -> None:
    if states:
        session.execute(update(ORDERS).where(ORDERS.c.id == bindparam("b_id"))
                        .values(state=bindparam("b_state"), updated_at=now),
                        [{"b_id": i, "b_state": s.value} for i, s in states.items()])


def get_order(session: Session, order_id: str) -> OrderRecord | None:
    row = session.execute(select(ORDERS).where(ORDERS.c.id == order_id)).mappings().first()
    return None if row is None else _order(row)


def order_by_client_id(session: Session, tenant_id: str, client_order_id: str
                       ) -> OrderRecord | None:
    row = session.execute(select(ORDERS).where(
        ORDERS.c.tenant_id == tenant_id, ORDERS.c.client_order_id == client_order_id)
    ).mappings().first()
    return None if row is None else _order(row)


def list_orders(session: Session, *, tenant_id: str | None, state: OrderState | None,
                limit: int) -> list[OrderRecord]:
    """Newest first."""
    assert 1 <= limit <= MAX_ROWS
    statement = select(ORDERS)
    if tenant_id is not None:
        statement = statement.where(ORDERS.c.tenant_id == tenant_id)
    if state is not None:
        statement = statement.where(ORDERS.c.state == state.value)
    statement = statement.order_by(ORDERS.c.created_at.desc(), ORDERS.c.id.desc()).limit(limit)
    return [_order(row) for row in session.execute(statement).mappings()]


def _leg(row: Mapping) -> LegRecord:
    return LegRecord(row["id"], row["order_id"], row["leg_index"], row["product_id"],
                     row["tenant_id"], Side(row["side"]), row["price_fen_per_unit_hour"],
                     row["count"], row["remaining"], row["filled"], row["min_fill"],
                     row["good_till_ms"], row["priority"], LegState(row["state"]),
                     row["pool_id"], _s(row["block_start"]), row["backing_devices"],
                     row["hold_transfer_id"], row["hold_fen"], row["hold_serial"],
                     row["reservation_id"])


def _leg_values(leg: LegRecord) -> dict:
    return {"id": leg.id, "order_id": leg.order_id, "leg_index": leg.index,
            "product_id": leg.product_id, "tenant_id": leg.tenant_id, "side": leg.side.value,
            "price_fen_per_unit_hour": leg.price_fen_per_unit_hour, "count": leg.count,
            "remaining": leg.remaining, "filled": leg.filled, "min_fill": leg.min_fill,
            "good_till_ms": leg.good_till_ms, "priority": leg.priority,
            "state": leg.state.value, "pool_id": leg.pool_id,
            "block_start": _at(leg.block_start_s), "backing_devices": leg.backing_devices,
            "hold_transfer_id": leg.hold_transfer_id, "hold_fen": leg.hold_fen,
            "hold_serial": leg.hold_serial, "reservation_id": leg.reservation_id}


_LEG_MUTABLE = ("price_fen_per_unit_hour", "count", "remaining", "filled", "min_fill",
                "good_till_ms", "priority", "state", "backing_devices", "hold_transfer_id",
                "hold_fen", "hold_serial")


def insert_legs(session: Session, legs: Sequence[LegRecord]) -> None:
    if legs:
        session.execute(insert(LEGS), [_leg_values(leg) for leg in legs])


def update_legs(session: Session, legs: Iterable[LegRecord]) -> None:
    rows = []
    for leg in legs:
        values = _leg_values(leg)
        rows.append({"b_id": leg.id, **{f"b_{name}": values[name] for name in _LEG_MUTABLE}})
    if rows:
        session.execute(update(LEGS).where(LEGS.c.id == bindparam("b_id")).values(
            {name: bindparam(f"b_{name}") for name in _LEG_MUTABLE}), rows)


def resting_legs(session: Session, product_id: str) -> list[LegRecord]:
    """The product's open legs in time priority: what its book holds."""
    statement = (select(LEGS).where(LEGS.c.product_id == product_id,
                                    LEGS.c.state == LegState.OPEN.value)
                 .order_by(LEGS.c.priority))
    return [_leg(row) for row in session.execute(statement).mappings()]


def resting_legs_of(session: Session, product_ids: Iterable[str]) -> dict[str, list[LegRecord]]:
    """Several products' open legs, each product's in time priority: one read for many books."""
    found: dict[str, list[LegRecord]] = {}
    for chunk in _chunks(sorted(set(product_ids))):
        statement = (select(LEGS).where(LEGS.c.product_id.in_(chunk),
                                        LEGS.c.state == LegState.OPEN.value)
                     .order_by(LEGS.c.product_id, LEGS.c.priority))
        for row in session.execute(statement).mappings():
            found.setdefault(row["product_id"], []).append(_leg(row))
    return found


def get_legs(session: Session, leg_ids: Iterable[str]) -> dict[str, LegRecord]:
    found = {}
    for chunk in _chunks(sorted(set(leg_ids))):
        for row in session.execute(select(LEGS).where(LEGS.c.id.in_(chunk))).mappings():
            found[row["id"]] = _leg(row)
    return found


def legs_of_orders(session: Session, order_ids: Iterable[str]) -> list[LegRecord]:
    legs = []
    for chunk in _chunks(sorted(set(order_ids))):
        legs += [_leg(row) for row in session.execute(
            select(LEGS).where(LEGS.c.order_id.in_(chunk))
            .order_by(LEGS.c.order_id, LEGS.c.leg_index)).mappings()]
    return legs


def due_product_ids(session: Session, now_ms: int, limit: int) -> list[str]:
    """Products with an open leg whose good-till time has come (the sweep expires them)."""
    assert 1 <= limit <= MAX_ROWS
    return list(session.execute(
        select(LEGS.c.product_id).where(LEGS.c.state == LegState.OPEN.value,
                                        LEGS.c.good_till_ms <= now_ms)
        .group_by(LEGS.c.product_id).order_by(LEGS.c.product_id).limit(limit)).scalars())


def committed_devices(session: Session, pool_id: str, block_starts: Iterable[int]
                      ) -> dict[int, int]:
    """Devices of the pool that asks hold (resting or sold) in each block."""
    starts = sorted(set(block_starts))
    found = dict.fromkeys(starts, 0)
    statement = (select(LEGS.c.block_start, func.sum(LEGS.c.backing_devices))
                 .where(LEGS.c.pool_id == pool_id,
                        LEGS.c.block_start.in_([_at(s) for s in starts]))
                 .group_by(LEGS.c.block_start))
    for block_start, devices in session.execute(statement):
        found[_s(block_start)] = int(devices or 0)
    return found


def lock_pool(session: Session, pool_id: str) -> None:
    """Lock a pool's row to serialise asks on it (PostgreSQL; SQLite's one writer already
    does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(PoolRow.id).where(PoolRow.id == pool_id).with_for_update())


def quotable_pools(session: Session, *, state: str, location: str, accelerator: str | None,
                   limit: int) -> list[MarketPool]:
    """Pools in this state whose hub or province is the location (and, if given, of this
    accelerator), in id order."""
    assert 1 <= limit <= MAX_ROWS
    conditions = [PoolRow.state == state,
                  or_(PoolRow.hub == location, PoolRow.province == location)]
    if accelerator is not None:
        conditions.append(PoolRow.accelerator == accelerator)
    rows = session.scalars(select(PoolRow).where(and_(*conditions))
                           .order_by(PoolRow.id).limit(limit))
    return [MarketPool(row.id, row.tenant_id, row.provider_id, row.accelerator, row.state,
                       row.hub, row.province, row.device_count, row.price_fen_per_device_hour,
                       row.units_per_device_hour) for row in rows]


def leased_devices(session: Session, pool_id: str) -> list[tuple[int, int]]:
    """The pool's active leases as (devices, when the job's time limit ends them, epoch s)."""
    statement = (select(LeaseRow.devices, LeaseRow.created_at, JobRow.spec)
                 .join(JobRow, JobRow.id == LeaseRow.job_id)
                 .where(LeaseRow.pool_id == pool_id, LeaseRow.state == "active"))
    return [(devices, _s(created) + int(spec.get("time_limit_s", 0)))
            for devices, created, spec in session.execute(statement)]


# -- the event log ---------------------------------------------------------------------------

def append_events(session: Session, product_id: str, events: Sequence[Event]) -> None:
    if events:
        session.execute(insert(EVENTS), [
            {"product_id": product_id, "seq": e.seq, "at_ms": e.at_ms, "kind": e.kind.value,
             "order_id": e.order_id, "size": e.size, "price": e.price,
             "direction": e.direction, "contra_id": e.contra_id, "owner": e.owner,
             "min_fill": e.min_fill, "good_till_ms": e.good_till_ms} for e in events])


def append_events_of(session: Session, events_by_product: Mapping[str, Sequence[Event]]
                     ) -> None:
    """Every book's new events in one statement: a command's (or a batch's) journal write."""
    rows = [{"product_id": product_id, "seq": e.seq, "at_ms": e.at_ms, "kind": e.kind.value,
             "order_id": e.order_id, "size": e.size, "price": e.price,
             "direction": e.direction, "contra_id": e.contra_id, "owner": e.owner,
             "min_fill": e.min_fill, "good_till_ms": e.good_till_ms}
            for product_id, events in sorted(events_by_product.items()) for e in events]
    if rows:
        session.execute(insert(EVENTS), rows)


def events(session: Session, product_id: str, after_seq: int, limit: int) -> list[Event]:
    assert 1 <= limit <= MAX_ROWS
    statement = (select(EVENTS).where(EVENTS.c.product_id == product_id,
                                      EVENTS.c.seq > after_seq)
                 .order_by(EVENTS.c.seq).limit(limit))
    return [Event(r["seq"], r["at_ms"], EventKind(r["kind"]), r["order_id"], r["size"],
                  r["price"], r["direction"], r["contra_id"], r["owner"], r["min_fill"],
                  r["good_till_ms"]) for r in session.execute(statement).mappings()]


# -- trades and reservations -----------------------------------------------------------------

def _trade(r: Mapping) -> TradeRecord:
    return TradeRecord(r["id"], r["product_id"], r["seq"], r["at_ms"], r["accelerator_class"],
                       r["location"], r["price_fen_per_unit_hour"], r["quantity"],
                       r["buy_leg_id"], r["sell_leg_id"], r["buyer_tenant_id"],
                       r["seller_tenant_id"], r["pool_id"], r["aggressor"], r["value_fen"],
                       r["fee_fen"])


def insert_trades(session: Session, trades: Sequence[TradeRecord]) -> None:
    if trades:
        session.execute(insert(TRADES), [
            {"id": t.id, "product_id": t.product_id, "seq": t.seq,
             "at": datetime.fromtimestamp(t.at_ms / 1000, UTC), "at_ms": t.at_ms,
             "accelerator_class": t.accelerator_class, "location": t.location,
             "price_fen_per_unit_hour": t.price_fen_per_unit_hour, "quantity": t.quantity,
             "buy_leg_id": t.buy_leg_id, "sell_leg_id": t.sell_leg_id,
             "buyer_tenant_id": t.buyer_tenant_id, "seller_tenant_id": t.seller_tenant_id,
             "pool_id": t.pool_id, "aggressor": t.aggressor, "value_fen": t.value_fen,
             "fee_fen": t.fee_fen} for t in trades])


def trades(session: Session, *, product_id: str | None = None,
           accelerator_class: str | None = None, location: str | None = None,
           since_ms: int | None = None, until_ms: int | None = None,
           limit: int = 1_000) -> list[TradeRecord]:
    """The tape, oldest first."""
    assert 1 <= limit <= MAX_ROWS
    c = TRADES.c
    conditions = []
    if product_id is not None:
        conditions.append(c.product_id == product_id)
    if accelerator_class is not None:
        conditions.append(c.accelerator_class == accelerator_class)
    if location is not None:
        conditions.append(c.location == location)
    if since_ms is not None:
        conditions.append(c.at_ms >= since_ms)
    if until_ms is not None:
        conditions.append(c.at_ms < until_ms)
    statement = (select(TRADES).where(and_(True, *conditions))
                 .order_by(c.at_ms, c.product_id, c.seq).limit(limit))
    return [_trade(r) for r in session.execute(statement).mappings()]


def tape_page(session: Session, since_ms: int, until_ms: int, after: tuple[int, str] | None,
              limit: int) -> list[TradeRecord]:
    """Trades in [since, until) in (time, id) order, after the key `after`: keyset pages."""
    assert 1 <= limit <= MAX_ROWS
    c = TRADES.c
    statement = select(TRADES).where(c.at_ms >= since_ms, c.at_ms < until_ms)
    if after is not None:
        statement = statement.where(or_(c.at_ms > after[0],
                                        and_(c.at_ms == after[0], c.id > after[1])))
    statement = statement.order_by(c.at_ms, c.id).limit(limit)
    return [_trade(r) for r in session.execute(statement).mappings()]


def first_trade_ms(session: Session) -> int | None:
    return session.execute(select(func.min(TRADES.c.at_ms))).scalar()


def _reservation(r: Mapping) -> Reservation:
    return Reservation(r["id"], r["trade_id"], r["product_id"], r["pool_id"],
                       r["buyer_tenant_id"], r["seller_tenant_id"], r["accelerator_class"],
                       _s(r["starts_at"]), _s(r["ends_at"]), r["quantity"], r["devices"],
                       r["value_fen"], r["fee_fen"], Due(r["paid_seller_fen"], r["paid_fee_fen"]),
                       r["refunded_fen"], r["state"], r["resold"], r["resold_devices"])


def insert_reservations(session: Session, reservations: Sequence[Reservation],
                        now: datetime) -> None:
    if reservations:
        session.execute(insert(RESERVATIONS), [
            {"id": r.id, "trade_id": r.trade_id, "product_id": r.product_id,
             "pool_id": r.pool_id, "buyer_tenant_id": r.buyer_tenant_id,
             "seller_tenant_id": r.seller_tenant_id, "accelerator_class": r.accelerator_class,
             "starts_at": _at(r.starts_s), "ends_at": _at(r.ends_s), "quantity": r.quantity,
             "devices": r.devices, "value_fen": r.value_fen, "fee_fen": r.fee_fen,
             "paid_seller_fen": r.paid.seller_fen, "paid_fee_fen": r.paid.fee_fen,
             "refunded_fen": r.refunded_fen, "state": r.state, "resold": r.resold,
             "resold_devices": r.resold_devices, "created_at": now,
             "updated_at": now} for r in reservations])


def update_reservations(session: Session, reservations: Iterable[Reservation],
                        now: datetime) -> None:
    rows = [{"b_id": r.id, "b_seller": r.paid.seller_fen, "b_fee": r.paid.fee_fen,
             "b_refunded": r.refunded_fen, "b_state": r.state} for r in reservations]
    if rows:
        session.execute(update(RESERVATIONS).where(RESERVATIONS.c.id == bindparam("b_id"))
                        .values(paid_seller_fen=bindparam("b_seller"),
                                paid_fee_fen=bindparam("b_fee"),
                                refunded_fen=bindparam("b_refunded"),
                                state=bindparam("b_state"), updated_at=now), rows)


def reservations(session: Session, *, buyer_tenant_id: str | None = None,
                 seller_tenant_id: str | None = None, pool_id: str | None = None,
                 state: str | None = None, active_at: datetime | None = None,
                 started_before: datetime | None = None, limit: int = 1_000,
                 for_update: bool = False, reservation_id: str | None = None
                 ) -> list[Reservation]:
    """Reservations, earliest block first."""
    assert 1 <= limit <= MAX_ROWS
    c = RESERVATIONS.c
    conditions = []
    if reservation_id is not None:
        conditions.append(c.id == reservation_id)
    if buyer_tenant_id is not None:
        conditions.append(c.buyer_tenant_id == buyer_tenant_id)
    if seller_tenant_id is not None:
        conditions.append(c.seller_tenant_id == seller_tenant_id)
    if pool_id is not None:
        conditions.append(c.pool_id == pool_id)
    if state is not None:
        conditions.append(c.state == state)
    if active_at is not None:
        conditions += [c.starts_at <= active_at, c.ends_at > active_at]
    if started_before is not None:
        conditions.append(c.starts_at < started_before)
    statement = (select(RESERVATIONS).where(and_(True, *conditions))
                 .order_by(c.starts_at, c.id).limit(limit))
    if for_update:
        statement = statement.with_for_update()
    return [_reservation(r) for r in session.execute(statement).mappings()]


def reserved_spans(session: Session, buyer_tenant_id: str, pool_id: str, start: datetime,
                   end: datetime) -> list[Span]:
    """The buyer's reserved devices on the pool over [start, end), as spans: reservations
    that were delivered or are being delivered (a refunded one was not)."""
    c = RESERVATIONS.c
    statement = (select(c.starts_at, c.ends_at, c.devices - c.resold_devices)
                 .where(c.buyer_tenant_id == buyer_tenant_id, c.pool_id == pool_id,
                        c.state.in_([ReservationState.RESERVED, ReservationState.SETTLED]),
                        c.starts_at < end, c.ends_at > start)
                 .limit(MAX_SPANS))
    return [Span(epoch_us(a), epoch_us(b), devices)
            for a, b, devices in session.execute(statement)]


def set_resold(session: Session, reservations: Iterable[Reservation], now: datetime) -> None:
    rows = [{"b_id": r.id, "b_resold": r.resold, "b_devices": r.resold_devices}
            for r in reservations]
    if rows:
        session.execute(update(RESERVATIONS).where(RESERVATIONS.c.id == bindparam("b_id"))
                        .values(resold=bindparam("b_resold"),
                                resold_devices=bindparam("b_devices"), updated_at=now), rows)


def resale_offered(session: Session, reservation_id: str) -> int:
    """Units of the reservation its resale asks offer or sold: open legs' remaining plus
    every leg's fills."""
    offered = func.coalesce(func.sum(LEGS.c.filled + case(
        (LEGS.c.state == LegState.OPEN.value, LEGS.c.remaining), else_=0)), 0)
    return int(session.execute(select(offered).where(
        LEGS.c.reservation_id == reservation_id)).scalar() or 0)


# -- the index -------------------------------------------------------------------------------

def published_bars(session: Session, accelerator_class: str, location: str, period: Period,
                   since_s: int, until_s: int, limit: int) -> list[Bar]:
    assert 1 <= limit <= MAX_ROWS
    c = BARS.c
    statement = (select(BARS).where(c.accelerator_class == accelerator_class,
                                    c.location == location, c.period == period.value,
                                    c.start_s >= since_s, c.start_s < until_s)
                 .order_by(c.start_s).limit(limit))
    return [Bar(period, r["start_s"], r["open_fen"], r["high_fen"], r["low_fen"],
                r["close_fen"], r["volume"], r["value_fen"], r["trades"])
            for r in session.execute(statement).mappings()]


def publish_bars(session: Session, series_bars: Iterable[tuple[str, str, Bar]],
                 now: datetime) -> int:
    """Write final bars that are not yet written; a written bar is never changed."""
    written = 0
    for accelerator_class, location, bar in series_bars:
        insert_if_absent(session, BARS, {
            "accelerator_class": accelerator_class, "location": location,
            "period": bar.period.value, "start_s": bar.start_s, "open_fen": bar.open,
            "high_fen": bar.high, "low_fen": bar.low, "close_fen": bar.close,
            "volume": bar.volume, "value_fen": bar.value_fen, "trades": bar.trades,
            "published_at": now})
        written += 1
    return written


def index_mark(session: Session, period: Period, *, for_update: bool = False) -> int | None:
    statement = select(MARKS.c.through_s).where(MARKS.c.period == period.value)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar()


def set_index_mark(session: Session, period: Period, through_s: int, now: datetime) -> None:
    insert_if_absent(session, MARKS, {"period": period.value, "through_s": through_s,
                                      "updated_at": now})
    session.execute(update(MARKS).where(MARKS.c.period == period.value)
                    .values(through_s=through_s, updated_at=now))


# -- what the invariant check compares with the ledger ---------------------------------------

def open_hold_totals(session: Session) -> dict[str, int]:
    """Per tenant: the fen its open bid legs hold."""
    statement = (select(LEGS.c.tenant_id, func.sum(LEGS.c.hold_fen))
                 .where(LEGS.c.state == LegState.OPEN.value, LEGS.c.side == Side.BID.value)
                 .group_by(LEGS.c.tenant_id))
    return {tenant: int(total or 0) for tenant, total in session.execute(statement)}


def escrow_totals(session: Session) -> dict[str, int]:
    """Per buyer: what its reservations still keep in escrow."""
    c = RESERVATIONS.c
    statement = (select(c.buyer_tenant_id, func.sum(c.value_fen - c.paid_seller_fen
                                                    - c.paid_fee_fen - c.refunded_fen))
                 .group_by(c.buyer_tenant_id))
    return {tenant: int(total or 0) for tenant, total in session.execute(statement)}


def oversold(session: Session, limit: int = 20) -> list[tuple[str, int, int, int]]:
    """(pool, block start, devices asks hold, devices the pool has) where asks hold more."""
    held = func.sum(LEGS.c.backing_devices)
    statement = (select(LEGS.c.pool_id, LEGS.c.block_start, held, PoolRow.device_count)
                 .join(PoolRow, PoolRow.id == LEGS.c.pool_id)
                 .group_by(LEGS.c.pool_id, LEGS.c.block_start, PoolRow.device_count)
                 .having(held > PoolRow.device_count).limit(limit))
    return [(pool, _s(block), int(total), int(devices))
            for pool, block, total, devices in session.execute(statement)]


def overresold(session: Session, limit: int = 20) -> list[tuple[str, int, int, int]]:
    """(reservation, units its resale asks offer or sold, units recorded resold, quantity)
    where more is offered than the reservation holds, or the resold count is not the fills."""
    offered = func.coalesce(func.sum(LEGS.c.filled + case(
        (LEGS.c.state == LegState.OPEN.value, LEGS.c.remaining), else_=0)), 0)
    filled = func.coalesce(func.sum(LEGS.c.filled), 0)
    c = RESERVATIONS.c
    statement = (select(c.id, offered, c.resold, c.quantity)
                 .join(LEGS, LEGS.c.reservation_id == c.id)
                 .group_by(c.id, c.resold, c.quantity)
                 .having(or_(offered > c.quantity, filled != c.resold)).limit(limit))
    return [(rid, int(o), int(r), int(q)) for rid, o, r, q in session.execute(statement)]


def fill_mismatches(session: Session, limit: int = 20) -> list[str]:
    """Legs whose `filled` differs from what the tape says they traded."""
    t = TRADES.c
    bought = (select(t.buy_leg_id.label("leg"), func.sum(t.quantity).label("q"))
              .group_by(t.buy_leg_id))
    sold = (select(t.sell_leg_id.label("leg"), func.sum(t.quantity).label("q"))
            .group_by(t.sell_leg_id))
    traded = bought.union_all(sold).subquery()
    per_leg = (select(traded.c.leg, func.sum(traded.c.q).label("q"))
               .group_by(traded.c.leg).subquery())
    statement = (select(LEGS.c.id).outerjoin(per_leg, per_leg.c.leg == LEGS.c.id)
                 .where(LEGS.c.filled != func.coalesce(per_leg.c.q, 0)).limit(limit))
    return list(session.execute(statement).scalars())
