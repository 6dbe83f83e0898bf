"""The registry through the HTTP API: create/read/update/retire, ownership, bad input."""

from __future__ import annotations

import pytest

from suanli.domain.ids import ComputeId

SITE = {"name": "Gui'an DC 1", "province": "CN-GZ", "city": "Guiyang", "latitude": 26.6,
        "longitude": 106.7, "pue": "1.2", "electricity_fen_per_kwh": 35, "green_share": "0.6",
        "kind": "hub", "hub": "guizhou"}
POOL = {"name": "910B training", "accelerator": "huawei-ascend-910b", "device_count": 64,
        "engine": "slurm", "price_fen_per_device_hour": 800}


def _provider(client, tenant, name="West Compute"):  # type: ignore[no-untyped-def]
    response = client.post("/v1/providers", json={"name": name, "kind": "computing-centre"},
                           headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _site(client, tenant, provider_id, **changes):  # type: ignore[no-untyped-def]
    response = client.post(f"/v1/providers/{provider_id}/sites", json={**SITE, **changes},
                           headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


def _pool(client, tenant, site_id, **changes):  # type: ignore[no-untyped-def]
    response = client.post(f"/v1/sites/{site_id}/pools", json={**POOL, **changes},
                           headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_provider_site_pool_get_hierarchical_identifiers(client, provider) -> None:
    p = _provider(client, provider)
    s = _site(client, provider, p["id"])
    pool = _pool(client, provider, s["id"])
    pid, sid, rid = (ComputeId.parse(x) for x in (p["id"], s["id"], pool["id"]))
    assert sid.parent == pid and rid.parent == sid
    assert rid.is_within(ComputeId.platform("CN"))
    got = client.get(f"/v1/pools/{pool['id']}", headers=provider.headers).json()
    assert got["vendor"].lower().startswith("huawei")
    assert got["hub"] == "guizhou" and got["free_devices"] == 64
    assert float(got["units_per_device_hour"]) > 0


def test_requests_without_a_key_are_401_and_with_a_bad_key_too(client) -> None:
    assert client.get("/v1/pools").status_code == 401
    response = client.get("/v1/pools", headers={"Authorization": "Bearer sl_nope_nope"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_provider_cannot_change_another_tenants_pool(client, provider, make_tenant) -> None:
    other = make_tenant("provider", "someone else")
    s = _site(client, provider, _provider(client, provider)["id"])
    pool = _pool(client, provider, s["id"])
    response = client.patch(f"/v1/pools/{pool['id']}", json={"price_fen_per_device_hour": 1},
                            headers=other.headers)
    assert response.status_code == 403
    assert client.delete(f"/v1/sites/{s['id']}", headers=other.headers).status_code == 403
    unchanged = client.get(f"/v1/pools/{pool['id']}", headers=provider.headers).json()
    assert unchanged["price_fen_per_device_hour"] == 800


def test_a_consumer_cannot_register_providers(client, consumer) -> None:
    response = client.post("/v1/providers", json={"name": "x", "kind": "cloud"},
                           headers=consumer.headers)
    assert response.status_code == 403


def test_an_operator_may_change_any_pool(client, provider, operator) -> None:
    s = _site(client, provider, _provider(client, provider)["id"])
    pool = _pool(client, provider, s["id"])
    response = client.patch(f"/v1/pools/{pool['id']}", json={"state": "maintenance"},
                            headers=operator.headers)
    assert response.status_code == 200 and response.json()["state"] == "maintenance"


@pytest.mark.parametrize(("body", "field"), [
    ({"province": "CN-XX"}, "province"),
    ({"pue": "0.5"}, "pue"),
    ({"green_share": "1.5"}, "green_share"),
    ({"kind": "cave"}, "kind"),
    ({"hub": "atlantis"}, "hub"),
    ({"latitude": 123}, "latitude"),
    ({"name": ""}, "name"),
    ({"unexpected": 1}, "unexpected"),
])
def test_bad_site_input_is_422_naming_the_field(client, provider, body, field) -> None:
    p = _provider(client, provider)
    response = client.post(f"/v1/providers/{p['id']}/sites", json={**SITE, **body},
                           headers=provider.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [error["field"] for error in problem["errors"]]
    assert client.get("/v1/sites", headers=provider.headers).json()["items"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"accelerator": "nvidia-zz9000"}, "accelerator"),
    ({"device_count": 0}, "device_count"),
    ({"engine": "abacus"}, "engine"),
    ({"price_fen_per_device_hour": -1}, "price_fen_per_device_hour"),
    ({"free_devices": 65}, "free_devices"),
    ({"state": "exploded"}, "state"),
])
def test_bad_pool_input_is_422_naming_the_field(client, provider, body, field) -> None:
    s = _site(client, provider, _provider(client, provider)["id"])
    response = client.post(f"/v1/sites/{s['id']}/pools", json={**POOL, **body},
                           headers=provider.headers)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]


def test_unknown_and_malformed_identifiers(client, consumer) -> None:
    assert client.get("/v1/pools/CN.P0001.S001.R0001-0",
                      headers=consumer.headers).status_code in (404, 422)
    response = client.get("/v1/pools/not-an-id", headers=consumer.headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "pool_id"
    missing = ComputeId.platform("CN").child  # a well-formed id that was never issued
    from suanli.domain.ids import IdKind
    pid = missing(IdKind.PROVIDER, 999)
    assert client.get(f"/v1/providers/{pid}", headers=consumer.headers).status_code == 404


def test_site_update_flows_onto_its_pools(client, provider) -> None:
    s = _site(client, provider, _provider(client, provider)["id"])
    pool = _pool(client, provider, s["id"])
    response = client.patch(f"/v1/sites/{s['id']}", json={"green_share": "0.9"},
                            headers=provider.headers)
    assert response.status_code == 200
    assert client.get(f"/v1/pools/{pool['id']}",
                      headers=provider.headers).json()["green_share"] == "0.9000"


def test_pool_update_with_a_stale_version_is_409(client, provider) -> None:
    s = _site(client, provider, _provider(client, provider)["id"])
    pool = _pool(client, provider, s["id"])
    ok = client.patch(f"/v1/pools/{pool['id']}", json={"price_fen_per_device_hour": 700,
                                                      "expected_version": 1},
                      headers=provider.headers)
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.patch(f"/v1/pools/{pool['id']}", json={"price_fen_per_device_hour": 600,
                                                         "expected_version": 1},
                         headers=provider.headers)
    assert stale.status_code == 409


def test_retiring_a_provider_retires_its_sites_and_pools(client, provider) -> None:
    p = _provider(client, provider)
    s = _site(client, provider, p["id"])
    pool = _pool(client, provider, s["id"])
    assert client.delete(f"/v1/providers/{p['id']}", headers=provider.headers).status_code == 200
    assert client.get(f"/v1/pools/{pool['id']}", headers=provider.headers).json()["state"] \
        == "retired"
    assert client.get("/v1/pools", headers=provider.headers).json()["items"] == []
    again = client.patch(f"/v1/pools/{pool['id']}", json={"name": "x"}, headers=provider.headers)
    assert again.status_code == 409


def test_operator_creates_tenants_and_others_may_not(client, operator, consumer) -> None:
    response = client.post("/v1/tenants", json={"name": "Lab", "role": "consumer",
                                                "tenant_class": "research"},
                           headers=operator.headers)
    assert response.status_code == 201
    key = response.json()["api_key"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["tenant_class"] == "research"
    denied = client.post("/v1/tenants", json={"name": "x", "role": "operator"},
                         headers=consumer.headers)
    assert denied.status_code == 403
    bad = client.post("/v1/tenants", json={"name": "x", "role": "king"},
                      headers=operator.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "role"
