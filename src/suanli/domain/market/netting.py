"""Netting usage against reservations (预留抵扣): the part of a usage record that ran on
capacity its tenant bought on the exchange, which billing must not charge again at the pool's
tariff (the reservation's price was paid through escrow).

At every instant t a tenant's reserved devices R(t) on a pool cover its usage there in the order
the usage was charged: the earlier records' devices E(t) draw first, so what they covered is
min(R(t), E(t)) and a new record of d devices adds min(R(t), E(t) + d) - min(R(t), E(t)).
Greedy filling needs no history of who took what: the total covered at t is always
min(R(t), all devices charged there), never more than was reserved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_SPANS = 10_000  # reservations or earlier records one netting looks at
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(moment: datetime) -> int:
    """Whole microseconds since the epoch, exact (no float on the way)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Span:
    """`devices` over [start_us, end_us), in integer microseconds since the epoch."""

    start_us: int
    end_us: int
    devices: int

    def __post_init__(self) -> None:
        assert self.start_us <= self.end_us and self.devices >= 0, self


def _level(spans: Sequence[Span], moment_us: int) -> int:
    return sum(s.devices for s in spans if s.start_us <= moment_us < s.end_us)


def covered_device_us(reserved: Sequence[Span], earlier: Sequence[Span], usage: Span) -> int:
    """Device-microseconds of `usage` that fall on reserved devices the `earlier` usage (charged
    before it) left free: at most usage.devices and at most what is free at each instant."""
    assert len(reserved) <= MAX_SPANS and len(earlier) <= MAX_SPANS
    if usage.devices == 0 or usage.end_us == usage.start_us or not reserved:
        return 0
    points = {usage.start_us, usage.end_us}
    for span in (*reserved, *earlier):
        points.update(p for p in (span.start_us, span.end_us)
                      if usage.start_us < p < usage.end_us)
    cuts = sorted(points)
    covered = 0
    for start, end in zip(cuts, cuts[1:], strict=False):
        held = _level(reserved, start)
        if not held:
            continue
        used = _level(earlier, start)
        covered += (min(held, used + usage.devices) - min(held, used)) * (end - start)
    assert 0 <= covered <= usage.devices * (usage.end_us - usage.start_us)
    return covered


def covered_quantity_micro(quantity_micro: int, covered_us: int, usage: Span) -> int:
    """The share of a record's quantity (micro-units of any basis) that was covered, rounded
    down: the rest is rated at the tariff, so a rounding never hides usage."""
    whole = usage.devices * (usage.end_us - usage.start_us)
    if whole == 0 or covered_us == 0:
        return 0
    assert 0 <= covered_us <= whole and quantity_micro >= 0
    return quantity_micro * covered_us // whole
