"""Persistence with SQLAlchemy 2: SQLite by default, PostgreSQL by URL."""

from suanli.adapters.store.database import Database, create_database, engine_of, rows_matched

__all__ = ["Database", "create_database", "engine_of", "rows_matched"]
