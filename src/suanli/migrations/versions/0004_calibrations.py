"""calibrations: a pool's measured throughput against its datasheet

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calibrations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('accelerator', sa.String(length=48), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('device_kind', sa.String(length=8), nullable=False),
    sa.Column('device_name', sa.String(length=200), nullable=False),
    sa.Column('devices', sa.Integer(), nullable=False),
    sa.Column('measured', sa.JSON(), nullable=False),
    sa.Column('datasheet', sa.JSON(), nullable=False),
    sa.Column('ratios', sa.JSON(), nullable=False),
    sa.Column('best_ratio', sa.Float(), nullable=True),
    sa.Column('verdict', sa.String(length=120), nullable=False),
    sa.Column('over_declared', sa.Boolean(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('probe_version', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('probe', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_calibrations_pool_id_pools')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_calibrations_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calibrations'))
    )
    with op.batch_alter_table('calibrations', schema=None) as batch_op:
        batch_op.create_index('ix_calibrations_pool_created', ['pool_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('calibrations', schema=None) as batch_op:
        batch_op.drop_index('ix_calibrations_pool_created')

    op.drop_table('calibrations')
