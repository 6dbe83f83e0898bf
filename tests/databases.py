"""Test databases: emptying one between tests, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import text

from suanli.adapters.store import Database


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
                connection.execute(text(f'DELETE FROM "{name}"'))
