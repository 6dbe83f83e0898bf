"""Authentication at the door: a limit on failed authentications per client address, a
request limit per key, and the key's scopes against the operation's rule (api.policy). A
caller over a limit gets 429 problem+json with Retry-After.

No limit counts failures per key id: key ids are not secret (they are in the audit log), so
such a limit would let anyone lock a tenant out of its own key, and 256 random bits need no
protection from guessing one key at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem

from suanli.adapters.rate_limits import Limiter, parse_rule
from suanli.api import policy
from suanli.api.problems import problem, status_of
from suanli.domain.errors import RateLimited
from suanli.domain.tenants import Principal, require_scope
from suanli.settings import Settings

UNKNOWN_CLIENT = "unknown"


@dataclass(frozen=True)
class Guard:
    limiter: Limiter
    failures_per_address: RateLimitItem
    requests_per_key: RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        namespace = settings.rate_limit_namespace or f"suanli:{settings.authority}"
        return cls(Limiter(settings.rate_limit_storage_url, namespace=namespace),
                   parse_rule(settings.auth_failures_per_address, "auth_failures_per_address"),
                   parse_rule(settings.requests_per_key, "requests_per_key"))

    def admit(self, client: str) -> None:
        """Refuse every authentication from an address that failed too often lately: letting
        a right key through would tell a guesser which guess was right."""
        wait = self.limiter.retry_after_s(self.failures_per_address, "auth-fail-addr", client)
        if wait is not None:
            raise RateLimited(f"too many failed authentications from {client}; retry in "
                              f"{wait} s", retry_after_s=wait)

    def failed(self, client: str) -> None:
        self.limiter.hit(self.failures_per_address, "auth-fail-addr", client)

    def count_request(self, key_id: str) -> None:
        wait = self.limiter.hit(self.requests_per_key, "requests-key", key_id)
        if wait is not None:
            raise RateLimited(f"key {key_id} made more than {self.requests_per_key} requests; "
                              f"retry in {wait} s", retry_after_s=wait)


def client_of(request: Request) -> str:
    """The socket peer's address (a proxy in front must be trusted to pass one per client)."""
    return request.client.host[:64] if request.client and request.client.host \
        else UNKNOWN_CLIENT


def authorise(request: Request, principal: Principal) -> None:
    """The operation's scopes must all be on the key; the caller is kept for the audit log."""
    request.state.principal = principal  # first: a refusal below is audited too
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    require_scope(principal, *sorted(policy.rule_for(request.method, path).scopes))


def guard_of(request: Request) -> Guard:
    return request.app.state.guard


def install(app: FastAPI, settings: Settings) -> None:
    app.state.guard = Guard.from_settings(settings)

    @app.exception_handler(RateLimited)
    async def _too_many(request: Request, exc: RateLimited) -> JSONResponse:
        return problem(*status_of(exc), exc.detail, instance=request.url.path,
                       headers={"Retry-After": str(exc.retry_after_s)})
