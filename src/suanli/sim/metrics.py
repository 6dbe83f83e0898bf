"""Turns a replay's job outcomes into the figures a report gives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from suanli.domain.placement.model import LatencyClass
from suanli.domain.resources import WESTERN_HUBS
from suanli.sim.federation import Federation
from suanli.sim.simulator import JobOutcome
from suanli.sim.traces import Trace


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one value takes everything."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0 or not np.any(x):
        return 1.0
    return float(x.sum() ** 2 / (len(x) * (x * x).sum()))


def summarise(trace: Trace, federation: Federation, outcomes: Sequence[JobOutcome], *,
              policy: str, wall_s: float) -> dict[str, Any]:
    """The report's figures: JCT, queueing, utilisation per hub, money, energy, carbon, fairness."""
    done = [i for i, o in enumerate(outcomes) if o.finish_s >= 0]
    submit = np.array([outcomes[i].submit_s for i in done], dtype=np.float64)
    start = np.array([outcomes[i].first_start_s for i in done], dtype=np.float64)
    finish = np.array([outcomes[i].finish_s for i in done], dtype=np.float64)
    jct_h = (finish - submit) / 3600.0
    wait_h = (start - submit) / 3600.0
    horizon_s = float(finish.max() - min(o.submit_s for o in outcomes)) if done else 1.0
    batch = [i for i in done if trace.jobs[i].latency_class is LatencyClass.BATCH]
    batch_device_s = sum(outcomes[i].device_s for i in batch)
    western_s = sum(outcomes[i].western_device_s for i in batch)
    with_deadline = [i for i in done if trace.jobs[i].deadline_s is not None]
    missed = sum(1 for i in with_deadline
                 if outcomes[i].finish_s > (trace.jobs[i].deadline_s or 0))
    return {
        "trace": trace.name,
        "policy": policy,
        "jobs": len(outcomes),
        "completed": len(done),
        "rejected": sum(1 for o in outcomes if o.rejected),
        "narrowed": sum(1 for o in outcomes if o.narrowed),
        "deferred": sum(1 for o in outcomes if o.deferred),
        "preemptions": sum(o.preemptions for o in outcomes),
        "jct_mean_h": _stat(jct_h, np.mean),
        "jct_p95_h": _stat(jct_h, lambda x: np.percentile(x, 95)),
        "queue_mean_h": _stat(wait_h, np.mean),
        "queue_p95_h": _stat(wait_h, lambda x: np.percentile(x, 95)),
        "deadline_missed": missed,
        "deadline_jobs": len(with_deadline),
        "cost_fen": sum(o.cost_fen for o in outcomes),
        "energy_kwh": round(sum(o.energy_kwh for o in outcomes), 3),
        "electricity_fen": sum(o.electricity_fen for o in outcomes),
        "carbon_kg": round(sum(o.carbon_kg for o in outcomes), 3),
        "west_batch_share": round(western_s / batch_device_s, 4) if batch_device_s else 0.0,
        "fairness_jain": round(_fairness(trace, outcomes, done), 4),
        "utilisation_by_hub": _utilisation(federation, outcomes, horizon_s),
        "federation": {"pools": len(federation.pools), "devices": federation.devices,
                       "scu_per_hour": round(federation.units_per_hour, 1),
                       "hubs": len({h for h in federation.hub if h is not None})},
        "horizon_h": round(horizon_s / 3600.0, 2),
        "wall_s": round(wall_s, 2),
    }


def _stat(values: np.ndarray, fn) -> float:
    return round(float(fn(values)), 4) if len(values) else 0.0


def _fairness(trace: Trace, outcomes: Sequence[JobOutcome], done: list[int]) -> float:
    """Jain's index over tenants of their mean service share: run time / time in the system."""
    shares: dict[str, list[float]] = defaultdict(list)
    for i in done:
        o = outcomes[i]
        in_system = max(1, o.finish_s - o.submit_s)
        shares[trace.jobs[i].tenant].append(min(1.0, o.run_s / in_system))
    return jain_index([float(np.mean(v)) for v in shares.values()])


def _utilisation(federation: Federation, outcomes: Sequence[JobOutcome],
                 horizon_s: float) -> dict[str, float]:
    """Busy device-seconds over available device-seconds, per hub ("edge": no hub)."""
    busy: dict[str, float] = defaultdict(float)
    devices: dict[str, int] = defaultdict(int)
    for pool, hub in zip(federation.pools, federation.hub):
        devices[hub.value if hub else "edge"] += pool.device_count
    for o in outcomes:
        if o.pool >= 0:
            hub = federation.hub[o.pool]
            busy[hub.value if hub else "edge"] += o.device_s
    return {h: round(busy[h] / (devices[h] * horizon_s), 4) for h in sorted(devices)}


def western_hubs() -> list[str]:
    return sorted(h.value for h in WESTERN_HUBS)
