"""Tenants, their roles and the rules of who may change what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from suanli.domain.errors import Forbidden, ValidationFailed


class Role(StrEnum):
    CONSUMER = "consumer"  # finds compute, submits jobs, pays
    PROVIDER = "provider"  # registers sites and pools, runs jobs, is paid
    OPERATOR = "operator"  # runs the platform node


class TenantClass(StrEnum):
    """What a tenant is, for voucher eligibility."""

    SMALL_FIRM = "small-firm"
    START_UP = "start-up"
    RESEARCH = "research"
    ENTERPRISE = "enterprise"
    PUBLIC = "public"


class Scope(StrEnum):
    """What one API key may do, within what its tenant's role allows (docs/api.md)."""

    READ = "read"  # read what the tenant may see
    SUBMIT = "submit"  # create and change work and inventory; jobs that cost nothing
    SPEND = "spend"  # commit or move money: paid jobs, deposits, grants, entitlements
    ADMIN = "admin"  # manage keys; an operator's platform administration


ALL_SCOPES = frozenset(Scope)


def parse_scopes(values: object, field: str = "scopes") -> frozenset[Scope]:
    """A non-empty set of scope names, or ValidationFailed naming the field."""
    if not isinstance(values, list | tuple | set | frozenset) or not values:
        raise ValidationFailed("a non-empty list of read, submit, spend, admin", field=field)
    try:
        return frozenset(Scope(v) for v in values)
    except ValueError:
        raise ValidationFailed(f"unknown scope in {sorted(map(str, values))}; one of "
                               f"{', '.join(s.value for s in Scope)}", field=field) from None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    tenant_id: str
    role: Role
    tenant_class: TenantClass = TenantClass.ENTERPRISE
    scopes: frozenset[Scope] = ALL_SCOPES
    key_id: str | None = None  # the API key it authenticated with (None: an internal caller)

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes


def require_scope(principal: Principal, *scopes: Scope) -> None:
    """Every scope named must be on the caller's key (403 naming the first missing one)."""
    for scope in scopes:
        if scope not in principal.scopes:
            raise Forbidden(f"this needs an API key with the {scope.value!r} scope; yours has "
                            f"{', '.join(sorted(s.value for s in principal.scopes))}",
                            field="scope")


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role is Role.OPERATOR or principal.role in roles:
        return
    wanted = " or ".join(role.value for role in roles)
    raise Forbidden(f"this needs the {wanted} role; your tenant is a {principal.role.value}")


def may_see(principal: Principal, owner_tenant_id: str) -> bool:
    """Whether the caller may see a private object (a job, a lease, an agent). One it may not
    see is answered exactly like a missing one, so that ids of others' objects do not leak."""
    return principal.is_operator or principal.tenant_id == owner_tenant_id


def require_owner(principal: Principal, owner_tenant_id: str, what: str) -> None:
    """A provider changes only its own objects; an operator changes any."""
    if principal.is_operator or principal.tenant_id == owner_tenant_id:
        return
    raise Forbidden(f"{what} belongs to another tenant")


# -- stored records (the store's names and types; enums as their values) ----------------------

@dataclass(frozen=True)
class TenantRecord:
    id: str
    name: str
    role: str
    tenant_class: str
    created_at: datetime
    disabled: bool


@dataclass(frozen=True)
class ApiKeyRecord:
    """One API key of a tenant: its prefix is the key id; only the key's hash is kept."""

    prefix: str
    tenant_id: str
    key_sha256: str
    created_at: datetime
    revoked_at: datetime | None
    name: str
    scopes: list[str] | None  # None: every scope
    expires_at: datetime | None
    created_by: str | None
    rotated_from: str | None


@dataclass(frozen=True)
class AuditRecord:
    """One stored entry of the audit log (ids only grow)."""

    id: int
    at: datetime
    actor_tenant_id: str | None
    actor_key_id: str | None
    actor_role: str | None
    client: str | None
    action: str
    method: str
    path: str
    target: str | None
    idempotency_key: str | None
    status: int
    outcome: str
