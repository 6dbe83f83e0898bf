"""The audit log (审计日志): every admin and money action, appended once and never changed.

The application only ever inserts rows; the database refuses UPDATE and DELETE on the table
(migration 0007), so a rewrite would need someone with the database's own keys. Operators read
it (`GET /v1/audit`, `suanli audit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store.ledger import aware
from suanli.adapters.store.repositories import tenants as repo
from suanli.domain.errors import Forbidden, ValidationFailed
from suanli.domain.tenants import AuditRecord, Principal, Scope, require_scope

MAX_LIST = 1000
_LIMITS = {"action": 64, "method": 8, "path": 300, "target": 200, "idempotency_key": 128,
           "outcome": 300, "client": 64, "actor_tenant_id": 72, "actor_key_id": 16,
           "actor_role": 16}


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    action: str
    method: str
    path: str
    status: int
    outcome: str  # "ok", or the problem's title and detail
    actor_tenant_id: str | None = None
    actor_key_id: str | None = None
    actor_role: str | None = None
    client: str | None = None
    target: str | None = None
    idempotency_key: str | None = None


def _fit(name: str, value: str | None) -> str | None:
    # Values come from requests that may have been refused for their size: the log keeps
    # what fits, marked, rather than losing the entry.
    if value is None or len(value) <= _LIMITS[name]:
        return value
    return value[:_LIMITS[name] - 1] + "…"


def record(session: Session, entry: AuditEntry) -> int:
    """Append one entry; returns its id (ids only grow)."""
    assert entry.at.tzinfo is not None and 100 <= entry.status <= 599, entry
    return repo.append_audit(session, {name: _fit(name, getattr(entry, name))
                                       if name in _LIMITS else getattr(entry, name)
                                       for name in entry.__dataclass_fields__})


def query(session: Session, principal: Principal, *, actor: str | None = None,
          action: str | None = None, target: str | None = None,
          since: datetime | None = None, until: datetime | None = None,
          after_id: int | None = None, limit: int = 100) -> list[AuditRecord]:
    """Entries in id order (oldest first), filtered; operators only."""
    if not principal.is_operator:
        raise Forbidden("only operators read the audit log")
    require_scope(principal, Scope.READ, Scope.ADMIN)
    if not 1 <= limit <= MAX_LIST:
        raise ValidationFailed(f"must be 1..{MAX_LIST}", field="limit")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.utcoffset() is None:
            raise ValidationFailed("must carry its UTC offset", field=name)
    return repo.query_audit(session, actor=actor, action=action, target=target, since=since,
                            until=until, after_id=after_id, limit=limit)


def as_json(row: AuditRecord) -> dict[str, object]:
    return {"id": row.id, "at": aware(row.at).isoformat(), "action": row.action,
            "actor": {"tenant_id": row.actor_tenant_id, "key_id": row.actor_key_id,
                      "role": row.actor_role, "client": row.client},
            "method": row.method, "path": row.path, "target": row.target,
            "idempotency_key": row.idempotency_key, "status": row.status,
            "outcome": row.outcome}
