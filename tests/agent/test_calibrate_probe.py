"""The calibration probe: real, positive figures; sizes, repeats and time held to their bounds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest

from suanli import catalog
from suanli.agent import calibrate
from suanli.agent.calibrate import (
    BANDWIDTH_FIGURE,
    ProbeError,
    ProbeResult,
    ProbeSettings,
    best_seconds,
    measure_matmul,
)
from suanli.services.registry import calibration
from tests.agent.conftest import TINY


class FakeTime:
    """A clock that moves only when the fake work says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CubicBackend:
    """A matmul whose time grows as n^3, at `flops` per second, on a fake clock."""

    def __init__(self, clock: FakeTime, flops: float) -> None:
        self.clock, self.flops, self.sizes = clock, flops, []

    def matmul(self, n: int, figure: str) -> tuple[Callable[[], None], float]:
        self.sizes.append(n)

        def run() -> None:
            self.clock.now += 2 * n**3 / self.flops

        return run, 2.0 * n**3

    def copy(self, nbytes: int) -> tuple[Callable[[], None], float]:
        raise AssertionError("not used")


def test_a_cpu_probe_measures_fp64_fp32_and_bandwidth_as_positive_figures(
        cpu_probe: ProbeResult) -> None:
    assert set(cpu_probe.figures) == {"fp64_tflops", "fp32_tflops", BANDWIDTH_FIGURE}
    assert all(math.isfinite(v) and v > 0 for v in cpu_probe.figures.values())
    assert cpu_probe.backend == "numpy-cpu" and cpu_probe.device_kind == "cpu"
    assert cpu_probe.devices >= 1 and cpu_probe.cores is not None and cpu_probe.cores >= 1
    assert cpu_probe.probe_version == calibrate.PROBE_VERSION
    assert {"numpy", "python", "machine"} <= set(cpu_probe.environment)


def test_a_cpu_probe_says_why_it_did_not_measure_half_precisions(cpu_probe) -> None:
    assert set(cpu_probe.not_measured) == {"tf32_tflops", "bf16_tflops", "fp16_tflops"}
    assert "float16" in cpu_probe.not_measured["fp16_tflops"]


def test_every_measurement_stays_within_the_sizes_and_repeats_it_was_given(cpu_probe) -> None:
    for m in cpu_probe.measurements:
        assert 1 <= m.repeats <= TINY.repeats and m.best_s > 0
        if m.figure == BANDWIDTH_FIGURE:
            assert m.size == TINY.copy_mib * 2**20
        else:
            assert calibrate.MIN_MATMUL_N <= m.size <= TINY.max_n
        assert m.value == cpu_probe.figures[m.figure]


def test_a_probe_result_is_a_json_document(cpu_probe) -> None:
    document = json.loads(json.dumps(cpu_probe.to_json()))
    assert document["figures"] == cpu_probe.figures
    assert len(document["measurements"]) == 3


def test_repeats_stop_once_the_time_budget_is_spent() -> None:
    clock = FakeTime()

    def one_second() -> None:
        clock.now += 1.0

    best_s, done = best_seconds(one_second, repeats=10, budget_s=2.5, timer=clock)
    assert best_s == 1.0 and done == 3


def test_the_matmul_grows_by_doubling_until_one_multiply_nears_the_target() -> None:
    clock = FakeTime()
    backend = CubicBackend(clock, flops=2e9)  # n=256 takes 0.017 s, n=512 takes 0.134 s
    settings = ProbeSettings(max_n=4096, repeats=3, budget_s=10.0, target_s=0.25)
    m = measure_matmul(backend, "fp64_tflops", settings, timer=clock)
    assert backend.sizes == [256, 512] and m.size == 512
    assert m.value == pytest.approx(2e9 / 1e12)


def test_the_matmul_never_grows_past_the_largest_size_allowed() -> None:
    clock = FakeTime()
    backend = CubicBackend(clock, flops=1e15)
    m = measure_matmul(backend, "fp32_tflops", ProbeSettings(max_n=1000), timer=clock)
    assert max(backend.sizes) == 1000 and m.size == 1000


@pytest.mark.parametrize("changes", [{"max_n": calibrate.MAX_MATMUL_N + 1}, {"max_n": 8},
                                     {"copy_mib": 0}, {"copy_mib": 10**6}, {"repeats": 0},
                                     {"repeats": 1000}, {"budget_s": 3600.0},
                                     {"target_s": 5.0, "budget_s": 1.0}])
def test_unbounded_probe_settings_are_refused(changes) -> None:
    with pytest.raises(ProbeError):
        ProbeSettings(**changes)


def test_a_wrong_matmul_result_fails_the_probe_instead_of_timing_it(monkeypatch) -> None:
    monkeypatch.setattr(calibrate.np, "matmul", lambda a, b, out: out.fill(0.0))
    with pytest.raises(ProbeError, match="results are wrong"):
        calibrate.NumpyBackend().matmul(64, "fp64_tflops")


def test_figure_names_are_the_catalogs_and_the_services() -> None:
    assert calibrate.FIGURES == calibration.FIGURES
    assert set(calibrate.FIGURES) <= set(catalog.FIGURES)


def test_probe_refuses_an_impossible_device_count() -> None:
    with pytest.raises(ProbeError):
        calibrate.probe_cpu(TINY, devices=0)


def test_the_torch_backend_measures_every_precision_where_torch_is_installed() -> None:
    torch = pytest.importorskip("torch")
    backend = calibrate.TorchBackend(torch, torch.device("cpu"), inner=1)
    for figure in ("fp64_tflops", "fp32_tflops", "bf16_tflops"):
        m = measure_matmul(backend, figure, TINY)
        assert m.value > 0 and m.size <= TINY.max_n


@pytest.mark.skipif(calibrate.load_cuda_torch() is None, reason="no GPU with PyTorch here")
def test_a_gpu_probe_measures_every_precision_and_device_bandwidth() -> None:
    torch = calibrate.load_cuda_torch()
    settings = ProbeSettings(max_n=1024, copy_mib=64, repeats=2, budget_s=0.5, target_s=0.05)
    result = calibrate.probe_gpu(torch, settings, devices=1)
    assert set(result.figures) == set(calibrate.FIGURES)
    assert all(v > 0 for v in result.figures.values())
    assert result.device_kind == "gpu" and result.devices == 1 and result.device_name
    assert np.isfinite(list(result.figures.values())).all()
