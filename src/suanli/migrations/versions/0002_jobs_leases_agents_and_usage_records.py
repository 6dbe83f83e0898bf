"""jobs, leases, agents and usage records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:27:17.996488
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('pools', sa.JSON(), nullable=False),
    sa.Column('engine', sa.String(length=16), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_agents_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents'))
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=True),
    sa.Column('lease_id', sa.String(length=72), nullable=True),
    sa.Column('excluded_pools', sa.JSON(), nullable=False),
    sa.Column('placement', sa.JSON(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('message', sa.String(length=2000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_jobs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_jobs_tenant_idempotency')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_pool_state', ['pool_id', 'state'], unique=False)
        batch_op.create_index('ix_jobs_state', ['state'], unique=False)
        batch_op.create_index('ix_jobs_tenant_created', ['tenant_id', 'created_at'], unique=False)

    op.create_table('job_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=72), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_events_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_events'))
    )
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_events_job_id'), ['job_id'], unique=False)

    op.create_table('job_logs',
    sa.Column('job_id', sa.String(length=72), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_logs_job_id_jobs')),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_job_logs'))
    )
    op.create_table('leases',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('job_id', sa.String(length=72), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('devices', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('fence', sa.BigInteger(), nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=True),
    sa.Column('engine_ref', sa.String(length=200), nullable=True),
    sa.Column('heartbeat_deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_leases_job_id_jobs')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_leases_pool_id_pools')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leases'))
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leases_job_id'), ['job_id'], unique=False)
        batch_op.create_index('ix_leases_pool_state', ['pool_id', 'state'], unique=False)
        batch_op.create_index('ix_leases_state_deadline', ['state', 'heartbeat_deadline'], unique=False)

    op.create_table('usage_records',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('lease_id', sa.String(length=72), nullable=False),
    sa.Column('job_id', sa.String(length=72), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('provider_tenant_id', sa.String(length=72), nullable=False),
    sa.Column('accelerator', sa.String(length=48), nullable=False),
    sa.Column('devices', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('wall_s', sa.Float(), nullable=False),
    sa.Column('device_seconds', sa.Float(), nullable=False),
    sa.Column('cpu_s', sa.Float(), nullable=True),
    sa.Column('max_rss_mb', sa.Float(), nullable=True),
    sa.Column('energy_wh', sa.Float(), nullable=False),
    sa.Column('energy_estimated', sa.Boolean(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_usage_records_job_id_jobs')),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], name=op.f('fk_usage_records_lease_id_leases')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_usage_records_pool_id_pools')),
    sa.ForeignKeyConstraint(['provider_tenant_id'], ['tenants.id'], name=op.f('fk_usage_records_provider_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_records_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_records'))
    )
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_records_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_records_lease_id'), ['lease_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_records_pool_id'), ['pool_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_usage_records_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_records_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_usage_records_pool_id'))
        batch_op.drop_index(batch_op.f('ix_usage_records_lease_id'))
        batch_op.drop_index(batch_op.f('ix_usage_records_job_id'))

    op.drop_table('usage_records')
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_index('ix_leases_state_deadline')
        batch_op.drop_index('ix_leases_pool_state')
        batch_op.drop_index(batch_op.f('ix_leases_job_id'))

    op.drop_table('leases')
    op.drop_table('job_logs')
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_events_job_id'))

    op.drop_table('job_events')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_tenant_created')
        batch_op.drop_index('ix_jobs_state')
        batch_op.drop_index('ix_jobs_pool_state')

    op.drop_table('jobs')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_tenant_id'))

    op.drop_table('agents')
