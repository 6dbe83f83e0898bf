"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from suanli.shared_data import SharedDataMissing, shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets; CI always has them, so a missing directory fails there."""
    try:
        return shared_data_dir()
    except SharedDataMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


# -- the database every integration and end-to-end test runs on ------------------------------
# SQLite by default; set SUANLI_TEST_DATABASE_URL=postgresql+psycopg://... to run the same suite
# on PostgreSQL. Each test run gets its own PostgreSQL schema, so parallel runs never collide.

import secrets  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import text  # noqa: E402

TEST_DATABASE_URL = os.environ.get("SUANLI_TEST_DATABASE_URL")
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'suanli.db'}"


@pytest.fixture(scope="session")
def _migrated_database(database_url: str) -> Iterator:
    from suanli.adapters.store import create_database

    schema = f"t_{os.getpid()}_{secrets.token_hex(3)}" if database_url.startswith("postgres") \
        else None
    db = create_database(database_url, schema=schema)
    db.migrate()
    yield db
    if schema:
        with db.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    db.dispose()


@pytest.fixture
def database(_migrated_database):  # type: ignore[no-untyped-def]
    """A migrated database, emptied before each test."""
    from tests.databases import empty_database

    empty_database(_migrated_database)
    return _migrated_database


@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    from suanli.adapters.clock import FixedClock

    return FixedClock(START)
