"""Engine creation, schema selection, migrations and the unit of work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Execution option of a connection whose transaction only reads (see `unit_of_work`).
READS_ONLY = "suanli_reads_only"


@dataclass
class Database:
    """One database a platform node owns: its engine and a session factory."""

    engine: Engine
    sessions: sessionmaker[Session]
    schema: str | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self, *, reads_only: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error.

        `reads_only` promises the block writes nothing: on SQLite it then takes no write lock
        and runs beside the writer; a write in it may fail with "database is locked".
        """
        session = self.sessions()
        if reads_only:
            session.connection(execution_options={READS_ONLY: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """One round trip to the database; raises one of DATABASE_ERRORS when it is down."""
        with self.unit_of_work(reads_only=True) as session:
            session.execute(text("SELECT 1"))

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        with self.engine.begin() as connection:
            if self.schema:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            # Fresh planner statistics: SQLite's planner picks indexes badly without them.
            if self.dialect == "postgresql":
                # Only this node's tables: a bare ANALYZE walks every schema in the
                # database and deadlocks with another node migrating beside it.
                tables = connection.execute(text(
                    "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
                    "FROM information_schema.tables WHERE table_schema = current_schema() "
                    "AND table_type = 'BASE TABLE'")).scalars().all()
                if tables:
                    connection.execute(text("ANALYZE " + ", ".join(tables)))
            else:
                connection.execute(text("PRAGMA optimize"))

    def dispose(self) -> None:
        self.engine.dispose()


def engine_of(session: Session) -> Engine:
    """The engine behind a session, for work that needs a transaction of its own."""
    return session.get_bind().engine  # a Connection's engine, or the Engine itself


def rows_matched(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched. Session.execute() is typed to return a
    Result; for those statements it hands back a CursorResult, which counts them."""
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount


# The errors a database can raise; `is_outage` tells which mean "down now, retry later".
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeout)


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means "cannot reach or use the database now" (retry later),
    rather than a fault in the request or the code."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def sqlite_file(database_url: str) -> Path | None:
    """The file a SQLite URL names; None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("suanli") / "migrations"))
    return config


def create_database(url: str, *, schema: str | None = None, echo: bool = False) -> Database:
    """Open a database by SQLAlchemy URL; `schema` selects a PostgreSQL schema."""
    if schema is not None and not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    connect_args: dict = {}
    kwargs: dict = {"echo": echo}
    if url.startswith("sqlite"):
        connect_args["check_same_thread"] = False
        connect_args["timeout"] = 30
    elif schema:
        connect_args["options"] = f"-csearch_path={schema}"
    if url.startswith("postgresql"):
        kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False),
                    schema=schema)


def _tune_sqlite(engine: Engine) -> None:
    """Real transactions on SQLite, and the pragmas every connection needs.

    pysqlite's own transaction handling sends BEGIN only before INSERT/UPDATE/DELETE, so a
    SAVEPOINT outside one starts a transaction that its RELEASE commits, and reads run outside
    any transaction. SQLAlchemy's documented recipe (dialects/sqlite, "Serializable isolation /
    Savepoints / Transactional DDL") turns that off and sends BEGIN itself.

    A transaction that may write begins IMMEDIATE: it takes the write lock up front, waiting
    up to busy_timeout for it. A deferred one that reads and then writes fails at once
    (SQLITE_BUSY_SNAPSHOT) when another writer committed in between, and the scheduler's pass
    reads before it writes while requests write beside it.
    """
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # the driver sends no BEGIN or COMMIT itself
        # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        reads_only = connection.get_execution_options().get(READS_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")
