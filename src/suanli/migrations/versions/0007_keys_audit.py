"""keys and audit: scoped, expiring, rotatable API keys; the append-only audit log; roaming
charge bounds; a scheduling index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 09:00:00.000000

- api_keys: name, scopes (NULL: every scope, as keys made before had), expires_at,
  created_by, rotated_from.
- audit_log: one row per admin or money action. Triggers refuse UPDATE and DELETE on both
  databases, so not even a bug in the application can rewrite it (PostgreSQL's TRUNCATE, an
  operator's tool, is left alone).
- roaming_jobs.max_charge_fen, roaming_guest_jobs.max_charge_fen: the most a host may charge
  for one forwarded attempt, fixed when it accepts.
- jobs (state, tenant_id, created_at): the scheduler's per-tenant round-robin reads it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Frozen with this revision (the same text is in adapters/store/audit_tables.py).
_SQLITE_GUARDS = {
    "audit_log_no_update": "BEFORE UPDATE ON audit_log BEGIN "
                           "SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "audit_log_no_delete": "BEFORE DELETE ON audit_log BEGIN "
                           "SELECT RAISE(ABORT, 'audit_log is append-only'); END",
}
_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION suanli_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$
"""


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=120), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=72), nullable=True))
        batch_op.add_column(sa.Column('rotated_from', sa.String(length=16), nullable=True))

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_tenant_id', sa.String(length=72), nullable=True),
    sa.Column('actor_key_id', sa.String(length=16), nullable=True),
    sa.Column('actor_role', sa.String(length=16), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_log_actor_at', ['actor_tenant_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_action_at', ['action', 'at'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION suanli_audit_log_append_only()")
    else:
        for name, body in _SQLITE_GUARDS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")

    with op.batch_alter_table('roaming_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_charge_fen', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('roaming_guest_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_charge_fen', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_state_tenant_created', ['state', 'tenant_id',
                                                               'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_state_tenant_created')
    with op.batch_alter_table('roaming_guest_jobs', schema=None) as batch_op:
        batch_op.drop_column('max_charge_fen')
    with op.batch_alter_table('roaming_jobs', schema=None) as batch_op:
        batch_op.drop_column('max_charge_fen')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS suanli_audit_log_append_only()")
    else:
        for name in _SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('audit_log')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('rotated_from')
        batch_op.drop_column('created_by')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scopes')
        batch_op.drop_column('name')
