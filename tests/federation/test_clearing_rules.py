"""Netting rules, property-tested: positions sum to zero and agree with the bilateral nets,
the vectorised netting equals the scalar one, payments settle every position."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.domain import clearing as rules
from suanli.domain import clearing_run as run

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


def _entries(rows) -> run.Entries:  # type: ignore[no-untyped-def]
    entries = run.Entries()
    for row in rows:
        entries.append(*row)
    return entries


def test_matching_nets_only_records_both_sides_agree_on() -> None:
    def entry(i: str, amount: int = 100, digest: str = "d" * 64):  # type: ignore[no-untyped-def]
        return (i, "CN.GD", "CN.SC", amount, digest)

    cleared = run.clear(_entries([entry("a"), entry("b"), entry("c", 5), entry("e")]),
                        _entries([entry("a"), entry("c", 6), entry("d"),
                                  entry("e", digest="e" * 64)]))
    assert cleared.agreed == 1 and cleared.gross == {("CN.GD", "CN.SC"): 100}
    assert (cleared.missing_at_host, cleared.missing_at_home) == (1, 1)
    assert [m.record_id for m in cleared.mismatched] == ["c", "e"]
    assert sorted(cleared.excluded["CN.GD"]) == [
        ("b", "missing at host platform CN.SC"), ("c", "home and host hold different content"),
        ("d", "missing at home platform CN.GD"), ("e", "home and host hold different content")]
    assert cleared.fingerprints["CN.SC"] == run.fingerprint([(100, "d" * 64)])


def test_business_dates_follow_china_time_and_the_cut_off_hour() -> None:
    late_utc = datetime(2026, 11, 2, 16, 30, tzinfo=UTC)  # 00:30 on the 3rd in Beijing
    assert rules.business_date(late_utc) == "2026-11-03"
    assert rules.business_date(late_utc, cutoff_hour=2) == "2026-11-02"
    assert rules.cutoff_instant("2026-11-02") == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def test_the_fingerprint_ignores_order_and_sees_every_record() -> None:
    a, b = (1, "0" * 15 + "1" + "f" * 48), (2, "0" * 15 + "2" + "f" * 48)
    assert run.fingerprint([a, b]) == run.fingerprint([b, a]) == "2:3:0000000000000003"
    assert run.fingerprint([a]) != run.fingerprint([a, b]) != run.fingerprint([a, a])
    assert run.fingerprint([]) == "0:0:0000000000000000"


@given(obligations(max_size=100), st.sets(st.integers(0, 99), max_size=10),
       st.sets(st.integers(0, 99), max_size=10))
def test_clearing_nets_exactly_the_records_both_sides_agree_on(
        items: list[rules.Obligation], only_home: set[int], changed: set[int]) -> None:
    digests = [f"{i:064x}" for i in range(len(items))]
    home_side = _entries((f"r{i:03d}", o.debtor, o.creditor, o.amount_fen, digests[i])
                         for i, o in enumerate(items))
    host_side = _entries((f"r{i:03d}", o.debtor, o.creditor,
                          o.amount_fen + (1 if i in changed else 0), digests[i])
                         for i, o in enumerate(items) if i not in only_home)
    cleared = run.clear(home_side, host_side)
    agreed = [o for i, o in enumerate(items) if i not in only_home and i not in changed]
    assert cleared.positions == rules.multilateral_positions(agreed)
    assert sum(cleared.positions.values()) == 0
    gross = rules.gross_by_pair(agreed)
    assert cleared.gross == {pair: v for pair, v in gross.items() if v}
    expected = {pair: v for pair, v in rules.bilateral_positions(agreed).items()
                if gross.get(pair, 0) or gross.get(pair[::-1], 0)}
    assert cleared.bilateral == expected
    left_out = {r for records in cleared.excluded.values() for r, _ in records}
    assert left_out == {f"r{i:03d}" for i in range(len(items)) if i in only_home | changed}
    for platform, print_ in cleared.fingerprints.items():
        mine = [(o.amount_fen, digests[i]) for i, o in enumerate(items)
                if i not in only_home | changed and platform in (o.debtor, o.creditor)]
        assert print_ == run.fingerprint(mine)
