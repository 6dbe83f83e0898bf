"""Fixtures of the calibration tests: the API fixtures, and one small real probe run."""

from __future__ import annotations

import pytest

from suanli.agent.calibrate import ProbeResult, ProbeSettings, probe_cpu
from tests.api.conftest import app, client, consumer, make_tenant, operator, provider  # noqa: F401

# Small enough for two shared cores: a 128-order matmul and a 4 MiB copy, two repeats each.
TINY = ProbeSettings(max_n=128, copy_mib=4, repeats=2, budget_s=0.5, target_s=0.05)


@pytest.fixture(scope="session")
def cpu_probe() -> ProbeResult:
    """A real probe of this machine's CPUs, measured once for the session."""
    return probe_cpu(TINY)


SITE = {"name": "Gui'an DC 1", "province": "CN-GZ", "city": "Guiyang", "latitude": 26.6,
        "longitude": 106.7, "pue": "1.2", "electricity_fen_per_kwh": 35, "green_share": "0.6",
        "kind": "hub", "hub": "guizhou"}


def register_pool(http, tenant, accelerator: str,  # type: ignore[no-untyped-def]
                  device_count: int = 8) -> str:
    """A provider, a site and a pool of `accelerator` owned by `tenant`; the pool's id."""
    made = http.post("/v1/providers", json={"name": "West Compute", "kind": "computing-centre"},
                     headers=tenant.headers)
    assert made.status_code == 201, made.text
    site = http.post(f"/v1/providers/{made.json()['id']}/sites", json=SITE,
                     headers=tenant.headers)
    assert site.status_code == 201, site.text
    pool = http.post(f"/v1/sites/{site.json()['id']}/pools",
                     json={"name": "pool", "accelerator": accelerator,
                           "device_count": device_count, "engine": "local",
                           "price_fen_per_device_hour": 100}, headers=tenant.headers)
    assert pool.status_code == 201, pool.text
    return pool.json()["id"]
