"""The CLI takes accelerators, vendors and device kinds as people type them."""

from __future__ import annotations

import pytest
import typer

from suanli.cli.names import accelerator_key, device_kind, vendor_name


@pytest.mark.parametrize(("typed", "key"), [
    ("nvidia-h100-sxm", "nvidia-h100-sxm"),  # the key
    ("H100-SXM", "nvidia-h100-sxm"),  # the README's old spelling: no vendor, upper case
    ("nvidia-h100", "nvidia-h100-sxm"),  # an alias
    ("H100 SXM5 80GB", "nvidia-h100-sxm"),  # the model name
    ("Ascend 910B", "huawei-ascend-910b"),
    ("4090", "nvidia-rtx-4090"),
    (None, None),
])
def test_accelerator_names_resolve_to_catalog_keys(typed: str | None, key: str | None) -> None:
    assert accelerator_key(typed) == key


def test_an_ambiguous_name_lists_the_choices_and_an_unknown_one_goes_to_the_platform() -> None:
    with pytest.raises(typer.BadParameter, match="nvidia-a100-sxm4-80gb.*nvidia-a100-pcie"):
        accelerator_key("a100")
    assert accelerator_key("quantum-9000") == "quantum-9000"  # the platform answers with 422


def test_vendors_and_device_kinds_in_any_case() -> None:
    assert vendor_name("nvidia") == "NVIDIA" and vendor_name("HUAWEI") == "Huawei"
    assert vendor_name("Acme") == "Acme"
    assert device_kind("GPU") == "gpu"
    with pytest.raises(typer.BadParameter, match="gpu, npu, dcu, xpu, cpu"):
        device_kind("tpu")
