"""The calibration probe: a machine's real matmul throughput by precision and memory bandwidth.

Figures use the catalog's names and units (`fp64_tflops`, ..., `memory_bandwidth_gbs`) and are
totals over the devices measured; the platform divides by `devices` to compare a device with
its datasheet. Every measurement is bounded: matrix sizes grow by doubling only while one
multiply stays under a target time, repeats stop at a count or a time budget, and buffers
have fixed caps. See docs/calibration.md for the method.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

PROBE_VERSION = "calibrate/1"
MATMUL_FIGURES: tuple[str, ...] = ("fp64_tflops", "fp32_tflops", "tf32_tflops", "bf16_tflops",
                                   "fp16_tflops")
BANDWIDTH_FIGURE = "memory_bandwidth_gbs"
FIGURES: tuple[str, ...] = (*MATMUL_FIGURES, BANDWIDTH_FIGURE)

MIN_MATMUL_N = 64
PILOT_N = 256  # the first size tried; the probe doubles from here
MAX_MATMUL_N = 16_384  # 3 fp64 operands of 16384^2 are 6 GiB: the most a probe may hold
MIN_COPY_MIB = 1
MAX_COPY_MIB = 4_096
MAX_REPEATS = 50
MAX_BUDGET_S = 60.0
MAX_DEVICES = 1_024

Timer = Callable[[], float]


class ProbeError(RuntimeError):
    """The probe could not measure (a wrong matmul result, no device, bad arguments)."""


@dataclass(frozen=True)
class ProbeSettings:
    """Sizes and limits of one probe run; the defaults take a few seconds on a small CPU."""

    max_n: int = 2_048  # largest square matmul tried
    copy_mib: int = 256  # size of the copied buffer: far larger than a CPU's last-level cache
    repeats: int = 5  # timed repeats after the warm-up; the best one counts
    budget_s: float = 2.0  # per figure: stop repeating once this much time has gone
    target_s: float = 0.5  # stop doubling the matmul size before one multiply passes this

    def __post_init__(self) -> None:
        if not MIN_MATMUL_N <= self.max_n <= MAX_MATMUL_N:
            raise ProbeError(f"size must be {MIN_MATMUL_N}..{MAX_MATMUL_N}, got {self.max_n}")
        if not MIN_COPY_MIB <= self.copy_mib <= MAX_COPY_MIB:
            raise ProbeError(f"copy size must be {MIN_COPY_MIB}..{MAX_COPY_MIB} MiB, "
                             f"got {self.copy_mib}")
        if not 1 <= self.repeats <= MAX_REPEATS:
            raise ProbeError(f"repeats must be 1..{MAX_REPEATS}, got {self.repeats}")
        if not 0 < self.budget_s <= MAX_BUDGET_S or not 0 < self.target_s <= self.budget_s:
            raise ProbeError("need 0 < target_s <= budget_s <= 60")


GPU_SETTINGS = ProbeSettings(max_n=8_192, copy_mib=1_024, repeats=5, budget_s=2.0,
                             target_s=0.25)


@dataclass(frozen=True)
class Measurement:
    """One figure on one device: the best of `repeats` timed runs of `size` (n or bytes)."""

    figure: str
    value: float  # TFLOPS, or GB/s for memory bandwidth
    size: int  # matrix order n, or bytes copied
    repeats: int
    best_s: float
    device_index: int = 0


@dataclass(frozen=True)
class ProbeResult:
    """What one probe run measured: the document the agent uploads to the platform."""

    probe_version: str
    backend: str  # "numpy-cpu" or "torch-cuda"
    device_kind: str  # "cpu" or "gpu"
    device_name: str
    devices: int  # how many of the pool's devices the figures cover (sockets on a CPU)
    cores: int | None  # CPU cores used; None on a GPU
    host: str
    figures: dict[str, float]  # totals over `devices`
    not_measured: dict[str, str]  # figure -> why
    measurements: list[Measurement]
    environment: dict[str, str]
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """What the generic measurement needs from NumPy or PyTorch."""

    def matmul(self, n: int, figure: str) -> tuple[Callable[[], None], float]:
        """A callable doing a fixed amount of n x n matmul work, and that work in FLOP."""

    def copy(self, nbytes: int) -> tuple[Callable[[], None], float]:
        """A callable copying one buffer of `nbytes` into another, and the bytes it moves."""


def best_seconds(run: Callable[[], None], repeats: int, budget_s: float,
                 timer: Timer = time.perf_counter) -> tuple[float, int]:
    """The fastest of up to `repeats` timed calls of `run` (after one untimed warm-up).

    Stops early once `budget_s` has passed since the first timed call, after at least one.
    """
    assert 1 <= repeats <= MAX_REPEATS and budget_s > 0
    run()  # warm-up: page faults, thread pools, kernel selection
    best, done = math.inf, 0
    started = timer()
    while done < repeats:
        t0 = timer()
        run()
        best = min(best, timer() - t0)
        done += 1
        if timer() - started >= budget_s:
            break
    return max(best, 1e-9), done


def measure_matmul(backend: Backend, figure: str, settings: ProbeSettings,
                   timer: Timer = time.perf_counter, device_index: int = 0) -> Measurement:
    """Matmul throughput: the size doubles from PILOT_N while one multiply beats target_s/8."""
    assert figure in MATMUL_FIGURES
    n = min(PILOT_N, settings.max_n)
    while True:
        run, flop = backend.matmul(n, figure)
        if n >= settings.max_n:
            break
        # the faster of two runs, so one preemption on a busy machine does not stop the growth
        elapsed = min(_timed(run, timer), _timed(run, timer))
        # doubling n multiplies the time by 8: stop before one multiply passes the target
        if elapsed * 8 > settings.target_s:
            break
        n = min(2 * n, settings.max_n)
    best_s, done = best_seconds(run, settings.repeats, settings.budget_s, timer)
    return Measurement(figure, flop / best_s / 1e12, n, done, best_s, device_index)


def _timed(run: Callable[[], None], timer: Timer) -> float:
    t0 = timer()
    run()
    return timer() - t0


def measure_copy(backend: Backend, settings: ProbeSettings, timer: Timer = time.perf_counter,
                 device_index: int = 0) -> Measurement:
    """STREAM-copy bandwidth: bytes read plus bytes written, over the best copy time."""
    run, moved = backend.copy(settings.copy_mib * 2**20)
    best_s, done = best_seconds(run, settings.repeats, settings.budget_s, timer)
    return Measurement(BANDWIDTH_FIGURE, moved / best_s / 1e9, settings.copy_mib * 2**20, done,
                       best_s, device_index)


# -- NumPy on the CPU ----------------------------------------------------------------------------

CPU_DTYPES = {"fp64_tflops": np.float64, "fp32_tflops": np.float32}
CPU_NOT_MEASURED = {
    "tf32_tflops": "TF32 is a GPU tensor-core format; CPUs have none",
    "bf16_tflops": "NumPy has no bfloat16 type",
    "fp16_tflops": "NumPy has no float16 BLAS: a float16 matmul would time NumPy's scalar "
                   "fallback loop, not the CPU",
}


class NumpyBackend:
    """Matmuls through NumPy's BLAS (all the cores it is allowed), copies with np.copyto."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def matmul(self, n: int, figure: str) -> tuple[Callable[[], None], float]:
        dtype = CPU_DTYPES[figure]
        a = self._rng.standard_normal((n, n)).astype(dtype)
        b = self._rng.standard_normal((n, n)).astype(dtype)
        c = np.empty((n, n), dtype=dtype)

        def run() -> None:
            np.matmul(a, b, out=c)

        run()
        _check_product(float(c[0, 0]), float(np.dot(a[0, :].astype(np.float64),
                                                    b[:, 0].astype(np.float64))), n, figure)
        return run, 2.0 * n**3

    def copy(self, nbytes: int) -> tuple[Callable[[], None], float]:
        source = np.ones(nbytes // 8, dtype=np.float64)
        target = np.empty_like(source)

        def run() -> None:
            np.copyto(target, source)

        return run, 2.0 * source.nbytes


# Relative tolerance of one product element against a float64 dot product of the same inputs:
# the accumulation and output rounding each precision allows, with a wide margin.
CHECK_TOLERANCE = {"fp64_tflops": 1e-9, "fp32_tflops": 1e-3, "tf32_tflops": 2e-2,
                   "bf16_tflops": 5e-2, "fp16_tflops": 2e-2}


def _check_product(got: float, want: float, n: int, figure: str) -> None:
    # A wrong product means a broken BLAS or device: its speed would mean nothing. An element
    # of the product of two standard-normal matrices is of order sqrt(n).
    bound = CHECK_TOLERANCE[figure] * (math.sqrt(n) + abs(want))
    if not math.isfinite(got) or abs(got - want) > bound:
        raise ProbeError(f"{figure}: matmul gave {got}, expected {want}: results are wrong")


def probe_cpu(settings: ProbeSettings = ProbeSettings(), devices: int | None = None,
              timer: Timer = time.perf_counter) -> ProbeResult:
    """fp64 and fp32 matmul and copy bandwidth of this machine's CPUs, through NumPy."""
    started = timer()
    backend = NumpyBackend()
    measurements = [measure_matmul(backend, figure, settings, timer) for figure in CPU_DTYPES]
    measurements.append(measure_copy(backend, settings, timer))
    sockets = devices if devices is not None else cpu_sockets()
    _check_devices(sockets)
    return ProbeResult(
        probe_version=PROBE_VERSION, backend="numpy-cpu", device_kind="cpu",
        device_name=cpu_model(), devices=sockets, cores=cpu_cores(), host=host_name(),
        figures={m.figure: m.value for m in measurements}, not_measured=dict(CPU_NOT_MEASURED),
        measurements=measurements, environment=cpu_environment(),
        duration_s=timer() - started)


def cpu_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read(4_000_000).splitlines()
    except OSError:
        return []


def cpu_sockets() -> int:
    """Distinct physical packages in /proc/cpuinfo; 1 where that cannot be read."""
    ids = {line.split(":", 1)[1].strip() for line in _cpuinfo()
           if line.startswith("physical id")}
    return max(1, len(ids))


def cpu_model() -> str:
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()[:200]
    return (platform.processor() or platform.machine() or "unknown CPU")[:200]


def host_name() -> str:
    return socket.gethostname()[:200] or "unknown"


def cpu_environment() -> dict[str, str]:
    environment = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu_count": str(os.cpu_count() or 0),
    }
    blas = _blas_name()
    if blas:
        environment["blas"] = blas
    if hasattr(os, "getloadavg"):
        # a busy machine measures low: the load beside the figures says how much to trust them
        environment["load_1m"] = f"{os.getloadavg()[0]:.2f}"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name):
            environment[name] = os.environ[name][:40]
    return environment


def _blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.25
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '')} {blas.get('version', '')}".strip()[:200]
    except (TypeError, KeyError, AttributeError):
        return ""


def _check_devices(devices: int) -> None:
    if not 1 <= devices <= MAX_DEVICES:
        raise ProbeError(f"devices must be 1..{MAX_DEVICES}, got {devices}")


# -- PyTorch on GPUs -----------------------------------------------------------------------------

GPU_INNER = 8  # matmuls per timed call, so one synchronisation does not weigh on the time


class TorchBackend:
    """Matmuls and copies with PyTorch on one device; every call synchronises the device."""

    def __init__(self, torch: Any, device: Any, inner: int = GPU_INNER) -> None:
        assert 1 <= inner <= 64
        self._torch, self._device, self._inner = torch, device, inner
        self._generator = torch.Generator(device=device).manual_seed(0)

    def _sync(self) -> None:
        if self._device.type == "cuda":
            self._torch.cuda.synchronize(self._device)

    def _dtype(self, figure: str) -> Any:
        torch = self._torch
        return {"fp64_tflops": torch.float64, "fp32_tflops": torch.float32,
                "tf32_tflops": torch.float32, "bf16_tflops": torch.bfloat16,
                "fp16_tflops": torch.float16}[figure]

    def matmul(self, n: int, figure: str) -> tuple[Callable[[], None], float]:
        torch, dtype = self._torch, self._dtype(figure)
        a = torch.randn(n, n, device=self._device, dtype=dtype, generator=self._generator)
        b = torch.randn(n, n, device=self._device, dtype=dtype, generator=self._generator)
        c = torch.empty(n, n, device=self._device, dtype=dtype)
        precision = "high" if figure == "tf32_tflops" else "highest"

        def run() -> None:
            # set on every call: fp32 and tf32 share a dtype and differ only in this switch
            torch.set_float32_matmul_precision(precision)
            for _ in range(self._inner):
                torch.matmul(a, b, out=c)
            self._sync()

        run()
        want = float(torch.dot(a[0, :].double(), b[:, 0].double()))
        _check_product(float(c[0, 0].double()), want, n, figure)
        return run, 2.0 * n**3 * self._inner

    def copy(self, nbytes: int) -> tuple[Callable[[], None], float]:
        torch = self._torch
        source = torch.ones(nbytes // 4, device=self._device, dtype=torch.float32)
        target = torch.empty_like(source)

        def run() -> None:
            for _ in range(self._inner):
                target.copy_(source)
            self._sync()

        return run, 2.0 * source.numel() * source.element_size() * self._inner


def load_cuda_torch() -> Any | None:
    """PyTorch, where it imports and sees a CUDA (or ROCm) device; else None."""
    try:
        # Optional and absent where suanli is checked: no module, so no types, to find.
        import torch  # type: ignore[import-not-found]
    except ImportError:
        return None
    return torch if torch.cuda.is_available() and torch.cuda.device_count() > 0 else None


def probe_gpu(torch: Any, settings: ProbeSettings = GPU_SETTINGS, devices: int | None = None,
              timer: Timer = time.perf_counter) -> ProbeResult:
    """Every matmul precision and device-memory copy bandwidth, each GPU measured alone."""
    started = timer()
    visible = torch.cuda.device_count()
    count = visible if devices is None else devices
    _check_devices(count)
    if count > visible:
        raise ProbeError(f"asked for {count} GPUs, {visible} visible")
    previous_precision = torch.get_float32_matmul_precision()
    measurements: list[Measurement] = []
    try:
        for index in range(count):
            backend = TorchBackend(torch, torch.device("cuda", index))
            for figure in MATMUL_FIGURES:
                measurements.append(measure_matmul(backend, figure, settings, timer, index))
            measurements.append(measure_copy(backend, settings, timer, index))
            torch.cuda.empty_cache()
    finally:
        torch.set_float32_matmul_precision(previous_precision)
    figures = {name: sum(m.value for m in measurements if m.figure == name) for name in FIGURES}
    names = sorted({torch.cuda.get_device_name(i) for i in range(count)})
    environment = {"python": platform.python_version(), "torch": str(torch.__version__),
                   "cuda": str(torch.version.cuda or ""), "hip": str(getattr(torch.version,
                                                                             "hip", "") or ""),
                   "machine": platform.machine(), "visible_devices": str(visible)}
    return ProbeResult(
        probe_version=PROBE_VERSION, backend="torch-cuda", device_kind="gpu",
        device_name=", ".join(names)[:200], devices=count, cores=None, host=host_name(),
        figures=figures, not_measured={}, measurements=measurements,
        environment={k: v for k, v in environment.items() if v},
        duration_s=timer() - started)


# -- entry point ---------------------------------------------------------------------------------

def probe(*, devices: int | None = None, size: int | None = None, copy_mib: int | None = None,
          repeats: int | None = None, budget_s: float | None = None,
          use_gpu: bool = True) -> ProbeResult:
    """Measure this machine: its GPUs with PyTorch where present, else its CPUs with NumPy.

    None takes the backend's default (ProbeSettings for CPUs, GPU_SETTINGS for GPUs).
    """
    torch = load_cuda_torch() if use_gpu else None
    base = GPU_SETTINGS if torch is not None else ProbeSettings()
    budget = budget_s or base.budget_s
    settings = ProbeSettings(max_n=size or base.max_n, copy_mib=copy_mib or base.copy_mib,
                             repeats=repeats or base.repeats, budget_s=budget,
                             target_s=min(base.target_s, budget))
    if torch is not None:
        return probe_gpu(torch, settings, devices)
    return probe_cpu(settings, devices)
