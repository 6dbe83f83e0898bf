"""Writes a replay's summary (JSON), its jobs (CSV) and a plot (PNG)."""

from __future__ import annotations

import csv
import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from suanli.sim.federation import Federation
from suanli.sim.simulator import JobOutcome
from suanli.sim.traces import Trace

CSV_COLUMNS = ("job", "tenant", "latency_class", "devices", "submit_s", "start_s", "finish_s",
               "jct_s", "run_s", "pool", "accelerator", "hub", "cost_fen", "electricity_fen",
               "energy_kwh", "carbon_kg", "deferred", "preemptions", "narrowed", "rejected")


def write_report(out: Path, summary: dict[str, Any], trace: Trace, federation: Federation,
                 outcomes: Sequence[JobOutcome]) -> dict[str, Path]:
    """Writes summary.json, jobs.csv and plot.png under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{summary['trace']}-{summary['policy']}"
    paths = {"json": out / f"{stem}.json", "csv": out / f"{stem}.csv", "png": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                             encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for spec, o in zip(trace.jobs, outcomes):
            pool = federation.pools[o.pool] if o.pool >= 0 else None
            hub = federation.hub[o.pool] if o.pool >= 0 else None
            writer.writerow((
                spec.id, spec.tenant, spec.latency_class.value, spec.devices, o.submit_s,
                o.first_start_s, o.finish_s, o.finish_s - o.submit_s if o.finish_s >= 0 else -1,
                o.run_s, pool.id if pool else "", pool.accelerator if pool else "",
                (hub.value if hub else "edge") if pool else "", o.cost_fen, o.electricity_fen,
                round(o.energy_kwh, 4), round(o.carbon_kg, 4), int(o.deferred), o.preemptions,
                int(o.narrowed), o.rejected,
            ))
    plot(paths["png"], summary, outcomes)
    return paths


def plot(path: Path, summary: dict[str, Any], outcomes: Sequence[JobOutcome]) -> None:
    """JCT distribution and utilisation per hub; a plain bar chart when matplotlib is absent."""
    jct_h = np.array([(o.finish_s - o.submit_s) / 3600 for o in outcomes if o.finish_s >= 0])
    utilisation = summary["utilisation_by_hub"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _bar_png(path, list(utilisation.values()))
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if len(jct_h):
        values = np.sort(np.maximum(jct_h, 1e-3))
        left.plot(values, np.arange(1, len(values) + 1) / len(values))
        left.set_xscale("log")
    left.set_xlabel("job completion time (h)")
    left.set_ylabel("share of jobs")
    left.set_title(f"JCT: mean {summary['jct_mean_h']:.2f} h, p95 {summary['jct_p95_h']:.2f} h")
    right.bar(list(utilisation), [100 * v for v in utilisation.values()])
    right.set_ylabel("utilisation (%)")
    right.set_title("utilisation per hub")
    right.tick_params(axis="x", rotation=45)
    fig.suptitle(f"{summary['trace']} replay, policy {summary['policy']}: "
                 f"{summary['cost_fen'] / 100:,.0f} CNY, {summary['carbon_kg']:,.0f} kg CO2")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bar_png(path: Path, values: Sequence[float], width: int = 480, height: int = 240) -> None:
    """A grey-scale bar chart as a PNG, written with zlib alone."""
    image = np.full((height, width), 255, dtype=np.uint8)
    n = max(1, len(values))
    bar = width // n
    for i, v in enumerate(values):
        top = height - int(min(max(v, 0.0), 1.0) * (height - 10))
        image[top:, i * bar + 4:(i + 1) * bar - 4] = 60
    raw = b"".join(b"\x00" + row.tobytes() for row in image)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
