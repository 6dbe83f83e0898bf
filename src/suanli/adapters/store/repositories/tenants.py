"""Tenants, their API keys and the audit log in the database: pure records in, pure records
out (`suanli.domain.tenants`).

Locks: `lock_api_key` row-locks one key (PostgreSQL; SQLite's one writer already serialises)
for a rotation or a revocation; nothing else here locks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suanli.adapters.store.audit_tables import AuditRow
from suanli.adapters.store.tables import ApiKeyRow, TenantRow
from suanli.domain.tenants import ApiKeyRecord, AuditRecord, TenantRecord

MAX_ROWS = 10_000  # rows one read returns


# -- tenants -----------------------------------------------------------------------------------

def _tenant(row: TenantRow) -> TenantRecord:
    return TenantRecord(id=row.id, name=row.name, role=row.role, tenant_class=row.tenant_class,
                        created_at=row.created_at, disabled=row.disabled)


def insert_tenant(session: Session, tenant: TenantRecord) -> None:
    session.add(TenantRow(id=tenant.id, name=tenant.name, role=tenant.role,
                          tenant_class=tenant.tenant_class, created_at=tenant.created_at,
                          disabled=tenant.disabled))
    session.flush()


def get_tenant(session: Session, tenant_id: str) -> TenantRecord | None:
    row = session.get(TenantRow, tenant_id)
    return None if row is None else _tenant(row)


def list_tenants(session: Session, limit: int = MAX_ROWS) -> list[TenantRecord]:
    """Tenants, oldest first."""
    assert 1 <= limit <= MAX_ROWS
    return [_tenant(row) for row in session.scalars(
        select(TenantRow).order_by(TenantRow.created_at).limit(limit))]


def first_tenant_id_with_role(session: Session, role: str) -> str | None:
    """The oldest tenant of a role (enabled or not)."""
    return session.scalar(select(TenantRow.id).where(TenantRow.role == role)
                          .order_by(TenantRow.created_at).limit(1))


def first_enabled_tenant_named(session: Session, name: str, role: str) -> TenantRecord | None:
    """The oldest enabled tenant of a role with this name."""
    row = session.scalars(select(TenantRow).where(
        TenantRow.name == name, TenantRow.role == role,
        TenantRow.disabled.is_(False)).order_by(TenantRow.created_at).limit(1)).first()
    return None if row is None else _tenant(row)


# -- API keys ----------------------------------------------------------------------------------

def _key(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(prefix=row.prefix, tenant_id=row.tenant_id, key_sha256=row.key_sha256,
                        created_at=row.created_at, revoked_at=row.revoked_at, name=row.name,
                        scopes=None if row.scopes is None else list(row.scopes),
                        expires_at=row.expires_at, created_by=row.created_by,
                        rotated_from=row.rotated_from)


def insert_api_key(session: Session, key: ApiKeyRecord) -> None:
    session.add(ApiKeyRow(prefix=key.prefix, tenant_id=key.tenant_id, key_sha256=key.key_sha256,
                          created_at=key.created_at, revoked_at=key.revoked_at, name=key.name,
                          scopes=None if key.scopes is None else list(key.scopes),
                          expires_at=key.expires_at, created_by=key.created_by,
                          rotated_from=key.rotated_from))
    session.flush()


def get_api_key(session: Session, key_id: str) -> ApiKeyRecord | None:
    row = session.get(ApiKeyRow, key_id)
    return None if row is None else _key(row)


def lock_api_key(session: Session, key_id: str) -> ApiKeyRecord | None:
    """Read one key with a row lock (SELECT ... FOR UPDATE), for a change to it."""
    row = session.get(ApiKeyRow, key_id, with_for_update=True)
    return None if row is None else _key(row)


def keys_of_tenant(session: Session, tenant_id: str, limit: int) -> list[ApiKeyRecord]:
    """A tenant's keys, revoked and expired ones too, oldest first."""
    assert 1 <= limit <= MAX_ROWS
    return [_key(row) for row in session.scalars(
        select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id)
        .order_by(ApiKeyRow.created_at, ApiKeyRow.prefix).limit(limit))]


def count_unrevoked_keys(session: Session, tenant_id: str) -> int:
    return session.scalar(select(func.count()).select_from(ApiKeyRow).where(
        ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.revoked_at.is_(None))) or 0


def set_key_expiry(session: Session, key_id: str, expires_at: datetime) -> None:
    row = session.get(ApiKeyRow, key_id)
    assert row is not None
    row.expires_at = expires_at


def set_key_revoked(session: Session, key_id: str, revoked_at: datetime) -> None:
    row = session.get(ApiKeyRow, key_id)
    assert row is not None
    row.revoked_at = revoked_at


# -- the audit log -----------------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "actor_tenant_id", "actor_key_id", "actor_role", "client", "action",
                 "method", "path", "target", "idempotency_key", "status", "outcome")


def _audit(row: AuditRow) -> AuditRecord:
    return AuditRecord(id=row.id, **{name: getattr(row, name) for name in AUDIT_COLUMNS})


def append_audit(session: Session, values: Mapping[str, Any]) -> int:
    """Append one entry (the columns but its id, by name); returns its id."""
    row = AuditRow(**{name: values[name] for name in AUDIT_COLUMNS})
    session.add(row)
    session.flush()
    return row.id


def query_audit(session: Session, *, actor: str | None, action: str | None,
                target: str | None, since: datetime | None, until: datetime | None,
                after_id: int | None, limit: int) -> list[AuditRecord]:
    """Entries in id order (oldest first), filtered."""
    assert 1 <= limit <= MAX_ROWS
    stmt = select(AuditRow)
    if actor:
        stmt = stmt.where(AuditRow.actor_tenant_id == actor)
    if action:
        stmt = stmt.where(AuditRow.action == action)
    if target:
        stmt = stmt.where(AuditRow.target.contains(target, autoescape=True))
    if since:
        stmt = stmt.where(AuditRow.at >= since)
    if until:
        stmt = stmt.where(AuditRow.at < until)
    if after_id is not None:
        stmt = stmt.where(AuditRow.id > after_id)
    return [_audit(row) for row in session.scalars(stmt.order_by(AuditRow.id).limit(limit))]
