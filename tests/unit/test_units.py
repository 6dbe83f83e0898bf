"""The standard compute unit: nominal rates, conversions, and effective ratings against the data."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import math
import re
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanli.catalog import load_catalog, load_ratings, units_per_device_hour
from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.units import (
    HOURS_QUANTUM,
    UNIT_QUANTUM,
    UNIT_VERSION,
    WORKLOAD_CLASSES,
    Rating,
    device_hours_to_units,
    effective_units_per_device_hour,
    is_rated,
    nominal_basis,
    nominal_units_per_device_hour,
    ratings_from_document,
    units_to_device_hours,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "nvidia-a100-sxm4-80gb"
V100 = "nvidia-v100-sxm2-16gb"
rates = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100), places=4)
hours = st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=6)


def _acc(**figures: float | None):  # type: ignore[no-untyped-def]
    blank = {f: None for f in ("fp64_tflops", "fp32_tflops", "bf16_tflops", "fp16_tflops",
                               "int8_tops")}
    return replace(load_catalog().get("nvidia-t4"), key="test-device", **{**blank, **figures})


# --- nominal rates ------------------------------------------------------------------------

def test_the_unit_is_versioned_and_names_its_classes() -> None:
    assert UNIT_VERSION == "SCU v1"
    assert WORKLOAD_CLASSES == ("general", "training", "inference", "hpc")


@pytest.mark.parametrize(("key", "units", "basis"), [
    ("nvidia-a100-sxm4-80gb", "3.1200", "fp16/bf16"),
    ("nvidia-v100-sxm2-32gb", "1.2500", "fp16/bf16"),
    ("nvidia-h100-sxm", "9.8950", "fp16/bf16"),
    ("cambricon-mlu290-m5", "2.5600", "int8/2"),  # INT8-only NPU: half its 512 TOPS
    ("nvidia-k80", "0.0873", "fp32"),
    ("intel-xeon-platinum-8480plus", "0.0717", "fp32"),
])
def test_nominal_rate_is_the_datasheet_figure_over_100_tflops(key: str, units: str,
                                                             basis: str) -> None:
    acc = load_catalog().get(key)
    assert nominal_units_per_device_hour(acc) == Decimal(units)
    assert nominal_basis(acc)[0] == basis  # type: ignore[index]


def test_nominal_basis_falls_back_fp16_then_int8_then_fp32_then_fp64() -> None:
    assert nominal_basis(_acc(fp16_tflops=50, bf16_tflops=60, int8_tops=999)) == (
        "fp16/bf16", Decimal(60))
    assert nominal_basis(_acc(int8_tops=300, fp32_tflops=99)) == ("int8/2", Decimal(150))
    assert nominal_basis(_acc(fp32_tflops=7, fp64_tflops=3.5)) == ("fp32", Decimal(7))
    assert nominal_basis(_acc(fp64_tflops=3.5)) == ("fp64", Decimal("3.5"))
    assert nominal_basis(_acc()) is None


def test_a_device_without_any_throughput_figure_is_not_rated() -> None:
    mlu590 = load_catalog().get("cambricon-mlu590")
    assert not is_rated(mlu590)
    with pytest.raises(ValidationFailed) as caught:
        nominal_units_per_device_hour(mlu590)
    assert caught.value.field == "accelerator"


# --- conversions --------------------------------------------------------------------------

@given(hours, rates)
def test_device_hours_round_trip_through_units(device_hours: Decimal, rate: Decimal) -> None:
    units = device_hours_to_units(device_hours, rate)
    back = units_to_device_hours(units, rate)
    # each leg rounds once: half a unit quantum, seen through the rate, plus half an hour one
    assert abs(back - device_hours) <= HOURS_QUANTUM + UNIT_QUANTUM / rate


@given(st.decimals(min_value=Decimal(0), max_value=Decimal(10**4), places=6), rates)
def test_units_round_trip_through_device_hours(units: Decimal, rate: Decimal) -> None:
    back = device_hours_to_units(units_to_device_hours(units, rate), rate)
    assert abs(back - units) <= UNIT_QUANTUM + HOURS_QUANTUM * rate


@given(hours, hours, rates)
def test_units_grow_with_device_hours(a: Decimal, b: Decimal, rate: Decimal) -> None:
    low, high = sorted((a, b))
    assert device_hours_to_units(low, rate) <= device_hours_to_units(high, rate)


def test_conversions_are_quantised() -> None:
    assert device_hours_to_units(Decimal("1.5"), Decimal("3.1200")) == Decimal("4.680000")
    assert device_hours_to_units(1, Decimal("0.0001")).as_tuple().exponent == -6
    assert units_to_device_hours(Decimal(1), Decimal(3)) == Decimal("0.333333")


@pytest.mark.parametrize("bad", [1.5, Decimal(-1), Decimal("NaN"), True])
def test_conversions_refuse_floats_negatives_and_nan(bad: object) -> None:
    with pytest.raises(ValidationFailed):
        device_hours_to_units(bad, Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        units_to_device_hours(bad, Decimal(1))  # type: ignore[arg-type]


def test_a_zero_rate_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        units_to_device_hours(Decimal(1), Decimal(0))


# --- the ratings table --------------------------------------------------------------------

def test_the_reference_device_earns_its_nominal_rate_in_every_class() -> None:
    nominal = nominal_units_per_device_hour(load_catalog().get(REFERENCE))
    ratings = load_ratings()
    assert ratings.reference_key == REFERENCE
    for workload_class in WORKLOAD_CLASSES:
        assert effective_units_per_device_hour(REFERENCE, workload_class, ratings) == nominal


def test_every_rated_device_has_general_training_and_inference_and_fp64_ones_hpc() -> None:
    ratings = load_ratings()
    for acc in load_catalog():
        if not is_rated(acc):
            assert acc.key not in ratings.ratings
            continue
        classes = set(ratings.ratings[acc.key])
        expected = {"general", "training", "inference"} | ({"hpc"} if acc.fp64_tflops else set())
        assert classes == expected, acc.key


def test_measured_ratings_say_how_many_measurements_back_them() -> None:
    table = load_ratings().ratings
    assert table["nvidia-h100-sxm"]["training"].derived_from == "measured"
    assert table["nvidia-h100-sxm"]["training"].source == "lambda"
    assert table["nvidia-t4"]["training"].source == "sia"
    assert table["nvidia-k80"]["training"].source == "gavel"
    assert table["huawei-ascend-910b"]["training"].derived_from == "datasheet"
    assert table["nvidia-a800-sxm4-80gb"]["training"].measured_on == REFERENCE
    assert all(r.measurements > 0 for r in (table[k]["training"] for k in table)
               if r.derived_from == "measured")


def test_unknown_device_or_class_is_refused() -> None:
    ratings = load_ratings()
    with pytest.raises(NotFound):
        effective_units_per_device_hour("cambricon-mlu590", "general", ratings)
    with pytest.raises(NotFound) as caught:
        effective_units_per_device_hour("nvidia-t4", "hpc", ratings)
    assert caught.value.field == "workload_class"
    with pytest.raises(ValidationFailed):
        effective_units_per_device_hour("nvidia-t4", "gaming", ratings)


def test_units_per_device_hour_takes_aliases_and_defaults_to_general() -> None:
    assert units_per_device_hour("nvidia-a100") == units_per_device_hour(REFERENCE, "general")


def test_ratings_for_another_unit_version_are_refused() -> None:
    doc = json.loads((REPO / "src/suanli/data/effective_ratings.json").read_text())
    with pytest.raises(ValidationFailed):
        ratings_from_document({**doc, "unit_version": "SCU v0"})


def test_a_measured_rating_without_measurements_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        Rating(Decimal(1), "measured", "lambda", 0)


# --- the ratings against the data they come from ------------------------------------------

def _trimmed_geomean(values: list[float]) -> float:
    kept = sorted(values)[1:-1] if len(values) >= 5 else values
    return math.exp(sum(math.log(v) for v in kept) / len(kept))


def _training(key: str) -> float:
    return float(load_ratings().ratings[key]["training"].units_per_device_hour)


def _lambda_ratio(data: Path, names: list[str], ref_names: list[str]) -> float:
    path = data / "accelerators/lambda-pytorch-train-throughput-fp16.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["num_gpu"] == "1.0"]
    models = [c for c in rows[0] if c not in {"name_gpu", "num_gpu", "watt", "price"}]

    def rate(group: list[str], model: str) -> float:
        values = [float(r[model]) for r in rows if r["name_gpu"] in group and float(r[model]) > 0]
        return math.exp(sum(map(math.log, values)) / len(values))

    return _trimmed_geomean([rate(names, m) / rate(ref_names, m) for m in models])


def _sia_ratio(data: Path, cluster: str) -> float:
    def step_times(model: str, c: str) -> dict[str, float]:
        path = data / f"accelerators/sia-placements/{model}-{c}.csv"
        return {r["local_bsz"]: float(r["step_time"]) for r in csv.DictReader(path.open())
                if r["placement"] == "1"}

    per_model = []
    for model in ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3"):
        mine, v100 = step_times(model, cluster), step_times(model, "azure")
        ratios = [v100[b] / mine[b] for b in mine if b in v100]  # same batch: rate ~ 1/step
        per_model.append(math.exp(sum(map(math.log, ratios)) / len(ratios)))
    return _trimmed_geomean(per_model)


def _gavel_ratio(data: Path, device: str) -> float:
    doc = json.loads((data / "accelerators/gavel-simulation-throughputs.json").read_text())
    families: dict[str, list[float]] = defaultdict(list)
    for job, entry in doc[device].items():
        config, scale = ast.literal_eval(job)
        if scale == 1 and entry["null"]:
            family = re.sub(r" \(batch size \d+\)$", "", config)
            families[family].append(entry["null"] / doc["v100"][job]["null"])
    return _trimmed_geomean([math.exp(sum(map(math.log, v)) / len(v)) for v in families.values()])


def test_h100_over_a100_matches_lambda(shared_data: Path) -> None:
    measured = _lambda_ratio(shared_data, ["H100 80GB SXM5", "Dell H100 80GB SXM5",
                                           "SMC H100 80GB SXM5", "1CC H100 80GB SXM5"],
                             ["A100 80GB SXM4"])
    assert 1.5 < measured < 2.2  # a sanity bound on the data itself
    assert _training("nvidia-h100-sxm") / _training(REFERENCE) == pytest.approx(measured, rel=1e-3)


def test_v100_over_a100_matches_lambda(shared_data: Path) -> None:
    measured = _lambda_ratio(shared_data, ["LambdaCloud V100 16GB"], ["A100 80GB SXM4"])
    assert _training(V100) / _training(REFERENCE) == pytest.approx(measured, rel=1e-3)


def test_k80_board_over_v100_matches_gavel(shared_data: Path) -> None:
    per_gk210 = _gavel_ratio(shared_data, "k80")
    assert 0.1 < per_gk210 < 0.4
    # the catalog's K80 is the board, two of the GPUs Gavel measured one of
    assert _training("nvidia-k80") / _training(V100) == pytest.approx(2 * per_gk210, rel=1e-3)
    assert _training("nvidia-p100-pcie-16gb") / _training(V100) == pytest.approx(
        _gavel_ratio(shared_data, "p100"), rel=1e-3)


def test_t4_and_rtx_2080_ti_over_v100_match_sia(shared_data: Path) -> None:
    assert _training("nvidia-t4") / _training(V100) == pytest.approx(
        _sia_ratio(shared_data, "aws"), rel=1e-3)
    assert _training("nvidia-rtx-2080-ti") / _training(V100) == pytest.approx(
        _sia_ratio(shared_data, "rtx"), rel=1e-3)


def test_sias_a100_measurement_is_excluded_because_it_contradicts_lambda(shared_data: Path) -> None:
    sia = _sia_ratio(shared_data, "dgx")
    lambda_ = 1 / _lambda_ratio(shared_data, ["LambdaCloud V100 16GB"], ["A100 80GB SXM4"])
    assert sia < 0.6 * lambda_  # Sia's small jobs barely load an A100
    rating = load_ratings().ratings["nvidia-a100-sxm4-40gb"]["training"]
    assert rating.derived_from == "datasheet"


def test_the_same_chip_rated_from_two_data_sets_agrees(shared_data: Path) -> None:
    # Quadro RTX 6000 (Sia, chained through the V100) and 8000 (Lambda) are both TU102
    assert _training("nvidia-quadro-rtx-6000") == pytest.approx(
        _training("nvidia-quadro-rtx-8000"), rel=0.1)


def _derive_module() -> ModuleType:
    path = REPO / "tools" / "derive_ratings.py"
    spec = importlib.util.spec_from_file_location("derive_ratings", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_ratings_are_what_the_derivation_produces(shared_data: Path) -> None:
    derive = _derive_module()
    expected = derive.render(derive.build_document(shared_data, load_catalog()))
    shipped = (REPO / "src/suanli/data/effective_ratings.json").read_text(encoding="utf-8")
    assert shipped == expected, "stale: run .venv/bin/python tools/derive_ratings.py"


def test_the_shipped_ratings_credit_their_data_sources() -> None:
    doc = json.loads((REPO / "src/suanli/data/effective_ratings.json").read_text())
    origins = " ".join(s["origin"] for s in doc["sources"].values())
    for project in ("lambdal/deeplearning-benchmark", "siasosp23/artifacts",
                    "stanford-futuredata/gavel"):
        assert project in origins
