"""The market's step of the background loop: expire due orders, uncross due call auctions,
settle delivered time, publish the index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.domain.market.settlement import FEE_BPS
from suanli.services.market import exchange, index, settlement


@dataclass(frozen=True)
class SweepReport:
    books: exchange.DueReport
    settled: int
    bars_published: int


def sweep(session: Session, now: datetime, fee_bps: int = FEE_BPS) -> SweepReport:
    books = exchange.run_due(session, now, fee_bps)
    settled = settlement.settle_due(session, now)
    published = index.publish(session, now)
    return SweepReport(books, settled, published)
