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
Other Alibaba pod lists (read_alibaba): the gpuspec lists name the GPU a pod needs; the sampled
lists (cpu050, gpushare40, multigpu50, ...) have no timing, QoS or model columns and are placed
as a snapshot: every GPU pod at second 0, running SNAPSHOT_DURATION_S, QoS LS.
Anyone's own trace (read_csv_trace): CSV_COLUMNS, documented in docs/simulator.md.
Errors: a file that cannot be read raises TraceError naming the file, line and column.
Work: a job's work is its trace duration x devices x the SCU rating of its original device
(training or inference); on a pool it runs work / (devices x the pool's rating).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

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
TRACES = ("philly", "alibaba")  # the shared data's traces, by name
FORMATS = ("philly", "alibaba", "csv")  # trace file formats


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
    hour_of_year0: int  # the hour of the year the trace's second 0 falls on (energy series)
    skipped: int  # rows left out (see the module docstring)
    workload_class: str = "training"  # the rating its devices are compared by
    snapshot: bool = False  # read without timing: every job arrives at second 0


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


class TraceError(ValueError):
    """A trace file that cannot be read as its format: names the file, line and column."""

    def __init__(self, path: Path, message: str, *, line: int | None = None,
                 column: str | None = None) -> None:
        where = str(path) + (f", line {line}" if line is not None else "") \
            + (f", column {column!r}" if column is not None else "")
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column = path, line, column


class _Rows:
    """A CSV file's rows as dicts, with the line each row starts on, for error messages."""

    def __init__(self, path: Path, required: tuple[str | tuple[str, ...], ...],
                 fmt: str) -> None:
        self.path = path
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                self.columns = tuple(reader.fieldnames or ())
                self.rows: list[tuple[int, dict[str, str]]] = []
                line = reader.line_num + 1
                for row in reader:
                    if None in row:
                        raise TraceError(path, f"{len(self.columns) + len(row[None])} fields, "
                                         f"the header has {len(self.columns)}", line=line)
                    self.rows.append((line, row))
                    line = reader.line_num + 1
        except OSError as exc:
            raise TraceError(path, f"cannot be read ({exc.strerror or exc})") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise TraceError(path, f"is not a UTF-8 CSV file ({exc})") from exc
        if not self.columns:
            raise TraceError(path, "is empty: a header line is needed", line=1)
        for need in required:
            names = (need,) if isinstance(need, str) else need
            if not any(n in self.columns for n in names):
                raise TraceError(path, f"the {fmt} format needs a column {' or '.join(names)}; "
                                 f"the header has {', '.join(self.columns)}", line=1)

    def number(self, line: int, row: dict[str, str], column: str, *, kind: type = float,
               minimum: float | None = None) -> Any:
        raw = (row.get(column) or "").strip()
        try:
            value = kind(float(raw)) if kind is int else kind(raw)
        except ValueError:
            raise TraceError(self.path, f"{raw!r} is not a number" if raw else "is empty",
                             line=line, column=column) from None
        if not math.isfinite(value) or (minimum is not None and value < minimum):
            raise TraceError(self.path, f"{raw!r} is out of range (at least {minimum})",
                             line=line, column=column)
        return value

    def timestamp(self, line: int, row: dict[str, str], column: str) -> datetime:
        raw = (row.get(column) or "").strip()
        try:
            stamp = datetime.fromisoformat(raw)
        except ValueError:
            raise TraceError(self.path, f"{raw!r} is not an ISO 8601 date and time "
                             "(2017-10-09 07:01:55)", line=line, column=column) from None
        return stamp.replace(tzinfo=None)


def _hour_of_year(t0: datetime) -> int:
    return (t0.timetuple().tm_yday - 1) * 24 + t0.hour


def read_philly(path: Path, limit: int | None = None) -> Trace:
    """A trace in the Philly format (timestamp, duration, num_gpus, cluster), by submit time."""
    table = _Rows(path, ("timestamp", "duration", "num_gpus", "cluster"), "philly")
    parsed = []
    for i, (line, r) in enumerate(table.rows):
        stamp = table.timestamp(line, r, "timestamp")
        duration = int(table.number(line, r, "duration"))
        devices = table.number(line, r, "num_gpus", kind=int)
        parsed.append((stamp, i, duration, devices, r["cluster"]))
    if not parsed:
        raise TraceError(path, "holds no jobs")
    parsed.sort(key=lambda x: (x[0], x[1]))
    t0 = parsed[0][0].replace(minute=0, second=0, microsecond=0)
    jobs, skipped = [], 0
    for stamp, i, duration, devices, vc in parsed:
        if duration <= 0 or devices <= 0:
            skipped += 1
            continue
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
    return Trace("philly", tuple(jobs), _hour_of_year(t0), skipped)


def load_philly(data_dir: Path, limit: int | None = None) -> Trace:
    """The Philly trace of the shared data, sorted by submit time (the first `limit` jobs)."""
    return read_philly(data_dir / "traces" / "philly.csv", limit)


# GPUs by model in openb_node_list_gpu_node.csv, for a pod list read without its node list.
ALIBABA_GPU_MIX = {"A10": 2, "G2": 4392, "G3": 312, "P100": 265, "T4": 842, "V100M16": 195,
                   "V100M32": 204}
ALIBABA_NODE_FILE = "openb_node_list_gpu_node.csv"
ALIBABA_TIMING = ("creation_time", "deletion_time", "scheduled_time")
SNAPSHOT_DURATION_S = 3600  # a pod of a snapshot (no timing columns) runs one hour from second 0


def _alibaba_device_mix(nodes: Path | None) -> list[tuple[str, float]]:
    counts: Counter[str] = Counter()
    if nodes is not None and nodes.is_file():
        table = _Rows(nodes, ("model", "gpu"), "alibaba node list")
        for line, r in table.rows:
            gpus = table.number(line, r, "gpu", kind=int, minimum=0)
            if r["model"] and gpus > 0:
                counts[r["model"]] += gpus
    if not counts:
        counts.update(ALIBABA_GPU_MIX)
    total = sum(counts.values())
    cumulative, out = 0.0, []
    for model in sorted(counts):
        cumulative += counts[model] / total
        out.append((model, cumulative))
    return out


def read_alibaba(path: Path, limit: int | None = None, *, nodes: Path | None = None,
                 snapshot_duration_s: int = SNAPSHOT_DURATION_S) -> Trace:
    """A pod list of Alibaba's cluster-trace-gpu-v2023, any variant, by creation time.

    The default list and the gpuspec lists carry creation, scheduled and deletion times; the
    sampled lists (cpu050, gpushare40, multigpu50, ...) carry only name, cpu_milli, memory_mib,
    num_gpu and gpu_milli. Those are a snapshot: every GPU pod arrives at second 0, in file
    order, and runs `snapshot_duration_s`. Missing qos is taken as LS, missing gpu_spec is drawn
    from the cluster's GPU mix (the node list beside the file, `nodes`, or ALIBABA_GPU_MIX).
    """
    table = _Rows(path, ("name", "num_gpu"), "alibaba")
    timed = all(c in table.columns for c in ALIBABA_TIMING[:2])
    mix = _alibaba_device_mix(nodes if nodes is not None else path.parent / ALIBABA_NODE_FILE)
    pods: list[tuple[int, str, int, dict[str, str], int, int | None]] = []
    for order, (line, r) in enumerate(table.rows):
        devices = table.number(line, r, "num_gpu", kind=int, minimum=0)
        if timed:
            created = table.number(line, r, "creation_time", kind=int, minimum=0)
            start_raw = (r.get("scheduled_time") or "").strip()
            end_raw = (r.get("deletion_time") or "").strip()
            if not start_raw or not end_raw:  # never scheduled, or never ended
                pods.append((created, r["name"], line, r, devices, None))
                continue
            start = table.number(line, r, "scheduled_time", kind=int, minimum=0)
            end = table.number(line, r, "deletion_time", kind=int, minimum=0)
            pods.append((created, r["name"], line, r, devices, end - start))
        else:
            pods.append((0, f"{order:09d}", line, r, devices, snapshot_duration_s))
    pods.sort(key=lambda p: (p[0], p[1]))
    jobs: list[TraceJob] = []
    skipped = 0
    for submit, _, line, r, devices, duration in pods:
        if devices <= 0 or duration is None or duration <= 0:
            skipped += 1
            continue
        name = r["name"]
        qos = (r.get("qos") or "LS").strip() or "LS"
        spec = (r.get("gpu_spec") or "").strip() \
            or next(m for m, c in mix if unit_hash("gpu:" + name) < c)
        batch = qos == "BE"
        city, province = _home(name)
        jobs.append(TraceJob(
            id=f"alibaba-{name}", tenant=qos, submit_s=submit, duration_s=duration,
            devices=devices, original=ALIBABA_DEVICE.get(spec.split("|")[0], "nvidia-t4"),
            workload_class="training" if batch else "inference",
            latency_class=LatencyClass.BATCH if batch else LatencyClass.INTERACTIVE,
            home_city=city, data_province=province, data_gb=50.0 if batch else 1.0,
            deadline_s=_deadline(submit, duration) if batch else None, spot_allowed=batch,
            portable=unit_hash("stack:" + name) < PORTABLE_SHARE,
        ))
        if limit is not None and len(jobs) >= limit:
            break
    return Trace("alibaba", tuple(jobs), 0, skipped, workload_class="inference",
                 snapshot=not timed)


def load_alibaba(data_dir: Path, limit: int | None = None) -> Trace:
    """The Alibaba GPU pods of the shared data, sorted by creation time."""
    folder = data_dir / "traces" / "alibaba-gpu-v2023"
    return read_alibaba(folder / "openb_pod_list_default.csv", limit,
                        nodes=folder / ALIBABA_NODE_FILE)


# The CSV format for anyone's own trace (docs/simulator.md, "Your own trace").
CSV_COLUMNS = ("id", "tenant", "submit_s", "submit_time", "duration_s", "devices", "device",
               "workload_class", "latency_class", "home_city", "data_province", "data_gb",
               "deadline_s", "spot", "portable")
CSV_DEFAULT_DEVICE = "nvidia-v100-sxm2-32gb"
_TRUE, _FALSE = frozenset({"1", "true", "yes", "y"}), frozenset({"0", "false", "no", "n"})
_PROVINCES = frozenset(p for _, p in HOME_CITIES)


def read_csv_trace(path: Path, limit: int | None = None, *,
                   devices_known: frozenset[str] | None = None) -> Trace:
    """A trace in suanli's own CSV format; see CSV_COLUMNS and docs/simulator.md.

    Required: submit_s (seconds from the trace's start) or submit_time (ISO 8601), duration_s
    (on the original device), devices. Everything else has the default the Philly loader uses.
    `devices_known` (catalog keys) checks the `device` column when given.
    """
    table = _Rows(path, (("submit_s", "submit_time"), "duration_s", "devices"), "csv")
    unknown = [c for c in table.columns if c not in CSV_COLUMNS]
    if unknown:
        raise TraceError(path, f"unknown column {unknown[0]!r}; the csv format has "
                         f"{', '.join(CSV_COLUMNS)}", line=1, column=unknown[0])
    stamped = "submit_s" not in table.columns
    rows = []
    for i, (line, r) in enumerate(table.rows):
        submit: float | datetime = table.timestamp(line, r, "submit_time") if stamped \
            else table.number(line, r, "submit_s", minimum=0)
        rows.append((submit, i, line, r))
    if not rows:
        raise TraceError(path, "holds no jobs")
    rows.sort(key=lambda x: (x[0], x[1]))
    t0 = rows[0][0].replace(minute=0, second=0, microsecond=0) \
        if isinstance(rows[0][0], datetime) else None
    cities = dict(HOME_CITIES)
    jobs, classes, seen = [], Counter[str](), set()
    for submit_raw, i, line, r in rows:
        def text(column: str, default: str = "", _r: dict[str, str] = r) -> str:
            return (_r.get(column) or "").strip() or default

        def flag(column: str, default: bool, _line: int = line) -> bool:
            raw = text(column).lower()
            if not raw:
                return default
            if raw not in _TRUE | _FALSE:
                raise TraceError(path, f"{raw!r} is not true or false", line=_line,
                                 column=column)
            return raw in _TRUE

        if isinstance(submit_raw, datetime):
            assert t0 is not None  # every row of a file has the same kind of submit time
            submit = int((submit_raw - t0).total_seconds())
        else:
            submit = int(submit_raw)
        duration = table.number(line, r, "duration_s", kind=int, minimum=1)
        devices = table.number(line, r, "devices", kind=int, minimum=1)
        job_id = text("id", f"row-{line}")
        if job_id in seen:
            raise TraceError(path, f"id {job_id!r} appears twice", line=line, column="id")
        seen.add(job_id)
        tenant = text("tenant", "default")
        device = text("device", CSV_DEFAULT_DEVICE)
        if devices_known is not None and device not in devices_known:
            raise TraceError(path, f"{device!r} is not an accelerator of the catalog "
                             "(`suanli catalog list`)", line=line, column="device")
        workload = text("workload_class", "training")
        if workload not in ("training", "inference"):
            raise TraceError(path, f"{workload!r} is not training or inference", line=line,
                             column="workload_class")
        short = devices == 1 and duration < INTERACTIVE_MAX_S
        latency = text("latency_class", "interactive" if short else "batch")
        try:
            latency_class = LatencyClass(latency)
        except ValueError:
            raise TraceError(path, f"{latency!r} is not realtime, interactive or batch",
                             line=line, column="latency_class") from None
        batch = latency_class is LatencyClass.BATCH
        home = text("home_city", _home(tenant)[0])
        if home not in cities:
            raise TraceError(path, f"{home!r} is not one of the home cities "
                             f"({', '.join(cities)})", line=line, column="home_city")
        province = text("data_province", cities[home])
        if province not in _PROVINCES:
            raise TraceError(path, f"{province!r} is not the province of a home city "
                             f"({', '.join(sorted(_PROVINCES))})", line=line,
                             column="data_province")
        data_gb = table.number(line, r, "data_gb", minimum=0) if text("data_gb") \
            else (_data_gb(tenant) if batch else 1.0)
        deadline = table.number(line, r, "deadline_s", kind=int, minimum=submit) \
            if text("deadline_s") else (_deadline(submit, duration) if batch else None)
        jobs.append(TraceJob(
            id=job_id, tenant=tenant, submit_s=submit, duration_s=duration, devices=devices,
            original=device, workload_class=workload, latency_class=latency_class,
            home_city=home, data_province=province, data_gb=float(data_gb),
            deadline_s=deadline,
            spot_allowed=flag("spot", batch and unit_hash("spot:" + job_id) < SPOT_SHARE),
            portable=flag("portable", unit_hash("stack:" + job_id) < PORTABLE_SHARE),
        ))
        classes[workload] += 1
        if limit is not None and len(jobs) >= limit:
            break
    return Trace(path.stem, tuple(jobs), 0 if t0 is None else _hour_of_year(t0), 0,
                 workload_class=classes.most_common(1)[0][0])


def sniff_format(path: Path) -> str:
    """The format a trace file's header says it is in: philly, alibaba or csv."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except OSError as exc:
        raise TraceError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if {"timestamp", "duration", "num_gpus"} <= set(header):
        return "philly"
    if {"name", "num_gpu"} <= set(header):
        return "alibaba"
    return "csv"


def read_trace(path: Path, fmt: str | None = None, limit: int | None = None, *,
               devices_known: frozenset[str] | None = None) -> Trace:
    """A trace file in `fmt` (one of FORMATS; sniffed from the header when None)."""
    fmt = fmt or sniff_format(path)
    if fmt == "philly":
        return read_philly(path, limit)
    if fmt == "alibaba":
        return read_alibaba(path, limit)
    if fmt == "csv":
        return read_csv_trace(path, limit, devices_known=devices_known)
    raise ValueError(f"unknown trace format {fmt!r}; one of {', '.join(FORMATS)}")


def load_trace(name: str, data_dir: Path, limit: int | None = None) -> Trace:
    """One of the shared data's traces by name (TRACES)."""
    if name == "philly":
        return load_philly(data_dir, limit)
    if name == "alibaba":
        return load_alibaba(data_dir, limit)
    raise ValueError(f"unknown trace {name!r}; one of {', '.join(TRACES)}")


def window(trace: Trace, first: int, count: int) -> Trace:
    """Jobs first .. first+count-1 of `trace` as a trace of their own, starting at the hour of
    its first submit (so energy series line up with the same days as in the whole trace)."""
    jobs = trace.jobs[first:first + count]
    if not jobs:
        raise ValueError(f"no jobs from {first} in a trace of {len(trace.jobs)}")
    shift_h = jobs[0].submit_s // 3600
    shift = shift_h * 3600
    moved = tuple(replace(j, submit_s=j.submit_s - shift,
                          deadline_s=None if j.deadline_s is None else j.deadline_s - shift)
                  for j in jobs)
    return Trace(trace.name, moved, trace.hour_of_year0 + shift_h, 0,
                 workload_class=trace.workload_class, snapshot=trace.snapshot)
