"""market: products, orders and legs, the event log, trades, reservations, index bars

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 20:26:46.931923

Issue 14, the compute exchange (after 0007, keys and audit: they touch different tables).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('market_index_bars',
    sa.Column('accelerator_class', sa.String(length=48), nullable=False),
    sa.Column('location', sa.String(length=24), nullable=False),
    sa.Column('period', sa.String(length=4), nullable=False),
    sa.Column('start_s', sa.BigInteger(), nullable=False),
    sa.Column('open_fen', sa.BigInteger(), nullable=False),
    sa.Column('high_fen', sa.BigInteger(), nullable=False),
    sa.Column('low_fen', sa.BigInteger(), nullable=False),
    sa.Column('close_fen', sa.BigInteger(), nullable=False),
    sa.Column('volume', sa.BigInteger(), nullable=False),
    sa.Column('value_fen', sa.BigInteger(), nullable=False),
    sa.Column('trades', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('accelerator_class', 'location', 'period', 'start_s', name=op.f('pk_market_index_bars'))
    )
    op.create_table('market_index_marks',
    sa.Column('period', sa.String(length=4), nullable=False),
    sa.Column('through_s', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('period', name=op.f('pk_market_index_marks'))
    )
    op.create_table('market_products',
    sa.Column('id', sa.String(length=96), nullable=False),
    sa.Column('accelerator_class', sa.String(length=48), nullable=False),
    sa.Column('location', sa.String(length=24), nullable=False),
    sa.Column('block_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rule', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('last_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('last_price_fen', sa.BigInteger(), nullable=True),
    sa.Column('next_uncross_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_products'))
    )
    with op.batch_alter_table('market_products', schema=None) as batch_op:
        batch_op.create_index('ix_market_products_series', ['accelerator_class', 'location', 'block_start'], unique=False)
        batch_op.create_index('ix_market_products_uncross', ['next_uncross_at'], unique=False)

    op.create_table('market_events',
    sa.Column('product_id', sa.String(length=96), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('order_id', sa.String(length=48), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('direction', sa.SmallInteger(), nullable=False),
    sa.Column('contra_id', sa.String(length=48), nullable=False),
    sa.Column('owner', sa.String(length=72), nullable=False),
    sa.Column('min_fill', sa.Integer(), nullable=False),
    sa.Column('good_till_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['market_products.id'], name=op.f('fk_market_events_product_id_market_products')),
    sa.PrimaryKeyConstraint('product_id', 'seq', name=op.f('pk_market_events'))
    )
    op.create_table('market_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('client_order_id', sa.String(length=64), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('accelerator_class', sa.String(length=48), nullable=False),
    sa.Column('location', sa.String(length=24), nullable=False),
    sa.Column('price_fen_per_unit_hour', sa.BigInteger(), nullable=False),
    sa.Column('shape', sa.JSON(), nullable=False),
    sa.Column('min_fill', sa.Integer(), nullable=False),
    sa.Column('all_or_none', sa.Boolean(), nullable=False),
    sa.Column('good_till', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pool_id', sa.String(length=72), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_market_orders_pool_id_pools')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_market_orders_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_orders')),
    sa.UniqueConstraint('tenant_id', 'client_order_id', name='uq_market_orders_client_id')
    )
    with op.batch_alter_table('market_orders', schema=None) as batch_op:
        batch_op.create_index('ix_market_orders_tenant_created', ['tenant_id', 'created_at'], unique=False)

    op.create_table('market_legs',
    sa.Column('id', sa.String(length=48), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('leg_index', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.String(length=96), nullable=False),
    sa.Column('tenant_id', sa.String(length=72), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('price_fen_per_unit_hour', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('filled', sa.Integer(), nullable=False),
    sa.Column('min_fill', sa.Integer(), nullable=False),
    sa.Column('good_till_ms', sa.BigInteger(), nullable=False),
    sa.Column('priority', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=True),
    sa.Column('block_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('backing_devices', sa.Integer(), nullable=False),
    sa.Column('hold_transfer_id', sa.String(length=128), nullable=True),
    sa.Column('hold_fen', sa.BigInteger(), nullable=False),
    sa.Column('hold_serial', sa.Integer(), nullable=False),
    sa.CheckConstraint('hold_fen >= 0 AND backing_devices >= 0', name=op.f('ck_market_legs_backing')),
    sa.CheckConstraint('remaining >= 0 AND filled >= 0 AND remaining + filled <= count', name=op.f('ck_market_legs_quantities')),
    sa.ForeignKeyConstraint(['order_id'], ['market_orders.id'], name=op.f('fk_market_legs_order_id_market_orders')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_market_legs_pool_id_pools')),
    sa.ForeignKeyConstraint(['product_id'], ['market_products.id'], name=op.f('fk_market_legs_product_id_market_products')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_market_legs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_legs'))
    )
    with op.batch_alter_table('market_legs', schema=None) as batch_op:
        batch_op.create_index('ix_market_legs_book', ['product_id', 'state', 'priority'], unique=False)
        batch_op.create_index('ix_market_legs_open_till', ['good_till_ms'], unique=False, postgresql_where=sa.text("state = 'open'"), sqlite_where=sa.text("state = 'open'"))
        batch_op.create_index(batch_op.f('ix_market_legs_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_market_legs_pool_block', ['pool_id', 'block_start'], unique=False)

    op.create_table('market_trades',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('product_id', sa.String(length=96), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.Column('accelerator_class', sa.String(length=48), nullable=False),
    sa.Column('location', sa.String(length=24), nullable=False),
    sa.Column('price_fen_per_unit_hour', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('buy_leg_id', sa.String(length=48), nullable=False),
    sa.Column('sell_leg_id', sa.String(length=48), nullable=False),
    sa.Column('buyer_tenant_id', sa.String(length=72), nullable=False),
    sa.Column('seller_tenant_id', sa.String(length=72), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('aggressor', sa.SmallInteger(), nullable=False),
    sa.Column('value_fen', sa.BigInteger(), nullable=False),
    sa.Column('fee_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('quantity > 0 AND value_fen > 0 AND fee_fen >= 0 AND fee_fen <= value_fen', name=op.f('ck_market_trades_amounts')),
    sa.ForeignKeyConstraint(['buy_leg_id'], ['market_legs.id'], name=op.f('fk_market_trades_buy_leg_id_market_legs')),
    sa.ForeignKeyConstraint(['buyer_tenant_id'], ['tenants.id'], name=op.f('fk_market_trades_buyer_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_market_trades_pool_id_pools')),
    sa.ForeignKeyConstraint(['product_id'], ['market_products.id'], name=op.f('fk_market_trades_product_id_market_products')),
    sa.ForeignKeyConstraint(['sell_leg_id'], ['market_legs.id'], name=op.f('fk_market_trades_sell_leg_id_market_legs')),
    sa.ForeignKeyConstraint(['seller_tenant_id'], ['tenants.id'], name=op.f('fk_market_trades_seller_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_trades'))
    )
    with op.batch_alter_table('market_trades', schema=None) as batch_op:
        batch_op.create_index('ix_market_trades_product_seq', ['product_id', 'seq'], unique=False)
        batch_op.create_index('ix_market_trades_series_time', ['accelerator_class', 'location', 'at_ms'], unique=False)
        batch_op.create_index('ix_market_trades_time', ['at_ms'], unique=False)

    op.create_table('market_reservations',
    sa.Column('id', sa.String(length=120), nullable=False),
    sa.Column('trade_id', sa.String(length=120), nullable=False),
    sa.Column('product_id', sa.String(length=96), nullable=False),
    sa.Column('pool_id', sa.String(length=72), nullable=False),
    sa.Column('buyer_tenant_id', sa.String(length=72), nullable=False),
    sa.Column('seller_tenant_id', sa.String(length=72), nullable=False),
    sa.Column('accelerator_class', sa.String(length=48), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('devices', sa.Integer(), nullable=False),
    sa.Column('value_fen', sa.BigInteger(), nullable=False),
    sa.Column('fee_fen', sa.BigInteger(), nullable=False),
    sa.Column('paid_seller_fen', sa.BigInteger(), nullable=False),
    sa.Column('paid_fee_fen', sa.BigInteger(), nullable=False),
    sa.Column('refunded_fen', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('paid_seller_fen + paid_fee_fen + refunded_fen <= value_fen AND paid_fee_fen <= fee_fen', name=op.f('ck_market_reservations_paid_within_value')),
    sa.ForeignKeyConstraint(['buyer_tenant_id'], ['tenants.id'], name=op.f('fk_market_reservations_buyer_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_market_reservations_pool_id_pools')),
    sa.ForeignKeyConstraint(['product_id'], ['market_products.id'], name=op.f('fk_market_reservations_product_id_market_products')),
    sa.ForeignKeyConstraint(['seller_tenant_id'], ['tenants.id'], name=op.f('fk_market_reservations_seller_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['trade_id'], ['market_trades.id'], name=op.f('fk_market_reservations_trade_id_market_trades')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_reservations'))
    )
    with op.batch_alter_table('market_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_market_reservations_buyer_time', ['buyer_tenant_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_market_reservations_pool_time', ['pool_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_market_reservations_state', ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('market_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_market_reservations_state')
        batch_op.drop_index('ix_market_reservations_pool_time')
        batch_op.drop_index('ix_market_reservations_buyer_time')

    op.drop_table('market_reservations')
    with op.batch_alter_table('market_trades', schema=None) as batch_op:
        batch_op.drop_index('ix_market_trades_time')
        batch_op.drop_index('ix_market_trades_series_time')
        batch_op.drop_index('ix_market_trades_product_seq')

    op.drop_table('market_trades')
    with op.batch_alter_table('market_legs', schema=None) as batch_op:
        batch_op.drop_index('ix_market_legs_pool_block')
        batch_op.drop_index(batch_op.f('ix_market_legs_order_id'))
        batch_op.drop_index('ix_market_legs_open_till', postgresql_where=sa.text("state = 'open'"), sqlite_where=sa.text("state = 'open'"))
        batch_op.drop_index('ix_market_legs_book')

    op.drop_table('market_legs')
    with op.batch_alter_table('market_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_market_orders_tenant_created')

    op.drop_table('market_orders')
    op.drop_table('market_events')
    with op.batch_alter_table('market_products', schema=None) as batch_op:
        batch_op.drop_index('ix_market_products_uncross')
        batch_op.drop_index('ix_market_products_series')

    op.drop_table('market_products')
    op.drop_table('market_index_marks')
    op.drop_table('market_index_bars')
