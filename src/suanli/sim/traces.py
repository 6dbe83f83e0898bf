"""Loads the Philly and Alibaba GPU traces and gives each job what the traces do not record.

Neither trace names a region, a data set, a deadline or an accelerator stack, so the loader
derives them deterministically from a stable hash (SHA-256) of an identifier in the trace:
the same trace always gives the same jobs, on any machine and Python version.

Philly (Microsoft, 2017; `traces/philly.csv`): one row per job.
    tenant          the virtual cluster (`cluster`), 14 of them
    home city       hash(virtual cluster) over HOME_CITIES: a team sits in one city and keeps
                    its data there (data province = the city's province)
    data size       hash(virtual cluster), log-uniform 10 GB .. 2 TB (a team's training set)
    device          NVIDIA P100 (nvidia-p100): Philly's machines were P100/P40-class
                    (Jeon et al., ATC'19); the trace records no model
    latency class   1-GPU jobs shorter than 15 minutes are interactive (debugging runs, 37% of
                    jobs); everything else is batch training
    deadline        batch: submit + max(6 h, 3 x trace duration), soft
    spot            hash(job) puts 30% of batch jobs on spot capacity
    stack           hash(job) makes 40% of jobs portable (any stack); the rest need CUDA
Alibaba (cluster-trace-gpu-v2023, `openb_pod_list_default.csv`): one row per pod.
    kept            pods that hold at least one GPU and were scheduled (CPU-only and
                    never-scheduled pods are left out); a fractional GPU takes a whole device
    tenant          the QoS class (LS, BE, Burstable, Guaranteed): pods carry no user
    device          `gpu_spec` is empty in this file, so hash(pod) draws a model from the
                    cluster's own GPU mix (openb_node_list_gpu_node.csv, by GPU count); the
                    undisclosed G2 and G3 are taken as T4- and A10-class
    latency class   LS/Burstable/Guaranteed are interactive inference; BE is batch training on
                    spot capacity, with the Philly deadline rule
    home city       hash(pod) over HOME_CITIES
Work: a job's work is its trace duration x devices x the SCU rating of its original device
(training or inference); on a pool it runs work / (devices x the pool's rating).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from suanli.domain.placement.model import LatencyClass

# Cities where the users of a compute internet live: the eastern and central metropolises.
HOME_CITIES: tuple[tuple[str, str], ...] = (
    ("Beijing", "CN-BJ"), ("Shanghai", "CN-SH"), ("Shenzhen", "CN-GD"), ("Guangzhou", "CN-GD"),
    ("Hangzhou", "CN-ZJ"), ("Nanjing", "CN-JS"), ("Wuhan", "CN-HB"), ("Chengdu", "CN-SC"),
    ("Xi'an", "CN-SN"), ("Hefei", "CN-AH"), ("Tianjin", "CN-TJ"), ("Chongqing", "CN-CQ"),
)
PHILLY_DEVICE = "nvidia-p100"
ALIBABA_DEVICE: dict[str, str] = {
    "T4": "nvidia-t4", "P100": "nvidia-p100", "V100M16": "nvidia-v100-sxm2-16gb",
    "V100M32": "nvidia-v100-sxm2-32gb", "A10": "nvidia-a10", "G2": "nvidia-t4", "G3": "nvidia-a10",
}
INTERACTIVE_MAX_S = 15 * 60
DEADLINE_MIN_S = 6 * 3600
DEADLINE_FACTOR = 3
SPOT_SHARE = 0.3
PORTABLE_SHARE = 0.4
DATA_GB_RANGE = (10.0, 2000.0)
TRACES = ("philly", "alibaba")


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace, with the derived attributes; times in seconds from the trace start."""

    id: str
    tenant: str
    submit_s: int
    duration_s: int  # on the original device
    devices: int
    original: str  # catalog key of the device the trace ran on
    workload_class: str  # "training" | "inference"
    latency_class: LatencyClass
    home_city: str
    data_province: str
    data_gb: float
    deadline_s: int | None
    spot_allowed: bool
    portable: bool  # runs on any software stack; otherwise CUDA only


@dataclass(frozen=True)
class Trace:
    name: str
    jobs: tuple[TraceJob, ...]
    hour_of_year0: int  # the hour of 2023 the trace's second 0 falls on (for energy series)
    skipped: int  # rows left out (see the module docstring)


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) for `text`."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _home(key: str) -> tuple[str, str]:
    return HOME_CITIES[int(unit_hash("home:" + key) * len(HOME_CITIES))]


def _data_gb(key: str) -> float:
    low, high = DATA_GB_RANGE
    return round(math.exp(math.log(low) + unit_hash("data:" + key) * math.log(high / low)), 1)


def _deadline(submit_s: int, duration_s: int) -> int:
    return submit_s + max(DEADLINE_MIN_S, DEADLINE_FACTOR * duration_s)


def load_philly(data_dir: Path, limit: int | None = None) -> Trace:
    """The Philly trace, sorted by submit time (the first `limit` jobs when given)."""
    path = data_dir / "traces" / "philly.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    stamped = sorted(((datetime.fromisoformat(r["timestamp"]), i, r) for i, r in enumerate(rows)),
                     key=lambda x: (x[0], x[1]))
    t0 = stamped[0][0].replace(minute=0, second=0)
    jobs, skipped = [], 0
    for stamp, i, r in stamped:
        duration = int(float(r["duration"]))
        devices = int(r["num_gpus"])
        if duration <= 0 or devices <= 0:
            skipped += 1
            continue
        vc = r["cluster"]
        job_id = f"philly-{i}"
        city, province = _home(vc)
        interactive = devices == 1 and duration < INTERACTIVE_MAX_S
        submit = int((stamp - t0).total_seconds())
        jobs.append(TraceJob(
            id=job_id, tenant=vc, submit_s=submit, duration_s=duration, devices=devices,
            original=PHILLY_DEVICE, workload_class="training",
            latency_class=LatencyClass.INTERACTIVE if interactive else LatencyClass.BATCH,
            home_city=city, data_province=province, data_gb=1.0 if interactive else _data_gb(vc),
            deadline_s=None if interactive else _deadline(submit, duration),
            spot_allowed=not interactive and unit_hash("spot:" + job_id) < SPOT_SHARE,
            portable=unit_hash("stack:" + job_id) < PORTABLE_SHARE,
        ))
        if limit is not None and len(jobs) >= limit:
            break
    hour0 = (t0.timetuple().tm_yday - 1) * 24 + t0.hour
    return Trace("philly", tuple(jobs), hour0, skipped)


def _alibaba_device_mix(data_dir: Path) -> list[tuple[str, float]]:
    path = data_dir / "traces" / "alibaba-gpu-v2023" / "openb_node_list_gpu_node.csv"
    counts: Counter[str] = Counter()
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["model"] and int(r["gpu"]) > 0:
                counts[r["model"]] += int(r["gpu"])
    total = sum(counts.values())
    cumulative, out = 0.0, []
    for model in sorted(counts):
        cumulative += counts[model] / total
        out.append((model, cumulative))
    return out


def load_alibaba(data_dir: Path, limit: int | None = None) -> Trace:
    """The Alibaba GPU pods, sorted by creation time (the first `limit` when given)."""
    mix = _alibaba_device_mix(data_dir)
    path = data_dir / "traces" / "alibaba-gpu-v2023" / "openb_pod_list_default.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: (int(r["creation_time"]), r["name"]))
    jobs, skipped = [], 0
    for r in rows:
        devices = int(r["num_gpu"])
        if devices <= 0 or not r["scheduled_time"] or not r["deletion_time"]:
            skipped += 1
            continue
        duration = int(r["deletion_time"]) - int(r["scheduled_time"])
        if duration <= 0:
            skipped += 1
            continue
        name = r["name"]
        spec = r["gpu_spec"] or next(m for m, c in mix if unit_hash("gpu:" + name) < c)
        batch = r["qos"] == "BE"
        city, province = _home(name)
        submit = int(r["creation_time"])
        jobs.append(TraceJob(
            id=f"alibaba-{name}", tenant=r["qos"], submit_s=submit, duration_s=duration,
            devices=devices, original=ALIBABA_DEVICE.get(spec.split("|")[0], "nvidia-t4"),
            workload_class="training" if batch else "inference",
            latency_class=LatencyClass.BATCH if batch else LatencyClass.INTERACTIVE,
            home_city=city, data_province=province, data_gb=50.0 if batch else 1.0,
            deadline_s=_deadline(submit, duration) if batch else None, spot_allowed=batch,
            portable=unit_hash("stack:" + name) < PORTABLE_SHARE,
        ))
        if limit is not None and len(jobs) >= limit:
            break
    return Trace("alibaba", tuple(jobs), 0, skipped)


def load_trace(name: str, data_dir: Path, limit: int | None = None) -> Trace:
    if name == "philly":
        return load_philly(data_dir, limit)
    if name == "alibaba":
        return load_alibaba(data_dir, limit)
    raise ValueError(f"unknown trace {name!r}; one of {', '.join(TRACES)}")
