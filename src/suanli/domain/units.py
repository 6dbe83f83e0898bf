"""The standard compute unit (SCU, 标准算力单位): nominal and effective ratings, conversions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from suanli.domain.errors import NotFound, ValidationFailed

UNIT_VERSION = "SCU v1"

# 1 SCU = one hour of 100 TFLOPS of dense FP16/BF16 tensor throughput (a datasheet peak).
REFERENCE_TFLOPS = Decimal(100)

WORKLOAD_CLASSES: tuple[str, ...] = ("general", "training", "inference", "hpc")

# Ratings are stored to 1/10,000 SCU per device-hour; metered amounts to 1/1,000,000 SCU
# and device-hours to 1/1,000,000 h (3.6 ms), so a lease's rounding error stays far below
# any price step. Banker's rounding keeps repeated conversions unbiased.
RATE_QUANTUM = Decimal("0.0001")
UNIT_QUANTUM = Decimal("0.000001")
HOURS_QUANTUM = Decimal("0.000001")
ROUNDING = ROUND_HALF_EVEN

# INT8 units typically run at twice the FP16 rate of the same silicon, so half the INT8
# figure is the FP16-equivalent of a device that publishes only INT8 (MLU290, Atlas 300I Duo).
INT8_TO_FP16 = Decimal("0.5")

MAX_DEVICE_HOURS = Decimal(10) ** 9  # a sanity bound: 10^9 device-hours in one conversion

DerivedFrom = Literal["measured", "datasheet"]
NominalBasis = Literal["fp16/bf16", "int8/2", "fp32", "fp64"]


class DeviceFigures(Protocol):
    """The datasheet figures the unit needs; `suanli.catalog.Accelerator` satisfies it."""

    @property
    def key(self) -> str: ...
    @property
    def fp64_tflops(self) -> float | None: ...
    @property
    def fp32_tflops(self) -> float | None: ...
    @property
    def bf16_tflops(self) -> float | None: ...
    @property
    def fp16_tflops(self) -> float | None: ...
    @property
    def int8_tops(self) -> float | None: ...


def _decimal(value: float | int | Decimal) -> Decimal:
    # via str so 312.0 becomes Decimal("312.0"), not the binary expansion of the float
    return value if isinstance(value, Decimal) else Decimal(str(value))


def nominal_basis(acc: DeviceFigures) -> tuple[NominalBasis, Decimal] | None:
    """The figure SCU v1 rates a device by, in FP16-equivalent TFLOPS, or None if it has none.

    Order: the larger of dense FP16 and BF16; else half the INT8 TOPS; else FP32; else FP64.
    """
    half = [f for f in (acc.fp16_tflops, acc.bf16_tflops) if f is not None]
    if half:
        return "fp16/bf16", _decimal(max(half))
    if acc.int8_tops is not None:
        return "int8/2", _decimal(acc.int8_tops) * INT8_TO_FP16
    if acc.fp32_tflops is not None:
        return "fp32", _decimal(acc.fp32_tflops)
    if acc.fp64_tflops is not None:
        return "fp64", _decimal(acc.fp64_tflops)
    return None


def is_rated(acc: DeviceFigures) -> bool:
    return nominal_basis(acc) is not None


def nominal_units_per_device_hour(acc: DeviceFigures) -> Decimal:
    """SCU one device earns per hour by its datasheet alone (see docs/compute-units.md)."""
    basis = nominal_basis(acc)
    if basis is None:
        raise ValidationFailed(
            f"accelerator {acc.key!r} has no published FP16, BF16, INT8, FP32 or FP64 figure, "
            f"so {UNIT_VERSION} cannot rate it",
            field="accelerator",
        )
    return quantize_rate(basis[1] / REFERENCE_TFLOPS)


def quantize_rate(value: Decimal) -> Decimal:
    return value.quantize(RATE_QUANTUM, rounding=ROUNDING)


def check_workload_class(workload_class: str) -> str:
    if workload_class not in WORKLOAD_CLASSES:
        raise ValidationFailed(
            f"unknown workload class {workload_class!r}: use one of {', '.join(WORKLOAD_CLASSES)}",
            field="workload_class",
        )
    return workload_class


@dataclass(frozen=True)
class Rating:
    """Effective SCU per device-hour of one device for one workload class."""

    units_per_device_hour: Decimal
    derived_from: DerivedFrom
    source: str  # "lambda", "sia", "gavel", or "datasheet:<figure>"
    measurements: int  # throughput pairs behind a measured rating; 0 for datasheet ones
    measured_on: str | None = None  # the catalog key whose measurements stand in, if not itself

    def __post_init__(self) -> None:
        if self.units_per_device_hour <= 0:
            raise ValidationFailed("a rating must be positive", field="units_per_device_hour")
        if self.derived_from not in ("measured", "datasheet"):
            raise ValidationFailed("must be 'measured' or 'datasheet'", field="derived_from")
        if (self.derived_from == "measured") != (self.measurements > 0):
            raise ValidationFailed(
                "a measured rating needs measurements, a datasheet one has none",
                field="measurements",
            )


@dataclass(frozen=True)
class RatingsTable:
    """Effective ratings per device per workload class, for one unit version."""

    unit_version: str
    reference_key: str
    ratings: Mapping[str, Mapping[str, Rating]]

    def rating(self, acc_key: str, workload_class: str) -> Rating:
        check_workload_class(workload_class)
        per_class = self.ratings.get(acc_key)
        if per_class is None:
            raise NotFound(
                f"no {self.unit_version} rating for accelerator {acc_key!r}: it is not in the "
                "catalog or has no published throughput figure",
                field="accelerator",
            )
        rating = per_class.get(workload_class)
        if rating is None:
            raise NotFound(
                f"accelerator {acc_key!r} has no {workload_class!r} rating "
                f"(rated classes: {', '.join(sorted(per_class))})",
                field="workload_class",
            )
        return rating


def effective_units_per_device_hour(
    acc_key: str, workload_class: str, ratings: RatingsTable
) -> Decimal:
    """SCU one device of `acc_key` earns per hour on work of `workload_class`."""
    return ratings.rating(acc_key, workload_class).units_per_device_hour


def _check_amount(value: Decimal | int, field_name: str) -> Decimal:
    # floats would carry binary rounding into metered (and so billed) quantities
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise ValidationFailed(
            f"must be a Decimal or int, got {type(value).__name__}", field=field_name
        )
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed(f"must be finite and non-negative, got {value}", field=field_name)
    return amount


def _check_rate(units_per_device_hour: Decimal) -> Decimal:
    rate = _check_amount(units_per_device_hour, "units_per_device_hour")
    if rate == 0:
        raise ValidationFailed("must be positive", field="units_per_device_hour")
    return rate


def device_hours_to_units(device_hours: Decimal | int, units_per_device_hour: Decimal) -> Decimal:
    """Metered SCU for `device_hours` at a rate, quantised to UNIT_QUANTUM."""
    hours = _check_amount(device_hours, "device_hours")
    if hours > MAX_DEVICE_HOURS:
        raise ValidationFailed(f"must be at most {MAX_DEVICE_HOURS}", field="device_hours")
    return (hours * _check_rate(units_per_device_hour)).quantize(UNIT_QUANTUM, rounding=ROUNDING)


def units_to_device_hours(units: Decimal | int, units_per_device_hour: Decimal) -> Decimal:
    """Device-hours that `units` SCU buy at a rate, quantised to HOURS_QUANTUM."""
    amount = _check_amount(units, "units")
    hours = amount / _check_rate(units_per_device_hour)
    if hours > MAX_DEVICE_HOURS:
        raise ValidationFailed(f"buys more than {MAX_DEVICE_HOURS} device-hours", field="units")
    return hours.quantize(HOURS_QUANTUM, rounding=ROUNDING)


def _parse_decimal(value: Any, field_name: str) -> Decimal:
    if not isinstance(value, str):
        raise ValidationFailed("must be a decimal string", field=field_name)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValidationFailed(f"not a decimal: {value!r}", field=field_name) from None


def _parse_rating(doc: Mapping[str, Any], where: str) -> Rating:
    try:
        return Rating(
            units_per_device_hour=_parse_decimal(doc["units_per_device_hour"], where),
            derived_from=doc["derived_from"],
            source=str(doc["source"]),
            measurements=int(doc["measurements"]),
            measured_on=doc.get("measured_on"),
        )
    except KeyError as exc:
        raise ValidationFailed(f"missing {exc.args[0]!r}", field=where) from None


def ratings_from_document(doc: Mapping[str, Any]) -> RatingsTable:
    """Parses and checks an effective-ratings document (the JSON tools/derive_ratings.py writes)."""
    version = doc.get("unit_version")
    if version != UNIT_VERSION:
        raise ValidationFailed(
            f"ratings are for {version!r}, this code meters in {UNIT_VERSION!r}",
            field="unit_version",
        )
    devices = doc.get("devices")
    if not isinstance(devices, Mapping) or not devices:
        raise ValidationFailed("no devices", field="devices")
    ratings: dict[str, dict[str, Rating]] = {}
    for key, entry in devices.items():
        per_class = {}
        for workload_class, rating_doc in entry.get("ratings", {}).items():
            check_workload_class(workload_class)
            per_class[workload_class] = _parse_rating(rating_doc, f"devices.{key}.{workload_class}")
        ratings[key] = per_class
    reference_key = str(doc.get("reference_device"))
    if reference_key not in ratings:
        raise ValidationFailed(
            f"reference {reference_key!r} is not rated", field="reference_device"
        )
    return RatingsTable(unit_version=version, reference_key=reference_key, ratings=ratings)
