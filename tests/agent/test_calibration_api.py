"""Calibrations through the HTTP API: who may upload, bad input, and over-declared pools."""

from __future__ import annotations

import pytest

from suanli.catalog import load_catalog
from suanli.domain.ids import ComputeId, IdKind
from suanli.services.registry.calibration import NO_DATASHEET, OVER_DECLARED_BELOW, compare
from tests.agent.conftest import register_pool


def _upload(client, tenant, pool_id, document):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/pools/{pool_id}/calibrations", json=document,
                       headers=tenant.headers)


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {error["field"] for error in response.json()["errors"]}


def test_a_provider_uploads_a_real_cpu_probe_for_its_cpuregister_pool(client, provider,
                                                               cpu_probe) -> None:
    pool_id = register_pool(client, provider, "amd-epyc-9654", device_count=4)
    response = _upload(client, provider, pool_id, cpu_probe.to_json())
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["pool_id"] == pool_id and stored["accelerator"] == "amd-epyc-9654"
    assert stored["measured"] == pytest.approx(cpu_probe.figures)
    assert stored["datasheet"]["fp64_tflops"] == 3.6864
    assert set(stored["ratios"]) == {"fp64_tflops", "fp32_tflops", "memory_bandwidth_gbs"}
    per_device = cpu_probe.figures["fp64_tflops"] / cpu_probe.devices
    assert stored["ratios"]["fp64_tflops"] == pytest.approx(per_device / 3.6864, abs=1e-4)
    assert stored["verdict"] and stored["probe"]["environment"] == cpu_probe.environment
    listed = client.get(f"/v1/pools/{pool_id}/calibrations", headers=provider.headers).json()
    assert [c["id"] for c in listed["items"]] == [stored["id"]]


def test_calibrations_are_listed_latest_first_and_summarised_on_the_pool(
        client, provider, consumer, clock, cpu_probe) -> None:
    pool_id = register_pool(client, provider, "amd-epyc-9654")
    empty = client.get(f"/v1/pools/{pool_id}/calibration", headers=consumer.headers).json()
    assert empty["latest"] is None and empty["calibrations"] == 0
    ids = []
    for _ in range(3):
        ids.append(_upload(client, provider, pool_id, cpu_probe.to_json()).json()["id"])
        clock.advance(60)
    listed = client.get(f"/v1/pools/{pool_id}/calibrations", params={"limit": 2},
                        headers=consumer.headers).json()
    assert [c["id"] for c in listed["items"]] == ids[::-1][:2] and listed["next_offset"] == 2
    view = client.get(f"/v1/pools/{pool_id}/calibration", headers=consumer.headers).json()
    assert view["calibrations"] == 3 and view["latest"]["id"] == ids[-1]
    assert view["accelerator"] == "amd-epyc-9654" and view["device_count"] == 8


def test_an_h100_pool_measured_at_cpu_speed_is_flagged_over_declared(client, provider,
                                                                      cpu_probe) -> None:
    pool_id = register_pool(client, provider, "nvidia-h100-sxm")
    stored = _upload(client, provider, pool_id, cpu_probe.to_json()).json()
    assert stored["over_declared"] is True
    assert stored["best_ratio"] < OVER_DECLARED_BELOW
    assert stored["verdict"].startswith("over-declared")
    assert stored["datasheet"]["bf16_tflops"] == 989.5
    assert any("declares gpu" in note for note in stored["notes"])
    view = client.get(f"/v1/pools/{pool_id}/calibration", headers=provider.headers).json()
    assert view["latest"]["over_declared"] is True


def test_another_provider_and_a_consumer_may_not_calibrate_a_pool(
        client, provider, consumer, make_tenant, cpu_probe) -> None:
    pool_id = register_pool(client, provider, "amd-epyc-9654")
    other = make_tenant("provider", "someone else")
    assert _upload(client, other, pool_id, cpu_probe.to_json()).status_code == 403
    assert _upload(client, consumer, pool_id, cpu_probe.to_json()).status_code == 403
    listed = client.get(f"/v1/pools/{pool_id}/calibrations", headers=provider.headers).json()
    assert listed["items"] == []


def test_an_operator_may_calibrate_anyregister_pool(client, provider, operator, cpu_probe) -> None:
    pool_id = register_pool(client, provider, "amd-epyc-9654")
    assert _upload(client, operator, pool_id, cpu_probe.to_json()).status_code == 201


@pytest.mark.parametrize(("change", "field"), [
    ({"figures": {"fp64_tflops": -1.0}}, "figures.fp64_tflops"),
    ({"figures": {"fp8_tflops": 1.0}}, "figures.fp8_tflops"),
    ({"figures": {}}, "figures"),
    ({"devices": 0}, "devices"),
    ({"devices": 9}, "devices"),  # the pool has 8
    ({"device_kind": "quantum"}, "device_kind"),
    ({"host": "bad\u0000host"}, "host"),
])
def test_bad_input_is_422_naming_the_field(client, provider, cpu_probe, change, field) -> None:
    pool_id = register_pool(client, provider, "amd-epyc-9654")
    response = _upload(client, provider, pool_id, {**cpu_probe.to_json(), **change})
    assert field in _fields(response)


def test_an_unknown_pool_is_404_and_a_malformed_id_422(client, provider, cpu_probe) -> None:
    missing = str(ComputeId.platform("CN").child(IdKind.PROVIDER, 999).child(IdKind.SITE, 1)
                  .child(IdKind.POOL, 1))
    assert _upload(client, provider, missing, cpu_probe.to_json()).status_code == 404
    assert client.get(f"/v1/pools/{missing}/calibration",
                      headers=provider.headers).status_code == 404
    assert "pool_id" in _fields(client.get("/v1/pools/not-an-id/calibrations",
                                           headers=provider.headers))


def test_a_pool_whose_device_publishes_no_flops_gets_no_datasheet_figure(client, provider,
                                                                          cpu_probe) -> None:
    pool_id = register_pool(client, provider, "huawei-kunpeng-920-7260")
    stored = _upload(client, provider, pool_id, cpu_probe.to_json()).json()
    assert stored["verdict"] == NO_DATASHEET and stored["over_declared"] is False
    assert set(stored["ratios"]) == {"memory_bandwidth_gbs"}


# -- the comparison itself -----------------------------------------------------------------------

H100 = load_catalog().get("nvidia-h100-sxm")


@pytest.mark.parametrize(("bf16_share", "verdict", "flagged"), [
    (0.85, "as declared", False),
    (0.6, "below datasheet by 40%", False),
    (0.3, "over-declared: the best figure reaches 30% of datasheet", True),
])
def test_the_verdict_follows_the_best_figure_against_its_threshold(bf16_share, verdict,
                                                                   flagged) -> None:
    result = compare({"bf16_tflops": 989.5 * bf16_share, "fp64_tflops": 34 * 0.1}, 1, "gpu",
                     H100)
    assert result.verdict == verdict and result.over_declared is flagged
    assert result.best_figure == "bf16_tflops"


def test_figures_are_normalised_by_the_devices_measured() -> None:
    one = compare({"fp16_tflops": 700.0}, 1, "gpu", H100)
    eight = compare({"fp16_tflops": 8 * 700.0}, 8, "gpu", H100)
    assert one.ratios == eight.ratios and one.verdict == eight.verdict
    assert eight.per_device["fp16_tflops"] == pytest.approx(700.0)


def test_a_weak_precision_beside_a_strong_one_is_noted_not_flagged() -> None:
    result = compare({"fp16_tflops": 900.0, "fp64_tflops": 3.0}, 1, "gpu", H100)
    assert not result.over_declared
    assert any("fp64_tflops" in note for note in result.notes)


def test_a_figure_far_above_datasheet_asks_whether_devices_were_undercounted() -> None:
    result = compare({"fp16_tflops": 4 * 989.5}, 1, "gpu", H100)
    assert any("more devices" in note for note in result.notes)


def test_a_retired_pool_cannot_be_calibrated(client, provider, cpu_probe) -> None:
    pool_id = register_pool(client, provider, "amd-epyc-9654")
    assert client.delete(f"/v1/pools/{pool_id}", headers=provider.headers).status_code == 200
    assert _upload(client, provider, pool_id, cpu_probe.to_json()).status_code == 409
