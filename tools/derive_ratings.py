"""Derives the SCU v1 effective ratings from the real throughput data in shared/data/accelerators.

Writes src/suanli/data/effective_ratings.json (see docs/compute-units.md for the method):

    .venv/bin/python tools/derive_ratings.py            # rewrite the JSON
    .venv/bin/python tools/derive_ratings.py --check    # exit 1 if the JSON is stale
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import math
import re
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from suanli.catalog import Accelerator, Catalog, load_catalog
from suanli.domain.units import (
    UNIT_VERSION,
    WORKLOAD_CLASSES,
    nominal_basis,
    nominal_units_per_device_hour,
    quantize_rate,
)
from suanli.shared_data import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
OUT_PATH = REPO / "src" / "suanli" / "data" / "effective_ratings.json"

REFERENCE = "nvidia-a100-sxm4-80gb"  # effective = nominal here, for every class
BRIDGE = "nvidia-v100-sxm2-16gb"  # the one device all three data sets measured

# Throughput table: device key -> model -> measurement point (batch size, row) -> per-device rate.
Table = dict[str, dict[str, dict[str, float]]]

LAMBDA_FILE = "accelerators/lambda-pytorch-train-throughput-fp16.csv"
LAMBDA_DEVICES = {
    "Quadro RTX 8000": "nvidia-quadro-rtx-8000",
    "LambdaCloud V100 16GB": BRIDGE,
    "RTX 3090": "nvidia-rtx-3090",
    "LambdaCloud A10": "nvidia-a10",
    "LambdaCloud A100 40GB PCIe": "nvidia-a100-pcie-40gb",
    "A100 80GB PCIe": "nvidia-a100-pcie-80gb",
    "A100 80GB SXM4": "nvidia-a100-sxm4-80gb",
    "RTX 6000 Ada": "nvidia-rtx-6000-ada",
    "RTX A6000": "nvidia-rtx-a6000",
    "RTX 4090": "nvidia-rtx-4090",
    "H100 80GB PCIe Gen5": "nvidia-h100-pcie",
    "LambdaCloud H100 80GB PCIe Gen5": "nvidia-h100-pcie",
    "H100 80GB SXM5": "nvidia-h100-sxm",
    "Dell H100 80GB SXM5": "nvidia-h100-sxm",
    "SMC H100 80GB SXM5": "nvidia-h100-sxm",
    "1CC H100 80GB SXM5": "nvidia-h100-sxm",
}
LAMBDA_NON_MODEL_COLUMNS = {"name_gpu", "num_gpu", "watt", "price"}

SIA_DIR = "accelerators/sia-placements"
SIA_MODELS = ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")
SIA_CLUSTERS = {
    "aws": "nvidia-t4",
    "azure": BRIDGE,
    "dgx": "nvidia-a100-sxm4-40gb",
    "quad": "nvidia-quadro-rtx-6000",
    "rtx": "nvidia-rtx-2080-ti",
}

GAVEL_FILE = "accelerators/gavel-simulation-throughputs.json"
GAVEL_DEVICES = {"k80": "nvidia-k80", "p100": "nvidia-p100-pcie-16gb", "v100": BRIDGE}
_BATCH_RE = re.compile(r"^(?P<model>.+?) \(batch size (?P<batch>\d+)\)$")

# Measurements that contradict a better source for the same chips, so they would rate the
# device by its benchmark's bottleneck: Sia's six small jobs run the A100 only 1.4x as fast as
# the V100 where Lambda's mixed-precision runs see 2.6x (tests/unit/test_units.py checks this).
EXCLUDED = {
    "sia": {"nvidia-a100-sxm4-40gb": "input-bound on A100: contradicts Lambda's A100/V100 ratio"}
}

# Gavel's "k80" is one GK210 as a cloud exposes it; the catalog's K80 is the two-GPU board.
DEVICES_PER_MEASURED_UNIT = {"nvidia-k80": 2}

# Same die and clocks, differing only in memory size or in links a single-device benchmark
# does not use: they take the measured rating of the device that was benchmarked.
SAME_SILICON = {
    "nvidia-a800-sxm4-80gb": "nvidia-a100-sxm4-80gb",  # NVLink cut to 400 GB/s
    "nvidia-h800-sxm": "nvidia-h100-sxm",  # NVLink cut to 400 GB/s, FP64 cut (hpc stays apart)
    "nvidia-v100-sxm2-32gb": "nvidia-v100-sxm2-16gb",  # 32 GB of HBM2 instead of 16 GB
}

SOURCES: dict[str, dict[str, str]] = {
    "lambda": {
        "file": LAMBDA_FILE,
        "what": "PyTorch mixed-precision (FP16) training throughput of 10 models; 1-GPU rows",
        "origin": "lambdal/deeplearning-benchmark, pytorch/ (Lambda GPU benchmarks)",
        "anchor": REFERENCE,
    },
    "sia": {
        "file": SIA_DIR + "/<model>-<cluster>.csv",
        "what": "single-GPU step time by local batch size for 6 models; aws = T4, azure = V100, "
        "dgx = A100 40GB, quad = Quadro RTX 6000, rtx = RTX 2080 Ti",
        "origin": "siasosp23/artifacts, sia-simulator/traces (Sia, SOSP'23)",
        "anchor": BRIDGE,
    },
    "gavel": {
        "file": GAVEL_FILE,
        "what": "steps/s of 26 model configurations running alone on one K80, P100, V100",
        "origin": "stanford-futuredata/gavel (MIT licence)",
        "anchor": BRIDGE,
    },
}
SOURCE_ORDER = ("lambda", "sia", "gavel")  # a device is rated from the first source measuring it
TRIM_FROM_MODELS = 5  # with this many models or more, drop the single best and worst ratio


def geomean(values: list[float]) -> float:
    return math.exp(math.fsum(math.log(v) for v in values) / len(values))


def load_lambda(data: Path) -> Table:
    rows = list(csv.DictReader((data / LAMBDA_FILE).open(encoding="utf-8")))
    models = [c for c in rows[0] if c not in LAMBDA_NON_MODEL_COLUMNS]
    per_device: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        key = LAMBDA_DEVICES.get(row["name_gpu"])
        if key is None or float(row["num_gpu"]) != 1:
            continue  # multi-GPU rows mix in scaling efficiency; per-device rate is 1-GPU only
        for model in models:
            value = float(row[model])
            if value > 0:  # 0 marks a model that vendor's run did not cover
                per_device[key][model].append(value)
    # several vendors' boxes of one model (Dell, SMC, ...) pool into one rate per model
    return {k: {m: {"1gpu": geomean(v)} for m, v in ms.items()} for k, ms in per_device.items()}


def load_sia(data: Path) -> Table:
    table: Table = defaultdict(dict)
    for model in SIA_MODELS:
        for cluster, key in SIA_CLUSTERS.items():
            path = data / SIA_DIR / f"{model}-{cluster}.csv"
            points: dict[str, list[float]] = defaultdict(list)
            for row in csv.DictReader(path.open(encoding="utf-8")):
                if row["placement"] == "1":  # one GPU on one node
                    batch = int(row["local_bsz"])
                    points[str(batch)].append(batch / float(row["step_time"]))
            table[key][model] = {b: geomean(v) for b, v in points.items()}
    return dict(table)


def load_gavel(data: Path) -> Table:
    doc = json.loads((data / GAVEL_FILE).read_text(encoding="utf-8"))
    table: Table = {}
    for device, key in GAVEL_DEVICES.items():
        models: dict[str, dict[str, float]] = defaultdict(dict)
        for job, entry in doc[device].items():
            config, scale_factor = ast.literal_eval(job)
            rate = entry["null"]  # "null" = the job running alone on the device
            if scale_factor != 1 or not rate:
                continue
            match = _BATCH_RE.match(config)
            model, batch = (match["model"], match["batch"]) if match else (config, "-")
            models[model][batch] = rate
        table[key] = dict(models)
    return table


def ratio_to_anchor(table: Table, device: str, anchor: str) -> tuple[float, int, int]:
    """Trimmed geometric mean over models of device/anchor throughput: (ratio, models, pairs).

    Per model, the geometric mean over the measurement points both devices share.
    """
    per_model: list[tuple[float, int]] = []
    for model, points in table[device].items():
        anchor_points = table[anchor].get(model, {})
        pairs = [points[p] / anchor_points[p] for p in points if p in anchor_points]
        if pairs:
            per_model.append((geomean(pairs), len(pairs)))
    if not per_model:
        raise ValueError(f"{device} shares no measured model with {anchor}")
    per_model.sort()
    # one model limited by something else than the device (the input pipeline of NCF on
    # Sia's V100 cluster, say) must not set the rating
    kept = per_model[1:-1] if len(per_model) >= TRIM_FROM_MODELS else per_model
    return geomean([r for r, _ in kept]), len(kept), sum(n for _, n in kept)


def measured_ratios(data: Path) -> dict[str, tuple[float, str, int]]:
    """Ratio to the reference of every measured device: (ratio, source, pairs)."""
    tables = {"lambda": load_lambda(data), "sia": load_sia(data), "gavel": load_gavel(data)}
    ratios: dict[str, tuple[float, str, int]] = {}
    for source in SOURCE_ORDER:
        table, anchor = tables[source], SOURCES[source]["anchor"]
        anchor_ratio = ratios[anchor][0] if anchor != REFERENCE else 1.0
        if anchor == REFERENCE:
            pairs = sum(len(points) for points in table[REFERENCE].values())
            ratios[REFERENCE] = (1.0, source, pairs)
        for device in table:
            if device == anchor or device in ratios or device in EXCLUDED.get(source, {}):
                continue
            ratio, _, pairs = ratio_to_anchor(table, device, anchor)
            ratio *= anchor_ratio * DEVICES_PER_MEASURED_UNIT.get(device, 1)
            ratios[device] = (ratio, source, pairs)
    return ratios


def fit_exponent(
    ratios: dict[str, tuple[float, str, int]], nominal: dict[str, Decimal]
) -> tuple[Decimal, list[str]]:
    """Least-squares slope, through the reference, of log(achieved) on log(peak) ratios.

    Fitted on the devices the mixed-precision source measured, the regime nominal ratings
    describe; a slope below 1 says delivered throughput grows slower than datasheet peaks.
    """
    reference_nominal = float(nominal[REFERENCE])
    fitted_on = sorted(k for k, (_, source, _) in ratios.items() if source == "lambda")
    xs = [math.log(float(nominal[k]) / reference_nominal) for k in fitted_on]
    ys = [math.log(ratios[k][0]) for k in fitted_on]
    slope = math.fsum(x * y for x, y in zip(xs, ys)) / math.fsum(x * x for x in xs)
    return quantize_rate(Decimal(f"{slope:.6f}")), fitted_on


def fallback_anchor(acc: Accelerator, catalog: Catalog, measured: dict[str, Any]) -> str:
    """The measured device an unmeasured one is scaled from: its nearest sibling by nominal
    rate (same vendor and architecture), else the reference."""
    nominal = nominal_units_per_device_hour(acc)
    siblings = [
        other
        for other in (catalog.get(k) for k in measured if k not in SAME_SILICON)
        if (other.vendor, other.architecture) == (acc.vendor, acc.architecture)
    ]
    if not siblings:
        return REFERENCE
    nearest = min(
        siblings,
        key=lambda o: (
            abs(math.log(nominal / nominal_units_per_device_hour(o))),
            o.key != REFERENCE,
            o.key,
        ),
    )
    return nearest.key


def fallback_units(
    nominal: Decimal, anchor_nominal: Decimal, anchor_units: Decimal, exponent: Decimal
) -> Decimal:
    """anchor_units * (nominal / anchor_nominal) ** exponent, quantised."""
    scale = math.exp(float(exponent) * math.log(float(nominal / anchor_nominal)))
    return quantize_rate(anchor_units * Decimal(f"{scale:.6f}"))


def _rating(
    units: Decimal, derived_from: str, source: str, measurements: int = 0
) -> dict[str, Any]:
    return {
        "units_per_device_hour": str(units),
        "derived_from": derived_from,
        "source": source,
        "measurements": measurements,
        "measured_on": None,
    }


def _fallback_rating(
    acc: Accelerator,
    catalog: Catalog,
    training: dict[str, dict[str, Any]],
    nominal: dict[str, Decimal],
    exponent: Decimal,
    basis: str,
) -> dict[str, Any]:
    sheet = f"datasheet:{basis}"
    if basis not in ("fp16/bf16", "int8/2"):
        # CPUs and FP32-only parts lie far outside the range the exponent was fitted on
        return _rating(nominal[acc.key], "datasheet", sheet)
    anchor = fallback_anchor(acc, catalog, training)
    units = fallback_units(
        nominal[acc.key],
        nominal[anchor],
        Decimal(training[anchor]["units_per_device_hour"]),
        exponent,
    )
    return {**_rating(units, "datasheet", sheet), "anchor": anchor}


def build_document(data: Path, catalog: Catalog) -> dict[str, Any]:
    """The ratings document for `catalog`, derived from the data under `data`."""
    reference = catalog.get(REFERENCE)
    reference_units = nominal_units_per_device_hour(reference)
    ratios = measured_ratios(data)
    rated = [acc for acc in catalog if nominal_basis(acc) is not None]
    nominal = {acc.key: nominal_units_per_device_hour(acc) for acc in rated}

    training: dict[str, dict[str, Any]] = {}
    for key, (ratio, source, pairs) in ratios.items():
        units = quantize_rate(reference_units * Decimal(f"{ratio:.6f}"))
        training[key] = _rating(units, "measured", source, pairs)
    for key, proxy in SAME_SILICON.items():
        training[key] = {**training[proxy], "measured_on": proxy}

    exponent, fitted_on = fit_exponent(ratios, nominal)
    devices: dict[str, Any] = {}
    for acc in rated:
        basis, _ = nominal_basis(acc)  # type: ignore[misc]
        sheet = f"datasheet:{basis}"
        train = training.get(acc.key) or _fallback_rating(
            acc, catalog, training, nominal, exponent, basis
        )
        ratings = {
            "general": train,  # SCU v1: every measurement is training, so general = training
            "training": train,
            "inference": _rating(nominal[acc.key], "datasheet", sheet),
        }
        if acc.fp64_tflops is not None and reference.fp64_tflops is not None:
            fp64_ratio = Decimal(str(acc.fp64_tflops)) / Decimal(str(reference.fp64_tflops))
            hpc = quantize_rate(reference_units * fp64_ratio)
            ratings["hpc"] = _rating(hpc, "datasheet", "datasheet:fp64")
        ratio = ratios.get(SAME_SILICON.get(acc.key, acc.key))
        devices[acc.key] = {
            "nominal_units_per_device_hour": str(nominal[acc.key]),
            "nominal_basis": basis,
            "measured_ratio_to_reference": None if ratio is None else f"{ratio[0]:.6f}",
            "ratings": {c: ratings[c] for c in WORKLOAD_CLASSES if c in ratings},
        }
    return {
        "unit_version": UNIT_VERSION,
        "generated_by": "tools/derive_ratings.py",
        "reference_device": REFERENCE,
        "bridge_device": BRIDGE,
        "method": "docs/compute-units.md",
        "datasheet_fallback": {
            "training": {
                "rule": "anchor_units * (nominal / anchor_nominal) ** exponent, the anchor being "
                "the measured device of the same vendor and architecture nearest in nominal rate "
                "(else the reference), for devices rated by a 16-bit or INT8 figure; "
                "nominal otherwise",
                "exponent": str(exponent),
                "fitted_on": fitted_on,
            },
            "inference": "nominal (no inference measurements in SCU v1)",
            "hpc": f"reference_units * fp64 / fp64 of {REFERENCE}",
        },
        "excluded_measurements": EXCLUDED,
        "sources": SOURCES,
        "same_silicon": SAME_SILICON,
        "devices": devices,
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="shared/data directory")
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if --out is out of date")
    args = parser.parse_args(argv)
    text = render(build_document(args.data or shared_data_dir(), load_catalog()))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run tools/derive_ratings.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
