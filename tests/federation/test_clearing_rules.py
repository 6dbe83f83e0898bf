"""Netting rules, property-tested: positions sum to zero and agree with the bilateral nets,
the vectorised netting equals the scalar one, payments settle every position."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.domain import clearing as rules

PLATFORMS = ["CN", "CN.GD", "CN.SC", "CN.YRD", "CN.YRD.FIN"]


@st.composite
def obligations(draw, max_size: int = 60):  # type: ignore[no-untyped-def]
    items = []
    for _ in range(draw(st.integers(0, max_size))):
        debtor = draw(st.sampled_from(PLATFORMS))
        creditor = draw(st.sampled_from([p for p in PLATFORMS if p != debtor]))
        items.append(rules.Obligation(debtor, creditor, draw(st.integers(0, 10**9))))
    return items


@given(obligations())
def test_multilateral_positions_sum_to_zero(items: list[rules.Obligation]) -> None:
    assert sum(rules.multilateral_positions(items).values()) == 0


@given(obligations())
def test_each_position_is_the_sum_of_its_bilateral_nets(items: list[rules.Obligation]) -> None:
    positions = rules.multilateral_positions(items)
    bilateral = rules.bilateral_positions(items)
    assert rules.positions_from_bilateral(bilateral) == positions
    for platform, position in positions.items():
        nets = sum(-v if a == platform else v for (a, b), v in bilateral.items()
                   if platform in (a, b))
        assert nets == position


@given(obligations())
def test_bilateral_nets_equal_the_difference_of_gross_sums(items: list[rules.Obligation]) -> None:
    gross = rules.gross_by_pair(items)
    for (a, b), a_owes_b in rules.bilateral_positions(items).items():
        assert a < b
        assert a_owes_b == gross.get((a, b), 0) - gross.get((b, a), 0)
    assert sum(gross.values()) == sum(i.amount_fen for i in items)


@given(obligations())
def test_direct_payments_settle_every_position_with_at_most_n_minus_1(
        items: list[rules.Obligation]) -> None:
    positions = rules.multilateral_positions(items)
    payments = rules.direct_payments(positions)
    settled = dict.fromkeys(positions, 0)
    for payer, payee, amount in payments:
        assert amount > 0 and payer != payee
        settled[payer] -= amount
        settled[payee] += amount
    assert settled == positions
    assert len(payments) <= max(0, sum(1 for v in positions.values() if v) - 1)


@settings(max_examples=50, deadline=None)
@given(obligations(max_size=200), st.booleans())
def test_vectorised_netting_equals_the_scalar_netting(items: list[rules.Obligation],
                                                      huge: bool) -> None:
    index = {p: i for i, p in enumerate(PLATFORMS)}
    scale = 10**6 if huge else 1  # huge: totals beyond 2**53 take the exact integer path
    debtor = np.array([index[i.debtor] for i in items], dtype=np.int64)
    creditor = np.array([index[i.creditor] for i in items], dtype=np.int64)
    amount = np.array([i.amount_fen * scale for i in items], dtype=np.int64)
    netted = rules.net_arrays(debtor, creditor, amount, len(PLATFORMS))
    scaled = [rules.Obligation(i.debtor, i.creditor, i.amount_fen * scale) for i in items]
    positions = rules.multilateral_positions(scaled)
    assert int(netted.positions.sum()) == 0
    for platform, i in index.items():
        assert int(netted.positions[i]) == positions.get(platform, 0)
    bilateral = netted.bilateral()
    assert (bilateral == -bilateral.T).all()
    for (a, b), v in rules.bilateral_positions(scaled).items():
        assert int(bilateral[index[a], index[b]]) == v


def test_matching_nets_only_records_both_sides_agree_on() -> None:
    def entry(i: str, amount: int = 100, digest: str = "d") -> rules.Entry:
        return rules.Entry(i, "CN.GD", "CN.SC", amount, digest)

    matched = rules.match([entry("a"), entry("b"), entry("c", 5, "x"), entry("e")],
                          [entry("a"), entry("c", 6, "y"), entry("d"), entry("e", digest="z")])
    assert [e.record_id for e in matched.agreed] == ["a"]
    assert [e.record_id for e in matched.missing_at_host] == ["b"]
    assert [e.record_id for e in matched.missing_at_home] == ["d"]
    assert [h.record_id for h, _ in matched.mismatched] == ["c", "e"]


def test_business_dates_follow_china_time_and_the_cut_off_hour() -> None:
    late_utc = datetime(2026, 11, 2, 16, 30, tzinfo=UTC)  # 00:30 on the 3rd in Beijing
    assert rules.business_date(late_utc) == "2026-11-03"
    assert rules.business_date(late_utc, cutoff_hour=2) == "2026-11-02"
    assert rules.cutoff_instant("2026-11-02") == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def test_the_records_digest_ignores_order() -> None:
    assert rules.records_digest([("b", 2), ("a", 1)]) == rules.records_digest([("a", 1),
                                                                               ("b", 2)])
    assert rules.records_digest([("a", 1)]) != rules.records_digest([("a", 2)])
