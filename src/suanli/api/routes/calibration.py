"""Pool calibrations: /v1/pools/{pool_id}/calibrations and the /calibration summary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from suanli.api.context import AppContext, context, principal
from suanli.api.schemas import Page
from suanli.catalog import MAX_FIGURE
from suanli.domain.registry import CalibrationRecord
from suanli.domain.tenants import Principal
from suanli.services.registry import calibration
from suanli.services.registry.inventory import get_pool

router = APIRouter(prefix="/v1", tags=["calibration"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]

# Printable text only: PostgreSQL refuses NUL in text, and nobody needs control characters here.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[str, StringConstraints(max_length=200, pattern=_PRINTABLE)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                       pattern=r"^[A-Za-z0-9_.\-]+$")]
Figure = Annotated[float | None, Field(gt=0, le=MAX_FIGURE * calibration.MAX_DEVICES,
                                       allow_inf_nan=False)]
FigureName = Literal["fp64_tflops", "fp32_tflops", "tf32_tflops", "bf16_tflops", "fp16_tflops",
                     "memory_bandwidth_gbs"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FiguresIn(Strict):
    """Totals over the devices the probe covered: TFLOPS, and GB/s for memory bandwidth."""

    fp64_tflops: Figure = None
    fp32_tflops: Figure = None
    tf32_tflops: Figure = None
    bf16_tflops: Figure = None
    fp16_tflops: Figure = None
    memory_bandwidth_gbs: Figure = None


class MeasurementIn(Strict):
    figure: FigureName
    value: float = Field(gt=0, le=MAX_FIGURE * calibration.MAX_DEVICES, allow_inf_nan=False)
    size: int = Field(ge=1, le=2**40, description="matrix order n, or bytes copied")
    repeats: int = Field(ge=1, le=1_000)
    best_s: float = Field(gt=0, le=3_600, allow_inf_nan=False)
    device_index: int = Field(default=0, ge=0, le=calibration.MAX_DEVICES)


class CalibrationIn(Strict):
    """A probe result, as `suanli agent calibrate` builds it (`ProbeResult.to_json()`)."""

    probe_version: Annotated[str, StringConstraints(min_length=1, max_length=32,
                                                    pattern=_PRINTABLE)]
    backend: Annotated[str, StringConstraints(min_length=1, max_length=32,
                                              pattern=r"^[a-z0-9][a-z0-9-]*$")]
    device_kind: Literal["cpu", "gpu", "npu", "dcu", "xpu"]
    device_name: Text = ""
    devices: int = Field(ge=1, le=calibration.MAX_DEVICES,
                         description="how many of the pool's devices the figures cover")
    cores: int | None = Field(default=None, ge=1, le=1_000_000)
    host: Text = ""
    figures: FiguresIn
    not_measured: dict[Key, Text] = Field(default_factory=dict, max_length=16)
    measurements: list[MeasurementIn] = Field(default_factory=list, max_length=256)
    environment: dict[Key, Text] = Field(default_factory=dict, max_length=64)
    duration_s: float = Field(default=0, ge=0, le=86_400, allow_inf_nan=False)


class CalibrationOut(BaseModel):
    id: int
    pool_id: str
    tenant_id: str
    accelerator: str
    backend: str
    device_kind: str
    device_name: str
    devices: int
    measured: dict[str, float] = Field(description="totals over `devices`")
    per_device: dict[str, float]
    datasheet: dict[str, float] = Field(description="per device, from the catalog")
    ratios: dict[str, float] = Field(description="per device measured / datasheet")
    best_ratio: float | None
    verdict: str
    over_declared: bool
    notes: list[str]
    probe_version: str
    host: str
    probe: dict[str, Any]
    created_at: datetime


class CalibrationSummaryOut(BaseModel):
    id: int
    created_at: datetime
    verdict: str
    over_declared: bool
    best_ratio: float | None
    ratios: dict[str, float]
    devices: int
    device_name: str
    backend: str


class PoolCalibrationOut(BaseModel):
    pool_id: str
    accelerator: str
    device_count: int
    calibrations: int
    latest: CalibrationSummaryOut | None


def _out(row: CalibrationRecord) -> CalibrationOut:
    assert row.id is not None, "a stored calibration has its id"
    per_device = {name: value / row.devices for name, value in row.measured.items()}
    return CalibrationOut(
        id=row.id, pool_id=row.pool_id, tenant_id=row.tenant_id, accelerator=row.accelerator,
        backend=row.backend, device_kind=row.device_kind, device_name=row.device_name,
        devices=row.devices, measured=row.measured, per_device=per_device,
        datasheet=row.datasheet, ratios=row.ratios, best_ratio=row.best_ratio,
        verdict=row.verdict, over_declared=row.over_declared, notes=list(row.notes or []),
        probe_version=row.probe_version, host=row.host, probe=row.probe,
        created_at=row.created_at)


@router.post("/pools/{pool_id}/calibrations", status_code=201, response_model=CalibrationOut)
def upload_calibration(pool_id: str, body: CalibrationIn, ctx: Ctx,
                       caller: Caller) -> CalibrationOut:
    """Store a probe result for a pool (its provider or an operator) and compare it."""
    document = body.model_dump()
    document["figures"] = body.figures.model_dump(exclude_none=True)
    with ctx.db.unit_of_work() as session:
        row = calibration.record_calibration(session, caller, pool_id, document,
                                             ctx.clock.now())
        return _out(row)


@router.get("/pools/{pool_id}/calibrations", response_model=Page[CalibrationOut])
def list_calibrations(pool_id: str, ctx: Ctx, caller: Caller,
                      limit: Annotated[int, Query(ge=1, le=calibration.MAX_LIST)] = 20,
                      offset: Annotated[int, Query(ge=0, le=100_000)] = 0
                      ) -> Page[CalibrationOut]:
    """A pool's calibrations, latest first."""
    with ctx.db.unit_of_work() as session:
        rows = calibration.list_calibrations(session, pool_id, limit=limit + 1, offset=offset)
        return Page[CalibrationOut](items=[_out(r) for r in rows[:limit]],
                                    next_offset=offset + limit if len(rows) > limit else None)


@router.get("/pools/{pool_id}/calibration", response_model=PoolCalibrationOut)
def pool_calibration(pool_id: str, ctx: Ctx, caller: Caller) -> PoolCalibrationOut:
    """The pool's latest calibration verdict, or none yet."""
    with ctx.db.unit_of_work() as session:
        pool = get_pool(session, pool_id)
        latest = calibration.list_calibrations(session, pool.id, limit=1)
        summary = None
        if latest:
            summary = CalibrationSummaryOut.model_validate(latest[0], from_attributes=True)
        return PoolCalibrationOut(pool_id=pool.id, accelerator=pool.accelerator,
                                  device_count=pool.device_count,
                                  calibrations=calibration.count_calibrations(session, pool.id),
                                  latest=summary)
