"""The GPU meter meters the devices the host has and skips indices it has not.

No GPU here: NVML is a fake module that knows two boards (the real path runs on GPU hosts).
A job given more device indices than the host has (the demo's illustrative GPU pools, issue
10) must still run and be metered on what exists, not crash its supervisor.
"""

from __future__ import annotations

import types

import pytest

from suanli.adapters.engines import _gpu


class _FakeNvml(types.SimpleNamespace):
    class NVMLError(Exception):
        pass

    def __init__(self, boards: int) -> None:
        super().__init__(boards=boards)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index >= self.boards:
            raise self.NVMLError(f"invalid index {index}")
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return 1_000 * (handle + 1)


@pytest.mark.parametrize(("boards", "metered"), [(2, True), (0, False)])
def test_indices_beyond_the_host_are_skipped(monkeypatch: pytest.MonkeyPatch, boards: int,
                                             metered: bool) -> None:
    monkeypatch.setattr(_gpu, "_nvml", lambda: _FakeNvml(boards))
    meter = _gpu.GpuMeter(tuple(range(8)), period_s=0.05)
    meter.start()
    result = meter.stop()
    assert (result is not None) is metered
    if result is not None:
        assert result.energy_wh == 0.0 and not result.estimated  # the counter did not move
