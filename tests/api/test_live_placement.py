"""The live scheduler decides with the placement domain, as the simulator does."""

from __future__ import annotations

import numpy as np

from suanli.catalog import load_catalog
from suanli.domain.placement import (
    AcceleratorConstraint,
    JobRequest,
    PlacementEngine,
    PoolTable,
    make_policy,
)
from suanli.domain.time import SECONDS_PER_HOUR
from suanli.services.scheduling.live_table import LiveTables
from tests.api.live_world import register

# A job stream: (devices, accelerator, hours, workload class), submitted in this order.
STREAM = [
    (2, None, 1, "general"), (8, "nvidia-a800", 4, "training"), (1, None, 0.5, "inference"),
    (16, None, 8, "training"), (4, "huawei-ascend-910b", 2, "training"),
    (32, None, 24, "training"), (8, None, 1, "general"), (2, "nvidia-rtx-4090", 1, "inference"),
    (16, "nvidia-a800", 12, "training"), (4, None, 2, "hpc"), (64, None, 6, "training"),
    (1, None, 0.25, "general"),
]


def _simulator_engine(snapshots: tuple) -> tuple[PoolTable, PlacementEngine]:
    """The engine as `suanli.sim.simulator.Simulator` builds it, on a table of its own."""
    table = PoolTable(snapshots)
    policy = make_policy("balanced", table, np.random.default_rng(7))
    return table, PlacementEngine(table, policy, preemption=True)


def test_live_decisions_equal_the_simulator_engine_on_the_same_pools_and_jobs(
        client, provider, consumer, database, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, provider)
    with database.unit_of_work() as session:
        tables = LiveTables(session)
        live = {c: tables.of(c) for c in ("general", "training", "inference", "hpc")}
    sims = {c: _simulator_engine(t.table.pools) for c, t in live.items() if t is not None}
    now_s = int(clock.now().timestamp())
    differences = []
    placed = 0
    used: set[str] = set()
    for n, (devices, accelerator, hours, workload) in enumerate(STREAM):
        body = {"name": f"j{n}", "command": ["true"], "devices": devices,
                "time_limit_s": int(hours * SECONDS_PER_HOUR), "workload_class": workload}
        if accelerator:
            body["accelerator"] = accelerator
        job = client.post("/v1/jobs", json=body,
                          headers={**consumer.headers, "Idempotency-Key": f"k{n}"}).json()
        table, engine = sims[workload]
        reference = live[workload].reference_units
        models = frozenset({load_catalog().get(accelerator).key}) if accelerator \
            else frozenset()
        request = JobRequest(
            id=f"j{n}", tenant_id="t", devices=devices,
            work_units=hours * devices * reference,
            accelerator=AcceleratorConstraint(models=models), workload_class=workload,
            defer_allowed=False)
        try:
            choice = engine.choose(request, now_s, allow_defer=False)
            expected = tuple(table.ids[a.pool_index] for a in choice.allocations)
        except Exception:  # noqa: BLE001 - nothing fits: the live job stays pending
            expected = ()
        got = (job["pool_id"],) if job["state"] == "placed" else ()
        if got != expected:
            differences.append((n, got, expected))
        for a in choice.allocations if expected else ():
            for other, _ in sims.values():  # every class's table sees the devices taken
                other.reserve(a.pool_index, a.devices)
        placed += bool(got)
        used.update(got)
    assert differences == []
    assert placed >= len(STREAM) - 2  # the stream fills the federation, not beyond
    assert len(used) >= 4  # the decisions differ by job: not one pool for all
