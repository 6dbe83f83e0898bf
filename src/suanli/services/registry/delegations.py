"""Identifier delegation and resolution: which platform is authoritative for an identifier."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlparse

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import registry as repo
from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.ids import ComputeId, Resolver
from suanli.domain.registry import DelegationRecord
from suanli.domain.resources import check_name
from suanli.domain.tenants import Principal, Role, require_role

LEVELS = ("national", "regional", "industry")
SELF = "self"


def delegate(session: Session, principal: Principal, own: ComputeId, *, prefix: str, name: str,
             level: str, endpoint: str, now: datetime) -> DelegationRecord:
    """Delegate `own`.PREFIX to another platform reachable at `endpoint`."""
    require_role(principal, Role.OPERATOR)
    if level not in LEVELS:
        raise ValidationFailed(f"must be one of {', '.join(LEVELS)}", field="level")
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationFailed("must be an http(s) URL", field="endpoint")
    try:
        child = own.delegate(prefix)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, field="prefix") from None
    key = child.body
    if repo.get_delegation(session, key) is not None:
        raise Conflict(f"{key} is already delegated", field="prefix")
    record = DelegationRecord(authority=key, name=check_name(name, "name"), level=level,
                              endpoint=endpoint.rstrip("/"), created_at=now)
    repo.insert_delegation(session, record)
    return record


def list_delegations(session: Session) -> list[DelegationRecord]:
    return repo.list_delegations(session)


def resolver(session: Session, own: ComputeId) -> Resolver:
    table = {row.authority: row.endpoint for row in list_delegations(session)}
    table[own.body] = SELF
    return Resolver(table)
