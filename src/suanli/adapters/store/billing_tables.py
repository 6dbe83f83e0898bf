"""Tables of the ledger (accounts, transfers) and of billing: tariffs, vouchers, holds, charges.

Money is BIGINT fen. Quantities are BIGINT micro-units and unit prices BIGINT 1/10,000 fen, so
both databases store them exactly (SQLite has no exact decimal type).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from suanli.adapters.store.tables import ID, Base

LEDGER_ID = String(128)  # the ledger's own id rule: 1-128 characters


class LedgerAccountRow(Base):
    """An account of the double-entry ledger; balances change only through transfers."""

    __tablename__ = "ledger_accounts"
    id: Mapped[str] = mapped_column(LEDGER_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    ledger: Mapped[str] = mapped_column(String(8))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean)
    debits_posted_fen: Mapped[int] = mapped_column(BigInteger)
    credits_posted_fen: Mapped[int] = mapped_column(BigInteger)
    debits_pending_fen: Mapped[int] = mapped_column(BigInteger)
    credits_pending_fen: Mapped[int] = mapped_column(BigInteger)
    owner_tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), nullable=True,
                                                        index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The ledger rules keep these; the database refuses a row that breaks them anyway.
        CheckConstraint("debits_posted_fen >= 0 AND credits_posted_fen >= 0 AND "
                        "debits_pending_fen >= 0 AND credits_pending_fen >= 0",
                        name="balances_non_negative"),
        CheckConstraint("NOT debits_must_not_exceed_credits OR "
                        "debits_posted_fen + debits_pending_fen <= credits_posted_fen",
                        name="debits_within_credits"),
        CheckConstraint("NOT credits_must_not_exceed_debits OR "
                        "credits_posted_fen + credits_pending_fen <= debits_posted_fen",
                        name="credits_within_debits"),
    )


class LedgerTransferRow(Base):
    """A transfer as the ledger holds it: the request (request_*) and what it resolved to."""

    __tablename__ = "ledger_transfers"
    id: Mapped[str] = mapped_column(LEDGER_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    ledger: Mapped[str] = mapped_column(String(8))
    request_debit_account_id: Mapped[str] = mapped_column(LEDGER_ID)  # "" = the hold's
    request_credit_account_id: Mapped[str] = mapped_column(LEDGER_ID)
    request_amount_fen: Mapped[int] = mapped_column(BigInteger)
    pending_id: Mapped[str | None] = mapped_column(LEDGER_ID, nullable=True)
    timeout_s: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(128))
    debit_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        CheckConstraint("amount_fen >= 0 AND request_amount_fen >= 0", name="amounts"),
        Index("ix_ledger_transfers_debit_time", "debit_account_id", "timestamp"),
        Index("ix_ledger_transfers_credit_time", "credit_account_id", "timestamp"),
        # Partial indexes: most transfers are neither settlements nor open holds, and an index
        # a row is not in costs that row's insert nothing.
        Index("ix_ledger_transfers_pending_id", "pending_id",
              postgresql_where=text("pending_id IS NOT NULL"),
              sqlite_where=text("pending_id IS NOT NULL")),
        Index("ix_ledger_transfers_open_holds", "expires_at",
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    )


class BillingProfileRow(Base):
    """How a tenant pays: prepaid (wallet and holds) or postpaid (usage due on the bill)."""

    __tablename__ = "billing_profiles"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PoolTariffRow(Base):
    """A version of a pool's tariff; the highest version is the one in force."""

    __tablename__ = "pool_tariffs"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict] = mapped_column(JSON)  # prices as decimal strings
    created_by: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("pool_id", "version", name="uq_pool_tariffs_version"),)


class VoucherProgrammeRow(Base):
    """A subsidy programme (补贴计划); its money is the ledger account `fund_account_id`."""

    __tablename__ = "voucher_programmes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    issuer: Mapped[str] = mapped_column(String(120))
    budget_fen: Mapped[int] = mapped_column(BigInteger)
    coverage_e4: Mapped[int] = mapped_column(Integer)  # share x 10^4
    western_extra_coverage_e4: Mapped[int] = mapped_column(Integer)
    cap_fen_per_tenant: Mapped[int] = mapped_column(BigInteger)
    eligible_tenant_classes: Mapped[list] = mapped_column(JSON)
    eligible_hubs: Mapped[list | None] = mapped_column(JSON, nullable=True)
    eligible_provinces: Mapped[list | None] = mapped_column(JSON, nullable=True)
    eligible_provider_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fund_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    created_by: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoucherRow(Base):
    """One tenant's grant from a programme (算力券) and what remains of it."""

    __tablename__ = "vouchers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("voucher_programmes.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    granted_fen: Mapped[int] = mapped_column(BigInteger)
    remaining_fen: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("programme_id", "idempotency_key", name="uq_vouchers_idempotency"),
        CheckConstraint("remaining_fen >= 0 AND remaining_fen <= granted_fen",
                        name="remaining_within_grant"),
    )


class LeaseHoldRow(Base):
    """The money held for one lease (a pending transfer) and the tariff it was priced with."""

    __tablename__ = "lease_holds"
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"))
    transfer_id: Mapped[str | None] = mapped_column(LEDGER_ID, nullable=True)  # None: free
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    tariff: Mapped[dict] = mapped_column(JSON)  # the tariff in force when the lease opened
    state: Mapped[str] = mapped_column(String(16))  # open, posted, voided, expired, free
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_lease_holds_state", "state"),)


class UsageChargeRow(Base):
    """What one usage record was charged: metered, rated, discounted, posted (one per record)."""

    __tablename__ = "usage_charges"
    usage_record_id: Mapped[str] = mapped_column(ForeignKey("usage_records.id"),
                                                 primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    provider_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id"))
    provider_id: Mapped[str] = mapped_column(ID)
    accelerator: Mapped[str] = mapped_column(String(48))
    hub: Mapped[str | None] = mapped_column(String(24), nullable=True)
    province: Mapped[str] = mapped_column(String(8))
    tariff_id: Mapped[str] = mapped_column(String(120))
    basis: Mapped[str] = mapped_column(String(24))
    spot: Mapped[bool] = mapped_column(Boolean)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM, Asia/Shanghai
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    device_hours_micro: Mapped[int] = mapped_column(BigInteger)
    compute_unit_hours_micro: Mapped[int] = mapped_column(BigInteger)
    quantity_micro: Mapped[int] = mapped_column(BigInteger)  # in the tariff's basis
    it_energy_wh: Mapped[int] = mapped_column(BigInteger)
    facility_energy_wh: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # rated
    discount_fen: Mapped[int] = mapped_column(BigInteger)  # paid by voucher programmes
    payable_fen: Mapped[int] = mapped_column(BigInteger)  # amount - discount
    collected_fen: Mapped[int] = mapped_column(BigInteger)  # taken from the wallet
    unpaid_fen: Mapped[int] = mapped_column(BigInteger)  # payable the wallet could not cover
    fee_fen: Mapped[int] = mapped_column(BigInteger)  # the platform's commission
    provider_fen: Mapped[int] = mapped_column(BigInteger)  # collected + discount - fee
    held_fen: Mapped[int] = mapped_column(BigInteger)
    released_fen: Mapped[int] = mapped_column(BigInteger)  # of the hold, back to the wallet
    transfer_ids: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("payable_fen = amount_fen - discount_fen AND "
                        "collected_fen + unpaid_fen = payable_fen AND "
                        "provider_fen = collected_fen + discount_fen - fee_fen",
                        name="amounts_add_up"),
        Index("ix_usage_charges_tenant_period", "tenant_id", "period"),
        Index("ix_usage_charges_provider_period", "provider_tenant_id", "period"),
        Index("ix_usage_charges_tenant_pool_period", "tenant_id", "pool_id", "period"),
    )


class ChargeLineRow(Base):
    """One rated line of a charge (tier x time-of-use band), with the vouchers applied to it."""

    __tablename__ = "charge_lines"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    usage_record_id: Mapped[str] = mapped_column(ForeignKey("usage_charges.usage_record_id"),
                                                 index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    tier: Mapped[int | None] = mapped_column(Integer, nullable=True)
    band: Mapped[str | None] = mapped_column(String(16), nullable=True)
    quantity_micro: Mapped[int] = mapped_column(BigInteger)
    unit_price_fen_e4: Mapped[int] = mapped_column(BigInteger)  # fen x 10^4
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger)
    payable_fen: Mapped[int] = mapped_column(BigInteger)
    vouchers: Mapped[list] = mapped_column(JSON)  # [{voucher_id, programme_id, discount_fen}]
