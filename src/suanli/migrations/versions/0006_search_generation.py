"""search generation: one row that changes whenever a pool's searchable facts change

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00.000000

Triggers on `pools` change the row in the writer's own transaction, so every process holding
an in-memory search index (services.pool_index) sees, with one primary-key read, that its copy
is out of date: registry writes, the demo load, bulk inserts and hand-written SQL alike. Lease
updates, which set only free_devices, do not fire them (the index never holds free_devices).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The pool columns the search index holds; an UPDATE that sets any of them fires the trigger.
# Frozen with this revision: a later revision that indexes another column replaces the triggers.
WATCHED_COLUMNS = (
    "id", "state", "vendor", "architecture", "accelerator", "device_kind", "province", "hub",
    "provider_id", "memory_gb", "price_fen_per_device_hour", "device_count",
    "units_per_device_hour", "fen_per_unit_hour_general", "fen_per_unit_hour_training",
    "fen_per_unit_hour_inference", "fen_per_unit_hour_hpc", "green_share",
    "geo_x", "geo_y", "geo_z",
)

# Insert-if-missing then increment: a missing row (a test emptied every table) comes back at a
# random value, never at one an index may still hold from before.
_SQLITE_BUMP = """
    INSERT OR IGNORE INTO search_generation (id, generation)
        VALUES (1, abs(random()) % 1000000000000000);
    UPDATE search_generation SET generation = generation + 1 WHERE id = 1;
"""
_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION suanli_bump_search_generation() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO search_generation (id, generation)
        VALUES (1, (random() * 1e15)::bigint)
        ON CONFLICT (id) DO UPDATE SET generation = search_generation.generation + 1;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table('search_generation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_generation'))
    )
    op.execute("INSERT INTO search_generation (id, generation) VALUES (1, 1)")
    columns = ", ".join(WATCHED_COLUMNS)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        # Once per statement: a bulk insert of 5,000 pools bumps the row once.
        op.execute(f"CREATE TRIGGER pools_search_generation AFTER INSERT OR DELETE OR TRUNCATE "
                   f"OR UPDATE OF {columns} ON pools "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION suanli_bump_search_generation()")
    else:
        # SQLite has row triggers only.
        for name, event in (("insert", "INSERT"), ("delete", "DELETE"),
                            ("update", f"UPDATE OF {columns}")):
            op.execute(f"CREATE TRIGGER pools_search_generation_{name} AFTER {event} ON pools "
                       f"BEGIN {_SQLITE_BUMP} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS pools_search_generation ON pools")
        op.execute("DROP FUNCTION IF EXISTS suanli_bump_search_generation()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS pools_search_generation_{name}")
    op.drop_table('search_generation')
