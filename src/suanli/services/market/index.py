"""The price index (算力价格指数) and OHLC bars, from printed trades only.

The sweep publishes each hourly and daily bar of every (accelerator class, location) series
once its period is over, and never writes it again; a reader gets the published bars, then
the bars of ended periods the sweep has not reached yet (computed from the same trades, so
equal to what will be published) and the current, provisional one. A trade between two orders
of one member (possible in a call auction) does not count. See docs/market.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import market as repo
from suanli.domain.errors import ValidationFailed
from suanli.domain.market.index import MAX_BARS, Bar, Period, Print, bars
from suanli.domain.market.records import TradeRecord

PAGE = 5_000  # trades read at once
MAX_PERIODS_PER_PUBLISH = 24 * 14  # periods one sweep publishes per period kind


@dataclass(frozen=True)
class IndexBar:
    bar: Bar
    published: bool  # written to the index table (final, never restated)
    final: bool  # its period has ended


def _tape(session: Session, since_ms: int, until_ms: int) -> Iterator[TradeRecord]:
    after = None
    while True:
        page = repo.tape_page(session, since_ms, until_ms, after, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = (page[-1].at_ms, page[-1].id)


def _counts(trade: TradeRecord) -> bool:
    return trade.buyer_tenant_id != trade.seller_tenant_id


def _series_bars(session: Session, period: Period, since_s: int, until_s: int
                 ) -> dict[tuple[str, str], list[Bar]]:
    prints: dict[tuple[str, str], list[Print]] = defaultdict(list)
    for trade in _tape(session, since_s * 1000, until_s * 1000):
        if _counts(trade):
            prints[(trade.accelerator_class, trade.location)].append(
                Print(trade.at_ms // 1000, trade.price_fen_per_unit_hour, trade.quantity))
    return {series: bars(p, period) for series, p in prints.items()}


def publish(session: Session, now: datetime) -> int:
    """Publish the bars of every period that has ended since the last publication."""
    now_s = int(now.timestamp())
    written = 0
    for period in Period:
        through = period.start_of(now_s)
        mark = repo.index_mark(session, period, for_update=True)
        if mark is None:
            first = repo.first_trade_ms(session)
            if first is None:
                continue
            mark = period.start_of(first // 1000)
        until = min(through, mark + MAX_PERIODS_PER_PUBLISH * period.seconds)
        if until <= mark:
            continue
        found = _series_bars(session, period, mark, until)
        written += repo.publish_bars(
            session, ((cls, loc, bar) for (cls, loc), series in sorted(found.items())
                      for bar in series), now)
        repo.set_index_mark(session, period, until, now)
    return written


def index(session: Session, accelerator_class: str, location: str, period: Period,
          since_s: int, until_s: int, now: datetime) -> list[IndexBar]:
    """The index of one series in [since, until), oldest first."""
    if until_s <= since_s:
        raise ValidationFailed("must be after since", field="until")
    now_s = int(now.timestamp())
    published = repo.published_bars(session, accelerator_class, location, period, since_s,
                                    until_s, MAX_BARS)
    mark = repo.index_mark(session, period)
    out = [IndexBar(bar, True, True) for bar in published]
    start = max(since_s, mark if mark is not None else since_s)
    if published:
        start = max(start, published[-1].end_s)
    if start < until_s:
        live = _series_bars(session, period, period.start_of(start), until_s)
        out += [IndexBar(bar, False, bar.final(now_s))
                for bar in live.get((accelerator_class, location), [])
                if bar.start_s >= start]
    return out[:MAX_BARS]


def ohlc(session: Session, product_id: str, period: Period, now: datetime) -> list[IndexBar]:
    """Bars of one product (its whole life is at most MAX_HORIZON_S long)."""
    trades = [t for t in repo.trades(session, product_id=product_id, limit=repo.MAX_ROWS)
              if _counts(t)]
    now_s = int(now.timestamp())
    return [IndexBar(bar, False, bar.final(now_s)) for bar in bars(
        (Print(t.at_ms // 1000, t.price_fen_per_unit_hour, t.quantity) for t in trades),
        period)]
