"""One call that loads a trace, builds the federation, replays it and summarises the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suanli.shared_data import shared_data_dir
from suanli.catalog import load_catalog
from suanli.domain.placement.scoring import Weights
from suanli.sim.energy import DEFAULT_YEAR, PRICE_SHAPE_ZONE, load_energy_data
from suanli.sim.federation import Federation, build_federation
from suanli.sim.metrics import summarise
from suanli.sim.simulator import JobOutcome, Simulator
from suanli.sim.traces import Trace, load_trace, read_trace


@dataclass(frozen=True)
class Replay:
    trace: Trace
    federation: Federation
    outcomes: list[JobOutcome]
    summary: dict[str, Any]


def prepare(trace_name: str | None = None, *, limit: int | None = None, seed: int = 7,
            data_dir: Path | None = None, trace_file: Path | None = None,
            trace_format: str | None = None, energy_dir: Path | None = None,
            year: int = DEFAULT_YEAR, price_zone: str = PRICE_SHAPE_ZONE,
            price_shape: str = "tou") -> tuple[Trace, Federation]:
    """The trace and the federation sized for it (shared by every policy of a comparison).

    The trace is `trace_file` in `trace_format` (sniffed when None), or the shared data's
    trace called `trace_name`; energy is read from `energy_dir` (default: shared data), `year`.
    Devices are rated for the work the trace mostly holds (Philly: training; Alibaba: mostly
    latency-sensitive inference services).
    """
    if trace_file is not None:
        trace = read_trace(trace_file, trace_format, limit,
                           devices_known=frozenset(load_catalog().keys()))
    else:
        data_dir = data_dir or shared_data_dir()
        trace = load_trace(trace_name or "philly", data_dir, limit)
    if energy_dir is None:
        energy_dir = (data_dir or shared_data_dir()) / "energy"
    energy = load_energy_data(energy_dir, year, price_zone, price_shape)
    federation = build_federation(trace, workload_class=trace.workload_class, seed=seed,
                                  energy=energy)
    return trace, federation


def replay(trace: Trace, federation: Federation, policy: str, *, seed: int = 7,
           on_progress: Callable[[int], None] | None = None,
           weights: Weights | None = None) -> Replay:
    """Runs the simulator once and summarises it (`weights`: a linear policy's, to tune)."""
    started = time.perf_counter()
    outcomes = Simulator(trace, federation, policy, seed=seed, weights=weights).run(on_progress)
    wall_s = time.perf_counter() - started
    summary = summarise(trace, federation, outcomes, policy=policy, wall_s=wall_s)
    return Replay(trace, federation, outcomes, summary)
