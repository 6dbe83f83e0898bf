"""Alembic environment: runs migrations on the connection the Database hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from suanli.adapters.store.schema import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None, "alembic needs a connection handed in or sqlalchemy.url"
    with create_engine(url).begin() as standalone:
        _run(standalone)
