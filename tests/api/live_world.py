"""A small federation of varied pools for the live placement tests, registered over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SITES = {
    "zhongwei": {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei",
                 "latitude": 37.5, "longitude": 105.2, "pue": "1.15",
                 "electricity_fen_per_kwh": 32, "green_share": "0.7", "kind": "hub",
                 "hub": "ningxia"},
    "shenzhen": {"name": "Shenzhen edge", "province": "CN-GD", "city": "Shenzhen",
                 "latitude": 22.5, "longitude": 114.1, "pue": "1.4",
                 "electricity_fen_per_kwh": 75, "green_share": "0.2", "kind": "edge"},
    "beijing": {"name": "Beijing DC", "province": "CN-BJ", "city": "Beijing",
                "latitude": 39.9, "longitude": 116.4, "pue": "1.3",
                "electricity_fen_per_kwh": 65, "green_share": "0.1", "kind": "hub",
                "hub": "jingjinji"},
    "guiyang": {"name": "Gui'an DC", "province": "CN-GZ", "city": "Guiyang",
                "latitude": 26.6, "longitude": 106.6, "pue": "1.2",
                "electricity_fen_per_kwh": 38, "green_share": "0.5", "kind": "hub",
                "hub": "guizhou"},
}
# (site, accelerator, devices, list price, interconnect)
POOLS = [
    ("zhongwei", "nvidia-a800", 16, 900, None),
    ("zhongwei", "huawei-ascend-910b", 64, 700, None),
    ("shenzhen", "nvidia-rtx-4090", 8, 400, None),
    ("shenzhen", "nvidia-a800", 8, 1500, None),
    ("beijing", "nvidia-h100-sxm", 16, 2500, None),
    ("beijing", "huawei-ascend-910b", 32, 1100, None),
    ("guiyang", "nvidia-a800", 32, 1000, None),
    ("guiyang", "cambricon-mlu370-x8", 16, 500, None),
    ("guiyang", "amd-mi250x", 8, 800, None),
]


@dataclass
class World:
    sites: dict[str, str]
    pools: list[str]  # in the order of `pools_spec`
    by_name: dict[tuple[str, str], list[str]]


def register(client: Any, provider: Any, pools_spec: list[tuple[Any, ...]] = POOLS) -> World:
    """Registers the sites and pools; returns their ids."""
    p = client.post("/v1/providers", json={"name": "Federation", "kind": "cloud"},
                    headers=provider.headers).json()
    sites: dict[str, str] = {}
    for key, site in SITES.items():
        made = client.post(f"/v1/providers/{p['id']}/sites", json=site,
                           headers=provider.headers)
        assert made.status_code == 201, made.text
        sites[key] = made.json()["id"]
    ids: list[str] = []
    by_name: dict[tuple[str, str], list[str]] = {}
    for n, (site, accelerator, devices, price, fabric) in enumerate(pools_spec):
        body = {"name": f"{site} {accelerator} {n}", "accelerator": accelerator,
                "device_count": devices, "engine": "slurm", "price_fen_per_device_hour": price}
        if fabric:
            body["interconnect"] = fabric
        made = client.post(f"/v1/sites/{sites[site]}/pools", json=body,
                           headers=provider.headers)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
        by_name.setdefault((site, accelerator), []).append(made.json()["id"])
    return World(sites, ids, by_name)
