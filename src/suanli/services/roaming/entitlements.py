"""Entitlements (算力权益): prepaid compute-unit hours a tenant holds at home, drawn first
when its jobs roam (services.roaming.money.charge_home).

Only an operator grants one, at the platform's price per compute-unit hour (set by an
operator, `PUT /v1/federation/entitlement-price`; never a price the caller names), and the
money comes from the grantee's wallet or from a funded voucher programme: nothing is minted.
The grant is one ledger transfer into `entitlement:<tenant>`, idempotent by key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.ledger import aware
from suanli.adapters.store.repositories import roaming as store
from suanli.domain.accounts import fund_account_id, wallet_account_id
from suanli.domain.errors import Conflict, Forbidden, ValidationFailed
from suanli.domain.federation_records import Entitlement
from suanli.domain.jobs import check_idempotency_key
from suanli.domain.ledger import Account, AccountKind, Transfer
from suanli.domain.roaming import (
    MAX_ENTITLEMENT_PRICE_FEN_PER_UNIT_HOUR,
    entitlement_price_fen,
)
from suanli.domain.tariffs import check_decimal
from suanli.domain.tenants import Principal, Scope, TenantClass, require_scope
from suanli.services import tenants
from suanli.services.billing import tariffs as tariff_store
from suanli.services.billing import vouchers as vouchers_store
from suanli.services.billing import wallets as billing
from suanli.services.federation import platforms as federation

PRICE_STATE = "entitlement_price"
MAX_UNITS_MICRO = 10**15
MICRO = 10**6
WALLET, PROGRAMME = "wallet", "programme"


def entitlement_account_id(tenant_id: str) -> str:
    return f"entitlement:{tenant_id}"


def _operator(principal: Principal, what: str) -> None:
    if not principal.is_operator:
        raise Forbidden(f"only an operator {what}")


# -- the platform's price --------------------------------------------------------------------

@dataclass(frozen=True)
class EntitlementPrice:
    fen_per_unit_hour: Decimal
    set_by: str
    set_at: datetime


def price(session: Session) -> EntitlementPrice | None:
    value = federation.get_state(session, PRICE_STATE)
    if value is None:
        return None
    return EntitlementPrice(Decimal(value["fen_per_unit_hour"]), value["set_by"],
                            datetime.fromisoformat(value["set_at"]))


def set_price(session: Session, principal: Principal, fen_per_unit_hour: Any,
              now: datetime) -> EntitlementPrice:
    """An operator sets what one compute-unit hour of entitlement costs from now on (grants
    already made keep their price)."""
    _operator(principal, "sets the entitlement price")
    require_scope(principal, Scope.ADMIN)
    value = check_decimal(tariff_store.parse_decimal(fen_per_unit_hour, "fen_per_unit_hour"),
                          "fen_per_unit_hour", Decimal("0.0001"),
                          MAX_ENTITLEMENT_PRICE_FEN_PER_UNIT_HOUR, 4)
    federation.put_state(session, PRICE_STATE, {"fen_per_unit_hour": str(value),
                                                "set_by": principal.tenant_id,
                                                "set_at": now.isoformat()}, now)
    return EntitlementPrice(value, principal.tenant_id, now)


# -- granting --------------------------------------------------------------------------------

def grant(session: Session, principal: Principal, *, tenant_id: str, units: Any,
          idempotency_key: str, pay_from: str, programme_id: str | None,
          valid_until: datetime | None, now: datetime) -> tuple[Entitlement, bool]:
    """Grant a tenant `units` compute-unit hours at the platform's price, paid from its wallet
    or from a voucher programme's fund; the same key again is the same grant."""
    _operator(principal, "grants entitlements")
    require_scope(principal, Scope.ADMIN, Scope.SPEND)
    key = check_idempotency_key(idempotency_key)
    units_micro = _units_micro(units)
    fund = _fund(pay_from, programme_id)
    if valid_until is not None and (valid_until.utcoffset() is None or valid_until <= now):
        raise ValidationFailed("must be a time with offset after now", field="valid_until")
    tenant = tenants.get_tenant(session, tenant_id)
    source = fund or wallet_account_id(tenant.id)
    entitlement_id = "ent_" + hashlib.sha256(f"{tenant.id}\n{key}".encode()).hexdigest()[:24]
    existing = store.get_entitlement(session, entitlement_id)
    if existing is not None:
        purchase = ledger_store.get_transfer(session, f"{entitlement_id}:purchase")
        if existing.units_micro != units_micro or purchase is None or \
                purchase.debit_account_id != source:
            raise Conflict("this Idempotency-Key was used for a different entitlement",
                           field="Idempotency-Key")
        return existing, False
    current = price(session)
    if current is None:
        raise Conflict("this platform sells no entitlements yet: an operator sets the price "
                       "with PUT /v1/federation/entitlement-price", field="units")
    price_fen = entitlement_price_fen(units_micro, current.fen_per_unit_hour)
    account = entitlement_account_id(tenant.id)
    ledger_store.open_account(session, Account.open(account, AccountKind.ENTITLEMENT), now,
                              owner_tenant_id=tenant.id)
    if pay_from == WALLET:
        billing.ensure_wallet(session, tenant.id, now)
    # Locks as charges take them: both accounts (one statement, id order), then the
    # programme row.
    ledger_store.lock_accounts(session, [source, account])
    if programme_id is not None:
        _check_programme(session, programme_id, TenantClass(tenant.tenant_class), price_fen,
                         now)
    ledger_store.apply(session, Transfer(f"{entitlement_id}:purchase", source, account,
                                         price_fen, "entitlement", reference=tenant.id), now)
    row = Entitlement(id=entitlement_id, tenant_id=tenant.id, idempotency_key=key,
                      units_micro=units_micro, remaining_units_micro=units_micro,
                      price_fen=price_fen, remaining_fen=price_fen, valid_until=valid_until,
                      created_at=now)
    if not store.add_entitlement(session, row):  # a concurrent grant under the same key won
        raise Conflict("a concurrent request used this Idempotency-Key; retry",
                       field="Idempotency-Key")
    return row, True


def _units_micro(units: Any) -> int:
    value = tariff_store.parse_decimal(units, "units")
    if value <= 0 or value != value.quantize(Decimal("0.000001")):
        raise ValidationFailed("must be positive with at most 6 decimal places", field="units")
    micro = int((value * MICRO).to_integral_value(ROUND_DOWN))
    if not 1 <= micro <= MAX_UNITS_MICRO:
        raise ValidationFailed(f"must be at most {MAX_UNITS_MICRO // MICRO} unit-hours",
                               field="units")
    return micro


def _fund(pay_from: str, programme_id: str | None) -> str | None:
    """The programme fund that pays, or None when the tenant's wallet does."""
    if pay_from == WALLET:
        if programme_id is not None:
            raise ValidationFailed("only with pay_from 'programme'", field="programme_id")
        return None
    if pay_from != PROGRAMME:
        raise ValidationFailed("one of wallet, programme", field="pay_from")
    if programme_id is None:
        raise ValidationFailed("required with pay_from 'programme'", field="programme_id")
    return fund_account_id(vouchers_store.check_programme_id(programme_id))


def _check_programme(session: Session, programme_id: str, tenant_class: TenantClass,
                     price_fen: int, now: datetime) -> None:
    """The programme is running, the tenant is eligible, and its budget not promised to
    vouchers still covers the price (the caller holds the fund account's lock)."""
    row = vouchers_store.get_programme(session, programme_id, lock=True)
    programme = vouchers_store.programme_from_row(row)
    if not programme.valid_from <= now < programme.valid_until:
        raise Conflict(f"programme {row.id} runs {programme.valid_from.isoformat()} to "
                       f"{programme.valid_until.isoformat()}", field="programme_id")
    if tenant_class not in programme.eligible_tenant_classes:
        raise ValidationFailed(f"the programme is not for a {tenant_class.value}",
                               field="tenant_id")
    free = vouchers_store.unpromised_budget_fen(session, row, now)
    if price_fen > free:
        raise Conflict(f"programme {row.id} has {free} fen not promised to vouchers; the "
                       f"entitlement costs {price_fen} fen", field="programme_id")


def entitlements(session: Session, tenant_id: str) -> list[Entitlement]:
    return store.list_entitlements(session, tenant_id)


def as_json(row: Entitlement) -> dict[str, Any]:
    micro = Decimal(MICRO)
    return {"id": row.id, "tenant_id": row.tenant_id, "units": str(row.units_micro / micro),
            "remaining_units": str(row.remaining_units_micro / micro),
            "price_fen": row.price_fen, "remaining_fen": row.remaining_fen,
            "valid_until": aware(row.valid_until).isoformat() if row.valid_until else None}
