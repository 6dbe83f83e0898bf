"""Cities, great-circle distance and the fitted RTT model, checked against the real pings."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from suanli.catalog import load_cities, parse_cities
from suanli.domain import geo
from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.resources import PROVINCES, Hub

MAINLAND_TOLERANCE_MS = 12.0  # about the fit's RMSE (11.7 ms)
CITIES = load_cities()


@pytest.fixture(scope="module")
def fit_latency() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "tools" / "fit_latency.py"
    spec = importlib.util.spec_from_file_location("fit_latency", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pairs(fit_latency: ModuleType, shared_data: Path) -> list:
    return fit_latency.load_pair_rtts(shared_data)


def test_every_province_has_a_city() -> None:
    assert {c.province for c in CITIES} == set(PROVINCES)


def test_table_holds_about_sixty_cities_inside_china() -> None:
    table = CITIES
    assert 55 <= len(table) <= 80
    for c in table:
        assert 18 <= c.latitude <= 54 and 73 <= c.longitude <= 135, c.name


def test_each_hub_has_cities_and_the_hub_cities_are_where_they_belong() -> None:
    assert {c.hub for c in CITIES if c.hub} == set(Hub)
    expected = {
        "Zhangjiakou": Hub.JINGJINJI, "Wuhu": Hub.YANGTZE, "Shaoguan": Hub.GBA,
        "Qingyuan": Hub.GBA, "Chengdu": Hub.CHENGYU, "Chongqing": Hub.CHENGYU,
        "Gui'an": Hub.GUIZHOU, "Guiyang": Hub.GUIZHOU, "Ulanqab": Hub.INNER_MONGOLIA,
        "Hohhot": Hub.INNER_MONGOLIA, "Qingyang": Hub.GANSU, "Lanzhou": Hub.GANSU,
        "Zhongwei": Hub.NINGXIA, "Yinchuan": Hub.NINGXIA,
    }
    for name, hub in expected.items():
        assert CITIES.city(name).hub is hub, name
    assert CITIES.city("Xi'an").hub is None


def test_lookup_ignores_case_spacing_and_punctuation_and_accepts_chinese() -> None:
    assert CITIES.city("xian") == CITIES.city("Xi'an") == CITIES.city("西安")
    assert CITIES.city("GUI-AN").name == "Gui'an"
    assert CITIES.city(" hong kong ").province == "CN-HK"


def test_unknown_city_raises_not_found_with_a_suggestion() -> None:
    with pytest.raises(NotFound) as excinfo:
        CITIES.city("Shanghia")
    assert "Shanghai" in excinfo.value.detail


def test_great_circle_distances_match_known_values() -> None:
    assert CITIES.distance_km_between("Beijing", "Shanghai") == pytest.approx(1068, abs=10)
    assert CITIES.distance_km_between("Shanghai", "Beijing") == CITIES.distance_km_between(
        "Beijing", "Shanghai")
    assert geo.great_circle_km(30.0, 120.0, 30.0, 120.0) == 0.0
    antipode = geo.great_circle_km(0.0, 0.0, 0.0, 180.0)
    assert antipode == pytest.approx(math.pi * geo.EARTH_RADIUS_KM)


def test_rtt_grows_strictly_with_distance() -> None:
    rtts = [geo.rtt_ms_for_km(km) for km in range(0, 6000, 100)]
    assert rtts[0] == geo.RTT_BASE_MS
    assert all(a < b for a, b in zip(rtts, rtts[1:]))
    near = CITIES.rtt_ms_between("Shanghai", "Hangzhou")
    far = CITIES.rtt_ms_between("Shanghai", "Urumqi")
    assert near < CITIES.rtt_ms_between("Shanghai", "Beijing") < far


def test_rtt_between_cities_is_rtt_between_their_coordinates() -> None:
    a, b = CITIES.city("Shenzhen"), CITIES.city("Zhongwei")
    assert CITIES.rtt_ms_between(a, "Zhongwei") == geo.rtt_ms_between(a, b) == geo.rtt_ms(
        a.latitude, a.longitude, b.latitude, b.longitude)


def test_a_city_table_refuses_a_name_twice() -> None:
    text = ("name,name_zh,province,latitude,longitude,hub,cluster\n"
            "Wuhu,芜湖,CN-AH,31.33,118.43,yangtze,wuhu\n"
            "Wu Hu,芜湖市,CN-AH,31.33,118.43,,\n")
    assert [c.name for c in parse_cities(text)] == ["Wuhu", "Wu Hu"]
    with pytest.raises(ValidationFailed):
        geo.Cities(parse_cities(text))


def test_committed_constants_match_a_refit_of_the_pings(
    fit_latency: ModuleType, shared_data: Path
) -> None:
    fit = fit_latency.fit_rtt(shared_data)
    assert fit_latency.constants_drift(fit) == []
    assert fit.r2 > 0.7


def test_model_is_within_tolerance_of_mainland_pings(pairs: list) -> None:
    mainland = [p for p in pairs if p.a.country == p.b.country == "China"]
    assert {frozenset((p.a.name, p.b.name)) for p in mainland} >= {
        frozenset(("Shanghai", "Hangzhou")), frozenset(("Shanghai", "Shenzhen")),
        frozenset(("Shanghai", "Zhangjiakou")),
    }
    for p in mainland:
        model = geo.rtt_ms_for_km(p.distance_km)
        assert abs(model - p.avg_rtt_ms) <= MAINLAND_TOLERANCE_MS, (p.a.name, p.b.name)


def test_model_is_a_floor_for_hong_kong_to_mainland(pairs: list) -> None:
    # Cross-border paths are slower than the domestic model; docs/latency.md says so.
    cross = [p for p in pairs if {p.a.country, p.b.country} == {"China", "Hong Kong"}]
    assert cross
    for p in cross:
        assert p.avg_rtt_ms >= geo.rtt_ms_for_km(p.distance_km), (p.a.name, p.b.name)


def test_city_coordinates_agree_with_the_ping_servers(fit_latency: ModuleType, shared_data: Path
                                                      ) -> None:
    servers = fit_latency.load_servers(shared_data).values()
    shared = [s for s in servers if s.country in ("China", "Hong Kong")]
    assert len(shared) >= 4
    for s in shared:
        c = CITIES.city(s.name)
        assert geo.great_circle_km(c.latitude, c.longitude, s.latitude, s.longitude) < 30, s.name
