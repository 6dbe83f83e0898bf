"""registry, tenants, delegations and identifier counters

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 18:22:05.287870
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delegations',
    sa.Column('authority', sa.String(length=72), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('endpoint', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('authority', name=op.f('pk_delegations'))
    )
    op.create_table('id_counters',
    sa.Column('parent', sa.String(length=72), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('next_serial', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('parent', 'kind', name=op.f('pk_id_counters'))
    )
    op.create_table('tenants',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('tenant_class', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants'))
    )
    op.create_table('api_keys',
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('key_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_api_keys_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('prefix', name=op.f('pk_api_keys'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('providers',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.Column('illustrative', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_providers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers'))
    )
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_providers_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('sites',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('provider_id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('province', sa.String(length=8), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('pue', sa.Numeric(precision=4, scale=2), nullable=False),
    sa.Column('electricity_fen_per_kwh', sa.Integer(), nullable=False),
    sa.Column('green_share', sa.Numeric(precision=5, scale=4), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('hub', sa.String(length=24), nullable=True),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.Column('illustrative', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_sites_provider_id_providers')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sites_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sites_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sites_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('pools',
    sa.Column('id', sa.String(length=72), nullable=False),
    sa.Column('site_id', sa.String(length=72), nullable=False),
    sa.Column('provider_id', sa.String(length=72), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('accelerator', sa.String(length=48), nullable=False),
    sa.Column('vendor', sa.String(length=32), nullable=False),
    sa.Column('architecture', sa.String(length=48), nullable=False),
    sa.Column('device_kind', sa.String(length=8), nullable=False),
    sa.Column('memory_gb', sa.Float(), nullable=True),
    sa.Column('device_count', sa.Integer(), nullable=False),
    sa.Column('free_devices', sa.Integer(), nullable=False),
    sa.Column('interconnect', sa.String(length=64), nullable=True),
    sa.Column('engine', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('price_fen_per_device_hour', sa.BigInteger(), nullable=False),
    sa.Column('units_per_device_hour', sa.Numeric(precision=14, scale=4), nullable=False),
    sa.Column('fen_per_unit_hour_general', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('fen_per_unit_hour_training', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('fen_per_unit_hour_inference', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('fen_per_unit_hour_hpc', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('province', sa.String(length=8), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('hub', sa.String(length=24), nullable=True),
    sa.Column('site_kind', sa.String(length=8), nullable=False),
    sa.Column('green_share', sa.Numeric(precision=5, scale=4), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('geo_x', sa.Float(), nullable=False),
    sa.Column('geo_y', sa.Float(), nullable=False),
    sa.Column('geo_z', sa.Float(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('illustrative', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_pools_provider_id_providers')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_pools_site_id_sites')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_pools_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pools'))
    )
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.create_index('ix_pools_accelerator', ['accelerator'], unique=False)
        batch_op.create_index('ix_pools_hub', ['hub'], unique=False)
        batch_op.create_index(batch_op.f('ix_pools_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index('ix_pools_province', ['province'], unique=False)
        batch_op.create_index(batch_op.f('ix_pools_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_pools_state_device_price', ['state', 'price_fen_per_device_hour'], unique=False)
        batch_op.create_index('ix_pools_state_price_general', ['state', 'fen_per_unit_hour_general'], unique=False)
        batch_op.create_index('ix_pools_state_price_inference', ['state', 'fen_per_unit_hour_inference'], unique=False)
        batch_op.create_index('ix_pools_state_price_training', ['state', 'fen_per_unit_hour_training'], unique=False)
        batch_op.create_index('ix_pools_state_green', ['state', 'green_share'], unique=False)
        batch_op.create_index('ix_pools_state_free', ['state', 'free_devices'], unique=False)
        batch_op.create_index(batch_op.f('ix_pools_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_pools_vendor', ['vendor'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.drop_index('ix_pools_vendor')
        batch_op.drop_index(batch_op.f('ix_pools_tenant_id'))
        batch_op.drop_index('ix_pools_state_price_training')
        batch_op.drop_index('ix_pools_state_green')
        batch_op.drop_index('ix_pools_state_free')
        batch_op.drop_index('ix_pools_state_price_inference')
        batch_op.drop_index('ix_pools_state_price_general')
        batch_op.drop_index('ix_pools_state_device_price')
        batch_op.drop_index(batch_op.f('ix_pools_site_id'))
        batch_op.drop_index('ix_pools_province')
        batch_op.drop_index(batch_op.f('ix_pools_provider_id'))
        batch_op.drop_index('ix_pools_hub')
        batch_op.drop_index('ix_pools_accelerator')

    op.drop_table('pools')
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sites_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_sites_provider_id'))

    op.drop_table('sites')
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_providers_tenant_id'))

    op.drop_table('providers')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_tenant_id'))

    op.drop_table('api_keys')
    op.drop_table('tenants')
    op.drop_table('id_counters')
    op.drop_table('delegations')
