"""The typed errors of suanli; the API maps each kind to one HTTP status in one place."""

from __future__ import annotations


class SuanliError(Exception):
    """Base of every error a caller is expected to handle."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ValidationFailed(SuanliError):
    """Input broke a rule; `field` names the offending field."""

    status = 422
    title = "Validation failed"


class NotFound(SuanliError):
    status = 404
    title = "Not found"


class Conflict(SuanliError):
    """The request clashes with the current state (duplicate, wrong state, stale version)."""

    status = 409
    title = "Conflict"


class Unauthenticated(SuanliError):
    status = 401
    title = "Unauthenticated"


class Forbidden(SuanliError):
    status = 403
    title = "Forbidden"


class InsufficientFunds(SuanliError):
    status = 402
    title = "Insufficient funds"


class PlacementInfeasible(SuanliError):
    status = 409
    title = "Placement infeasible"


class RateLimited(SuanliError):
    """Too many requests (or failed authentications) in a window; retry after `retry_after_s`."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after_s = max(1, retry_after_s)
