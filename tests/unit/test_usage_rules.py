"""The one builder of usage records (domain.metering.build_usage_record): whatever a provider
posts and an agent reports, a lease's records never overlap, stay inside the lease, and bill
no more than the job's time limit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.metering import (
    FINAL_RECORD_GRACE,
    LeaseTerms,
    MeteredSpan,
    PostedUsage,
    ReportedUsage,
    build_usage_record,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
TERMS = LeaseTerms("L1", "J1", "T1", "P1", "POOL1", "nvidia-a800", 2, T0, None, 3600,
                   Decimal("0.4"))

reports = st.lists(st.one_of(
    st.tuples(st.just("posted"), st.integers(-600, 8000), st.integers(1, 4000)),
    st.tuples(st.just("agent"), st.integers(0, 9000), st.integers(0, 9000))), max_size=12)


@settings(max_examples=300, deadline=None)
@given(reports, st.integers(1, 7200))
def test_records_of_a_lease_never_overlap_and_never_bill_past_the_time_limit(
        steps: list[tuple[str, int, int]], time_limit_s: int) -> None:
    terms = replace(TERMS, time_limit_s=time_limit_s)
    now = T0 + timedelta(hours=3)
    kept: list[MeteredSpan] = []
    for n, (kind, a, b) in enumerate(steps):
        usage = (PostedUsage(f"r{n}", T0 + timedelta(seconds=a), T0 + timedelta(seconds=a + b))
                 if kind == "posted" else ReportedUsage(f"r{n}", float(b)))
        try:
            built = build_usage_record(terms, usage, kept, now)
        except (Conflict, ValidationFailed):
            assert kind == "posted"  # an agent's report is fitted, never refused
            continue
        assert terms.started_at <= built.started_at <= built.ended_at <= now
        assert built.wall_s == (built.ended_at - built.started_at).total_seconds()
        kept.append(MeteredSpan(built.id, built.started_at, built.ended_at, now))
    spans = sorted(kept, key=lambda s: s.start)
    for left, right in pairwise(spans):
        assert left.end <= right.start or left.start == left.end or right.start == right.end
    assert sum((s.end - s.start).total_seconds() for s in kept) <= time_limit_s + 1e-6


def test_an_ended_lease_takes_one_final_record_and_only_within_the_grace() -> None:
    ended = T0 + timedelta(hours=1)
    terms = replace(TERMS, ended_at=ended)
    first = build_usage_record(terms, PostedUsage("a", T0, T0 + timedelta(minutes=5)), [],
                               ended)
    span = MeteredSpan("a", first.started_at, first.ended_at, ended)
    second = PostedUsage("b", T0 + timedelta(minutes=5), T0 + timedelta(minutes=6))
    try:
        build_usage_record(terms, second, [span], ended)
        raise AssertionError("a second record after the end was taken")
    except Conflict as exc:
        assert exc.field == "lease_id"
    try:
        build_usage_record(terms, second, [], ended + FINAL_RECORD_GRACE + timedelta(seconds=1))
        raise AssertionError("a final record after the grace was taken")
    except ValidationFailed as exc:
        assert exc.field == "lease_id"


def test_the_same_report_has_the_same_digest_and_energy_agrees_with_time() -> None:
    now = T0 + timedelta(hours=2)
    a = build_usage_record(TERMS, ReportedUsage("x", 1800.0, cpu_s=3.0), [], now)
    b = build_usage_record(TERMS, ReportedUsage("x", 1800.0, cpu_s=3.0), [], now + timedelta(
        seconds=5))
    c = build_usage_record(TERMS, ReportedUsage("x", 1801.0, cpu_s=3.0), [], now)
    assert a.content_sha256 == b.content_sha256 != c.content_sha256
    assert a.wall_s == 1800.0 and a.device_seconds == 3600.0
    assert abs(a.energy_wh - 0.4 * 1000 * 2 * 0.5) < 1e-9  # 400 W x 2 devices x 30 min
    posted = build_usage_record(TERMS, PostedUsage("y", T0, T0 + timedelta(minutes=30)), [],
                                now)
    assert posted.energy_wh == a.energy_wh and posted.energy_estimated
