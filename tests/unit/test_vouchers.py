"""Compute vouchers: eligibility, the western extra, order, and never overspending."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.domain.errors import ValidationFailed
from suanli.domain.resources import Hub
from suanli.domain.tenants import TenantClass
from suanli.domain.vouchers import (
    LineCategory,
    LineContext,
    Programme,
    ProgrammeBudget,
    Voucher,
    apply_vouchers,
)

D = Decimal
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _programme(**overrides: object) -> Programme:
    fields: dict[str, object] = {
        "id": "prog-1", "issuer": "gz-bureau", "budget_fen": 1_000_000, "coverage": D("0.3"),
        "cap_fen_per_tenant": 100_000,
        "eligible_tenant_classes": frozenset({TenantClass.SMALL_FIRM, TenantClass.START_UP}),
        "valid_from": START, "valid_until": END}
    fields.update(overrides)
    return Programme(**fields)  # type: ignore[arg-type]


def _context(**overrides: object) -> LineContext:
    fields: dict[str, object] = {"tenant_id": "ten-1", "tenant_class": TenantClass.START_UP,
                                 "category": LineCategory.COMPUTE, "at": NOW,
                                 "provider_id": "prov-1", "province": "CN-GZ",
                                 "hub": Hub.GUIZHOU}
    fields.update(overrides)
    return LineContext(**fields)  # type: ignore[arg-type]


def _voucher(voucher_id: str = "v-1", remaining: int = 50_000, **overrides: object) -> Voucher:
    fields: dict[str, object] = {"id": voucher_id, "programme_id": "prog-1",
                                 "tenant_id": "ten-1", "granted_fen": 50_000,
                                 "remaining_fen": remaining}
    fields.update(overrides)
    return Voucher(**fields)  # type: ignore[arg-type]


def _budgets(*programmes: Programme, used: int = 0) -> dict[str, ProgrammeBudget]:
    return {p.id: ProgrammeBudget(p, p.budget_fen, used) for p in programmes}


def test_voucher_pays_its_coverage_of_the_line() -> None:
    outcome = apply_vouchers(10_001, _context(), [_voucher()], _budgets(_programme()))
    assert outcome.discount_fen == 3000  # floor(10001 x 0.3 = 3000.3)
    assert outcome.payable_fen == 7001
    assert outcome.vouchers["v-1"].remaining_fen == 47_000
    assert outcome.budgets["prog-1"].remaining_fen == 997_000
    assert outcome.budgets["prog-1"].tenant_used_fen == 3000


def test_western_extra_covers_compute_and_network() -> None:
    programme = _programme(western_extra_coverage=D("0.2"))
    budgets = _budgets(programme)
    compute = apply_vouchers(10_000, _context(), [_voucher()], budgets)
    network = apply_vouchers(10_000, _context(category=LineCategory.NETWORK), [_voucher()],
                             budgets)
    eastern = apply_vouchers(10_000, _context(category=LineCategory.NETWORK, hub=Hub.YANGTZE,
                                              province="CN-SH"), [_voucher()], budgets)
    assert (compute.discount_fen, network.discount_fen, eastern.discount_fen) == (5000, 2000, 0)


@pytest.mark.parametrize("programme_overrides, context_overrides", [
    ({}, {"tenant_class": TenantClass.ENTERPRISE}),
    ({}, {"at": END}),
    ({}, {"at": START - timedelta(seconds=1)}),
    ({}, {"tenant_id": "ten-2"}),
    ({"eligible_hubs": frozenset({Hub.GANSU})}, {}),
    ({"eligible_provinces": frozenset({"CN-GS"})}, {}),
    ({"eligible_provider_ids": frozenset({"prov-9"})}, {}),
])
def test_ineligible_lines_get_nothing(programme_overrides: dict[str, object],
                                      context_overrides: dict[str, object]) -> None:
    outcome = apply_vouchers(10_000, _context(**context_overrides), [_voucher()],
                             _budgets(_programme(**programme_overrides)))
    assert outcome.allocations == () and outcome.payable_fen == 10_000


def test_soonest_expiring_voucher_is_used_first_and_the_programme_share_is_shared() -> None:
    late = _voucher("v-a", 2_000)
    soon = _voucher("v-b", 1_000, valid_until=NOW + timedelta(days=1))
    outcome = apply_vouchers(10_000, _context(), [late, soon], _budgets(_programme()))
    assert [(a.voucher_id, a.discount_fen) for a in outcome.allocations] == [
        ("v-b", 1_000), ("v-a", 2_000)]  # together no more than 30 % of the line
    assert outcome.payable_fen == 7_000


def test_budget_cap_and_voucher_limits_hold() -> None:
    programme = _programme(budget_fen=5_000, cap_fen_per_tenant=2_500)
    budgets = {"prog-1": ProgrammeBudget(programme, remaining_fen=800, tenant_used_fen=0)}
    assert apply_vouchers(10_000, _context(), [_voucher()], budgets).discount_fen == 800
    budgets = {"prog-1": ProgrammeBudget(programme, remaining_fen=5_000, tenant_used_fen=2_000)}
    assert apply_vouchers(10_000, _context(), [_voucher()], budgets).discount_fen == 500
    budgets = _budgets(programme)
    assert apply_vouchers(10_000, _context(), [_voucher(remaining=7)], budgets).discount_fen == 7


def test_expired_voucher_is_not_used() -> None:
    voucher = _voucher(valid_until=NOW)
    assert apply_vouchers(10_000, _context(), [voucher], _budgets(_programme())).payable_fen == (
        10_000)


@pytest.mark.parametrize("overrides, field", [
    ({"coverage": D(0)}, "coverage"),
    ({"coverage": D("1.5")}, "coverage"),
    ({"coverage": 0.3}, "coverage"),
    ({"budget_fen": -1}, "budget_fen"),
    ({"eligible_tenant_classes": frozenset({TenantClass.ENTERPRISE})},
     "eligible_tenant_classes"),
    ({"valid_until": START}, "valid_until"),
    ({"eligible_hubs": frozenset()}, "eligible_hubs"),
])
def test_programme_validation_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _programme(**overrides)
    assert caught.value.field == field


def test_voucher_remaining_cannot_exceed_its_grant() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _voucher(remaining=50_001)
    assert caught.value.field == "remaining_fen"


programmes = st.builds(
    _programme,
    id=st.sampled_from(["prog-1", "prog-2", "prog-3"]),
    budget_fen=st.integers(0, 20_000),
    coverage=st.decimals(min_value=D("0.0001"), max_value=1, places=4),
    cap_fen_per_tenant=st.integers(0, 15_000),
    western_extra_coverage=st.decimals(min_value=0, max_value=1, places=4),
)


@settings(max_examples=150, deadline=None)
@given(programme_list=st.lists(programmes, min_size=1, max_size=3, unique_by=lambda p: p.id),
       grants=st.lists(st.tuples(st.sampled_from(["prog-1", "prog-2", "prog-3"]),
                                 st.integers(0, 8_000)), min_size=1, max_size=6),
       lines=st.lists(st.tuples(st.integers(0, 30_000), st.sampled_from(list(LineCategory)),
                                st.sampled_from([Hub.GUIZHOU, Hub.YANGTZE])),
                      min_size=1, max_size=15),
       seed=st.integers(0, 1000))
def test_vouchers_never_overspend(programme_list: list[Programme],
                                  grants: list[tuple[str, int]],
                                  lines: list[tuple[int, LineCategory, Hub]], seed: int) -> None:
    budgets = _budgets(*programme_list)
    vouchers = {f"v-{i}": _voucher(f"v-{i}", amount, programme_id=pid, granted_fen=amount)
                for i, (pid, amount) in enumerate(grants)}
    spent_by_programme = {pid: 0 for pid in budgets}
    for amount, category, hub in lines:
        context = _context(category=category, hub=hub)
        shuffled = list(vouchers.values())
        random.Random(seed).shuffle(shuffled)
        outcome = apply_vouchers(amount, context, shuffled, budgets)
        # deterministic: the order vouchers are passed in does not matter
        assert outcome == apply_vouchers(amount, context, list(vouchers.values()), budgets)
        assert outcome.payable_fen + outcome.discount_fen == amount
        on_this_line = {pid: 0 for pid in budgets}
        for allocation in outcome.allocations:
            assert 0 < allocation.discount_fen <= vouchers[allocation.voucher_id].remaining_fen
            on_this_line[allocation.programme_id] += allocation.discount_fen
        for pid, discount in on_this_line.items():
            assert discount <= amount * budgets[pid].programme.share(context)
            spent_by_programme[pid] += discount
        vouchers.update(outcome.vouchers)
        budgets.update(outcome.budgets)
    for pid, budget in budgets.items():
        programme = budget.programme
        assert spent_by_programme[pid] <= programme.budget_fen
        assert spent_by_programme[pid] <= programme.cap_fen_per_tenant
        assert budget.remaining_fen == programme.budget_fen - spent_by_programme[pid]
    for i, (_, granted) in enumerate(grants):
        assert 0 <= vouchers[f"v-{i}"].remaining_fen <= granted
