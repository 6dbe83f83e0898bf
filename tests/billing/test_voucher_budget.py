"""Voucher grants never promise more than the programme holds (issue 12, finding 15): they
used to add up to any multiple of the budget, first come first served at charge time."""

from __future__ import annotations

from tests.billing.conftest import PROGRAMME


def test_grants_never_add_up_to_more_than_the_budget(world, make_tenant) -> None:  # type: ignore[no-untyped-def]
    client, operator = world.client, world.operator
    programme = {**PROGRAMME, "id": "small-budget", "budget_fen": 1_000}
    assert client.post("/v1/programmes", json=programme,
                       headers=operator.headers).status_code == 201
    first, second = (make_tenant("consumer", name, "start-up") for name in ("a", "b"))
    url = "/v1/programmes/small-budget/grants"

    def grant(tenant, fen: int, key: str):  # type: ignore[no-untyped-def]
        return client.post(url, json={"tenant_id": tenant.id, "granted_fen": fen},
                           headers={**operator.headers, "Idempotency-Key": key})

    assert grant(first, 600, "g1").status_code == 201
    over = grant(second, 600, "g2")
    assert over.status_code == 409, over.text
    assert over.json()["errors"][0]["field"] == "granted_fen"
    assert "400 fen" in over.json()["detail"]
    assert grant(second, 400, "g3").status_code == 201
    assert grant(second, 1, "g4").status_code == 409
    standing = client.get("/v1/programmes/small-budget", headers=operator.headers).json()
    assert standing["granted_fen"] == 1_000 == standing["budget_fen"]
