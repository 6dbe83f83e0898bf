"""The accelerator catalog: the shipped data, its validation and its queries."""

from __future__ import annotations

import csv
import importlib.resources
import io

import pytest

from suanli.catalog import (
    ALIASES,
    COLUMNS,
    FIGURES,
    Accelerator,
    Catalog,
    load_catalog,
    parse_catalog_csv,
)
from suanli.domain.errors import NotFound, ValidationFailed

REQUIRED_KEYS = {
    "nvidia-h100-sxm", "nvidia-h100-pcie", "nvidia-h800-sxm", "nvidia-h20",
    "nvidia-a100-sxm4-40gb", "nvidia-a100-sxm4-80gb", "nvidia-a800-sxm4-80gb", "nvidia-l40s",
    "nvidia-l20", "nvidia-rtx-4090", "nvidia-v100-sxm2-32gb", "nvidia-t4", "nvidia-a10",
    "huawei-ascend-910b", "huawei-ascend-310p", "cambricon-mlu370-x8", "cambricon-mlu590",
    "hygon-dcu-z100", "hygon-dcu-k100", "kunlunxin-r200", "kunlunxin-p800", "amd-mi300x",
    "intel-gaudi2", "intel-gaudi3", "huawei-kunpeng-920-7260", "intel-xeon-platinum-8480plus",
    "amd-epyc-9654",
    # the devices the shared throughput data measures
    "nvidia-quadro-rtx-6000", "nvidia-quadro-rtx-8000", "nvidia-rtx-2080-ti", "nvidia-rtx-3090",
    "nvidia-rtx-a6000", "nvidia-k80", "nvidia-p100-pcie-16gb", "nvidia-v100-sxm2-16gb",
}


def _raw_rows() -> list[dict[str, str]]:
    text = importlib.resources.files("suanli").joinpath("data", "accelerators.csv").read_text()
    return list(csv.DictReader(io.StringIO(text)))


def _csv(*rows: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _row(**overrides: str) -> dict[str, str]:
    row = {column: "" for column in COLUMNS}
    row.update(key="acme-x1", vendor="Acme", model="X1", architecture="Xarch", kind="npu",
               fp16_tflops="100", software_stack="AcmeSDK", source="Acme X1 datasheet")
    row.update(overrides)
    return row


def test_the_shipped_catalog_has_at_least_30_models_from_6_vendors() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 30
    assert len(catalog.vendors()) >= 6


def test_the_shipped_catalog_holds_every_required_model() -> None:
    assert REQUIRED_KEYS <= set(load_catalog().keys())


def test_every_kind_of_device_is_catalogued() -> None:
    assert {a.kind for a in load_catalog()} == {"gpu", "npu", "dcu", "xpu", "cpu"}


def test_every_shipped_figure_is_the_csv_cell_and_empty_cells_stay_none() -> None:
    catalog = load_catalog()
    rows = _raw_rows()
    assert len(rows) == len(catalog)
    for row in rows:
        acc = catalog.get(row["key"])
        for column in FIGURES:
            cell = row[column].strip()
            assert getattr(acc, column) == (float(cell) if cell else None), (row["key"], column)


def test_unpublished_figures_are_none_not_guessed() -> None:
    catalog = load_catalog()
    assert catalog.get("nvidia-v100-sxm2-32gb").bf16_tflops is None  # Volta has no BF16
    assert catalog.get("nvidia-t4").fp64_tflops is None  # not on the T4 datasheet
    assert catalog.get("cambricon-mlu290-m5").fp16_tflops is None  # INT8 only published
    assert all(getattr(catalog.get("kunlunxin-p800"), f) is None for f in FIGURES)
    assert all(acc.memory_gb is None for acc in catalog.find(kind="cpu"))


def test_figures_are_dense_not_sparsity_doubled() -> None:
    # A sparsity figure slipped in shows as FP8 above 2x FP16 or TF32 above half of FP16.
    for acc in load_catalog():
        if acc.fp16_tflops and acc.fp8_tflops:
            assert acc.fp8_tflops <= 2.05 * acc.fp16_tflops, acc.key  # L40S sheet: 733 vs 362.05
        if acc.fp16_tflops and acc.tf32_tflops:
            assert acc.tf32_tflops <= 0.51 * acc.fp16_tflops, acc.key
        if acc.fp16_tflops and acc.int8_tops:
            assert acc.int8_tops <= 4.01 * acc.fp16_tflops, acc.key


def test_hopper_datasheet_figures_are_the_dense_halves() -> None:
    h100 = load_catalog().get("nvidia-h100-sxm")
    assert (h100.fp16_tflops, h100.fp8_tflops, h100.memory_gb, h100.tdp_w) == (989.5, 1979, 80, 700)


def test_every_model_names_its_source() -> None:
    assert all(len(acc.source) > 10 for acc in load_catalog())


def test_get_resolves_aliases_to_the_canonical_model() -> None:
    catalog = load_catalog()
    for alias, key in ALIASES.items():
        assert catalog.get(alias).key == key


def test_an_unknown_key_is_not_found_with_a_suggestion() -> None:
    with pytest.raises(NotFound) as caught:
        load_catalog().get("nvidia-h100-sxn")
    assert caught.value.field == "accelerator"
    assert "nvidia-h100-sxm" in caught.value.detail


def test_find_filters_by_vendor_architecture_kind_and_memory() -> None:
    catalog = load_catalog()
    big_hoppers = catalog.find(vendor="nvidia", architecture="hopper", min_memory_gb=90)
    assert {a.key for a in big_hoppers} == {"nvidia-h20"}
    npus = catalog.find(kind="npu")
    assert npus and all(a.kind == "npu" for a in npus)
    assert catalog.find(vendor="Cambricon", kind="gpu") == ()
    assert len(catalog.find()) == len(catalog)
    with pytest.raises(ValidationFailed):
        catalog.find(kind="fpga")


def test_by_vendor_partitions_the_catalog() -> None:
    catalog = load_catalog()
    groups = catalog.by_vendor()
    assert tuple(groups) == catalog.vendors()
    assert sum(len(g) for g in groups.values()) == len(catalog)
    assert all(a.vendor == vendor for vendor, g in groups.items() for a in g)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="duplicate key"):
        parse_catalog_csv(_csv(_row(), _row(model="X1 bis")))


@pytest.mark.parametrize(
    ("overrides", "field_end"),
    [
        ({"fp16_tflops": "-5"}, "fp16_tflops"),
        ({"fp16_tflops": "0"}, "fp16_tflops"),
        ({"memory_gb": "nan"}, "memory_gb"),
        ({"tdp_w": "lots"}, "tdp_w"),
        ({"vendor": " "}, "vendor"),
        ({"source": ""}, "source"),
        ({"kind": "fpga"}, "kind"),
        ({"key": "Acme X1"}, "key"),
    ],
)
def test_a_bad_row_is_refused_naming_line_and_column(overrides: dict[str, str],
                                                     field_end: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_catalog_csv(_csv(_row(**overrides)), name="test.csv")
    assert caught.value.field == f"test.csv:2:{field_end}"


def test_a_header_without_a_required_column_is_refused() -> None:
    text = _csv(_row()).replace("software_stack", "stack")
    with pytest.raises(ValidationFailed, match="software_stack"):
        parse_catalog_csv(text)


def test_an_alias_must_name_a_real_key() -> None:
    acc = parse_catalog_csv(_csv(_row())).get("acme-x1")
    with pytest.raises(ValidationFailed):
        Catalog([acc], aliases={"acme": "acme-x2"})
    assert Catalog([acc], aliases={"acme": "acme-x1"}).get("acme") is acc


def test_accelerators_are_immutable() -> None:
    acc: Accelerator = load_catalog().get("nvidia-t4")
    with pytest.raises(AttributeError):
        acc.fp16_tflops = 1.0  # type: ignore[misc]
