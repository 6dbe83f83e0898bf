"""Test databases: emptying one between tests, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import text

from suanli.adapters.store import Database
from suanli.adapters.store.audit_tables import AUDIT_TABLE, SQLITE_GUARDS


def empty_database(db: Database) -> None:
    """Delete every row of every table, children first (TRUNCATE on PostgreSQL)."""
    from suanli.adapters.store.schema import Base

    with db.engine.begin() as connection:
        names = [table.name for table in reversed(Base.metadata.sorted_tables)]
        if db.dialect == "postgresql":
            connection.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names)
                                    + " CASCADE"))
        else:
            for name in names:
                if name == AUDIT_TABLE:  # append-only: its guards are lifted for the wipe
                    _wipe_append_only(connection)
                else:
                    connection.execute(text(f'DELETE FROM "{name}"'))


def _wipe_append_only(connection) -> None:  # type: ignore[no-untyped-def]
    for trigger in SQLITE_GUARDS:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    connection.execute(text(f'DELETE FROM "{AUDIT_TABLE}"'))
    for trigger, body in SQLITE_GUARDS.items():
        connection.execute(text(f"CREATE TRIGGER {trigger} {body}"))
