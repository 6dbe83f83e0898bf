"""Table definitions of the registry, tenants and identifier counters (SQLAlchemy 2 ORM)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(72)  # a ComputeId is at most 64 characters; a little headroom for prefixes


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class IdCounter(Base):
    """The next serial for each (parent identifier, kind) pair."""

    __tablename__ = "id_counters"
    parent: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    next_serial: Mapped[int] = mapped_column(BigInteger)


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    tenant_class: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiKeyRow(Base):
    """One API key of a tenant: its prefix is the key id, only the hash of the key is kept."""

    __tablename__ = "api_keys"
    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # migration 0007 (issue 12): keys with a name, scopes, an expiry and a rotation trail
    name: Mapped[str] = mapped_column(String(120), default="")
    scopes: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None: every scope
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(72), nullable=True)
    rotated_from: Mapped[str | None] = mapped_column(String(16), nullable=True)


class ProviderRow(Base):
    __tablename__ = "providers"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(24))
    country: Mapped[str] = mapped_column(String(2))
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SiteRow(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    province: Mapped[str] = mapped_column(String(8))
    city: Mapped[str] = mapped_column(String(64))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    pue: Mapped[Decimal] = mapped_column(Numeric(4, 2))
    electricity_fen_per_kwh: Mapped[int] = mapped_column(Integer)
    green_share: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    kind: Mapped[str] = mapped_column(String(8))
    hub: Mapped[str | None] = mapped_column(String(24), nullable=True)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PoolRow(Base):
    """A pool, with its site's and accelerator's searchable facts copied in.

    Search over 100,000 pools must answer in milliseconds, so the columns a query filters or
    sorts by live on this row; the registry service keeps the copies in step.
    """

    __tablename__ = "pools"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    accelerator: Mapped[str] = mapped_column(String(48))
    vendor: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(48))
    device_kind: Mapped[str] = mapped_column(String(8))
    memory_gb: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_count: Mapped[int] = mapped_column(Integer)
    free_devices: Mapped[int] = mapped_column(Integer)
    interconnect: Mapped[str | None] = mapped_column(String(64), nullable=True)
    engine: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    price_fen_per_device_hour: Mapped[int] = mapped_column(BigInteger)
    units_per_device_hour: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    fen_per_unit_hour_general: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), nullable=True)
    fen_per_unit_hour_training: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), nullable=True)
    fen_per_unit_hour_inference: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), nullable=True)
    fen_per_unit_hour_hpc: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), nullable=True)
    province: Mapped[str] = mapped_column(String(8))
    city: Mapped[str] = mapped_column(String(64))
    hub: Mapped[str | None] = mapped_column(String(24), nullable=True)
    site_kind: Mapped[str] = mapped_column(String(8))
    green_share: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    # The site's position as a unit vector: the straight-line (chord) distance between two
    # such vectors orders places exactly as the great-circle distance does, with arithmetic
    # alone, so a latency sort needs no trigonometry in SQL.
    geo_x: Mapped[float] = mapped_column(Float)
    geo_y: Mapped[float] = mapped_column(Float)
    geo_z: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_pools_state_price_general", "state", "fen_per_unit_hour_general"),
        Index("ix_pools_state_price_training", "state", "fen_per_unit_hour_training"),
        Index("ix_pools_state_price_inference", "state", "fen_per_unit_hour_inference"),
        Index("ix_pools_state_device_price", "state", "price_fen_per_device_hour"),
        Index("ix_pools_state_green", "state", "green_share"),
        Index("ix_pools_state_free", "state", "free_devices"),
        Index("ix_pools_vendor", "vendor"),
        Index("ix_pools_accelerator", "accelerator"),
        Index("ix_pools_province", "province"),
        Index("ix_pools_hub", "hub"),
    )


class DelegationRow(Base):
    """An identifier prefix this platform delegated to another platform (or was delegated)."""

    __tablename__ = "delegations"
    authority: Mapped[str] = mapped_column(String(72), primary_key=True)  # e.g. "CN.GD"
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))  # national, regional, industry
    endpoint: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SearchGenerationRow(Base):
    """One row whose value changes whenever a pool's searchable facts change.

    Triggers on `pools` (migration 0006) change it inside the writing transaction; an
    in-memory search index compares it with the value it was loaded at.
    """

    __tablename__ = "search_generation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)
