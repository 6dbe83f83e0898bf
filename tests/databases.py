"""Test databases: emptying one between tests, and dropping those made outside fixtures."""

from __future__ import annotations

from sqlalchemy import text

from suanli.adapters.store import Database
from suanli.adapters.store.audit_tables import AUDIT_TABLE, SQLITE_GUARDS

_made_outside_fixtures: list[Database] = []


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


def drop_at_session_end(db: Database) -> Database:
    """Drops `db`'s PostgreSQL schema (and disposes of it) when this process's session ends.

    For a database made at import time: every xdist worker imports every test module, and a
    module-scoped fixture would clean up only on the workers that ran one of its tests."""
    _made_outside_fixtures.append(db)
    return db


def drop_registered_databases() -> None:
    while _made_outside_fixtures:
        db = _made_outside_fixtures.pop()
        if db.schema:
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
        db.dispose()
