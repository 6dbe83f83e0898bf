"""Trace loaders: the documented CSV format, the Alibaba variants, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.catalog import load_catalog
from suanli.domain.placement.model import LatencyClass
from suanli.sim.traces import (
    DEADLINE_MIN_S,
    SNAPSHOT_DURATION_S,
    TraceError,
    read_alibaba,
    read_csv_trace,
    read_philly,
    read_trace,
    sniff_format,
    window,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "sim_own_trace.csv"
HEADER = "id,submit_s,duration_s,devices"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_of_the_docs_loads_with_its_values_and_defaults():
    trace = read_csv_trace(EXAMPLE, devices_known=frozenset(load_catalog().keys()))
    assert sniff_format(EXAMPLE) == "csv"
    assert trace.name == "sim_own_trace" and len(trace.jobs) == 6 and trace.skipped == 0
    jobs = {j.id: j for j in trace.jobs}
    pretrain = jobs["pretrain-1"]
    assert (pretrain.devices, pretrain.duration_s, pretrain.original) == \
        (8, 28800, "nvidia-a100-sxm4-80gb")
    assert pretrain.deadline_s == 86400 and not pretrain.spot_allowed and not pretrain.portable
    assert pretrain.latency_class is LatencyClass.BATCH and pretrain.data_gb == 500.0
    finetune = jobs["finetune-1"]
    assert finetune.data_province == "CN-BJ"  # the home city's province by default
    assert finetune.deadline_s == 600 + DEADLINE_MIN_S  # the Philly rule by default
    assert finetune.spot_allowed and finetune.portable
    debug = jobs["debug-1"]  # one device, five minutes: interactive, as in Philly
    assert debug.latency_class is LatencyClass.INTERACTIVE and debug.deadline_s is None
    assert debug.original == "nvidia-v100-sxm2-32gb" and debug.tenant == "lab-b"
    assert jobs["serve-2"].latency_class is LatencyClass.REALTIME
    assert trace.workload_class == "training"  # the most common class of its jobs
    assert [j.submit_s for j in trace.jobs] == sorted(j.submit_s for j in trace.jobs)


def test_iso_submit_times_start_the_trace_at_their_first_hour(tmp_path):
    path = write(tmp_path, "submit_time,duration_s,devices\n"
                           "2023-03-01 10:20:00,600,1\n2023-03-01 09:30:00,600,2\n")
    trace = read_trace(path, "csv")
    assert [j.submit_s for j in trace.jobs] == [1800, 4800]
    assert trace.hour_of_year0 == (31 + 28) * 24 + 9


@pytest.mark.parametrize(("text", "line", "column", "words"), [
    (f"{HEADER}\na,0,60,1\nb,10,sixty,1\n", 3, "duration_s", "'sixty' is not a number"),
    (f"{HEADER}\na,0,60,0\n", 2, "devices", "out of range"),
    (f"{HEADER}\na,-5,60,1\n", 2, "submit_s", "out of range"),
    (f"{HEADER},home_city\na,0,60,1,Lhasa\n", 2, "home_city", "not one of the home cities"),
    (f"{HEADER},latency_class\na,0,60,1,urgent\n", 2, "latency_class", "realtime"),
    (f"{HEADER},spot\na,0,60,1,maybe\n", 2, "spot", "not true or false"),
    (f"{HEADER},device\na,0,60,1,nvidia-zz9\n", 2, "device", "catalog"),
    (f"{HEADER}\na,0,60,1\na,5,60,1\n", 3, "id", "appears twice"),
    (f"{HEADER},colour\na,0,60,1,red\n", 1, "colour", "unknown column"),
])
def test_bad_rows_are_refused_naming_file_line_and_column(tmp_path, text, line, column, words):
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as caught:
        read_csv_trace(path, devices_known=frozenset(load_catalog().keys()))
    message = str(caught.value)
    assert str(path) in message and f"line {line}" in message and f"column {column!r}" in message
    assert words in message
    assert (caught.value.line, caught.value.column) == (line, column)


def test_missing_columns_and_ragged_rows_are_named(tmp_path):
    with pytest.raises(TraceError, match=r"line 1: the csv format needs a column duration_s"):
        read_csv_trace(write(tmp_path, "submit_s,devices\n0,1\n"))
    with pytest.raises(TraceError, match=r"line 3: 5 fields, the header has 4"):
        read_csv_trace(write(tmp_path, f"{HEADER}\na,0,60,1\nb,0,60,1,9\n"))
    with pytest.raises(TraceError, match=r"line 2, column 'timestamp': 'yesterday'"):
        read_philly(write(tmp_path, "timestamp,duration,num_gpus,cluster\nyesterday,5,1,vc\n"))
    with pytest.raises(TraceError, match="cannot be read"):
        read_trace(tmp_path / "absent.csv", "csv")


ALIBABA_TIMED = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
    "deletion_time,scheduled_time\n"
    "openb-pod-0001,6000,12288,1,460,,LS,Running,100,5000,100\n"
    "openb-pod-0002,6000,12288,2,1000,V100M16|V100M32,BE,Running,50,900,60\n"
    "openb-pod-0003,6000,12288,1,1000,,BE,Pending,70,80,\n"
    "openb-pod-0004,6000,12288,0,0,,LS,Running,10,90,10\n"
)
ALIBABA_SNAPSHOT = (  # the sampled variants (multigpu50, gpushare40, cpu050, ...)
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
    "openb-pod-0000,12000,16384,1,1000\n"
    "openb-pod-0005,20000,65536,0,0\n"
    "openb-pod-0017,88000,327680,8,1000\n"
)


def test_alibaba_variants_with_and_without_timing(tmp_path):
    timed = read_alibaba(write(tmp_path, ALIBABA_TIMED, "openb_pod_list_gpuspec33.csv"))
    assert [j.id for j in timed.jobs] == ["alibaba-openb-pod-0002", "alibaba-openb-pod-0001"]
    assert timed.skipped == 2 and not timed.snapshot
    assert timed.jobs[0].original == "nvidia-v100-sxm2-16gb" and timed.jobs[0].spot_allowed
    assert timed.jobs[0].duration_s == 840
    snapshot = read_trace(write(tmp_path, ALIBABA_SNAPSHOT, "openb_pod_list_multigpu50.csv"))
    assert snapshot.snapshot and snapshot.skipped == 1
    assert [(j.submit_s, j.devices, j.duration_s) for j in snapshot.jobs] == \
        [(0, 1, SNAPSHOT_DURATION_S), (0, 8, SNAPSHOT_DURATION_S)]
    assert {j.tenant for j in snapshot.jobs} == {"LS"}
    assert all(j.latency_class is LatencyClass.INTERACTIVE for j in snapshot.jobs)


def test_alibaba_errors_name_the_line(tmp_path):
    bad = ALIBABA_SNAPSHOT.replace("88000,327680,8", "88000,327680,eight")
    with pytest.raises(TraceError, match=r"line 4, column 'num_gpu': 'eight' is not a number"):
        read_alibaba(write(tmp_path, bad))


def test_window_rebases_a_slice_on_its_first_hour():
    trace = read_csv_trace(EXAMPLE)
    part = window(trace, 5, 10)
    assert len(part.jobs) == 1 and part.jobs[0].submit_s == 0
    assert part.hour_of_year0 == trace.hour_of_year0 + 1
    assert part.jobs[0].deadline_s == trace.jobs[5].deadline_s - 3600
