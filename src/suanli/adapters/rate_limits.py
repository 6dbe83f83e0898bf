"""Rate limits over the `limits` library: moving windows kept in memory (one server process)
or in Redis (`redis://host:port`, shared by every process of a platform).

The windows run on the wall clock, not the platform's clock: they count real requests.
A storage that cannot be reached fails open (logged): authentication still holds, and a
Redis outage must not lock every tenant out.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("suanli.rate_limits")
MAX_IDENTIFIER_CHARS = 200
STORAGE_SCHEMES = ("memory://", "redis://", "rediss://")


def parse_rule(text: str, field: str) -> RateLimitItem:
    """A rule like "30/minute" or "100 per second"; ValueError naming the setting if not."""
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a rate like '30/minute'") from None


class Limiter:
    """Counts hits per (rule, identifiers) and says how long until a full window frees up."""

    def __init__(self, storage_url: str, *, namespace: str = "suanli") -> None:
        if not storage_url.startswith(STORAGE_SCHEMES):
            raise ValueError(f"rate limit storage must be one of {', '.join(STORAGE_SCHEMES)}; "
                             f"got {storage_url!r}")
        options = {} if storage_url.startswith("memory://") else {"key_prefix": namespace}
        storage = storage_from_string(storage_url, **options)
        assert isinstance(storage, Storage), storage  # the synchronous kind, not limits.aio
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.storage_url = storage_url

    def retry_after_s(self, rule: RateLimitItem, *identifiers: str) -> int | None:
        """Seconds until the window has room, or None when it has room now (nothing counted)."""
        ids = _checked(identifiers)
        try:
            if self._limiter.test(rule, *ids):
                return None
            return self._wait_s(rule, ids)
        except Exception:  # fail open: see the module docstring
            log.exception("rate limit storage %s unreachable: not limiting", self.storage_url)
            return None

    def hit(self, rule: RateLimitItem, *identifiers: str) -> int | None:
        """Count one hit; None when it fits, else seconds until the window has room."""
        ids = _checked(identifiers)
        try:
            if self._limiter.hit(rule, *ids):
                return None
            return self._wait_s(rule, ids)
        except Exception:  # fail open: see the module docstring
            log.exception("rate limit storage %s unreachable: not limiting", self.storage_url)
            return None

    def reset(self) -> None:
        self._storage.reset()

    def _wait_s(self, rule: RateLimitItem, ids: tuple[str, ...]) -> int:
        stats = self._limiter.get_window_stats(rule, *ids)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _checked(identifiers: tuple[str, ...]) -> tuple[str, ...]:
    assert identifiers and all(0 < len(i) <= MAX_IDENTIFIER_CHARS for i in identifiers), \
        identifiers
    return identifiers
