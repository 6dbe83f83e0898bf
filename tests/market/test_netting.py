"""Netting usage against reservations: a covered share never exceeds what was reserved at
any instant, and each record is covered as much as the reservation has left."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from suanli.domain.market.netting import Span, covered_device_us, covered_quantity_micro

spans = st.builds(lambda start, length, devices: Span(start, start + length, devices),
                  st.integers(0, 100), st.integers(0, 60), st.integers(0, 4))


def _level(items: list[Span], moment: int) -> int:
    return sum(s.devices for s in items if s.start_us <= moment < s.end_us)


@given(st.lists(spans, max_size=4), st.lists(spans, min_size=1, max_size=6))
def test_records_charged_in_turn_never_cover_more_than_was_reserved(
        reserved: list[Span], records: list[Span]) -> None:
    earlier: list[Span] = []
    total = 0
    for record in records:
        covered = covered_device_us(reserved, earlier, record)
        # brute force, one microsecond at a time: the greedy share of this record
        expected = sum(min(_level(reserved, t), _level(earlier, t) + record.devices)
                       - min(_level(reserved, t), _level(earlier, t))
                       for t in range(record.start_us, record.end_us))
        assert covered == expected
        earlier.append(record)
        total += covered
    horizon = range(0, 200)
    assert total == sum(min(_level(reserved, t), _level(records, t)) for t in horizon)


def test_a_record_beyond_the_reservation_is_covered_only_where_it_overlaps() -> None:
    reserved = [Span(0, 3600, 2)]
    record = Span(1800, 5400, 3)  # 3 devices, half inside the reserved hour
    covered = covered_device_us(reserved, [], record)
    assert covered == 2 * 1800
    assert covered_quantity_micro(3_000_000, covered, record) == 1_000_000
    assert covered_device_us([], [], record) == 0
