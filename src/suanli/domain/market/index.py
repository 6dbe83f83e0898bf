"""OHLC bars and the volume-weighted price index (算力价格指数), from printed trades only.

A bar covers one hour or one day; days run on China Standard Time (UTC+8), hours are the same
everywhere. The index value of a bar is its volume-weighted average price, value / volume, where
value is the sum of price x quantity in fen: both are integers, so the index is exact and a
published bar can be checked against the tape. A bar is final once its period has ended; final
bars are published once and never restated (docs/market.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from suanli.domain.errors import ValidationFailed

CST_OFFSET_S = 8 * 3600
INDEX_QUANTUM = Decimal("0.01")  # published to a hundredth of a fen per unit-hour
MAX_BARS = 10_000  # bars in one answer


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return 3600 if self is Period.HOUR else 86_400

    def start_of(self, at_s: int) -> int:
        """The start (epoch seconds) of the period holding `at_s`."""
        if self is Period.HOUR:
            return at_s - at_s % 3600
        local = at_s + CST_OFFSET_S
        return local - local % 86_400 - CST_OFFSET_S


@dataclass(frozen=True, slots=True)
class Print:
    """One trade as the index sees it."""

    at_s: int
    price: int  # fen per unit-hour
    quantity: int


@dataclass(frozen=True, slots=True)
class Bar:
    period: Period
    start_s: int
    open: int
    high: int
    low: int
    close: int
    volume: int  # units traded (device-hours or SCU-hours)
    value_fen: int  # sum of price x quantity
    trades: int

    def __post_init__(self) -> None:
        assert self.volume > 0 and self.trades > 0
        assert self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high

    @property
    def end_s(self) -> int:
        return self.start_s + self.period.seconds

    @property
    def vwap(self) -> Decimal:
        """The index value: value / volume, to a hundredth of a fen, half-even."""
        return (Decimal(self.value_fen) / Decimal(self.volume)).quantize(
            INDEX_QUANTUM, rounding=ROUND_HALF_EVEN)

    def final(self, now_s: int) -> bool:
        return now_s >= self.end_s


def bars(prints: Iterable[Print], period: Period) -> list[Bar]:
    """One bar per period with trades, oldest first; prints must come in time order (the tape's
    order), so open and close are the first and last trade of the period."""
    out: list[Bar] = []
    current: list[int] | None = None  # start, open, high, low, close, volume, value, trades
    last_at = None
    for p in prints:
        if last_at is not None and p.at_s < last_at:
            raise ValidationFailed("prints must be in time order", field="prints")
        last_at = p.at_s
        start = period.start_of(p.at_s)
        if current is not None and current[0] != start:
            out.append(_bar(period, current))
            current = None
        if current is None:
            current = [start, p.price, p.price, p.price, p.price, 0, 0, 0]
        current[2] = max(current[2], p.price)
        current[3] = min(current[3], p.price)
        current[4] = p.price
        current[5] += p.quantity
        current[6] += p.price * p.quantity
        current[7] += 1
        if len(out) >= MAX_BARS:
            raise ValidationFailed(f"at most {MAX_BARS} bars in one answer", field="since")
    if current is not None:
        out.append(_bar(period, current))
    return out


def _bar(period: Period, values: list[int]) -> Bar:
    start, open_, high, low, close, volume, value, trades = values
    return Bar(period, start, open_, high, low, close, volume, value, trades)
