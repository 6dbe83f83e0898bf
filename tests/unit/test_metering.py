"""Metering: compute units and energy from a record; duplicate, conflicting and late records."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.metering import (
    SHANGHAI,
    IngestOutcome,
    RecordTooLate,
    UsageRecord,
    billing_period,
    ingest_batch,
    ingest_decision,
    meter,
    period_close,
    record_period,
)
from suanli.domain.tariffs import Basis

D = Decimal
START = datetime(2025, 3, 10, 9, 0, tzinfo=SHANGHAI)


def _record(record_id: str = "rec-1", **overrides: object) -> UsageRecord:
    fields: dict[str, object] = {"id": record_id, "lease_id": "lease-1", "job_id": "job-1",
                                 "tenant_id": "ten-1", "pool_id": "pool-1", "device_count": 8,
                                 "start": START, "end": START + timedelta(hours=1, minutes=30)}
    fields.update(overrides)
    return UsageRecord(**fields)  # type: ignore[arg-type]


def test_record_becomes_device_hours_compute_units_and_energy() -> None:
    metered = meter(_record(), units_per_device_hour=D("2.5"), device_power_kw=D("0.7"),
                    pue=D("1.25"))
    assert metered.device_hours == D("12.000000")  # 8 devices x 1.5 h
    assert metered.compute_unit_hours == D("30.000000")
    assert metered.it_energy_kwh == D("8.400")  # 12 device-hours x 0.7 kW
    assert metered.facility_energy_kwh == D("10.500")
    assert metered.quantity(Basis.DEVICE_HOUR) == D(12)
    assert metered.quantity(Basis.COMPUTE_UNIT_HOUR) == D(30)


def test_units_round_once_from_the_exact_duration() -> None:
    # 1 device for 1 s: 1/3600 h = 0.000277777... -> 0.000278; x 3 units = 0.000833333 -> 0.000833
    record = _record(device_count=1, end=START + timedelta(seconds=1))
    metered = meter(record, D(3), D(1), D(1))
    assert metered.device_hours == D("0.000278")
    assert metered.compute_unit_hours == D("0.000833")  # not 0.000278 x 3 = 0.000834


def test_measured_energy_wins_over_the_estimate() -> None:
    metered = meter(_record(measured_energy_wh=9_123), D(1), D("0.7"), D("1.2"))
    assert metered.it_energy_kwh == D("9.123")
    assert metered.facility_energy_kwh == D("10.948")  # 10.9476 -> 10.948


def test_duplicate_with_same_content_is_ignored_and_a_changed_one_conflicts() -> None:
    now = START + timedelta(hours=2)
    record = _record()
    assert ingest_decision(record, None, now) == IngestOutcome.ACCEPTED
    assert ingest_decision(record, record, now) == IngestOutcome.DUPLICATE
    with pytest.raises(Conflict) as caught:
        ingest_decision(replace(record, device_count=9), record, now)
    assert caught.value.field == "id"


def test_late_records_are_accepted_for_72_hours_after_the_period_closes() -> None:
    record = _record(start=datetime(2025, 3, 31, 22, tzinfo=SHANGHAI),
                     end=datetime(2025, 4, 1, 0, tzinfo=SHANGHAI))
    assert record_period(record) == (2025, 3)  # the end is exclusive
    closes = period_close(2025, 3)
    assert closes == datetime(2025, 4, 1, tzinfo=SHANGHAI)
    assert ingest_decision(record, None, closes + timedelta(hours=72)) == IngestOutcome.ACCEPTED
    with pytest.raises(RecordTooLate) as caught:
        ingest_decision(record, None, closes + timedelta(hours=72, seconds=1))
    assert caught.value.field == "end"


def test_a_record_from_the_future_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="future"):
        ingest_decision(_record(), None, START + timedelta(minutes=30))


def test_period_is_the_shanghai_month() -> None:
    # 2025-01-31 17:00 UTC is 2025-02-01 01:00 in Shanghai
    assert billing_period(datetime(2025, 1, 31, 17, tzinfo=UTC)) == (2025, 2)
    assert period_close(2025, 12) == datetime(2026, 1, 1, tzinfo=SHANGHAI)


def test_batch_ingest_keeps_first_of_repeats_and_fails_whole_on_conflict() -> None:
    now = START + timedelta(hours=2)
    stored = _record("rec-0")
    accepted, duplicates = ingest_batch([_record("rec-1"), _record("rec-1"), stored],
                                        {"rec-0": stored}, now)
    assert [r.id for r in accepted] == ["rec-1"]
    assert [r.id for r in duplicates] == ["rec-1", "rec-0"]
    with pytest.raises(Conflict):
        ingest_batch([_record("rec-1"), _record("rec-1", device_count=2)], {}, now)


@pytest.mark.parametrize("overrides, field", [
    ({"device_count": 0}, "device_count"),
    ({"end": START}, "end"),
    ({"end": START + timedelta(days=32)}, "end"),
    ({"start": datetime(2025, 3, 10, 9)}, "start"),
    ({"measured_energy_wh": -1}, "measured_energy_wh"),
    ({"tenant_id": ""}, "tenant_id"),
])
def test_record_validation_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _record(**overrides)
    assert caught.value.field == field


def test_meter_refuses_float_ratings() -> None:
    with pytest.raises(ValidationFailed) as caught:
        meter(_record(), 2.5, D(1), D(1))  # type: ignore[arg-type]
    assert caught.value.field == "units_per_device_hour"
