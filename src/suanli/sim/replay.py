"""One call that loads a trace, builds the federation, replays it and summarises the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanli.shared_data import shared_data_dir
from suanli.sim.federation import Federation, build_federation
from suanli.sim.metrics import summarise
from suanli.sim.simulator import JobOutcome, Simulator
from suanli.sim.traces import Trace, load_trace

# Devices are rated for the work the trace mostly holds: Philly is training; most Alibaba pods
# are latency-sensitive inference services.
WORKLOAD_CLASS = {"philly": "training", "alibaba": "inference"}


@dataclass(frozen=True)
class Replay:
    trace: Trace
    federation: Federation
    outcomes: list[JobOutcome]
    summary: dict[str, Any]


def prepare(trace_name: str, *, limit: int | None = None, seed: int = 7,
            data_dir: Path | None = None) -> tuple[Trace, Federation]:
    """The trace and the federation sized for it (shared by every policy of a comparison)."""
    data_dir = data_dir or shared_data_dir()
    trace = load_trace(trace_name, data_dir, limit)
    federation = build_federation(trace, data_dir, workload_class=WORKLOAD_CLASS[trace_name],
                                  seed=seed)
    return trace, federation


def replay(trace: Trace, federation: Federation, policy: str, *, seed: int = 7,
           on_progress: Callable[[int], None] | None = None) -> Replay:
    """Runs the simulator once and summarises it."""
    started = time.perf_counter()
    outcomes = Simulator(trace, federation, policy, seed=seed).run(on_progress)
    wall_s = time.perf_counter() - started
    summary = summarise(trace, federation, outcomes, policy=policy, wall_s=wall_s)
    return Replay(trace, federation, outcomes, summary)
