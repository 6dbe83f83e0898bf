"""GPU figures through NVML where a GPU is present, and energy estimates where nothing measures.

NVML comes from the optional `nvidia-ml-py` package (module `pynvml`); without it, or without
a driver, the host simply has no GPUs as far as the local engine is concerned.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

SAMPLE_PERIOD_S = 1.0
DEFAULT_GPU_TDP_W = 300.0  # used only when NVML cannot say the board's power limit
DEFAULT_CPU_WATTS_PER_CORE = 10.0  # a 200 W server CPU over 20 cores; an estimate by nature


def _nvml() -> ModuleType | None:
    try:
        # Optional (nvidia-ml-py, untyped): absent on most checkers, present on GPU hosts.
        import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # library not found, driver not loaded, ...: no usable GPU
        return None
    nvml: ModuleType = pynvml
    return nvml


def gpu_count() -> int:
    nvml = _nvml()
    if nvml is None:
        return 0
    try:
        return int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError:
        return 0


@dataclass(frozen=True, slots=True)
class GpuEnergy:
    energy_wh: float
    estimated: bool
    mean_utilisation: float


class GpuMeter:
    """Measures the energy of some GPUs between start() and stop().

    Prefers the board's cumulative energy counter (Volta and later); else integrates sampled
    power draw; else estimates TDP × sampled utilisation. Memory is bounded: only running sums.
    """

    def __init__(self, indices: tuple[int, ...], period_s: float = SAMPLE_PERIOD_S) -> None:
        assert 0.05 <= period_s <= 60, period_s
        self._indices = indices
        self._period_s = period_s
        self._nvml = _nvml() if indices else None
        self._handles: list[Any] = []
        self._start_mj: list[int] | None = None
        self._power_j = 0.0
        self._power_ok = True
        self._util_sum = 0.0
        self._samples = 0
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._nvml is not None

    def start(self) -> None:
        self._t0 = time.monotonic()
        if self._nvml is None:
            return
        nvml = self._nvml
        for index in self._indices:
            try:
                self._handles.append(nvml.nvmlDeviceGetHandleByIndex(index))
            except nvml.NVMLError:  # an index this host has not (the demo's illustrative GPUs)
                continue
        if not self._handles:
            self._nvml = None  # nothing to meter: the caller estimates from CPU figures
            return
        self._start_mj = _energy_mj(nvml, self._handles)  # None on boards without the counter
        self._thread = threading.Thread(target=self._sample_loop, name="gpu-meter", daemon=True)
        self._thread.start()

    def _sample_loop(self) -> None:
        assert self._nvml is not None
        nvml = self._nvml
        while not self._stop.wait(self._period_s):
            util = 0.0
            power_w = 0.0
            for handle in self._handles:
                try:
                    util += float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu) / 100.0
                    power_w += float(nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0
                except nvml.NVMLError:  # a board without the sensor: fall back to TDP
                    self._power_ok = False
            self._util_sum += util / max(1, len(self._handles))
            self._samples += 1
            self._power_j += power_w * self._period_s

    def stop(self) -> GpuEnergy | None:
        """None where NVML is absent: the caller estimates from CPU figures instead."""
        elapsed_s = time.monotonic() - self._t0
        if self._nvml is None:
            return None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self._period_s)
        mean_util = self._util_sum / self._samples if self._samples else 0.0
        end_mj = _energy_mj(self._nvml, self._handles) if self._start_mj is not None else None
        if end_mj is not None and self._start_mj is not None:
            joules = sum(e - s for e, s in zip(end_mj, self._start_mj, strict=True)) / 1000.0
            return GpuEnergy(joules / 3600.0, estimated=False, mean_utilisation=mean_util)
        if self._power_ok and self._samples:
            return GpuEnergy(self._power_j / 3600.0, estimated=False, mean_utilisation=mean_util)
        tdp_w = sum(_tdp_w(self._nvml, h) for h in self._handles)
        return GpuEnergy(tdp_w * mean_util * elapsed_s / 3600.0, True, mean_util)


def _energy_mj(nvml: ModuleType, handles: list[Any]) -> list[int] | None:
    """Cumulative board energy in millijoules (Volta and later), None where unsupported."""
    try:
        return [int(nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in handles]
    except nvml.NVMLError:
        return None


def _tdp_w(nvml: ModuleType, handle: Any) -> float:
    try:
        return float(nvml.nvmlDeviceGetPowerManagementDefaultLimit(handle)) / 1000.0
    except nvml.NVMLError:
        return DEFAULT_GPU_TDP_W


def cpu_energy_wh(cpu_s: float, watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE) -> float:
    """Estimated energy of the CPU time a job used: per-core TDP share × busy core-seconds."""
    assert cpu_s >= 0 and watts_per_core >= 0, (cpu_s, watts_per_core)
    return cpu_s * watts_per_core / 3600.0
