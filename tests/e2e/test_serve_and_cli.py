"""`suanli serve` as a real process, driven by the `suanli` CLI as a user would."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.e2e.conftest import run_cli


def test_serve_demo_then_search_pools_from_the_cli(node_factory, tmp_path: Path) -> None:
    node = node_factory("--demo")
    assert node.operator_key and node.demo_key
    assert "ILLUSTRATIVE" in node.output.read_text()
    result = run_cli("pools", "search", "--vendor", "Huawei", "--workload-class", "training",
                     "--limit", "5", url=node.url, key=node.demo_key)
    assert result.returncode == 0, result.stderr
    assert "huawei-ascend" in result.stdout and "match" in result.stdout
    near = run_cli("pools", "search", "--sort", "latency", "--near-city", "Shenzhen",
                   "--json", url=node.url, key=node.demo_key)
    assert near.returncode == 0, near.stderr
    assert '"latency_ms"' in near.stdout


def test_cli_reports_bad_input_and_missing_key_clearly(node_factory) -> None:
    node = node_factory()
    no_key = run_cli("pools", "search", url=node.url)
    assert no_key.returncode == 1 and "401" in no_key.stderr
    bad = run_cli("pools", "search", "--workload-class", "crypto", url=node.url,
                  key=node.operator_key)
    assert bad.returncode == 1 and "workload_class" in bad.stderr


def test_provider_registers_a_site_and_pool_from_the_cli(node_factory, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    node = node_factory(database_url=db)
    created = run_cli("admin", "create-tenant", "Lab Compute", "--role", "provider",
                      "--database-url", db, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = re.search(r"API key \(shown once, store it now\): (\S+)", created.stdout).group(1)
    provider = run_cli("providers", "create", "Lab Compute", "--kind", "university",
                       url=node.url, key=key)
    provider_id = re.search(r"created provider (\S+)", provider.stdout).group(1)
    site = run_cli("sites", "create", provider_id, "Lab DC", "CN-NX", "Zhongwei", "37.5",
                   "105.2", "--hub", "ningxia", "--pue", "1.15", url=node.url, key=key)
    assert site.returncode == 0, site.stderr
    site_id = re.search(r"created site (\S+)", site.stdout).group(1)
    pool = run_cli("pools", "create", site_id, "A800 pool", "nvidia-a800", "16", "900",
                   "--engine", "slurm", url=node.url, key=key)
    assert pool.returncode == 0, pool.stderr
    listed = run_cli("pools", "search", "--hub", "ningxia", url=node.url, key=key)
    assert "nvidia-a800" in listed.stdout
    bad_site = run_cli("sites", "create", provider_id, "Bad", "CN-ZZ", "Nowhere", "1", "1",
                       url=node.url, key=key)
    assert bad_site.returncode == 1 and "province" in bad_site.stderr
    health = httpx.get(node.url + "/v1/health").json()
    assert health["database"] == "sqlite"


def test_openapi_document_is_served(node_factory) -> None:
    node = node_factory()
    spec = httpx.get(node.url + "/openapi.json").json()
    assert "/v1/pools" in spec["paths"] and "/v1/providers" in spec["paths"]
    assert httpx.get(node.url + "/docs").status_code == 200


def test_simulate_from_the_cli_writes_json_csv_and_png(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = run_cli("simulate", "--trace", "alibaba", "--policy", "balanced", "--limit", "300",
                     "--out", str(out), cwd=tmp_path, timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr
    written = {path.suffix for path in out.iterdir()}
    assert {".json", ".csv", ".png"} <= written
    bad = run_cli("simulate", "--policy", "astrology", cwd=tmp_path)
    assert bad.returncode != 0 and "policy" in (bad.stdout + bad.stderr)
