"""The typed errors of suanli. They know nothing of HTTP: api/problems.py maps each kind to
one status code, in one place."""

from __future__ import annotations


class SuanliError(Exception):
    """Base of every error a caller is expected to handle."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ValidationFailed(SuanliError):
    """Input broke a rule; `field` names the offending field."""


class NotFound(SuanliError):
    """No such object, or one the caller may not see (answered alike, so ids do not leak)."""


class Conflict(SuanliError):
    """The request clashes with the current state (duplicate, wrong state, stale version)."""


class Unauthenticated(SuanliError):
    """No credentials, or credentials that name nobody."""


class Forbidden(SuanliError):
    """The caller is known but may not do this."""


class InsufficientFunds(SuanliError):
    """The wallet cannot cover the hold or charge."""


class PlacementInfeasible(SuanliError):
    """No pool can ever take the job as asked."""


class Unavailable(SuanliError):
    """A dependency (the database, an engine, a peer) cannot be reached now; retry later."""


class RateLimited(SuanliError):
    """Too many requests (or failed authentications) in a window; retry after `retry_after_s`."""

    def __init__(self, detail: str, *, retry_after_s: int, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after_s = max(1, retry_after_s)
