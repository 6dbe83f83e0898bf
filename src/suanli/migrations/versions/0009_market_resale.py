"""market: resale of reserved time (an ask backed by a reservation)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 00:45:00

Issue 14: an order and its legs may name the reservation that backs them; a reservation counts
what was resold out of it (units and devices).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('market_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reservation_id', sa.String(length=120), nullable=True))
    with op.batch_alter_table('market_legs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reservation_id', sa.String(length=120), nullable=True))
        batch_op.create_index('ix_market_legs_reservation', ['reservation_id'], unique=False)
    with op.batch_alter_table('market_reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resold', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('resold_devices', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.create_check_constraint(
            op.f('ck_market_reservations_resold_within_quantity'),
            'resold >= 0 AND resold <= quantity AND resold_devices >= 0 '
            'AND resold_devices <= devices')


def downgrade() -> None:
    with op.batch_alter_table('market_reservations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_market_reservations_resold_within_quantity'),
                                 type_='check')
        batch_op.drop_column('resold_devices')
        batch_op.drop_column('resold')
    with op.batch_alter_table('market_legs', schema=None) as batch_op:
        batch_op.drop_index('ix_market_legs_reservation')
        batch_op.drop_column('reservation_id')
    with op.batch_alter_table('market_orders', schema=None) as batch_op:
        batch_op.drop_column('reservation_id')
