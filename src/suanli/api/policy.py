"""Which key scopes each API operation needs, and which operations the audit log records.

One table, read by the authentication dependency (scopes) and the audit middleware (actions):
a route not named here needs `read` when it only reads (GET) and `submit` when it writes, and
is not audited. `tests/api/test_keys_api.py` checks that every writing route is named here or
deliberately left to the default, so a new money or admin route cannot slip past.
"""

from __future__ import annotations

from dataclasses import dataclass

from suanli.domain.tenants import Scope

READ, SUBMIT, SPEND, ADMIN = Scope.READ, Scope.SUBMIT, Scope.SPEND, Scope.ADMIN


@dataclass(frozen=True)
class Rule:
    scopes: frozenset[Scope]
    action: str | None = None  # the audit log's name for it; None: not audited
    # where the audit log finds the target: path parameters, then fields of the answer
    target: tuple[str, ...] = ()


def _rule(*scopes: Scope, action: str | None = None, target: tuple[str, ...] = ()) -> Rule:
    return Rule(frozenset(scopes), action, target)


RULES: dict[tuple[str, str], Rule] = {
    # tenants and keys
    ("POST", "/v1/tenants"): _rule(ADMIN, action="tenant.create", target=("id",)),
    ("GET", "/v1/keys"): _rule(READ),
    ("POST", "/v1/keys"): _rule(ADMIN, action="key.create", target=("tenant_id", "key_id")),
    ("POST", "/v1/keys/{key_id}/rotate"): _rule(ADMIN, action="key.rotate",
                                                target=("key_id",)),
    ("POST", "/v1/keys/{key_id}/revoke"): _rule(ADMIN, action="key.revoke",
                                                target=("key_id",)),
    ("GET", "/v1/audit"): _rule(READ, ADMIN),
    ("POST", "/v1/delegations"): _rule(ADMIN, action="delegation.create",
                                       target=("authority",)),
    # money
    ("POST", "/v1/tenants/{tenant_id}/deposits"): _rule(ADMIN, SPEND, action="wallet.deposit",
                                                        target=("tenant_id",)),
    ("PUT", "/v1/tenants/{tenant_id}/billing-mode"): _rule(ADMIN, SPEND,
                                                           action="wallet.billing-mode",
                                                           target=("tenant_id",)),
    ("POST", "/v1/programmes"): _rule(ADMIN, SPEND, action="programme.create",
                                      target=("id",)),
    ("POST", "/v1/programmes/{programme_id}/grants"): _rule(ADMIN, SPEND, action="voucher.grant",
                                                            target=("programme_id",
                                                                    "tenant_id")),
    ("PUT", "/v1/pools/{pool_id}/tariff"): _rule(SUBMIT, action="tariff.set",
                                                 target=("pool_id",)),
    ("POST", "/v1/usage-records"): _rule(SUBMIT, action="usage.record",
                                         target=("lease_id", "id")),
    # a job that may cost money also needs `spend`: services.jobs checks it on the spec
    ("POST", "/v1/jobs"): _rule(SUBMIT, action="job.submit", target=("id",)),
    ("POST", "/v1/jobs/{job_id}/cancel"): _rule(SUBMIT, action="job.cancel",
                                                target=("job_id",)),
    # quotes spend nothing (issue 10)
    ("POST", "/v1/quotes"): _rule(READ),
    # the exchange (issue 14): a bid escrows money, an operator runs auctions and refunds
    ("POST", "/v1/market/orders"): _rule(SUBMIT, SPEND, action="market.order", target=("id",)),
    ("PATCH", "/v1/market/orders/{order_id}"): _rule(SUBMIT, SPEND, action="market.replace",
                                                     target=("order_id",)),
    ("DELETE", "/v1/market/orders/{order_id}"): _rule(SUBMIT, action="market.cancel",
                                                      target=("order_id",)),
    ("POST", "/v1/market/orders:batch"): _rule(SUBMIT, SPEND, action="market.order-batch"),
    ("POST", "/v1/market/reservations/{reservation_id}/resell"): _rule(
        SUBMIT, action="market.resell", target=("reservation_id", "id")),
    ("POST", "/v1/market/quotes"): _rule(READ),
    ("POST", "/v1/market/products/{product_id}/uncross"): _rule(
        ADMIN, SPEND, action="market.uncross", target=("product_id",)),
    ("POST", "/v1/market/reservations/{reservation_id}/refund"): _rule(
        ADMIN, SPEND, action="market.refund", target=("reservation_id",)),
    ("POST", "/v1/market/sweep"): _rule(ADMIN, SPEND, action="market.sweep"),
    # federation: operators' administration and roaming money
    ("POST", "/v1/federation/enrolments"): _rule(ADMIN, action="federation.enrol",
                                                 target=("authority",)),
    ("POST", "/v1/federation/keys/{key_id}/revoke"): _rule(ADMIN,
                                                           action="federation.key-revoke",
                                                           target=("key_id",)),
    ("POST", "/v1/federation/entitlements"): _rule(ADMIN, SPEND, action="entitlement.grant",
                                                   target=("tenant_id", "id")),
    ("PUT", "/v1/federation/entitlement-price"): _rule(ADMIN, SPEND,
                                                       action="entitlement.price"),
    ("POST", "/v1/federation/clearing/cycles"): _rule(ADMIN, SPEND, action="clearing.cycle",
                                                      target=("cycle_id",)),
    ("POST", "/v1/federation/reconcile"): _rule(ADMIN, SPEND, action="federation.reconcile",
                                                target=("peer",)),
    ("POST", "/v1/federation/disputes"): _rule(ADMIN, action="dispute.raise", target=("id",)),
    ("POST", "/v1/federation/disputes/{dispute_id}/resolve"): _rule(
        ADMIN, action="dispute.resolve", target=("dispute_id",)),
}

# Reference data anyone may read without a key (docs/api.md, "Public, without a key").
PUBLIC = frozenset({
    ("GET", "/v1/health"),
    ("GET", "/v1/ids/{compute_id}"),
    ("GET", "/v1/catalog/accelerators"),
    ("GET", "/v1/catalog/accelerators/{key}"),
    ("GET", "/v1/units"),
})

_READING = frozenset({"GET", "HEAD", "OPTIONS"})


def rule_for(method: str, path: str) -> Rule:
    """The rule of one operation (`path` is the route's template, e.g. /v1/jobs/{job_id})."""
    method = "GET" if method == "HEAD" else method
    found = RULES.get((method, path))
    if found is not None:
        return found
    return _rule(READ) if method in _READING else _rule(SUBMIT)
