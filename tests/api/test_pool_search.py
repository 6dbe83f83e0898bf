"""Pool search (可查询) through the API, on the illustrative demo federation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from suanli.bootstrap import load_demo, parse_authority
from suanli.catalog import load_catalog, load_cities
from suanli.domain.geo import rtt_ms


@pytest.fixture
def demo(database, clock):  # type: ignore[no-untyped-def]
    return load_demo(database, parse_authority("CN"), clock)


@pytest.fixture
def headers(demo):  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {demo.consumer_key}"}


def _search(client, headers, **params):  # type: ignore[no-untyped-def]
    response = client.get("/v1/pools", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_demo_loads_once_and_is_labelled_illustrative(demo, database, clock, client,
                                                     headers) -> None:
    assert demo.sites >= 40 and demo.pools >= 150 and demo.loaded_now
    wallet = client.get("/v1/wallet", headers=headers).json()
    assert wallet["billing_mode"] == "prepaid"
    assert wallet["wallet"]["balance_fen"] == 1_000_000
    again = load_demo(database, parse_authority("CN"), clock)
    assert not again.loaded_now and again.pools == demo.pools


def test_filters_hold_for_every_hit(client, headers) -> None:
    page = _search(client, headers, vendor="Huawei", min_memory_gb=32, hub="guizhou", limit=200)
    assert page["items"]
    for hit in page["items"]:
        assert hit["vendor"] == "Huawei" and hit["hub"] == "guizhou"
        assert hit["memory_gb"] >= 32 and hit["free_devices"] > 0 and hit["state"] == "active"


def test_sorted_by_price_per_effective_unit_for_the_workload_class(client, headers) -> None:
    page = _search(client, headers, workload_class="training", sort="price_per_unit", limit=200)
    raw = [hit["fen_per_unit_hour"] for hit in page["items"]]
    rated = [Decimal(price) for price in raw if price is not None]
    assert rated and rated == sorted(rated)
    # Devices without a published throughput figure have no unit price and come last.
    assert raw[: len(rated)] == [hit for hit in raw if hit is not None]
    catalog = load_catalog()
    for hit in page["items"][:5]:
        assert catalog.get(hit["accelerator"]).key == hit["accelerator"]


def test_sorted_by_latency_from_a_city(client, headers) -> None:
    page = _search(client, headers, sort="latency", near_city="Shenzhen", limit=50)
    latencies = [hit["latency_ms"] for hit in page["items"]]
    assert latencies == sorted(latencies)
    shenzhen = load_cities().city("Shenzhen")
    first = page["items"][0]
    assert first["latency_ms"] == pytest.approx(
        rtt_ms(shenzhen.latitude, shenzhen.longitude, first["latitude"], first["longitude"]),
        abs=0.1)


def test_price_ceiling_green_share_and_units(client, headers) -> None:
    page = _search(client, headers, max_fen_per_device_hour=300, min_green_share="0.5",
                   min_units="10", limit=200)
    for hit in page["items"]:
        assert hit["price_fen_per_device_hour"] <= 300
        assert Decimal(hit["green_share"]) >= Decimal("0.5")
        assert hit["free_devices"] * Decimal(hit["units_per_device_hour"]) >= 10


def test_pages_do_not_overlap_and_count_is_total(client, headers) -> None:
    first = _search(client, headers, limit=20, count=True)
    second = _search(client, headers, limit=20, offset=first["next_offset"])
    ids_first = {hit["id"] for hit in first["items"]}
    assert not ids_first & {hit["id"] for hit in second["items"]}
    assert first["total"] >= 40


@pytest.mark.parametrize(("params", "field"), [
    ({"workload_class": "crypto"}, "workload_class"),
    ({"sort": "latency"}, "near_city"),
    ({"sort": "latency", "near_city": "Atlantis"}, "near_city"),
    ({"province": "XX"}, "province"),
    ({"hub": "moon"}, "hub"),
    ({"limit": 1000}, "limit"),
    ({"min_green_share": 2}, "min_green_share"),
    ({"sort": "vibes"}, "sort"),
])
def test_bad_search_parameters_are_422_naming_the_field(client, headers, params, field) -> None:
    response = client.get("/v1/pools", params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]


def test_identifier_resolution_and_delegation(client, headers, operator) -> None:
    pool_id = _search(client, headers, limit=1)["items"][0]["id"]
    local = client.get(f"/v1/ids/{pool_id}").json()
    assert local["local"] and local["kind"] == "pool" and local["authoritative_platform"] == "CN"
    response = client.post("/v1/delegations", json={"prefix": "GD", "name": "Guangdong",
                                                     "level": "regional",
                                                     "endpoint": "http://127.0.0.1:9001"},
                           headers=operator.headers)
    assert response.status_code == 201, response.text
    from suanli.domain.ids import ComputeId, IdKind
    remote = ComputeId.platform("CN", "GD").child(IdKind.PROVIDER, 3)
    resolved = client.get(f"/v1/ids/{remote}").json()
    assert resolved["authoritative_platform"] == "CN.GD"
    assert resolved["endpoint"] == "http://127.0.0.1:9001" and not resolved["local"]
    twice = client.post("/v1/delegations", json={"prefix": "GD", "name": "again",
                                                  "level": "regional",
                                                  "endpoint": "http://127.0.0.1:9002"},
                        headers=operator.headers)
    assert twice.status_code == 409
    tampered = str(remote)[:-1] + ("0" if str(remote)[-1] != "0" else "1")
    assert client.get(f"/v1/ids/{tampered}").status_code == 422


def test_latency_pages_match_one_long_page(client, headers) -> None:
    """The ring search must page exactly like a full sort by distance would."""
    whole = _search(client, headers, sort="latency", near_city="Lanzhou", province="CN-GS",
                    limit=60)["items"]
    whole += _search(client, headers, sort="latency", near_city="Lanzhou", province="CN-GS",
                     limit=60, offset=60)["items"]
    paged = []
    for offset in range(0, len(whole), 7):
        paged += _search(client, headers, sort="latency", near_city="Lanzhou",
                         province="CN-GS", limit=7, offset=offset)["items"]
    assert [hit["id"] for hit in paged] == [hit["id"] for hit in whole]
    everywhere = _search(client, headers, sort="latency", near_city="Lanzhou", limit=200)
    distances = [hit["latency_ms"] for hit in everywhere["items"]]
    assert distances == sorted(distances) and len(distances) > 16
