"""Locates the project's real data sets (traces, accelerator throughput, energy, latency).

The data lives outside the package, in `shared/data` beside the repository; set
`SUANLI_SHARED_DATA` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


class SharedDataMissing(FileNotFoundError):
    pass


def shared_data_dir() -> Path:
    configured = os.environ.get("SUANLI_SHARED_DATA")
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise SharedDataMissing(f"SUANLI_SHARED_DATA={configured} is not a directory")
        return path
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            candidate = parent / "shared" / "data"
            if candidate.is_dir():
                return candidate
    raise SharedDataMissing(
        "shared/data not found beside the repository; set SUANLI_SHARED_DATA to its path"
    )
