"""An engine whose jobs succeed at once and use nothing: for benchmarking the API, not for work."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

from suanli.adapters.engines.base import (
    DEFAULT_LOG_BYTES,
    Capacity,
    EngineJobRef,
    EngineJobSpec,
    EngineState,
    EngineStatus,
    EngineUsage,
    check_log_bytes,
)
from suanli.domain.errors import NotFound

KIND = "noop"


class NoopEngine:
    """Remembers the last `max_jobs` job ids in memory (oldest forgotten first)."""

    kind = KIND

    def __init__(
        self, *, cpus: int = 1024, memory_mb: int = 1 << 22, gpus: int = 0, max_jobs: int = 100_000
    ) -> None:
        assert cpus >= 1 and memory_mb >= 1 and gpus >= 0 and 1 <= max_jobs <= 10_000_000
        self._capacity = Capacity(cpus, memory_mb, gpus, cpus, memory_mb, gpus)
        self._max_jobs = max_jobs
        self._jobs: OrderedDict[str, EngineState] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # the API may call from several worker threads

    def submit(self, spec: EngineJobSpec) -> EngineJobRef:
        with self._lock:
            native_id = str(next(self._ids))
            self._jobs[native_id] = EngineState.SUCCEEDED
            while len(self._jobs) > self._max_jobs:
                self._jobs.popitem(last=False)
        return EngineJobRef(KIND, native_id)

    def status(self, ref: EngineJobRef) -> EngineStatus:
        state = self._state(ref)
        return EngineStatus(state, exit_code=0 if state is EngineState.SUCCEEDED else None)

    def cancel(self, ref: EngineJobRef) -> None:
        self._state(ref)  # already finished: cancelling is a no-op, as for any finished job

    def logs(self, ref: EngineJobRef, *, max_bytes: int = DEFAULT_LOG_BYTES) -> str:
        check_log_bytes(max_bytes)
        self._state(ref)
        return ""

    def usage(self, ref: EngineJobRef) -> EngineUsage:
        self._state(ref)
        return EngineUsage(0.0, cpu_s=0.0, max_rss_mb=0.0, energy_wh=0.0, energy_estimated=False)

    def capacity(self) -> Capacity:
        return self._capacity

    def _state(self, ref: EngineJobRef) -> EngineState:
        with self._lock:
            state = self._jobs.get(ref.native_id) if ref.engine == KIND else None
        if state is None:
            raise NotFound(f"no noop job {ref}", field="ref")
        return state
