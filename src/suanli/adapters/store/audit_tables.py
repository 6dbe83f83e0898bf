"""The audit log's table: one row per admin or money action, appended and never changed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from suanli.adapters.store.tables import Base

AUDIT_TABLE = "audit_log"
# Database guards (migration 0007): UPDATE and DELETE of a row fail, whoever sends them.
SQLITE_GUARDS = {
    "audit_log_no_update": "BEFORE UPDATE ON audit_log BEGIN "
                           "SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "audit_log_no_delete": "BEFORE DELETE ON audit_log BEGIN "
                           "SELECT RAISE(ABORT, 'audit_log is append-only'); END",
}


class AuditRow(Base):
    """Who did what, when, to what, under which idempotency key, and how it ended."""

    __tablename__ = AUDIT_TABLE
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_tenant_id: Mapped[str | None] = mapped_column(String(72), nullable=True)
    actor_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    actor_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(300))

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor_at", "actor_tenant_id", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
    )
