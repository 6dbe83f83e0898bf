"""Roaming rules: choosing a host, mirroring the host's states, splitting a charge."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from suanli.domain.jobs import TRANSITIONS, JobState
from suanli.domain.roaming import (
    EntitlementBalance,
    RemoteOffer,
    mirror_path,
    plan_home_charge,
    rank_offers,
)


def _offer(origin: str, unit: str | None, *, free: int = 4, price: int = 100,
           age: float = 1.0) -> RemoteOffer:
    return RemoteOffer(origin, "nvidia-a100", "CN-SC", "chengyu", free, free, price,
                       Decimal(unit) if unit else None, age)


def test_offers_are_ranked_cheapest_unit_first_and_filtered() -> None:
    offers = [_offer("CN.A", "9"), _offer("CN.B", "7"), _offer("CN.C", None),
              _offer("CN.D", "5", free=1), _offer("CN.E", "6", age=10_000),
              _offer("CN.F", "4", price=900), _offer("CN.G", "3")]
    ranked = rank_offers(offers, devices=2, max_price_fen_per_device_hour=500,
                         excluded=frozenset({"CN.G"}))
    assert [o.origin for o in ranked] == ["CN.B", "CN.A", "CN.C"]


def test_the_home_copy_follows_the_host_forward_only() -> None:
    S = JobState
    assert mirror_path(S.PLACED, S.RUNNING) == [S.DISPATCHED, S.RUNNING]
    assert mirror_path(S.PLACED, S.SUCCEEDED) == [S.DISPATCHED, S.SUCCEEDED]
    assert mirror_path(S.PLACED, S.FAILED) == [S.FAILED]
    assert mirror_path(S.RUNNING, S.CANCELLED) == [S.CANCELLED]
    for host in (S.PENDING, S.PLACED, S.PREEMPTED):  # the host's own failover stays there
        assert mirror_path(S.RUNNING, host) == []
    assert mirror_path(S.SUCCEEDED, S.FAILED) == []


@given(st.sampled_from(list(JobState)), st.sampled_from(list(JobState)))
def test_every_mirror_path_is_legal_and_never_goes_back_to_pending(home: JobState,
                                                                   host: JobState) -> None:
    path = mirror_path(home, host)
    state = home
    for step in path:
        assert step in TRANSITIONS[state]
        assert step not in (JobState.PENDING, JobState.PLACED)
        state = step
    if path:
        assert state == host


balances = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**7)), max_size=5).map(
    lambda items: [EntitlementBalance(f"e{i}", units, fen) for i, (units, fen) in
                   enumerate(items)])


@given(st.integers(0, 10**8), st.integers(0, 10**9), balances, st.integers(0, 10**8),
       st.booleans())
def test_a_charge_is_split_exactly_and_draws_no_more_than_held(
        amount: int, units: int, held: list[EntitlementBalance], wallet: int,
        prepaid: bool) -> None:
    charge = plan_home_charge(amount, units, held, wallet, prepaid)
    assert charge.covered_fen + charge.wallet_fen + charge.unpaid_fen == amount
    assert min(charge.covered_fen, charge.wallet_fen, charge.unpaid_fen) >= 0
    assert sum(d.units_micro for d in charge.draws) <= units
    by_id = {balance.id: balance for balance in held}
    for draw in charge.draws:
        balance = by_id[draw.entitlement_id]
        assert 0 < draw.units_micro <= balance.remaining_units_micro
        assert 0 <= draw.value_fen <= balance.remaining_fen
    if charge.wallet_fen:
        assert prepaid and charge.wallet_fen <= wallet
    if not prepaid:
        assert charge.wallet_fen == 0


def test_entitlements_are_drawn_first_and_empty_exactly() -> None:
    held = [EntitlementBalance("e1", 1_000_000, 300), EntitlementBalance("e2", 3_000_000, 900)]
    charge = plan_home_charge(1000, 2_000_000, held, 10_000, prepaid=True)
    assert [(d.entitlement_id, d.units_micro, d.value_fen) for d in charge.draws] == [
        ("e1", 1_000_000, 300), ("e2", 1_000_000, 300)]
    assert charge.covered_fen == 1000 and charge.wallet_fen == 0
    assert charge.margin_fen == 600 - 1000  # sold cheaper than the host charges
    partly = plan_home_charge(1000, 4_000_000, held[:1], 10_000, prepaid=True)
    assert partly.covered_fen == 250 and partly.wallet_fen == 750
    broke = plan_home_charge(1000, 1_000_000, [], 10, prepaid=True)
    assert broke.unpaid_fen == 1000 and broke.wallet_fen == 0


@given(st.integers(0, 10**8), st.integers(0, 10**9), balances, st.integers(0, 10**8),
       st.booleans(), st.integers(0, 100))
def test_vouchers_pay_between_entitlements_and_the_wallet(
        amount: int, units: int, held: list[EntitlementBalance], wallet: int, prepaid: bool,
        percent: int) -> None:
    seen = []

    def vouchers(rest: int) -> int:
        seen.append(rest)
        return rest * percent // 100

    charge = plan_home_charge(amount, units, held, wallet, prepaid, vouchers)
    assert (charge.covered_fen + charge.voucher_fen + charge.wallet_fen + charge.unpaid_fen
            == amount)
    if seen:  # asked once, about what entitlements left
        assert seen == [amount - charge.covered_fen]
        assert charge.voucher_fen == seen[0] * percent // 100
    else:
        assert charge.voucher_fen == 0 and charge.covered_fen == amount
