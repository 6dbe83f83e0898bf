"""Market data (行情): products, L2 books with the indicative auction price, the trade tape
and the event log. Reads only: a book is rebuilt from the resting legs without locks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.errors import NotFound
from suanli.domain.market.auction import Indicative
from suanli.domain.market.book import LevelView, OrderBook
from suanli.domain.market.events import Event
from suanli.domain.market.products import parse_product_id
from suanli.domain.market.records import ProductRecord, TradeRecord

MAX_DEPTH = 100


@dataclass(frozen=True)
class BookSnapshot:
    product: ProductRecord
    bids: list[LevelView]
    asks: list[LevelView]
    indicative: Indicative | None  # what an uncross now would do (call-auction products)


def product(session: Session, product_id: str) -> ProductRecord:
    parse_product_id(product_id)
    found = repo.get_products(session, [product_id]).get(product_id)
    if found is None:
        raise NotFound(f"product {product_id} has no book yet", field="product_id")
    return found


def products(session: Session, *, accelerator_class: str | None, location: str | None,
             now: datetime, limit: int) -> list[ProductRecord]:
    """Products whose block has not ended, earliest block first."""
    since = datetime.fromtimestamp(int(now.timestamp()) // 3600 * 3600 - 3600, now.tzinfo)
    return repo.list_products(session, accelerator_class=accelerator_class, location=location,
                              since=since, limit=limit)


def rebuild(session: Session, product_id: str) -> tuple[ProductRecord, OrderBook]:
    """The book as the matching rebuilds it: from the resting legs."""
    record = product(session, product_id)
    rebuilt = OrderBook(product_id, record.rule, seq=record.seq,
                        last_at_ms=record.last_at_ms, last_price=record.last_price_fen)
    for leg in repo.resting_legs(session, product_id):
        assert leg.priority is not None
        rebuilt.restore(leg.id, leg.side.direction, leg.price_fen_per_unit_hour, leg.remaining,
                        owner=leg.tenant_id, min_fill=leg.min_fill,
                        good_till_ms=leg.good_till_ms, priority=leg.priority)
    return record, rebuilt


def book(session: Session, product_id: str, depth: int) -> BookSnapshot:
    assert 1 <= depth <= MAX_DEPTH
    record, rebuilt = rebuild(session, product_id)
    bids, asks = rebuilt.depth(depth)
    return BookSnapshot(record, bids, asks, rebuilt.indicative())


def tape(session: Session, *, product_id: str | None, accelerator_class: str | None,
         location: str | None, since_ms: int | None, limit: int) -> list[TradeRecord]:
    if product_id is not None:
        parse_product_id(product_id)
    return repo.trades(session, product_id=product_id, accelerator_class=accelerator_class,
                       location=location, since_ms=since_ms, limit=limit)


def events(session: Session, product_id: str, after_seq: int, limit: int) -> list[Event]:
    product(session, product_id)
    return repo.events(session, product_id, after_seq, limit)


def replay(session: Session, product_id: str) -> OrderBook:
    """The book rebuilt from its whole event log (checks and audits)."""
    record = product(session, product_id)
    log: list[Event] = []
    while len(log) < record.seq:
        page = repo.events(session, product_id, len(log), repo.MAX_ROWS)
        if not page:
            break
        log += page
    return OrderBook.replay(log, product_id, record.rule)
