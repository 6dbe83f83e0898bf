"""Online ranking of candidate pools with the placement domain's balanced policy."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import jobs as store
from suanli.catalog import load_catalog
from suanli.domain.errors import PlacementInfeasible
from suanli.domain.job_records import PoolFacts, SiteEnergy
from suanli.domain.jobs import JobSpec
from suanli.domain.placement import (
    AcceleratorConstraint,
    JobRequest,
    PlacementEngine,
    PoolSnapshot,
    PoolTable,
    make_policy,
)
from suanli.domain.resources import WESTERN_HUBS, Hub
from suanli.services.billing import estimates

POLICY = "balanced"
RANKED_DEEP = 3  # scored choices kept behind the first, should a race take it
# The national average grid factor (2023, gCO2/kWh) for a province missing from the table.
DEFAULT_CARBON_G_PER_KWH = 570.0


@cache
def _carbon_by_province() -> dict[str, float]:
    text = (resources.files("suanli") / "data" / "china_provincial_emissions_2023.json"
            ).read_text(encoding="utf-8")
    return {code: float(entry["emission_factor"])
            for code, entry in json.loads(text)["data"].items()}


def _snapshot(pool: PoolFacts, site: SiteEnergy, prices: tuple[int, ...]) -> PoolSnapshot:
    device = load_catalog().get(pool.accelerator)
    hub = Hub(pool.hub) if pool.hub else None
    return PoolSnapshot(
        id=pool.id, provider_id=pool.provider_id, site_id=pool.site_id, province=pool.province,
        city=pool.city, accelerator=pool.accelerator, vendor=pool.vendor,
        architecture=pool.architecture, memory_gb=float(pool.memory_gb or 0.0),
        software_stacks=frozenset({device.software_stack}) if device.software_stack
        else frozenset(),
        device_count=pool.device_count, free_devices=pool.free_devices,
        units_per_device_hour=float(pool.units_per_device_hour),
        device_power_kw=(device.tdp_w or 300.0) / 1000, pue=float(site.pue),
        price_fen_per_device_hour=prices,  # the tariff in force (issue 10), not the list price
        electricity_fen_per_kwh=(site.electricity_fen_per_kwh,),
        carbon_g_per_kwh=(_carbon_by_province().get(pool.province,
                                                    DEFAULT_CARBON_G_PER_KWH),),
        hub=hub, western=hub in WESTERN_HUBS, interconnect=pool.interconnect)


def rank(session: Session, spec: JobSpec, rows: list[PoolFacts], now: datetime,
         ) -> list[tuple[PoolFacts, dict[str, Any]]]:
    """The rows, best first by the balanced policy, each with its score breakdown.

    Rated pools are scored; pools without a unit rating (no published figure) cannot be
    compared per unit and follow in the order given.
    """
    rated = [row for row in rows if row.units_per_device_hour and row.units_per_device_hour > 0]
    unrated = [row for row in rows if row not in rated]
    if not rated:
        return [(row, {"policy": "unrated", "rank": i + 1}) for i, row in enumerate(unrated)]
    sites = store.site_energy(session, {row.site_id for row in rated})
    snapshots = {row.id: _snapshot(row, sites[row.site_id],
                                   estimates.device_hour_prices(session, row, spec))
                 for row in rated}
    hours = Decimal(spec.time_limit_s) / 3600
    reference = float(np.median([float(r.units_per_device_hour) for r in rated]))
    request = JobRequest(id="online", tenant_id="online", devices=spec.devices,
                         work_units=float(hours) * spec.devices * reference,
                         accelerator=AcceleratorConstraint(min_memory_gb=spec.min_memory_gb or 0),
                         workload_class=spec.workload_class, spot_allowed=spec.spot,
                         defer_allowed=False)
    now_s = int(now.timestamp())
    ranked: list[tuple[PoolFacts, dict[str, Any]]] = []
    remaining = list(rated)
    # Rank by repeated choice: the best pool, then the best of the rest, a few deep, so a
    # lost race for the first still has scored alternatives behind it.
    for position in range(min(len(rated), RANKED_DEEP)):
        table = PoolTable([snapshots[row.id] for row in remaining])
        engine = PlacementEngine(table, make_policy(POLICY, table, np.random.default_rng(0)),
                                 preemption=False)
        try:
            placement = engine.place(request, now_s, allow_defer=False)
        except PlacementInfeasible:
            break
        chosen = placement.allocations[0].pool_id
        row = next(r for r in remaining if r.id == chosen)
        ranked.append((row, {"policy": POLICY, "rank": position + 1,
                             "score": round(float(placement.score), 2),
                             "breakdown": {k: round(float(v), 2)
                                           for k, v in placement.breakdown.items()},
                             "estimated_energy_kwh": round(placement.energy_kwh, 3),
                             "estimated_carbon_kg": round(placement.carbon_kg, 3),
                             "reason": placement.reason}))
        remaining.remove(row)
        if not remaining:
            break
    tail = remaining + unrated
    ranked += [(row, {"policy": "fallback", "rank": len(ranked) + i + 1})
               for i, row in enumerate(tail)]
    return ranked
