"""API keys (issue 12, finding 8): a tenant lists, makes, rotates and revokes its own keys,
operators any tenant's; keys expire; scopes limit what a key may do, and never grow."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from suanli.api import policy
from tests.api.conftest import Tenant

JOB = {"name": "j", "command": ["true"], "devices": 1}


def _key(client: TestClient, caller: Tenant, **body: object) -> dict:
    response = client.post("/v1/keys", headers=caller.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_tenant_makes_rotates_and_revokes_its_own_keys(client: TestClient,
                                                         consumer: Tenant) -> None:
    made = _key(client, consumer, name="ci runner", scopes=["read"])
    assert made["scopes"] == ["read"] and made["state"] == "active"
    assert made["tenant_id"] == consumer.id and made["api_key"].startswith("sl_")
    assert client.get("/v1/me", headers=_bearer(made["api_key"])).status_code == 200
    listed = client.get("/v1/keys", headers=consumer.headers).json()
    assert {k["key_id"] for k in listed} >= {made["key_id"]}
    assert all("api_key" not in k and "key_sha256" not in k for k in listed)

    rotated = client.post(f"/v1/keys/{made['key_id']}/rotate", headers=consumer.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["rotated_from"] == made["key_id"] and new["scopes"] == ["read"]
    assert new["name"] == "ci runner"
    assert client.get("/v1/me", headers=_bearer(made["api_key"])).status_code == 401
    assert client.get("/v1/me", headers=_bearer(new["api_key"])).status_code == 200

    revoked = client.post(f"/v1/keys/{new['key_id']}/revoke", headers=consumer.headers)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = client.get("/v1/me", headers=_bearer(new["api_key"]))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    states = {k["key_id"]: k["state"] for k in
              client.get("/v1/keys", headers=consumer.headers).json()}
    assert states[made["key_id"]] == "revoked" and states[new["key_id"]] == "revoked"


def test_a_rotation_with_grace_keeps_the_old_key_until_the_grace_ends(
        client: TestClient, consumer: Tenant, clock) -> None:  # type: ignore[no-untyped-def]
    made = _key(client, consumer)
    rotated = client.post(f"/v1/keys/{made['key_id']}/rotate", headers=consumer.headers,
                          json={"grace_s": 600}).json()
    assert client.get("/v1/me", headers=_bearer(made["api_key"])).status_code == 200
    clock.advance(601)
    assert client.get("/v1/me", headers=_bearer(made["api_key"])).status_code == 401
    assert client.get("/v1/me", headers=_bearer(rotated["api_key"])).status_code == 200


def test_a_key_stops_working_when_it_expires(client: TestClient, consumer: Tenant,
                                             clock) -> None:  # type: ignore[no-untyped-def]
    ends = (clock.now() + timedelta(hours=1)).isoformat()
    made = _key(client, consumer, expires_at=ends)
    assert client.get("/v1/me", headers=_bearer(made["api_key"])).status_code == 200
    clock.advance(3600)
    expired = client.get("/v1/me", headers=_bearer(made["api_key"]))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    past = client.post("/v1/keys", headers=consumer.headers,
                       json={"expires_at": (clock.now() - timedelta(seconds=1)).isoformat()})
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "expires_at"


def test_a_key_without_spend_cannot_submit_paid_jobs_or_move_money(
        client: TestClient, consumer: Tenant, operator: Tenant) -> None:
    submit_only = _key(client, consumer, scopes=["read", "submit"])["api_key"]
    paid = client.post("/v1/jobs", headers={**_bearer(submit_only), "Idempotency-Key": "p1"},
                       json=JOB)
    assert paid.status_code == 403, paid.text
    assert paid.json()["errors"][0]["field"] == "max_price_fen_per_device_hour"
    free = client.post("/v1/jobs", headers={**_bearer(submit_only), "Idempotency-Key": "f1"},
                       json={**JOB, "max_price_fen_per_device_hour": 0})
    assert free.status_code == 201, free.text
    admin_only = _key(client, operator, scopes=["read", "admin"])["api_key"]
    deposit = client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 100},
                          headers={**_bearer(admin_only), "Idempotency-Key": "d1"})
    assert deposit.status_code == 403 and deposit.json()["errors"][0]["field"] == "scope"
    wallet = client.get("/v1/wallet", headers=consumer.headers).json()["wallet"]
    assert wallet["balance_fen"] == 0


def test_a_read_key_cannot_write(client: TestClient, provider: Tenant) -> None:
    read_only = _key(client, provider, scopes=["read"])["api_key"]
    assert client.get("/v1/pools", headers=_bearer(read_only)).status_code == 200
    write = client.post("/v1/providers", headers=_bearer(read_only),
                        json={"name": "p", "kind": "cloud"})
    assert write.status_code == 403 and "submit" in write.json()["detail"]


def test_a_key_never_makes_a_key_with_more_scopes_than_its_own(client: TestClient,
                                                               consumer: Tenant) -> None:
    limited = _key(client, consumer, scopes=["read", "admin"])["api_key"]
    wider = client.post("/v1/keys", headers=_bearer(limited),
                        json={"scopes": ["read", "spend"]})
    assert wider.status_code == 403 and wider.json()["errors"][0]["field"] == "scopes"
    same = client.post("/v1/keys", headers=_bearer(limited), json={})
    assert same.status_code == 201 and same.json()["scopes"] == ["read", "admin"]
    no_admin = _key(client, consumer, scopes=["read"])["api_key"]
    assert client.post("/v1/keys", headers=_bearer(no_admin), json={}).status_code == 403


def test_keys_of_another_tenant_are_out_of_reach_but_not_for_operators(
        client: TestClient, make_tenant, operator: Tenant) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_tenant("consumer", "alice"), make_tenant("consumer", "bob")
    alices = _key(client, alice)
    assert client.get(f"/v1/keys?tenant_id={alice.id}", headers=bob.headers).status_code == 403
    assert client.post(f"/v1/keys/{alices['key_id']}/revoke",
                       headers=bob.headers).status_code == 404
    assert client.post("/v1/keys", headers=bob.headers,
                       json={"tenant_id": alice.id}).status_code == 403
    assert client.get("/v1/me", headers=_bearer(alices["api_key"])).status_code == 200
    by_operator = client.post(f"/v1/keys/{alices['key_id']}/revoke", headers=operator.headers)
    assert by_operator.status_code == 200
    assert client.get("/v1/me", headers=_bearer(alices["api_key"])).status_code == 401
    for_alice = client.post("/v1/keys", headers=operator.headers,
                            json={"tenant_id": alice.id, "scopes": ["read"]})
    assert for_alice.status_code == 201 and for_alice.json()["tenant_id"] == alice.id
    listed = client.get(f"/v1/keys?tenant_id={alice.id}", headers=operator.headers).json()
    assert len(listed) == 3  # the first key, the revoked one, the operator's new one


def test_every_writing_route_has_a_deliberate_scope(app) -> None:  # type: ignore[no-untyped-def]
    """A route that writes is named in api.policy or is known to need only `submit`: a new
    money or admin route must be added to one of the two on purpose."""
    submit_only = {
        ("POST", "/v1/providers"), ("PATCH", "/v1/providers/{provider_id}"),
        ("DELETE", "/v1/providers/{provider_id}"), ("POST", "/v1/providers/{provider_id}/sites"),
        ("PATCH", "/v1/sites/{site_id}"), ("DELETE", "/v1/sites/{site_id}"),
        ("POST", "/v1/sites/{site_id}/pools"), ("PATCH", "/v1/pools/{pool_id}"),
        ("DELETE", "/v1/pools/{pool_id}"), ("POST", "/v1/agents"),
        ("POST", "/v1/agents/{agent_id}/claim"), ("POST", "/v1/agents/{agent_id}/heartbeat"),
        ("POST", "/v1/agents/{agent_id}/leases/{lease_id}/report"),
        ("POST", "/v1/pools/{pool_id}/calibrations")}
    writing = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
               for method in operations if method != "get" and path.startswith("/v1/")}
    unclassified = writing - set(policy.RULES) - submit_only
    assert unclassified == set()


def test_only_public_reference_data_answers_without_a_key(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    """docs/api.md lists what needs no key (issue 12, finding 15): health, identifier
    resolution, the accelerator catalog and the unit ratings. Everything else is 401."""
    samples = {"compute_id": "CN.T000001-7", "key": "nvidia-a800"}
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/v1/"):
            continue
        url = path
        for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
            url = url.replace("{" + name + "}", samples.get(name, "CN.T000001-7"))
        for method in operations:
            response = client.request(method.upper(), url, json={})
            if (method.upper(), path) in policy.PUBLIC:
                assert response.status_code == 200, (method, path, response.text)
            else:
                assert response.status_code == 401, (method, path, response.status_code)
