"""Steps the federation tests share: a provider at CN.SC, a paying consumer at CN.GD, and a
provider agent driven by hand through the host's pull protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Roaming:
    pool: str
    provider: dict[str, str]
    provider_id: str
    consumer_id: str
    consumer: dict[str, str]


def roaming_setup(net, *, price: int = 360, devices: int = 2, deposit: int = 100_000,  # type: ignore[no-untyped-def]
                  host: str = "CN.SC", home: str = "CN.GD",
                  reuse: Roaming | None = None) -> Roaming:
    """A pool at the host (or `reuse`'s), a prepaid consumer at home with no pool, and both
    catalogs synced."""
    host_node, home_node = net[host], net[home]
    if reuse is None:
        provider_id, provider = host_node.tenant("provider", "host provider")
        pool = host_node.pool(provider, price=price, devices=devices)
    else:
        provider_id, provider, pool = reuse.provider_id, reuse.provider, reuse.pool
    consumer_id, consumer = home_node.tenant("consumer", "home start-up")
    if deposit:
        response = home_node.client.post(f"/v1/tenants/{consumer_id}/deposits",
                                         headers={**home_node.operator,
                                                  "Idempotency-Key": f"dep-{consumer_id}"},
                                         json={"amount_fen": deposit})
        assert response.status_code == 201, response.text
    net.tick(host)
    net.tick(home)
    return Roaming(pool, provider, provider_id, consumer_id, consumer)


def submit(node, headers: dict[str, str], key: str, **spec: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = node.client.post("/v1/jobs", headers={**headers, "Idempotency-Key": key},
                                json={"name": key, "command": ["true"], "devices": 1, **spec})
    assert response.status_code in (200, 201), response.text
    return response.json()


def job(node, headers: dict[str, str], job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = node.client.get(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


class HandAgent:
    """A provider agent at the host, one call at a time."""

    def __init__(self, node, provider: dict[str, str], pools: list[str]) -> None:  # type: ignore[no-untyped-def]
        self.node, self.provider = node, provider
        response = node.client.post("/v1/agents", headers=provider,
                                    json={"name": "hand", "pools": pools})
        assert response.status_code == 201, response.text
        self.id = response.json()["id"]

    def claim(self) -> list[dict[str, Any]]:
        response = self.node.client.post(f"/v1/agents/{self.id}/claim", headers=self.provider,
                                         json={})
        assert response.status_code == 200, response.text
        return response.json()["assignments"]

    def report(self, assignment: dict[str, Any], state: str, **extra: Any) -> dict[str, Any]:
        response = self.node.client.post(
            f"/v1/agents/{self.id}/leases/{assignment['lease_id']}/report",
            headers=self.provider, json={"fence": assignment["fence"], "state": state, **extra})
        assert response.status_code == 200, response.text
        return response.json()

    def run(self, *, wall_s: float = 1800.0, state: str = "succeeded",
            exit_code: int = 0) -> dict[str, Any]:
        [assignment] = self.claim()
        self.report(assignment, "running")
        self.node.app.state.ctx.clock.advance(wall_s)  # a lease bills no more than it lasted
        self.report(assignment, state, exit_code=exit_code, logs="hello from the host\n",
                    usage={"wall_s": wall_s})
        return assignment


def account(node, account_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from suanli.adapters.store import ledger as ledger_store

    with node.db.unit_of_work() as session:
        found = ledger_store.get_account(session, account_id)
    if found is None:
        return {"balance_fen": 0, "debits_posted_fen": 0, "credits_posted_fen": 0}
    return {"balance_fen": found.balance_fen, "debits_posted_fen": found.debits_posted_fen,
            "credits_posted_fen": found.credits_posted_fen}
