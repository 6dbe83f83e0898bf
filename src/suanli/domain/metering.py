"""Metering (算力度量): usage records to compute units and energy; rules for ingesting them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum

from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.tariffs import (
    MONEY_CONTEXT,
    QUANTITY_QUANTUM,
    Basis,
    check_decimal,
    check_identifier,
)
from suanli.domain.time import SHANGHAI

ENERGY_QUANTUM = Decimal("0.001")  # kWh to the watt-hour
MAX_DEVICES_PER_RECORD = 1_000_000
MAX_RECORD_DURATION = timedelta(days=31)
MAX_UNITS_PER_DEVICE_HOUR = Decimal(1_000_000)
MAX_DEVICE_POWER_KW = Decimal(100)
MAX_MEASURED_ENERGY_WH = 10**13
# A late record is accepted until this long after its billing period (a calendar month in
# Asia/Shanghai) has closed: long enough for a provider's meter outage over a weekend, short
# enough that bills can be final a few days into the next month.
LATE_WINDOW = timedelta(hours=72)
# Providers' clocks drift; a record ending a little in the future is still believable.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_INGEST_BATCH = 100_000
_MICROSECONDS_PER_HOUR = 3_600_000_000


class RecordTooLate(ValidationFailed):
    """The record's billing period closed more than the late window ago."""


class IngestOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # same id, same content: ignored, nothing changes


def require_aware(value: object, field_name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed("must be a timezone-aware datetime", field=field_name)
    return value


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Metered consumption of one lease over [start, end), as reported by the provider (话单)."""

    id: str
    lease_id: str
    job_id: str
    tenant_id: str
    pool_id: str
    device_count: int
    start: datetime
    end: datetime
    measured_energy_wh: int | None = None  # from the site's meters, when it has them

    def __post_init__(self) -> None:
        for name in ("id", "lease_id", "job_id", "tenant_id", "pool_id"):
            check_identifier(getattr(self, name), name)
        count = self.device_count
        if isinstance(count, bool) or not isinstance(count, int) or not (
            1 <= count <= MAX_DEVICES_PER_RECORD
        ):
            raise ValidationFailed(f"must be an int between 1 and {MAX_DEVICES_PER_RECORD}",
                                   field="device_count")
        start = require_aware(self.start, "start")
        end = require_aware(self.end, "end")
        if end <= start:
            raise ValidationFailed("must be after start", field="end")
        if end - start > MAX_RECORD_DURATION:
            raise ValidationFailed(f"a record covers at most {MAX_RECORD_DURATION}", field="end")
        energy = self.measured_energy_wh
        if energy is not None and (
            isinstance(energy, bool) or not isinstance(energy, int)
            or not (0 <= energy <= MAX_MEASURED_ENERGY_WH)
        ):
            raise ValidationFailed(f"must be an int between 0 and {MAX_MEASURED_ENERGY_WH}",
                                   field="measured_energy_wh")

    @property
    def device_microseconds(self) -> int:
        duration = self.end - self.start
        micro = (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds
        return micro * self.device_count


@dataclass(frozen=True, slots=True)
class MeteredUsage:
    """A record converted to the quantities rating and reporting use."""

    record_id: str
    device_hours: Decimal  # 6 decimal places
    compute_unit_hours: Decimal  # 6 decimal places
    it_energy_kwh: Decimal  # energy at the devices, 3 decimal places
    facility_energy_kwh: Decimal  # it_energy x PUE: what the site draws from the grid

    def quantity(self, basis: Basis) -> Decimal:
        """The quantity a tariff with this basis rates."""
        if basis == Basis.DEVICE_HOUR:
            return self.device_hours
        assert basis == Basis.COMPUTE_UNIT_HOUR, basis
        return self.compute_unit_hours


def meter(record: UsageRecord, units_per_device_hour: Decimal, device_power_kw: Decimal,
          pue: Decimal) -> MeteredUsage:
    """Convert a record; each figure is rounded half-even once, from the exact duration."""
    rating = check_decimal(units_per_device_hour, "units_per_device_hour", Decimal(0),
                           MAX_UNITS_PER_DEVICE_HOUR, 6)
    power = check_decimal(device_power_kw, "device_power_kw", Decimal(0), MAX_DEVICE_POWER_KW, 6)
    pue_value = check_decimal(pue, "pue", Decimal("1.0"), Decimal("3.0"), 4)
    with localcontext(MONEY_CONTEXT):
        exact_hours = Decimal(record.device_microseconds) / _MICROSECONDS_PER_HOUR
        device_hours = exact_hours.quantize(QUANTITY_QUANTUM, rounding=ROUND_HALF_EVEN)
        units = (exact_hours * rating).quantize(QUANTITY_QUANTUM, rounding=ROUND_HALF_EVEN)
        if record.measured_energy_wh is not None:
            exact_kwh = Decimal(record.measured_energy_wh) / 1000
        else:
            exact_kwh = exact_hours * power
        it_kwh = exact_kwh.quantize(ENERGY_QUANTUM, rounding=ROUND_HALF_EVEN)
        facility_kwh = (exact_kwh * pue_value).quantize(ENERGY_QUANTUM, rounding=ROUND_HALF_EVEN)
    assert device_hours >= 0 and units >= 0 and it_kwh >= 0 and facility_kwh >= it_kwh
    return MeteredUsage(record.id, device_hours, units, it_kwh, facility_kwh)


def billing_period(moment: datetime) -> tuple[int, int]:
    """The (year, month) in Asia/Shanghai that an instant belongs to."""
    local = require_aware(moment, "moment").astimezone(SHANGHAI)
    return local.year, local.month


def record_period(record: UsageRecord) -> tuple[int, int]:
    """A record belongs to the period its last instant falls in (end is exclusive)."""
    return billing_period(record.end - timedelta(microseconds=1))


def period_close(year: int, month: int) -> datetime:
    """The instant a period ends: midnight starting the next month, Asia/Shanghai."""
    assert 1 <= month <= 12 and 1970 <= year <= 9998, (year, month)
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(next_year, next_month, 1, tzinfo=SHANGHAI)


def ingest_decision(record: UsageRecord, existing: UsageRecord | None, now: datetime, *,
                    late_window: timedelta = LATE_WINDOW) -> IngestOutcome:
    """Decide whether to store a record; `existing` is the stored record with the same id."""
    require_aware(now, "now")
    assert timedelta(0) <= late_window <= timedelta(days=31), late_window
    if existing is not None:
        assert existing.id == record.id, (existing.id, record.id)
        if existing == record:
            return IngestOutcome.DUPLICATE
        raise Conflict(f"usage record {record.id} exists with different fields", field="id")
    if record.end > now + MAX_CLOCK_SKEW:
        raise ValidationFailed(f"ends in the future ({record.end.isoformat()})", field="end")
    closes_at = period_close(*record_period(record))
    if now > closes_at + late_window:
        raise RecordTooLate(
            f"period closed at {closes_at.isoformat()}; records are accepted for "
            f"{late_window} after that", field="end")
    return IngestOutcome.ACCEPTED


def ingest_batch(records: Iterable[UsageRecord], existing_by_id: Mapping[str, UsageRecord],
                 now: datetime) -> tuple[list[UsageRecord], list[UsageRecord]]:
    """Split a batch into records to store and duplicates to ignore; any conflict fails all."""
    accepted: dict[str, UsageRecord] = {}
    duplicates: list[UsageRecord] = []
    for count, record in enumerate(records, start=1):
        if count > MAX_INGEST_BATCH:
            raise ValidationFailed(f"at most {MAX_INGEST_BATCH} records a batch", field="records")
        # A record repeated inside the batch is judged against its first occurrence.
        earlier = accepted.get(record.id, existing_by_id.get(record.id))
        outcome = ingest_decision(record, earlier, now)
        if outcome == IngestOutcome.ACCEPTED:
            accepted[record.id] = record
        else:
            duplicates.append(record)
    return list(accepted.values()), duplicates
