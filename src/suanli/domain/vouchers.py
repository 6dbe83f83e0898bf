"""Compute vouchers (算力券): subsidy programmes, tenants' grants, and discounting a bill line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from suanli.domain.errors import ValidationFailed
from suanli.domain.resources import WESTERN_HUBS, Hub
from suanli.domain.tariffs import check_decimal, check_identifier
from suanli.domain.tenants import TenantClass

MAX_PROGRAMME_BUDGET_FEN = 10**13  # 100 billion CNY
MAX_LINE_FEN = 10**15
MAX_VOUCHERS_PER_LINE = 64
COVERAGE_DECIMALS = 4
# Programmes target those who cannot otherwise afford compute (small firms, start-ups,
# research); a programme may name any subset of these.
SUBSIDISED_CLASSES = frozenset({TenantClass.SMALL_FIRM, TenantClass.START_UP,
                                TenantClass.RESEARCH})


class LineCategory(StrEnum):
    COMPUTE = "compute"
    NETWORK = "network"  # transfer to and from a pool: covered only by the western extra


def _check_fen(value: object, field_name: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 <= value <= high):
        raise ValidationFailed(f"must be an int fen between 0 and {high}", field=field_name)
    return value


def _check_aware(value: object, field_name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed("must be a timezone-aware datetime", field=field_name)
    return value


@dataclass(frozen=True)
class Programme:
    """A subsidy plan (补贴计划) with its budget and rules; None for a filter means any."""

    id: str
    issuer: str  # the platform operator or government body paying for it
    budget_fen: int
    coverage: Decimal  # share of an eligible compute line the programme pays, 0 < c <= 1
    cap_fen_per_tenant: int
    eligible_tenant_classes: frozenset[TenantClass]
    valid_from: datetime
    valid_until: datetime  # exclusive
    eligible_hubs: frozenset[Hub] | None = None
    eligible_provinces: frozenset[str] | None = None
    eligible_provider_ids: frozenset[str] | None = None
    # 网算双补: extra share for usage in a western hub, paid on compute and network lines.
    western_extra_coverage: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        check_identifier(self.id, "id")
        check_identifier(self.issuer, "issuer")
        _check_fen(self.budget_fen, "budget_fen", MAX_PROGRAMME_BUDGET_FEN)
        _check_fen(self.cap_fen_per_tenant, "cap_fen_per_tenant", MAX_PROGRAMME_BUDGET_FEN)
        coverage = check_decimal(self.coverage, "coverage", Decimal(0), Decimal(1),
                                 COVERAGE_DECIMALS)
        if coverage == 0:
            raise ValidationFailed("must be above 0", field="coverage")
        extra = check_decimal(self.western_extra_coverage, "western_extra_coverage",
                              Decimal(0), Decimal(1), COVERAGE_DECIMALS)
        object.__setattr__(self, "coverage", coverage)
        object.__setattr__(self, "western_extra_coverage", extra)
        classes = frozenset(self.eligible_tenant_classes)
        if not classes or not classes <= SUBSIDISED_CLASSES:
            raise ValidationFailed(
                "must be a non-empty subset of "
                f"{', '.join(sorted(c.value for c in SUBSIDISED_CLASSES))}",
                field="eligible_tenant_classes")
        object.__setattr__(self, "eligible_tenant_classes", classes)
        start = _check_aware(self.valid_from, "valid_from")
        if _check_aware(self.valid_until, "valid_until") <= start:
            raise ValidationFailed("must be after valid_from", field="valid_until")
        for name in ("eligible_hubs", "eligible_provinces", "eligible_provider_ids"):
            value = getattr(self, name)
            if value is not None:
                if not value:
                    raise ValidationFailed("leave it None for any; empty matches nothing",
                                           field=name)
                object.__setattr__(self, name, frozenset(value))

    def share(self, context: LineContext) -> Decimal:
        """The share of a line this programme pays in this context (0 when ineligible)."""
        if not self.eligible(context):
            return Decimal(0)
        western = context.hub in WESTERN_HUBS
        extra = self.western_extra_coverage if western else Decimal(0)
        if context.category == LineCategory.NETWORK:
            return extra
        return min(Decimal(1), self.coverage + extra)

    def eligible(self, context: LineContext) -> bool:
        return (context.tenant_class in self.eligible_tenant_classes
                and self.valid_from <= context.at < self.valid_until
                and (self.eligible_hubs is None or context.hub in self.eligible_hubs)
                and (self.eligible_provinces is None
                     or context.province in self.eligible_provinces)
                and (self.eligible_provider_ids is None
                     or context.provider_id in self.eligible_provider_ids))


@dataclass(frozen=True, slots=True)
class LineContext:
    """Who is paying for what, where and when: what eligibility is judged on."""

    tenant_id: str
    tenant_class: TenantClass
    category: LineCategory
    at: datetime
    provider_id: str
    province: str  # ISO 3166-2:CN, e.g. CN-GZ
    hub: Hub | None = None


@dataclass(frozen=True, slots=True)
class Voucher:
    """One tenant's grant from a programme (算力券)."""

    id: str
    programme_id: str
    tenant_id: str
    granted_fen: int
    remaining_fen: int
    valid_until: datetime | None = None  # None: the programme's end

    def __post_init__(self) -> None:
        for name in ("id", "programme_id", "tenant_id"):
            check_identifier(getattr(self, name), name)
        _check_fen(self.granted_fen, "granted_fen", MAX_PROGRAMME_BUDGET_FEN)
        _check_fen(self.remaining_fen, "remaining_fen", self.granted_fen)
        if self.valid_until is not None:
            _check_aware(self.valid_until, "valid_until")


@dataclass(frozen=True, slots=True)
class ProgrammeBudget:
    """A programme's money as this tenant sees it: budget left overall and used by the tenant."""

    programme: Programme
    remaining_fen: int
    tenant_used_fen: int

    def __post_init__(self) -> None:
        _check_fen(self.remaining_fen, "remaining_fen", self.programme.budget_fen)
        _check_fen(self.tenant_used_fen, "tenant_used_fen", MAX_PROGRAMME_BUDGET_FEN)

    @property
    def tenant_room_fen(self) -> int:
        return max(0, self.programme.cap_fen_per_tenant - self.tenant_used_fen)


@dataclass(frozen=True, slots=True)
class VoucherAllocation:
    voucher_id: str
    programme_id: str
    discount_fen: int


@dataclass(frozen=True)
class VoucherOutcome:
    allocations: tuple[VoucherAllocation, ...]
    payable_fen: int  # what the tenant still pays for the line
    vouchers: Mapping[str, Voucher] = field(default_factory=dict)  # spent vouchers, updated
    budgets: Mapping[str, ProgrammeBudget] = field(default_factory=dict)  # updated

    @property
    def discount_fen(self) -> int:
        return sum(allocation.discount_fen for allocation in self.allocations)


def apply_vouchers(amount_fen: int, context: LineContext, vouchers: Sequence[Voucher],
                   budgets: Mapping[str, ProgrammeBudget]) -> VoucherOutcome:
    """Discount one line. Vouchers are used soonest-expiring first, then by id; each programme
    pays at most floor(amount x its share) of the line, and never more than its remaining
    budget, the tenant's remaining cap or the voucher's remaining."""
    _check_fen(amount_fen, "amount_fen", MAX_LINE_FEN)
    _check_aware(context.at, "context.at")
    if len(vouchers) > MAX_VOUCHERS_PER_LINE:
        raise ValidationFailed(f"at most {MAX_VOUCHERS_PER_LINE} vouchers a line",
                               field="vouchers")
    if len({voucher.id for voucher in vouchers}) != len(vouchers):
        raise ValidationFailed("a voucher is listed twice", field="vouchers")
    for programme_id, budget in budgets.items():
        if budget.programme.id != programme_id:
            raise ValidationFailed(f"budget under {programme_id} is for {budget.programme.id}",
                                   field="budgets")
    usable = sorted((v for v in vouchers if _usable(v, context, budgets)),
                    key=lambda v: (_expiry(v, budgets), v.id))
    # Floor, not half-even: a subsidy rounded up would pay more than its stated share.
    share_left = {
        pid: int((amount_fen * budget.programme.share(context)).to_integral_value(ROUND_DOWN))
        for pid, budget in budgets.items()
    }
    payable = amount_fen
    allocations: list[VoucherAllocation] = []
    spent: dict[str, Voucher] = {}
    updated = dict(budgets)
    for voucher in usable:
        budget = updated[voucher.programme_id]
        discount = min(payable, share_left[voucher.programme_id], voucher.remaining_fen,
                       budget.remaining_fen, budget.tenant_room_fen)
        if discount <= 0:
            continue
        payable -= discount
        share_left[voucher.programme_id] -= discount
        spent[voucher.id] = replace(voucher, remaining_fen=voucher.remaining_fen - discount)
        updated[voucher.programme_id] = replace(
            budget, remaining_fen=budget.remaining_fen - discount,
            tenant_used_fen=budget.tenant_used_fen + discount)
        allocations.append(VoucherAllocation(voucher.id, voucher.programme_id, discount))
    assert 0 <= payable <= amount_fen
    assert payable + sum(a.discount_fen for a in allocations) == amount_fen
    return VoucherOutcome(tuple(allocations), payable, spent,
                          {pid: updated[pid] for pid in {a.programme_id for a in allocations}})


def _usable(voucher: Voucher, context: LineContext,
            budgets: Mapping[str, ProgrammeBudget]) -> bool:
    budget = budgets.get(voucher.programme_id)
    if budget is None or voucher.tenant_id != context.tenant_id or voucher.remaining_fen <= 0:
        return False
    if voucher.valid_until is not None and context.at >= voucher.valid_until:
        return False
    return budget.programme.share(context) > 0


def _expiry(voucher: Voucher, budgets: Mapping[str, ProgrammeBudget]) -> datetime:
    programme_end = budgets[voucher.programme_id].programme.valid_until
    if voucher.valid_until is None:
        return programme_end
    return min(voucher.valid_until, programme_end)
