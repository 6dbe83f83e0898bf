"""billing: ledger accounts and transfers, billing profiles, tariffs, vouchers, holds, charges

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:39:36.991623
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_profiles',
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('updated_by', sa.String(length=72), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_profiles_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['updated_by'], ['tenants.id'], name=op.f('fk_billing_profiles_updated_by_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_billing_profiles'))
    )
    op.create_table('ledger_accounts',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('ledger', sa.String(length=8), nullable=False),
    sa.Column('debits_must_not_exceed_credits', sa.Boolean(), nullable=False),
    sa.Column('credits_must_not_exceed_debits', sa.Boolean(), nullable=False),
    sa.Column('debits_posted_fen', sa.BigInteger(), nullable=False),
    sa.Column('credits_posted_fen', sa.BigInteger(), nullable=False),
    sa.Column('debits_pending_fen', sa.BigInteger(), nullable=False),
    sa.Column('credits_pending_fen', sa.BigInteger(), nullable=False),
    sa.Column('owner_tenant_id', sa.String(length=72), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('NOT credits_must_not_exceed_debits OR credits_posted_fen + credits_pending_fen <= debits_posted_fen', name=op.f('ck_ledger_accounts_credits_within_debits')),
    sa.CheckConstraint('NOT debits_must_not_exceed_credits OR debits_posted_fen + debits_pending_fen <= credits_posted_fen', name=op.f('ck_ledger_accounts_debits_within_credits')),
    sa.CheckConstraint('debits_posted_fen >= 0 AND credits_posted_fen >= 0 AND debits_pending_fen >= 0 AND credits_pending_fen >= 0', name=op.f('ck_ledger_accounts_balances_non_negative')),
    sa.ForeignKeyConstraint(['owner_tenant_id'], ['tenants.id'], name=op.f('fk_ledger_accounts_owner_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts'))
    )
    op.create_index(op.f('ix_ledger_accounts_owner_tenant_id'), 'ledger_accounts', ['owner_tenant_id'], unique=False)
    op.create_table('ledger_transfers',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('ledger', sa.String(length=8), nullable=False),
    sa.Column('request_debit_account_id', sa.String(length=128), nullable=False),
    sa.Column('request_credit_account_id', sa.String(length=128), nullable=False),
    sa.Column('request_amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('pending_id', sa.String(length=128), nullable=True),
    sa.Column('timeout_s', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=False),
    sa.Column('debit_account_id', sa.String(length=128), nullable=False),
    sa.Column('credit_account_id', sa.String(length=128), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_fen >= 0 AND request_amount_fen >= 0', name=op.f('ck_ledger_transfers_amounts')),
    sa.ForeignKeyConstraint(['credit_account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_transfers_credit_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['debit_account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_transfers_debit_account_id_ledger_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transfers'))
    )
    op.create_index('ix_ledger_transfers_credit_time', 'ledger_transfers', ['credit_account_id', 'timestamp'], unique=False)
    op.create_index('ix_ledger_transfers_debit_time', 'ledger_transfers', ['debit_account_id', 'timestamp'], unique=False)
    op.create_index('ix_ledger_transfers_open_holds', 'ledger_transfers', ['expires_at'], unique=False, postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.create_index('ix_ledger_transfers_pending_id', 'ledger_transfers', ['pending_id'], unique=False, postgresql_where=sa.text('pending_id IS NOT NULL'), sqlite_where=sa.text('pending_id IS NOT NULL'))
    op.create_table('voucher_programmes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('issuer', sa.String(length=120), nullable=False),
    sa.Column('budget_fen', sa.BigInteger(), nullable=False),
    sa.Column('coverage_e4', sa.Integer(), nullable=False),
    sa.Column('western_extra_coverage_e4', sa.Integer(), nullable=False),
    sa.Column('cap_fen_per_tenant', sa.BigInteger(), nullable=False),
    sa.Column('eligible_tenant_classes', sa.JSON(), nullable=False),
    sa.Column('eligible_hubs', sa.JSON(), nullable=True),
    sa.Column('eligible_provinces', sa.JSON(), nullable=True),
    sa.Column('eligible_provider_ids', sa.JSON(), nullable=True),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fund_account_id', sa.String(length=128), nullable=False),
    sa.Column('created_by', sa.String(length=72), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['tenants.id'], name=op.f('fk_voucher_programmes_created_by_tenants')),
    sa.ForeignKeyConstraint(['fund_account_id'], ['ledger_accounts.id'], name=op.f('fk_voucher_programmes_fund_account_id_ledger_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_programmes'))
    )
    op.create_table('vouchers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('programme_id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('granted_fen', sa.BigInteger(), nullable=False),
    sa.Column('remaining_fen', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('remaining_fen >= 0 AND remaining_fen <= granted_fen', name=op.f('ck_vouchers_remaining_within_grant')),
    sa.ForeignKeyConstraint(['programme_id'], ['voucher_programmes.id'], name=op.f('fk_vouchers_programme_id_voucher_programmes')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_vouchers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vouchers')),
    sa.UniqueConstraint('programme_id', 'idempotency_key', name='uq_vouchers_idempotency')
    )
    op.create_index(op.f('ix_vouchers_programme_id'), 'vouchers', ['programme_id'], unique=False)
    op.create_index(op.f('ix_vouchers_tenant_id'), 'vouchers', ['tenant_id'], unique=False)
    op.create_table('pool_tariffs',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=72), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['tenants.id'], name=op.f('fk_pool_tariffs_created_by_tenants')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_pool_tariffs_pool_id_pools')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_tariffs')),
    sa.UniqueConstraint('pool_id', 'version', name='uq_pool_tariffs_version')
    )
    op.create_index(op.f('ix_pool_tariffs_pool_id'), 'pool_tariffs', ['pool_id'], unique=False)
    op.create_table('lease_holds',
    sa.Column('lease_id', sa.String(length=72), nullable=False),
    sa.Column('job_id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('transfer_id', sa.String(length=128), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('tariff', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_lease_holds_job_id_jobs')),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], name=op.f('fk_lease_holds_lease_id_leases')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_lease_holds_pool_id_pools')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_lease_holds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('lease_id', name=op.f('pk_lease_holds'))
    )
    op.create_index(op.f('ix_lease_holds_job_id'), 'lease_holds', ['job_id'], unique=False)
    op.create_index('ix_lease_holds_state', 'lease_holds', ['state'], unique=False)
    op.create_table('usage_charges',
    sa.Column('usage_record_id', sa.String(length=72), nullable=False),
    sa.Column('job_id', sa.String(length=72), nullable=False),
    sa.Column('lease_id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('provider_tenant_id', sa.String(length=72), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('provider_id', sa.String(length=72), nullable=False),
    sa.Column('accelerator', sa.String(length=48), nullable=False),
    sa.Column('hub', sa.String(length=24), nullable=True),
    sa.Column('province', sa.String(length=8), nullable=False),
    sa.Column('tariff_id', sa.String(length=120), nullable=False),
    sa.Column('basis', sa.String(length=24), nullable=False),
    sa.Column('spot', sa.Boolean(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('device_hours_micro', sa.BigInteger(), nullable=False),
    sa.Column('compute_unit_hours_micro', sa.BigInteger(), nullable=False),
    sa.Column('quantity_micro', sa.BigInteger(), nullable=False),
    sa.Column('it_energy_wh', sa.BigInteger(), nullable=False),
    sa.Column('facility_energy_wh', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('discount_fen', sa.BigInteger(), nullable=False),
    sa.Column('payable_fen', sa.BigInteger(), nullable=False),
    sa.Column('collected_fen', sa.BigInteger(), nullable=False),
    sa.Column('unpaid_fen', sa.BigInteger(), nullable=False),
    sa.Column('fee_fen', sa.BigInteger(), nullable=False),
    sa.Column('provider_fen', sa.BigInteger(), nullable=False),
    sa.Column('held_fen', sa.BigInteger(), nullable=False),
    sa.Column('released_fen', sa.BigInteger(), nullable=False),
    sa.Column('transfer_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('payable_fen = amount_fen - discount_fen AND collected_fen + unpaid_fen = payable_fen AND provider_fen = collected_fen + discount_fen - fee_fen', name=op.f('ck_usage_charges_amounts_add_up')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_usage_charges_job_id_jobs')),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], name=op.f('fk_usage_charges_lease_id_leases')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_usage_charges_pool_id_pools')),
    sa.ForeignKeyConstraint(['provider_tenant_id'], ['tenants.id'], name=op.f('fk_usage_charges_provider_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_charges_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['usage_record_id'], ['usage_records.id'], name=op.f('fk_usage_charges_usage_record_id_usage_records')),
    sa.PrimaryKeyConstraint('usage_record_id', name=op.f('pk_usage_charges'))
    )
    op.create_index(op.f('ix_usage_charges_job_id'), 'usage_charges', ['job_id'], unique=False)
    op.create_index('ix_usage_charges_provider_period', 'usage_charges', ['provider_tenant_id', 'period'], unique=False)
    op.create_index('ix_usage_charges_tenant_period', 'usage_charges', ['tenant_id', 'period'], unique=False)
    op.create_index('ix_usage_charges_tenant_pool_period', 'usage_charges', ['tenant_id', 'pool_id', 'period'], unique=False)
    op.create_table('charge_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('usage_record_id', sa.String(length=72), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=True),
    sa.Column('band', sa.String(length=16), nullable=True),
    sa.Column('quantity_micro', sa.BigInteger(), nullable=False),
    sa.Column('unit_price_fen_e4', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('discount_fen', sa.BigInteger(), nullable=False),
    sa.Column('payable_fen', sa.BigInteger(), nullable=False),
    sa.Column('vouchers', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['usage_record_id'], ['usage_charges.usage_record_id'], name=op.f('fk_charge_lines_usage_record_id_usage_charges')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charge_lines'))
    )
    op.create_index(op.f('ix_charge_lines_usage_record_id'), 'charge_lines', ['usage_record_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_charge_lines_usage_record_id'), table_name='charge_lines')
    op.drop_table('charge_lines')
    op.drop_index('ix_usage_charges_tenant_pool_period', table_name='usage_charges')
    op.drop_index('ix_usage_charges_tenant_period', table_name='usage_charges')
    op.drop_index('ix_usage_charges_provider_period', table_name='usage_charges')
    op.drop_index(op.f('ix_usage_charges_job_id'), table_name='usage_charges')
    op.drop_table('usage_charges')
    op.drop_index('ix_lease_holds_state', table_name='lease_holds')
    op.drop_index(op.f('ix_lease_holds_job_id'), table_name='lease_holds')
    op.drop_table('lease_holds')
    op.drop_index(op.f('ix_pool_tariffs_pool_id'), table_name='pool_tariffs')
    op.drop_table('pool_tariffs')
    op.drop_index(op.f('ix_vouchers_tenant_id'), table_name='vouchers')
    op.drop_index(op.f('ix_vouchers_programme_id'), table_name='vouchers')
    op.drop_table('vouchers')
    op.drop_table('voucher_programmes')
    op.drop_index('ix_ledger_transfers_pending_id', table_name='ledger_transfers', postgresql_where=sa.text('pending_id IS NOT NULL'), sqlite_where=sa.text('pending_id IS NOT NULL'))
    op.drop_index('ix_ledger_transfers_open_holds', table_name='ledger_transfers', postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.drop_index('ix_ledger_transfers_debit_time', table_name='ledger_transfers')
    op.drop_index('ix_ledger_transfers_credit_time', table_name='ledger_transfers')
    op.drop_table('ledger_transfers')
    op.drop_index(op.f('ix_ledger_accounts_owner_tenant_id'), table_name='ledger_accounts')
    op.drop_table('ledger_accounts')
    op.drop_table('billing_profiles')
