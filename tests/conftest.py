"""Fixtures shared by the whole suite, and how its tests are spread over xdist workers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from suanli.shared_data import SharedDataMissing, shared_data_dir
from tests.databases import drop_registered_databases

# Property tests judge the code, not the machine: on a loaded 2-core CI box a slow example is
# not a failure (the examples and their assertions are unchanged).
settings.register_profile("suanli", suppress_health_check=[HealthCheck.too_slow],
                          deadline=None)
settings.load_profile("suanli")

# -- xdist ----------------------------------------------------------------------------------
# The suite runs in parallel (`-n auto --dist loadgroup`, pyproject.toml). Tests that share one
# outside resource run in one xdist group, so on one worker, one after another:
#   slurm: the host has one Slurm cluster with two CPUs, and the tests count its free CPUs;
#          the slurm_cluster fixture also holds a host-wide lock against other runs;
#   ray:   the Ray head is a session fixture; one group starts one head, not one per worker.
GROUP_OF_FIXTURE = {"slurm_cluster": "slurm", "ray_head": "ray"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups in the same hook
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, group in GROUP_OF_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, group))
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)  # after xdist has tagged each grouped item's node id
def pytest_collection_finish(session: pytest.Session) -> None:
    """xdist's loadgroup scheduler keys its queue by node id and learns an item's group from
    an "@group" suffix on it: two items with one id would run once, an untagged group item
    anywhere. Both have happened silently (schemathesis and pytest 9.2), so they stop the run."""
    if not session.config.getoption("loadgroup", False):
        return  # not an xdist worker of a loadgroup run
    seen: set[str] = set()
    for item in session.items:
        if item.nodeid in seen:
            raise pytest.UsageError(f"two tests share the node id {item.nodeid}")
        seen.add(item.nodeid)
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            raise pytest.UsageError(f"{item.nodeid} lost its xdist group: is pytest newer "
                                    "than pytest-xdist supports (pytest-xdist#1386)?")


def pytest_sessionfinish() -> None:
    drop_registered_databases()


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
# on PostgreSQL. Each xdist worker (each process) migrates one database of its own, once: a
# SQLite file under its own temporary directory, or a PostgreSQL schema named after it.

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
