"""A western-hub pool, a voucher programme and helpers to act as consumer, operator and agent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import Tenant, app, client, make_tenant, operator, provider  # noqa: F401

SITE = {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}
# Peak 16:00-18:00 local (x 1.5), valley 00:00-08:00 (x 0.5), flat otherwise; tier from one
# device-hour a month.
HOURS = ["valley"] * 8 + ["flat"] * 8 + ["peak"] * 2 + ["flat"] * 6
TARIFF = {"basis": "device-hour", "base_unit_price_fen": "1000",
          "tiers": [{"from_quantity": "0.5", "unit_price_fen": "800"}],
          "time_of_use": {"hour_bands": HOURS,
                          "multipliers": {"valley": "0.5", "flat": "1", "peak": "1.5"}}}
PROGRAMME = {"id": "nx-startups-2026", "name": "Ningxia start-up compute vouchers",
             "issuer": "Ningxia DRC", "budget_fen": 100_000, "coverage": "0.3",
             "western_extra_coverage": "0.1", "cap_fen_per_tenant": 50_000,
             "eligible_tenant_classes": ["start-up", "small-firm"],
             "valid_from": "2026-01-01T00:00:00+08:00", "valid_until": "2027-01-01T00:00:00+08:00"}


@dataclass
class World:
    client: Any
    operator: Tenant
    provider: Tenant
    pool_id: str
    agent_id: str

    def deposit(self, tenant: Tenant, amount_fen: int, key: str) -> Any:
        return self.client.post(f"/v1/tenants/{tenant.id}/deposits",
                                json={"amount_fen": amount_fen},
                                headers={**self.operator.headers, "Idempotency-Key": key})

    def wallet(self, tenant: Tenant) -> dict[str, Any]:
        response = self.client.get("/v1/wallet", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, tenant: Tenant, key: str, **changes: Any) -> dict[str, Any]:
        body = {"name": key, "command": ["train"], "devices": 2, "accelerator": "nvidia-a800",
                "time_limit_s": 3600, **changes}
        response = self.client.post("/v1/jobs", json=body,
                                    headers={**tenant.headers, "Idempotency-Key": key})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def claim(self) -> list[dict[str, Any]]:
        response = self.client.post(f"/v1/agents/{self.agent_id}/claim", json={},
                                    headers=self.provider.headers)
        assert response.status_code == 200, response.text
        return response.json()["assignments"]

    def report(self, assignment: dict[str, Any], **body: Any) -> Any:
        return self.client.post(
            f"/v1/agents/{self.agent_id}/leases/{assignment['lease_id']}/report",
            json={"fence": assignment["fence"], **body}, headers=self.provider.headers)


@pytest.fixture
def world(client, operator, provider) -> World:  # noqa: F811
    p = client.post("/v1/providers", json={"name": "West Cloud", "kind": "cloud"},
                    headers=provider.headers).json()
    site = client.post(f"/v1/providers/{p['id']}/sites", json=SITE,
                       headers=provider.headers).json()
    pool = client.post(f"/v1/sites/{site['id']}/pools",
                       json={"name": "a800", "accelerator": "nvidia-a800", "device_count": 4,
                             "engine": "local", "price_fen_per_device_hour": 900},
                       headers=provider.headers)
    assert pool.status_code == 201, pool.text
    pool_id = pool.json()["id"]
    agent = client.post("/v1/agents", json={"name": "a1", "pools": [pool_id]},
                        headers=provider.headers)
    assert agent.status_code == 201, agent.text
    return World(client, operator, provider, pool_id, agent.json()["id"])


@pytest.fixture
def start_up(make_tenant) -> Tenant:  # noqa: F811
    return make_tenant("consumer", "Yinchuan AI start-up", "start-up")


@pytest.fixture
def tick(database, clock) -> Callable[[], tuple[int, int]]:
    from suanli.services.dispatch import agents

    def run() -> tuple[int, int]:
        with database.unit_of_work() as session:
            return agents.tick(session, clock.now())

    return run
