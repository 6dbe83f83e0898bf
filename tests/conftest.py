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
