"""API keys a tenant manages (list, create, rotate, revoke); operators manage any tenant's.

A key never gains more than the key that made it: its scopes are a subset of the caller's,
so a `read` key cannot mint a `spend` key. Keys are never deleted, only revoked, so the audit
log's key ids always name a row.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from suanli.adapters.store.ledger import aware
from suanli.adapters.store.repositories import tenants as repo
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.resources import check_name
from suanli.domain.tenants import (
    ALL_SCOPES,
    ApiKeyRecord,
    Principal,
    Scope,
    parse_scopes,
    require_scope,
)
from suanli.services import tenants

MAX_ACTIVE_KEYS_PER_TENANT = 100
MAX_LIST = 500
MAX_ROTATION_GRACE_S = 7 * 86_400  # the old key may live on this long after a rotation
MAX_KEY_LIFETIME = timedelta(days=3 * 366)
_KEY_ID_RE = re.compile(r"^[0-9a-f]{10}$")


@dataclass(frozen=True)
class KeyInfo:
    """A key as its owner and operators see it: never the secret, never its hash."""

    key_id: str
    tenant_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None
    rotated_from: str | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def info(row: ApiKeyRecord) -> KeyInfo:
    scopes = ALL_SCOPES if row.scopes is None else frozenset(Scope(v) for v in row.scopes)
    return KeyInfo(row.prefix, row.tenant_id, row.name or "",
                   tuple(s.value for s in Scope if s in scopes), aware(row.created_at),
                   aware(row.expires_at) if row.expires_at else None,
                   aware(row.revoked_at) if row.revoked_at else None, row.created_by,
                   row.rotated_from)


def _managed_tenant(principal: Principal, tenant_id: str | None) -> str:
    """The tenant whose keys the caller manages: its own, or any for an operator."""
    if tenant_id is None or tenant_id == principal.tenant_id:
        return principal.tenant_id
    if not principal.is_operator:
        raise Forbidden("you may only manage your own tenant's keys", field="tenant_id")
    return tenant_id


def _key(session: Session, principal: Principal, key_id: str, *, lock: bool = False
         ) -> ApiKeyRecord:
    if not isinstance(key_id, str) or not _KEY_ID_RE.match(key_id):
        raise ValidationFailed("a key id is 10 hex digits (the part after 'sl_')",
                               field="key_id")
    row = repo.lock_api_key(session, key_id) if lock else repo.get_api_key(session, key_id)
    # Another tenant's key is "not found" to a non-operator: key ids do not leak.
    if row is None or (row.tenant_id != principal.tenant_id and not principal.is_operator):
        raise NotFound(f"key {key_id} does not exist", field="key_id")
    return row


def _check_scopes(principal: Principal, scopes: frozenset[Scope]) -> None:
    beyond = scopes - principal.scopes
    if beyond:
        raise Forbidden(f"a key may not get scopes its maker lacks: "
                        f"{', '.join(sorted(s.value for s in beyond))}", field="scopes")


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ValidationFailed("must carry its UTC offset", field="expires_at")
    if not now < expires_at <= now + MAX_KEY_LIFETIME:
        raise ValidationFailed(f"must be after now and within {MAX_KEY_LIFETIME.days} days",
                               field="expires_at")


def list_keys(session: Session, principal: Principal, tenant_id: str | None = None
              ) -> list[KeyInfo]:
    """The keys of one tenant (revoked and expired ones too), oldest first."""
    require_scope(principal, Scope.READ)
    tenant = tenants.get_tenant(session, _managed_tenant(principal, tenant_id))
    return [info(row) for row in repo.keys_of_tenant(session, tenant.id, MAX_LIST)]


def create_key(session: Session, principal: Principal, now: datetime, *,
               tenant_id: str | None = None, name: str = "",
               scopes: list[str] | None = None, expires_at: datetime | None = None
               ) -> tuple[KeyInfo, str]:
    """A new key (its secret returned once); `scopes` default to the caller's own."""
    require_scope(principal, Scope.ADMIN)
    tenant = tenants.get_tenant(session, _managed_tenant(principal, tenant_id))
    wanted = principal.scopes if scopes is None else parse_scopes(scopes)
    _check_scopes(principal, wanted)
    _check_expiry(expires_at, now)
    name = check_name(name, "name") if name else ""
    active = repo.count_unrevoked_keys(session, tenant.id)
    if active >= MAX_ACTIVE_KEYS_PER_TENANT:
        raise Conflict(f"tenant {tenant.id} has {active} keys that are not revoked; revoke "
                       f"some first (at most {MAX_ACTIVE_KEYS_PER_TENANT})", field="tenant_id")
    secret = tenants.issue_key(session, tenant.id, now, name=name, scopes=wanted,
                               expires_at=expires_at, created_by=principal.tenant_id)
    key_id = tenants.key_id_of(secret)
    assert key_id is not None
    row = repo.get_api_key(session, key_id)
    assert row is not None
    return info(row), secret


def rotate_key(session: Session, principal: Principal, key_id: str, now: datetime, *,
               grace_s: int = 0) -> tuple[KeyInfo, str]:
    """A new key with the old one's name, scopes and expiry; the old one stops working now,
    or `grace_s` seconds from now (so running clients can switch over)."""
    require_scope(principal, Scope.ADMIN)
    if isinstance(grace_s, bool) or not 0 <= grace_s <= MAX_ROTATION_GRACE_S:
        raise ValidationFailed(f"must be 0..{MAX_ROTATION_GRACE_S} seconds", field="grace_s")
    old = _key(session, principal, key_id, lock=True)
    current = info(old)
    if current.state(now) != "active":
        raise Conflict(f"key {key_id} is {current.state(now)}: make a new one instead",
                       field="key_id")
    scopes = frozenset(Scope(s) for s in current.scopes)
    _check_scopes(principal, scopes)
    secret = tenants.issue_key(session, old.tenant_id, now, name=old.name or "",
                               scopes=scopes, expires_at=current.expires_at,
                               created_by=principal.tenant_id, rotated_from=old.prefix)
    if grace_s:
        ends = now + timedelta(seconds=grace_s)
        repo.set_key_expiry(session, old.prefix, ends if current.expires_at is None
                            else min(current.expires_at, ends))
    else:
        repo.set_key_revoked(session, old.prefix, now)
    new_id = tenants.key_id_of(secret)
    assert new_id is not None
    new = repo.get_api_key(session, new_id)
    assert new is not None
    return info(new), secret


def revoke_key(session: Session, principal: Principal, key_id: str, now: datetime) -> KeyInfo:
    """The key stops working at once; revoking it again changes nothing."""
    require_scope(principal, Scope.ADMIN)
    row = _key(session, principal, key_id, lock=True)
    if row.revoked_at is None:
        repo.set_key_revoked(session, row.prefix, now)
        row = dataclasses.replace(row, revoked_at=now)
    return info(row)
