"""Tables of jobs, their events and logs, leases, provider agents and usage records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from suanli.adapters.store.tables import ID, Base


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    spec: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pool_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    lease_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    excluded_pools: Mapped[list] = mapped_column(JSON, default=list)
    placement: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_state", "state"),
        Index("ix_jobs_state_tenant_created", "state", "tenant_id", "created_at"),  # 0007
        Index("ix_jobs_pool_state", "pool_id", "state"),
    )


class JobEventRow(Base):
    """Every state transition of a job, with its time and reason."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(500))


class JobLogRow(Base):
    """The tail of a job's output, as last reported by its agent."""

    __tablename__ = "job_logs"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeaseRow(Base):
    """Devices of a pool held by one attempt of a job; its fence rejects stale agents."""

    __tablename__ = "leases"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"))
    devices: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # active, released, expired
    fence: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    engine_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_leases_state_deadline", "state", "heartbeat_deadline"),
        Index("ix_leases_pool_state", "pool_id", "state"),
    )


class AgentRow(Base):
    """A provider agent: runs behind NAT, pulls work for its pools over outbound HTTP."""

    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    pools: Mapped[list] = mapped_column(JSON)
    engine: Mapped[str] = mapped_column(String(16))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageRecordRow(Base):
    """Metered consumption of one lease (话单), idempotent by id."""

    __tablename__ = "usage_records"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    provider_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    accelerator: Mapped[str] = mapped_column(String(48))
    devices: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    wall_s: Mapped[float] = mapped_column(Float)
    device_seconds: Mapped[float] = mapped_column(Float)
    cpu_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_rss_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    energy_wh: Mapped[float] = mapped_column(Float)
    energy_estimated: Mapped[bool] = mapped_column(Boolean)
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
