"""The illustrative demo federation: coverage, validity, plausibility and determinism."""

from __future__ import annotations

import importlib.resources
from decimal import Decimal
from statistics import mean

import pytest

from suanli import demo
from suanli.catalog import load_cities
from suanli.domain.resources import WESTERN_HUBS, Engine, Hub, PoolState, ProviderKind, SiteKind

SEEDS = range(12)
EASTERN_EDGE_HUBS = {Hub.JINGJINJI, Hub.YANGTZE, Hub.GBA}


@pytest.fixture(scope="module")
def federation() -> demo.DemoFederation:
    return demo.demo_federation()


def test_is_large_enough_and_mixes_every_kind_of_provider(federation: demo.DemoFederation) -> None:
    assert len(federation.providers) >= 12
    assert len(federation.sites) >= 40
    assert len(federation.pools) >= 150
    assert {p.kind for p in federation.providers} >= {
        ProviderKind.TELECOM, ProviderKind.CLOUD, ProviderKind.COMPUTING_CENTRE,
        ProviderKind.UNIVERSITY,
    }


def test_hub_sites_cover_all_eight_hubs_and_edges_exist(federation: demo.DemoFederation) -> None:
    hub_sites = [s for s in federation.sites if s.kind is SiteKind.HUB]
    assert {s.hub for s in hub_sites} == set(Hub)
    assert sum(s.kind is SiteKind.EDGE for s in federation.sites) >= 15
    assert any(s.kind is SiteKind.EDGE and s.hub is None for s in federation.sites)


def test_everything_is_labelled_illustrative_with_generic_names(
    federation: demo.DemoFederation,
) -> None:
    assert federation.illustrative and "ILLUSTRATIVE" in federation.notice
    assert all(p.illustrative and p.name.startswith("Demo ") for p in federation.providers)
    assert all(s.illustrative for s in federation.sites)
    assert all(p.illustrative and p.labels["illustrative"] == "true" for p in federation.pools)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_site_and_pool_validates_as_a_domain_object(seed: int) -> None:
    federation = demo.demo_federation(seed)
    for i, s in enumerate(federation.sites):
        assert 0 <= s.provider_index < len(federation.providers)
        site = s.to_site(id=f"site-{i}", provider_id=f"provider-{s.provider_index}")
        assert site.is_western == (s.hub in WESTERN_HUBS)
    for i, p in enumerate(federation.pools):
        assert 0 <= p.site_index < len(federation.sites)
        pool = p.to_pool(id=f"pool-{i}", site_id=f"site-{p.site_index}")
        assert pool.free_devices is not None and pool.free_devices <= pool.device_count
        if pool.state is PoolState.MAINTENANCE:
            assert pool.free_devices == 0


def test_names_are_unique(federation: demo.DemoFederation) -> None:
    for objects in (federation.providers, federation.sites, federation.pools):
        names = [o.name for o in objects]
        assert len(names) == len(set(names))


def test_same_seed_same_federation_other_seed_other_figures() -> None:
    assert demo.demo_federation(7) == demo.demo_federation(7)
    assert demo.demo_federation() == demo.demo_federation(7)
    a, b = demo.demo_federation(1), demo.demo_federation(2)
    assert [s.name for s in a.sites] == [s.name for s in b.sites]
    assert a.pools != b.pools


def test_sites_stand_where_the_city_table_puts_them(federation: demo.DemoFederation) -> None:
    for s in federation.sites:
        c = load_cities().city(s.city)
        assert (s.province, s.latitude, s.longitude, s.hub) == (
            c.province, c.latitude, c.longitude, c.hub)


@pytest.mark.parametrize("seed", SEEDS)
def test_pue_is_plausible_and_hub_sites_meet_the_hub_cluster_caps(seed: int) -> None:
    for s in demo.demo_federation(seed).sites:
        assert Decimal("1.10") <= s.pue <= Decimal("1.50"), s.name
        if s.kind is SiteKind.HUB:
            cap = demo.MAX_HUB_PUE_WEST if s.hub in WESTERN_HUBS else demo.MAX_HUB_PUE_EAST
            assert s.pue <= cap, s.name


@pytest.mark.parametrize("seed", SEEDS)
def test_western_hubs_have_cheaper_and_greener_power(seed: int) -> None:
    federation = demo.demo_federation(seed)
    west = [s for s in federation.sites if s.hub in WESTERN_HUBS]
    coast = [s for s in federation.sites if s.hub in {Hub.YANGTZE, Hub.GBA}]
    assert max(s.electricity_fen_per_kwh for s in west) < min(
        s.electricity_fen_per_kwh for s in coast)
    assert all(28 <= s.electricity_fen_per_kwh <= 56 for s in west)
    assert mean(s.green_share for s in west) > mean(s.green_share for s in coast) + Decimal("0.1")


def test_western_hubs_train_and_eastern_edges_serve(federation: demo.DemoFederation) -> None:
    training = set(demo._WEST_TRAINING) | set(demo._EAST_TRAINING)
    inference = set(demo._INFERENCE)
    cpus = set(demo._CPU)
    for p in federation.pools:
        site = federation.sites[p.site_index]
        if site.hub in WESTERN_HUBS and site.kind is SiteKind.HUB:
            assert p.accelerator in training | cpus, p.name
        if site.hub in EASTERN_EDGE_HUBS and site.kind is SiteKind.EDGE:
            assert p.accelerator in inference | cpus, p.name
    assert all(any(p.accelerator in cpus for p in federation.pools if p.site_index == i)
               for i in range(len(federation.sites)))


@pytest.mark.parametrize("seed", SEEDS)
def test_prices_stay_in_their_documented_bands(seed: int) -> None:
    expected = {"nvidia-a800-sxm4-80gb": (800, 1500), "huawei-ascend-910b": (600, 1000),
                "nvidia-rtx-4090": (150, 300), "nvidia-t4": (100, 200),
                "huawei-kunpeng-920-7260": (20, 60), "intel-xeon-platinum-8480plus": (20, 60),
                "amd-epyc-9654": (20, 60)}
    for p in demo.demo_federation(seed).pools:
        low, high = demo.PRICE_BAND_FEN[p.accelerator]
        assert low <= p.price_fen_per_device_hour <= high, p.name
        assert isinstance(p.price_fen_per_device_hour, int)
        if p.accelerator in expected:
            low, high = expected[p.accelerator]
            assert low <= p.price_fen_per_device_hour <= high, p.name


def test_the_same_device_costs_less_in_western_hubs() -> None:
    pools = [p for seed in SEEDS for p in demo.demo_federation(seed).pools]
    sites = demo.demo_federation().sites  # same structure for every seed
    by_key: dict[str, tuple[list[int], list[int]]] = {}
    for p in pools:
        site = sites[p.site_index]
        west, east_edge = by_key.setdefault(p.accelerator, ([], []))
        if site.hub in WESTERN_HUBS and site.kind is SiteKind.HUB:
            west.append(p.price_fen_per_device_hour)
        elif site.hub in EASTERN_EDGE_HUBS and site.kind is SiteKind.EDGE:
            east_edge.append(p.price_fen_per_device_hour)
    compared = [k for k, (w, e) in by_key.items() if w and e]
    assert compared
    for key in compared:
        west, east_edge = by_key[key]
        assert mean(west) < mean(east_edge), key


def test_every_engine_is_used(federation: demo.DemoFederation) -> None:
    assert {p.engine for p in federation.pools} == set(Engine)


def test_pools_name_real_catalog_keys_and_cpu_pools_hold_cpus(
    federation: demo.DemoFederation,
) -> None:
    catalog_file = importlib.resources.files("suanli").joinpath("data", "accelerators.csv")
    if not catalog_file.is_file():
        pytest.skip("the accelerator catalog is not there yet")
    catalog = pytest.importorskip("suanli.catalog").load_catalog()
    keys = set(catalog.keys())  # canonical keys, not the short aliases
    assert set(demo.PRICE_BAND_FEN) <= keys
    for p in federation.pools:
        assert p.accelerator in keys, p.name
        is_cpu = catalog.get(p.accelerator).kind == "cpu"
        assert is_cpu == (p.labels["class"] == "cpu"), p.name
