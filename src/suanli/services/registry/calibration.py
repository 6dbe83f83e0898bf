"""Calibration: a pool's measured throughput against its accelerator's datasheet.

A provider's agent runs the probe (`suanli.agent.calibrate`) on the pool's machines and uploads
the result; the platform keeps it beside the datasheet figures it was compared with, so a pool
whose devices deliver far less than the catalog model it declares shows as over-declared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import registry as repo
from suanli.catalog import MAX_FIGURE, Accelerator, load_catalog
from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.registry import CalibrationRecord
from suanli.domain.resources import PoolState
from suanli.domain.tenants import Principal, Role, require_owner, require_role
from suanli.services.registry.inventory import get_pool

MATMUL_FIGURES: tuple[str, ...] = ("fp64_tflops", "fp32_tflops", "tf32_tflops", "bf16_tflops",
                                   "fp16_tflops")
BANDWIDTH_FIGURE = "memory_bandwidth_gbs"
FIGURES: tuple[str, ...] = (*MATMUL_FIGURES, BANDWIDTH_FIGURE)
DEVICE_KINDS = ("cpu", "gpu", "npu", "dcu", "xpu")

# The verdict rests on the best matmul figure relative to its datasheet value: a device that
# reaches half its datasheet in no precision at all is not the device declared (or is broken).
# Dense matmul reaches 70-95% of peak on healthy hardware, so 80% is "as declared".
AS_DECLARED_FROM = 0.8
OVER_DECLARED_BELOW = 0.5
# Far above one: the probe covered more devices than it said (or the datasheet is wrong).
ABOVE_DATASHEET_NOTE = 2.5
MAX_DEVICES = 1_024
MAX_LIST = 200

NO_DATASHEET = "no datasheet figure"


@dataclass(frozen=True)
class Comparison:
    """Measured per device against the datasheet, figure by figure, and what that says."""

    accelerator: str
    datasheet: dict[str, float]  # figure -> datasheet value per device
    per_device: dict[str, float]  # figure -> measured total / devices
    ratios: dict[str, float]  # figure -> per_device / datasheet, where both exist
    best_figure: str | None
    best_ratio: float | None
    verdict: str
    over_declared: bool
    notes: list[str] = field(default_factory=list)


def datasheet_figures(accelerator: Accelerator) -> dict[str, float]:
    """The catalog's published figures that the probe can measure."""
    values = {name: getattr(accelerator, name) for name in FIGURES}
    return {name: float(value) for name, value in values.items() if value is not None}


def compare(figures: Mapping[str, float], devices: int, device_kind: str,
            accelerator: Accelerator) -> Comparison:
    """Set a probe's figures (totals over `devices`) against one device's datasheet."""
    assert 1 <= devices <= MAX_DEVICES
    datasheet = datasheet_figures(accelerator)
    per_device = {name: float(value) / devices for name, value in figures.items()}
    ratios = {name: _significant(per_device[name] / datasheet[name])
              for name in FIGURES if name in per_device and name in datasheet}
    matmul = {name: ratio for name, ratio in ratios.items() if name in MATMUL_FIGURES}
    notes = _notes(accelerator, device_kind, ratios)
    if not matmul:
        return Comparison(accelerator.key, datasheet, per_device, ratios, None, None,
                          NO_DATASHEET, False, notes)
    best_figure = max(matmul, key=lambda name: matmul[name])
    best = matmul[best_figure]
    weak = sorted(name for name, ratio in matmul.items() if ratio < OVER_DECLARED_BELOW)
    if weak and best >= OVER_DECLARED_BELOW:
        notes.append(f"below {OVER_DECLARED_BELOW:.0%} of datasheet: {', '.join(weak)}")
    return Comparison(accelerator.key, datasheet, per_device, ratios, best_figure, best,
                      verdict(best), best < OVER_DECLARED_BELOW, notes)


def _significant(value: float) -> float:
    # four significant digits: a ratio of 0.00031 must not round to 0
    return float(f"{value:.4g}")


def verdict(best_ratio: float) -> str:
    """One line for the best matmul figure's ratio to its datasheet value."""
    if best_ratio >= AS_DECLARED_FROM:
        return "as declared"
    if best_ratio >= OVER_DECLARED_BELOW:
        return f"below datasheet by {1 - best_ratio:.0%}"
    return f"over-declared: the best figure reaches {best_ratio * 100:.2g}% of datasheet"


def _notes(accelerator: Accelerator, device_kind: str, ratios: Mapping[str, float]) -> list[str]:
    notes = []
    if device_kind != accelerator.kind:
        notes.append(f"the probe measured {device_kind} devices; the pool declares "
                     f"{accelerator.kind} devices ({accelerator.vendor} {accelerator.model})")
    for name, ratio in sorted(ratios.items()):
        if ratio > ABOVE_DATASHEET_NOTE:
            notes.append(f"{name} is {ratio:.1f}x the datasheet: did the probe cover more "
                         "devices than it reported?")
    if device_kind == "cpu" and BANDWIDTH_FIGURE in ratios:
        notes.append("CPU memory bandwidth is one copying thread: a lower bound, "
                     "not part of the verdict")
    return notes


# -- storing and reading ------------------------------------------------------------------------

def check_document(document: Mapping[str, Any]) -> None:
    """The rules a probe document must keep, whoever built it (the API checks them too)."""
    devices = document.get("devices")
    if isinstance(devices, bool) or not isinstance(devices, int) \
            or not 1 <= devices <= MAX_DEVICES:
        raise ValidationFailed(f"must be an integer 1..{MAX_DEVICES}", field="devices")
    if document.get("device_kind") not in DEVICE_KINDS:
        raise ValidationFailed(f"must be one of {', '.join(DEVICE_KINDS)}", field="device_kind")
    figures = document.get("figures")
    if not isinstance(figures, Mapping) or not figures:
        raise ValidationFailed("at least one measured figure is needed", field="figures")
    for name, value in figures.items():
        if name not in FIGURES:
            raise ValidationFailed(f"unknown figure; one of {', '.join(FIGURES)}",
                                   field=f"figures.{name}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0 \
                or value / devices > MAX_FIGURE:
            raise ValidationFailed(f"must be positive and at most {MAX_FIGURE:g} per device",
                                   field=f"figures.{name}")


def record_calibration(session: Session, principal: Principal, pool_id: str,
                       document: Mapping[str, Any], now: datetime) -> CalibrationRecord:
    """Store a probe result for a pool: only its own provider or an operator may."""
    require_role(principal, Role.PROVIDER)
    pool = get_pool(session, pool_id)
    require_owner(principal, pool.tenant_id, f"pool {pool.id}")
    if pool.state == PoolState.RETIRED.value:
        raise Conflict(f"pool {pool.id} is retired", field="pool_id")
    check_document(document)
    devices = int(document["devices"])
    if devices > pool.device_count:
        raise ValidationFailed(f"the probe covers {devices} devices; pool {pool.id} has "
                               f"{pool.device_count}", field="devices")
    accelerator = load_catalog().get(pool.accelerator)
    figures = {name: float(value) for name, value in document["figures"].items()}
    result = compare(figures, devices, document["device_kind"], accelerator)
    details = {key: document[key] for key in ("cores", "not_measured", "measurements",
                                              "environment", "duration_s") if key in document}
    return repo.insert_calibration(session, CalibrationRecord(
        pool_id=pool.id, tenant_id=principal.tenant_id, accelerator=accelerator.key,
        backend=str(document.get("backend", "")), device_kind=document["device_kind"],
        device_name=str(document.get("device_name", "")), devices=devices, measured=figures,
        datasheet=result.datasheet, ratios=result.ratios, best_ratio=result.best_ratio,
        verdict=result.verdict, over_declared=result.over_declared, notes=result.notes,
        probe_version=str(document.get("probe_version", "")),
        host=str(document.get("host", "")), probe=details, created_at=now))


def list_calibrations(session: Session, pool_id: str, *, limit: int = 20,
                      offset: int = 0) -> list[CalibrationRecord]:
    """A pool's calibrations, latest first."""
    assert 1 <= limit <= MAX_LIST + 1 and offset >= 0
    pool = get_pool(session, pool_id)
    return repo.list_calibrations(session, pool.id, limit=limit, offset=offset)


def count_calibrations(session: Session, pool_id: str) -> int:
    pool = get_pool(session, pool_id)
    return repo.count_calibrations(session, pool.id)
