"""Tenants, their roles and the rules of who may change what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from suanli.domain.errors import Forbidden


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


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    tenant_id: str
    role: Role
    tenant_class: TenantClass = TenantClass.ENTERPRISE

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


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
