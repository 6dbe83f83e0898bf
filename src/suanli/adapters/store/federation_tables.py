"""Tables of the federation: platforms and their keys, nonces, the aggregated catalog, roaming
jobs on both sides, roaming records, entitlements, and clearing (cycles, statements, disputes).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from suanli.adapters.store.tables import ID, Base

AUTHORITY = String(72)
KEY_ID = String(100)


class FederationPlatformRow(Base):
    """A platform of the federation this node knows: itself, its parent, peers, children."""

    __tablename__ = "federation_platforms"
    authority: Mapped[str] = mapped_column(AUTHORITY, primary_key=True)  # e.g. "CN.GD"
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(AUTHORITY, nullable=True)
    endpoint: Mapped[str | None] = mapped_column(String(300), nullable=True)
    is_self: Mapped[bool] = mapped_column(Boolean, default=False)
    # The local tenant that stands for this platform's users when their jobs roam here.
    guest_tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), nullable=True,
                                                        index=True)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active, suspended
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FederationKeyRow(Base):
    """A platform's Ed25519 public key; messages signed with a revoked key are refused."""

    __tablename__ = "federation_keys"
    key_id: Mapped[str] = mapped_column(KEY_ID, primary_key=True)  # "CN.GD:<fingerprint>"
    authority: Mapped[str] = mapped_column(AUTHORITY, index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # base64url of the 32 raw bytes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FederationEnrolmentRow(Base):
    """A one-time token an operator issued so that a sub-platform can register its key."""

    __tablename__ = "federation_enrolments"
    authority: Mapped[str] = mapped_column(AUTHORITY, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    created_by: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    key_id: Mapped[str | None] = mapped_column(KEY_ID, nullable=True)


class FederationNonceRow(Base):
    """Nonces seen within the replay window; a second message with one is a replay."""

    __tablename__ = "federation_nonces"
    key_id: Mapped[str] = mapped_column(KEY_ID, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CatalogSummaryRow(Base):
    """Pools of one platform summarised per accelerator, province and hub."""

    __tablename__ = "federation_catalog"
    origin: Mapped[str] = mapped_column(AUTHORITY, primary_key=True)
    accelerator: Mapped[str] = mapped_column(String(48), primary_key=True)
    province: Mapped[str] = mapped_column(String(8), primary_key=True)
    hub: Mapped[str] = mapped_column(String(24), primary_key=True)  # "" for none
    vendor: Mapped[str] = mapped_column(String(32))
    device_kind: Mapped[str] = mapped_column(String(8))
    pools: Mapped[int] = mapped_column(Integer)
    devices: Mapped[int] = mapped_column(Integer)
    free_devices: Mapped[int] = mapped_column(Integer)
    max_free_in_pool: Mapped[int] = mapped_column(Integer)
    min_price_fen_per_device_hour: Mapped[int] = mapped_column(BigInteger)
    min_unit_prices: Mapped[dict] = mapped_column(JSON)  # workload class -> decimal text

    __table_args__ = (Index("ix_federation_catalog_accelerator", "accelerator"),)


class CatalogOriginRow(Base):
    """How fresh one platform's summaries are, and which child relayed them."""

    __tablename__ = "federation_catalog_origins"
    origin: Mapped[str] = mapped_column(AUTHORITY, primary_key=True)
    generated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    via: Mapped[str] = mapped_column(AUTHORITY)
    digest: Mapped[str] = mapped_column(String(64))
    groups: Mapped[int] = mapped_column(Integer)


class RoamingJobRow(Base):
    """Home side: one attempt to run a local job on another platform (the host)."""

    __tablename__ = "roaming_jobs"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(AUTHORITY)
    # forwarding -> accepted -> finished | rejected | withdrawing -> withdrawn
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    host_job_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    host_pool_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    host_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # migration 0007: the most the host may charge for this attempt, fixed when it accepted
    max_charge_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_roaming_jobs_state_next", "state", "next_try_at"),)


class GuestJobRow(Base):
    """Host side: what this platform decided about one forwarded job attempt (final once
    written): accepted (with the local job), rejected or withdrawn (a tombstone)."""

    __tablename__ = "roaming_guest_jobs"
    home: Mapped[str] = mapped_column(AUTHORITY, primary_key=True)
    home_job_id: Mapped[str] = mapped_column(ID, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # accepted, rejected, withdrawn
    reason: Mapped[str] = mapped_column(String(500), default="")
    home_tenant_id: Mapped[str] = mapped_column(ID)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    pushed_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    pushed_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    next_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                          index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # migration 0007: what this platform told the home it may charge at most for the attempt
    max_charge_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RoamingRecordRow(Base):
    """A usage record that crossed platforms (漫游话单), signed by the host; held by both."""

    __tablename__ = "roaming_records"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the host's usage record id
    role: Mapped[str] = mapped_column(String(8))  # home or host: this platform's side
    home: Mapped[str] = mapped_column(AUTHORITY)
    host: Mapped[str] = mapped_column(AUTHORITY)
    home_job_id: Mapped[str] = mapped_column(ID, index=True)
    host_job_id: Mapped[str] = mapped_column(ID)
    tenant_id: Mapped[str] = mapped_column(ID)  # the home tenant
    business_date: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    units_micro: Mapped[int] = mapped_column(BigInteger)  # compute-unit hours x 10^6
    document: Mapped[dict] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(KEY_ID)
    digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # host: issued, delivered; home: charged
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    charge: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # how it was paid
    cycle_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_roaming_records_role_state", "role", "state"),
        Index("ix_roaming_records_business_date", "business_date"),
    )


class EntitlementRow(Base):
    """Prepaid compute (算力权益) a tenant bought at home, in compute-unit hours."""

    __tablename__ = "entitlements"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    units_micro: Mapped[int] = mapped_column(BigInteger)
    remaining_units_micro: Mapped[int] = mapped_column(BigInteger)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    remaining_fen: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key",
                                       name="uq_entitlements_idempotency"),)


class ClearingCycleRow(Base):
    """At the clearing house: one clearing run over records up to a business date."""

    __tablename__ = "clearing_cycles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "2026-11-02.01"
    through_date: Mapped[str] = mapped_column(String(10), index=True)
    state: Mapped[str] = mapped_column(String(16))  # issued
    summary: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(72), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClearingStatementRow(Base):
    """A signed settlement statement for one platform and cycle: issued (house) or received."""

    __tablename__ = "clearing_statements"
    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(AUTHORITY, primary_key=True)
    role: Mapped[str] = mapped_column(String(8))  # issued, received
    document: Mapped[dict] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(KEY_ID)
    net_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # issued, delivered, accepted, disputed
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClearingDisputeRow(Base):
    """A disagreement between platforms about a record or a statement, until resolved."""

    __tablename__ = "clearing_disputes"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    cycle_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    record_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    raised_by: Mapped[str] = mapped_column(AUTHORITY)
    counterparty: Mapped[str] = mapped_column(AUTHORITY)
    kind: Mapped[str] = mapped_column(String(16))  # missing, mismatch, statement, other
    detail: Mapped[str] = mapped_column(String(1000))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    state: Mapped[str] = mapped_column(String(16))  # open, resolved
    resolution: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FederationStateRow(Base):
    """Small named values the federation loop keeps between passes (last pushes, digests)."""

    __tablename__ = "federation_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
