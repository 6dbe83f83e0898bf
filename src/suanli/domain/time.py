"""Time the whole house shares: the Shanghai zone, second counts, UTC for what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
# China has kept UTC+8 all year since 1991, so local time needs no time-zone database.
SHANGHAI_OFFSET_S = 8 * SECONDS_PER_HOUR
SHANGHAI = timezone(timedelta(seconds=SHANGHAI_OFFSET_S), "Asia/Shanghai")


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def utc(moment: datetime) -> datetime:
    """Store instants in UTC: SQLite keeps a datetime's wall time and drops its offset."""
    return moment.astimezone(UTC)


__all__ = ["SECONDS_PER_DAY", "SECONDS_PER_HOUR", "SHANGHAI", "SHANGHAI_OFFSET_S", "aware",
           "utc"]
