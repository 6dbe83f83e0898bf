"""Tenants and API keys: creation and authentication (managing keys: services.keys)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.ledger import aware
from suanli.adapters.store.repositories import tenants as repo
from suanli.domain.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.resources import check_name
from suanli.domain.tenants import (
    ALL_SCOPES,
    ApiKeyRecord,
    Principal,
    Role,
    Scope,
    TenantClass,
    TenantRecord,
)
from suanli.services.registry.identifiers import allocate

KEY_PREFIX = "sl"
_PREFIX_CHARS = 10
_SECRET_BYTES = 32
_KEY_ID_RE = re.compile(r"^[0-9a-f]{10}$")


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    name: str
    role: Role
    tenant_class: TenantClass
    api_key: str  # shown once; only its hash is stored


def _hash(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nobody can brute-force the space.
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    prefix = secrets.token_hex(_PREFIX_CHARS // 2)
    return prefix, f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed(
            f"unknown role {value!r}; one of {', '.join(r.value for r in Role)}", field="role"
        ) from None


def parse_tenant_class(value: str) -> TenantClass:
    try:
        return TenantClass(value)
    except ValueError:
        choices = ", ".join(c.value for c in TenantClass)
        raise ValidationFailed(
            f"unknown tenant class {value!r}; one of {choices}", field="tenant_class"
        ) from None


def create_tenant(
    session: Session,
    authority: ComputeId,
    name: str,
    role: Role,
    tenant_class: TenantClass,
    now: datetime,
) -> NewTenant:
    name = check_name(name, "name")
    tenant_id = allocate(session, authority, IdKind.TENANT)
    repo.insert_tenant(session, TenantRecord(id=str(tenant_id), name=name, role=role.value,
                                             tenant_class=tenant_class.value, created_at=now,
                                             disabled=False))
    key = issue_key(session, str(tenant_id), now)
    return NewTenant(str(tenant_id), name, role, tenant_class, key)


def issue_key(session: Session, tenant_id: str, now: datetime, *, name: str = "",
              scopes: frozenset[Scope] = ALL_SCOPES, expires_at: datetime | None = None,
              created_by: str | None = None, rotated_from: str | None = None) -> str:
    """Make a key for the tenant and return it (the only time it is seen)."""
    if repo.get_tenant(session, tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist", field="tenant_id")
    prefix, key = _new_key()
    repo.insert_api_key(session, ApiKeyRecord(
        prefix=prefix, tenant_id=tenant_id, key_sha256=_hash(key), created_at=now,
        revoked_at=None, name=name,
        scopes=None if scopes == ALL_SCOPES else sorted(s.value for s in scopes),
        expires_at=expires_at, created_by=created_by, rotated_from=rotated_from))
    return key


def authenticate(session: Session, key: str | None, now: datetime | None = None) -> Principal:
    """The principal behind an API key, or Unauthenticated."""
    return authenticate_key(session, key, now)[0]


def key_id_of(key: str | None) -> str | None:
    """The key id (prefix) a presented key claims, if it is shaped like a key."""
    parts = (key or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not _KEY_ID_RE.match(parts[1]):
        return None
    return parts[1]


def authenticate_key(session: Session, key: str | None,
                     now: datetime | None = None) -> tuple[Principal, ApiKeyRecord]:
    """The principal and key record behind an API key, or Unauthenticated."""
    if not key:
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
    key_id = key_id_of(key)
    if key_id is None:
        raise Unauthenticated("malformed API key")
    row = repo.get_api_key(session, key_id)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("unknown or revoked API key")
    if not hmac.compare_digest(row.key_sha256, _hash(key)):
        raise Unauthenticated("unknown or revoked API key")
    if row.expires_at is not None and aware(row.expires_at) <= (now or datetime.now(UTC)):
        raise Unauthenticated("this API key has expired")
    tenant = repo.get_tenant(session, row.tenant_id)
    if tenant is None or tenant.disabled:
        raise Unauthenticated("the tenant of this key is disabled")
    scopes = ALL_SCOPES if row.scopes is None else frozenset(Scope(v) for v in row.scopes)
    return Principal(tenant.id, Role(tenant.role), TenantClass(tenant.tenant_class), scopes,
                     row.prefix), row


def get_tenant(session: Session, tenant_id: str) -> TenantRecord:
    row = repo.get_tenant(session, str(ComputeId.parse(tenant_id, field="tenant_id")))
    if row is None:
        raise NotFound(f"tenant {tenant_id} does not exist", field="tenant_id")
    return row


def scoped_tenant(principal: Principal, tenant_id: str | None) -> str:
    """The tenant a request is about: the caller's own, or any for an operator."""
    if tenant_id is None or tenant_id == principal.tenant_id:
        return principal.tenant_id
    if not principal.is_operator:
        raise Forbidden("you may only see your own tenant's money")
    return tenant_id


def list_tenants(session: Session) -> list[TenantRecord]:
    return repo.list_tenants(session)
