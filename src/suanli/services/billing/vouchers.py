"""Voucher programmes (补贴计划) and grants (算力券) in the database.

A programme's budget is money: creating it moves `budget_fen` from outside into its
`programme:<id>` ledger account, and every discount is a transfer out of that account. The
account's balance flag makes overspending impossible; the programme row, locked by every charge
that draws on it, makes each draw see the budget that is really left.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import billing as billing_repo
from suanli.adapters.store.repositories.billing import (  # callers use them from here
    programme_from_row as programme_from_row,
)
from suanli.adapters.store.repositories.billing import voucher_from_row as voucher_from_row
from suanli.domain.accounts import EXTERNAL_ACCOUNT, fund_account_id
from suanli.domain.billing_records import ProgrammeRecord, VoucherRecord
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.jobs import check_idempotency_key
from suanli.domain.ledger import Account, AccountKind, Transfer
from suanli.domain.resources import Hub, check_name, check_province
from suanli.domain.tenants import Principal, TenantClass
from suanli.domain.time import aware, utc
from suanli.domain.vouchers import MAX_PROGRAMME_BUDGET_FEN, Programme
from suanli.services import tenants
from suanli.services.billing import wallets as billing
from suanli.services.billing.tariffs import parse_decimal

# Short enough that `<usage record id>:voucher:<programme id>` stays a valid transfer id.
_PROGRAMME_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
MAX_LIST = 200
_E4 = Decimal(10_000)


def check_programme_id(value: str) -> str:
    if not isinstance(value, str) or not _PROGRAMME_ID_RE.match(value):
        raise ValidationFailed("2-40 characters of a-z 0-9 -, starting with a letter or digit",
                               field="id")
    return value


def _require_operator(principal: Principal, what: str) -> None:
    if not principal.is_operator:
        raise Forbidden(f"only an operator {what}")


E = TypeVar("E", bound=Enum)


def _enum_set(enum_type: type[E], values: Any, field: str) -> frozenset[E] | None:
    if values is None:
        return None
    try:
        return frozenset(enum_type(v) for v in values)
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)
        raise ValidationFailed(f"unknown value; one of {choices}", field=field) from None


def _programme(fields: Mapping[str, Any]) -> Programme:
    """Validate a programme from request fields (decimals for shares, int fen for money)."""
    provinces = fields.get("eligible_provinces")
    if provinces is not None:
        provinces = frozenset(check_province(p, "eligible_provinces") for p in provinces)
    providers = fields.get("eligible_provider_ids")
    if providers is not None:
        providers = frozenset(providers)
    # Request values as they came: Programme checks each one's type and range, naming it.
    budget: Any = fields.get("budget_fen")
    cap: Any = fields.get("cap_fen_per_tenant")
    valid_from: Any = fields.get("valid_from")
    valid_until: Any = fields.get("valid_until")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget < 1:
        raise ValidationFailed("a programme needs a budget of at least 1 fen", field="budget_fen")
    return Programme(
        id=check_programme_id(fields.get("id", "")),
        issuer=check_name(fields.get("issuer", ""), "issuer"),
        budget_fen=budget,
        coverage=parse_decimal(fields.get("coverage"), "coverage"),
        cap_fen_per_tenant=cap,
        eligible_tenant_classes=_enum_set(TenantClass, fields.get("eligible_tenant_classes"),
                                          "eligible_tenant_classes") or frozenset(),
        valid_from=valid_from, valid_until=valid_until,
        eligible_hubs=_enum_set(Hub, fields.get("eligible_hubs"), "eligible_hubs"),
        eligible_provinces=provinces, eligible_provider_ids=providers,
        western_extra_coverage=parse_decimal(fields.get("western_extra_coverage", 0),
                                             "western_extra_coverage"))


def _row_values(programme: Programme, name: str) -> dict[str, Any]:
    def listed(values: frozenset | None) -> list | None:
        return None if values is None else sorted(str(v) for v in values)

    return {"id": programme.id, "name": name, "issuer": programme.issuer,
            "budget_fen": programme.budget_fen,
            "coverage_e4": int(programme.coverage * _E4),
            "western_extra_coverage_e4": int(programme.western_extra_coverage * _E4),
            "cap_fen_per_tenant": programme.cap_fen_per_tenant,
            "eligible_tenant_classes": listed(programme.eligible_tenant_classes),
            "eligible_hubs": listed(programme.eligible_hubs),
            "eligible_provinces": listed(programme.eligible_provinces),
            "eligible_provider_ids": listed(programme.eligible_provider_ids),
            "valid_from": utc(programme.valid_from), "valid_until": utc(programme.valid_until)}


def create_programme(session: Session, principal: Principal, fields: Mapping[str, Any],
                     now: datetime) -> tuple[ProgrammeRecord, bool]:
    """Create a programme and fund its budget; the same id and fields again is the same
    programme (created=False), different fields under the id are a 409."""
    _require_operator(principal, "creates voucher programmes")
    programme = _programme(fields)
    name = check_name(fields.get("name") or programme.id, "name")
    values = _row_values(programme, name)
    existing = billing_repo.get_programme(session, programme.id)
    if existing is not None:
        if any(_comparable(getattr(existing, k)) != _comparable(v) for k, v in values.items()):
            raise Conflict(f"programme {programme.id} exists with different fields", field="id")
        return existing, False
    billing.ensure_platform_accounts(session, now)
    fund = fund_account_id(programme.id)
    ledger_store.open_account(session, Account.open(fund, AccountKind.PROGRAMME_FUND), now)
    ledger_store.apply(session, Transfer(f"{fund}:budget", EXTERNAL_ACCOUNT, fund,
                                         programme.budget_fen, "programme-budget",
                                         reference=programme.id), now)
    record = billing_repo.add_programme(session, ProgrammeRecord(
        **values, fund_account_id=fund, created_by=principal.tenant_id, created_at=now))
    return record, True


def _comparable(value: Any) -> Any:
    return aware(value) if isinstance(value, datetime) else value


def get_programme(session: Session, programme_id: str, *,
                  lock: bool = False) -> ProgrammeRecord:
    checked = check_programme_id(programme_id)
    row = (billing_repo.lock_programme(session, checked) if lock
           else billing_repo.get_programme(session, checked))
    if row is None:
        raise NotFound(f"programme {programme_id} does not exist", field="programme_id")
    return row


def list_programmes(session: Session, limit: int = 50, offset: int = 0
                    ) -> list[ProgrammeRecord]:
    return billing_repo.list_programmes(session, min(limit, MAX_LIST), offset)


@dataclass(frozen=True)
class ProgrammeStanding:
    remaining_fen: int  # the fund's balance: budget not yet paid out
    paid_fen: int  # paid out as discounts (and entitlements bought from the programme)
    granted_fen: int  # promised in vouchers, never more than the budget
    vouchers: int


def unpromised_budget_fen(session: Session, row: ProgrammeRecord, now: datetime) -> int:
    """What of the fund's balance no usable voucher can still claim: the most a new grant,
    or an entitlement paid from the programme, may take. The caller holds the fund account's
    and the programme row's locks (in that order, as charges take them)."""
    fund = ledger_store.get_account(session, row.fund_account_id)
    assert fund is not None
    promised = billing_repo.promised_fen(session, row.id, utc(now))
    if now >= aware(row.valid_until):
        promised = 0  # an ended programme's vouchers pay nothing more
    return max(0, fund.available_fen - int(promised))


def standing(session: Session, row: ProgrammeRecord) -> ProgrammeStanding:
    fund = ledger_store.get_account(session, row.fund_account_id)
    assert fund is not None
    granted, count = billing_repo.granted_totals(session, row.id)
    return ProgrammeStanding(fund.available_fen, fund.debits_posted_fen, int(granted), int(count))


def grant(session: Session, principal: Principal, programme_id: str, *, tenant_id: str,
          granted_fen: int, idempotency_key: str, now: datetime,
          valid_until: datetime | None = None) -> tuple[VoucherRecord, bool]:
    """Grant a tenant a voucher; the same key again is the same grant (created=False).

    The tenant's class must be eligible, its grants from one programme never add up to more
    than the programme's per-tenant cap, and no grant promises budget that is not there
    (issue 12): what usable vouchers can still claim never exceeds the fund's balance.
    """
    _require_operator(principal, "grants vouchers")
    key = check_idempotency_key(idempotency_key)
    # Locks as charges take them: the fund account, then the programme row, which serialises
    # grants against the per-tenant cap and the budget.
    ledger_store.lock_accounts(session, [fund_account_id(check_programme_id(programme_id))])
    row = get_programme(session, programme_id, lock=True)
    existing = billing_repo.voucher_by_key(session, row.id, key)
    if existing is not None:
        same = (existing.tenant_id, existing.granted_fen, _comparable(existing.valid_until)) == (
            tenant_id, granted_fen, valid_until)
        if not same:
            raise Conflict("this Idempotency-Key was used for a different grant",
                           field="Idempotency-Key")
        return existing, False
    programme = programme_from_row(row)
    tenant = tenants.get_tenant(session, tenant_id)
    if TenantClass(tenant.tenant_class) not in programme.eligible_tenant_classes:
        raise ValidationFailed(f"tenant {tenant.id} is a {tenant.tenant_class}; the programme "
                               f"is for {', '.join(sorted(programme.eligible_tenant_classes))}",
                               field="tenant_id")
    _check_amount(session, programme, tenant.id, granted_fen)
    free = unpromised_budget_fen(session, row, now)
    if granted_fen > free:
        raise Conflict(f"programme {row.id} has {free} fen of budget not promised to vouchers; "
                       f"a grant of {granted_fen} fen would promise money it does not hold",
                       field="granted_fen")
    if valid_until is not None and (valid_until.tzinfo is None or valid_until <= now
                                    or valid_until > programme.valid_until):
        raise ValidationFailed("must be a timezone-aware time after now and not after the "
                               "programme's end", field="valid_until")
    if now >= programme.valid_until:
        raise Conflict(f"programme {row.id} ended at {programme.valid_until.isoformat()}",
                       field="programme_id")
    voucher = VoucherRecord(id=f"v-{secrets.token_hex(10)}", programme_id=row.id,
                         tenant_id=tenant.id, idempotency_key=key, granted_fen=granted_fen,
                         remaining_fen=granted_fen,
                         valid_until=None if valid_until is None else utc(valid_until),
                         created_at=now)
    try:
        with session.begin_nested():
            billing_repo.add_voucher(session, voucher)
    except IntegrityError:  # pragma: no cover - the programme lock makes this a retry race
        raise Conflict("a concurrent grant used this Idempotency-Key; retry",
                       field="Idempotency-Key") from None
    return voucher, True


def _check_amount(session: Session, programme: Programme, tenant_id: str,
                  granted_fen: int) -> None:
    if isinstance(granted_fen, bool) or not isinstance(granted_fen, int) or not (
            1 <= granted_fen <= MAX_PROGRAMME_BUDGET_FEN):
        raise ValidationFailed("must be an int fen of at least 1", field="granted_fen")
    before = billing_repo.granted_to_tenant_fen(session, programme.id, tenant_id)
    if before + granted_fen > programme.cap_fen_per_tenant:
        raise ValidationFailed(
            f"the tenant's grants would reach {before + granted_fen} fen, above the programme's "
            f"cap of {programme.cap_fen_per_tenant} fen per tenant", field="granted_fen")


def vouchers_of(session: Session, tenant_id: str, limit: int = 100) -> list[VoucherRecord]:
    return billing_repo.vouchers_of_tenant(session, tenant_id, min(limit, MAX_LIST))


def grants_of(session: Session, programme_id: str, limit: int = 100,
              offset: int = 0) -> list[VoucherRecord]:
    row = get_programme(session, programme_id)
    return billing_repo.vouchers_of_programme(session, row.id, min(limit, MAX_LIST), offset)
