"""Metering (算力度量): usage records to compute units and energy; rules for ingesting them."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
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


# -- building a usage record (issue 12: one place for both ways a record arrives) ------------

MAX_RECORDS_PER_LEASE = 1000
# A lease that ended takes its final record until this long after: the hold's own grace.
FINAL_RECORD_GRACE = timedelta(hours=6)
MAX_WALL_S = 366 * 86_400
MAX_AGENT_FIGURE = 1e12  # cpu seconds, MB of memory, watt-hours: a sanity bound


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """What a lease allows a record of it to claim."""

    lease_id: str
    job_id: str
    tenant_id: str
    provider_tenant_id: str
    pool_id: str
    accelerator: str
    devices: int
    started_at: datetime  # when the lease began
    ended_at: datetime | None  # when it was released or expired; None while it runs
    time_limit_s: int  # the job's: no lease bills more run time than this in total
    device_power_kw: Decimal  # catalog TDP, for an energy estimate


@dataclass(frozen=True, slots=True)
class MeteredSpan:
    """A record the lease already has."""

    record_id: str
    start: datetime
    end: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PostedUsage:
    """A record a provider posts (its own meters, a peer platform): it must fit as it is."""

    record_id: str
    start: datetime
    end: datetime
    device_count: int | None = None  # default: the lease's devices
    measured_energy_wh: int | None = None


@dataclass(frozen=True, slots=True)
class ReportedUsage:
    """An agent's final report of a lease: the run time it measured, ending now. It is fitted
    into what the lease still allows, never refused for it: the work was done."""

    record_id: str
    wall_s: float
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    energy_wh: float | None = None  # measured (NVML) unless energy_estimated
    energy_estimated: bool = True
    utilisation: float = 1.0


@dataclass(frozen=True, slots=True)
class NewUsageRecord:
    """A usage record ready to store: its interval, run time and energy agree."""

    id: str
    lease_id: str
    job_id: str
    pool_id: str
    tenant_id: str
    provider_tenant_id: str
    accelerator: str
    devices: int
    started_at: datetime
    ended_at: datetime
    wall_s: float
    device_seconds: float
    cpu_s: float | None
    max_rss_mb: float | None
    energy_wh: float
    energy_estimated: bool
    content_sha256: str  # of what was reported: the same report again is the same record


def build_usage_record(terms: LeaseTerms, usage: PostedUsage | ReportedUsage,
                       earlier: Sequence[MeteredSpan], now: datetime) -> NewUsageRecord:
    """The record a report makes of a lease, under the lease's rules:

    - it lies inside the lease: not before it began, not after it ended (or after now);
    - it overlaps no other record of the lease, and all of them together bill no more run
      time than the job's time limit;
    - a lease that ended takes one more record, its final one, within FINAL_RECORD_GRACE.

    A posted record that breaks a rule is refused (422 naming the field; 409 for an overlap or
    a second final record); an agent's report is cut to what the rules leave.
    """
    require_aware(now, "now")
    assert terms.devices >= 1 and terms.time_limit_s >= 1, terms
    if len(earlier) >= MAX_RECORDS_PER_LEASE:
        raise Conflict(f"lease {terms.lease_id} has {len(earlier)} records, the most a lease "
                       "may have", field="lease_id")
    _check_final(terms, earlier, now)
    if isinstance(usage, PostedUsage):
        return _posted(terms, usage, earlier, now)
    return _reported(terms, usage, earlier, now)


def _check_final(terms: LeaseTerms, earlier: Sequence[MeteredSpan], now: datetime) -> None:
    if terms.ended_at is None:
        return
    if now > terms.ended_at + FINAL_RECORD_GRACE:
        raise ValidationFailed(f"lease {terms.lease_id} ended at {terms.ended_at.isoformat()}; "
                               f"its final record was due within {FINAL_RECORD_GRACE}",
                               field="lease_id")
    final = next((e for e in earlier if e.created_at >= terms.ended_at), None)
    if final is not None:
        raise Conflict(f"lease {terms.lease_id} ended and already has its final record "
                       f"{final.record_id}", field="lease_id")


def _posted(terms: LeaseTerms, usage: PostedUsage, earlier: Sequence[MeteredSpan],
            now: datetime) -> NewUsageRecord:
    start, end = require_aware(usage.start, "start"), require_aware(usage.end, "end")
    devices = terms.devices if usage.device_count is None else usage.device_count
    if isinstance(devices, bool) or not isinstance(devices, int) or \
            not 1 <= devices <= terms.devices:
        raise ValidationFailed(f"must be 1..{terms.devices} (the lease's devices)",
                               field="device_count")
    if end <= start:
        raise ValidationFailed("must be after start", field="end")
    if start < terms.started_at:
        raise ValidationFailed(f"before the lease began ({terms.started_at.isoformat()})",
                               field="start")
    latest = terms.ended_at if terms.ended_at is not None else now + MAX_CLOCK_SKEW
    if end > latest:
        what = "the lease ended" if terms.ended_at is not None else "now"
        raise ValidationFailed(f"after {what} ({latest.isoformat()})", field="end")
    for span in earlier:
        if start < span.end and span.start < end:
            raise Conflict(f"overlaps record {span.record_id} of the lease "
                           f"[{span.start.isoformat()}, {span.end.isoformat()})", field="start")
    used = sum(((s.end - s.start) for s in earlier), timedelta(0))
    limit = timedelta(seconds=terms.time_limit_s)
    if used + (end - start) > limit:
        raise ValidationFailed(f"the lease's records would bill {used + (end - start)} of run "
                               f"time; the job's time limit is {limit}", field="end")
    content = usage_content(terms, usage)
    energy = usage.measured_energy_wh
    return _record(terms, usage.record_id, devices, start, end, None, None,
                   None if energy is None else float(energy), Decimal(1), content)


def usage_content(terms: LeaseTerms, usage: PostedUsage | ReportedUsage) -> dict[str, object]:
    """What was reported, checked and in canonical form: its digest tells a retry of the
    same report (the same record) from a different one (409)."""
    if isinstance(usage, PostedUsage):
        energy = usage.measured_energy_wh
        if energy is not None and (isinstance(energy, bool) or not isinstance(energy, int)
                                   or not 0 <= energy <= MAX_MEASURED_ENERGY_WH):
            raise ValidationFailed(f"must be an int between 0 and {MAX_MEASURED_ENERGY_WH}",
                                   field="measured_energy_wh")
        devices = terms.devices if usage.device_count is None else usage.device_count
        return {"source": "posted", "lease_id": terms.lease_id, "devices": devices,
                "start": require_aware(usage.start, "start").isoformat(),
                "end": require_aware(usage.end, "end").isoformat(),
                "measured_energy_wh": energy}
    return {"source": "agent", "wall_s": _figure(usage.wall_s, "usage.wall_s", MAX_WALL_S),
            "cpu_s": _figure(usage.cpu_s, "usage.cpu_s", MAX_AGENT_FIGURE),
            "max_rss_mb": _figure(usage.max_rss_mb, "usage.max_rss_mb", MAX_AGENT_FIGURE),
            "energy_wh": _figure(usage.energy_wh, "usage.energy_wh", MAX_AGENT_FIGURE),
            "energy_estimated": bool(usage.energy_estimated),
            "utilisation": _figure(usage.utilisation, "usage.utilisation", 1.0)}


def content_digest(content: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _reported(terms: LeaseTerms, usage: ReportedUsage, earlier: Sequence[MeteredSpan],
              now: datetime) -> NewUsageRecord:
    content = usage_content(terms, usage)
    wall_s, utilisation, energy = (content["wall_s"], content["utilisation"],
                                   content["energy_wh"])
    assert isinstance(wall_s, float) and isinstance(utilisation, float | None)
    assert isinstance(energy, float | None)
    end = terms.ended_at if terms.ended_at is not None and terms.ended_at < now else now
    floor = max([terms.started_at, *(s.end for s in earlier)])
    used = sum(((s.end - s.start).total_seconds() for s in earlier), 0.0)
    billed_s = max(0.0, min(wall_s, terms.time_limit_s - used, (end - floor).total_seconds()))
    start = end - timedelta(seconds=billed_s)
    measured = None
    if energy is not None and not usage.energy_estimated:
        measured = energy * billed_s / wall_s if wall_s > 0 else 0.0  # what was billed of it
    cpu_s, max_rss_mb = usage_figures(content)
    return _record(terms, usage.record_id, terms.devices, start, end, cpu_s, max_rss_mb,
                   measured, Decimal(repr(utilisation if utilisation is not None else 1.0)),
                   content)


def usage_figures(content: dict[str, object]) -> tuple[float | None, float | None]:
    cpu_s, max_rss_mb = content["cpu_s"], content["max_rss_mb"]
    assert isinstance(cpu_s, float | None) and isinstance(max_rss_mb, float | None)
    return cpu_s, max_rss_mb


def _figure(value: object, field: str, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or not 0 <= value <= high:
        raise ValidationFailed(f"must be a number between 0 and {high:g}", field=field)
    return float(value)


def _record(terms: LeaseTerms, record_id: str, devices: int, start: datetime, end: datetime,
            cpu_s: float | None, max_rss_mb: float | None, measured_wh: float | None,
            utilisation: Decimal, content: dict[str, object]) -> NewUsageRecord:
    check_identifier(record_id, "id")
    wall_s = (end - start).total_seconds()
    if measured_wh is None:
        estimate = (terms.device_power_kw * 1000 * devices * utilisation
                    * Decimal(repr(wall_s)) / 3600)
        energy_wh = float(estimate)
    else:
        energy_wh = measured_wh
    digest = content_digest(content)
    return NewUsageRecord(record_id, terms.lease_id, terms.job_id, terms.pool_id,
                          terms.tenant_id, terms.provider_tenant_id, terms.accelerator,
                          devices, start, end, wall_s, wall_s * devices, cpu_s, max_rss_mb,
                          energy_wh, measured_wh is None, digest)


def billed_record(record_id: str, lease_id: str, job_id: str, tenant_id: str, pool_id: str,
                  devices: int, ended_at: datetime, wall_s: float, time_limit_s: int,
                  measured_energy_wh: int | None) -> UsageRecord | None:
    """A stored record as rating sees it: its run time ending when it ended, never more than
    the job's time limit (records built above already keep to it; older ones may not); None
    when nothing ran."""
    seconds = min(Decimal(repr(wall_s)), Decimal(time_limit_s))
    duration = timedelta(seconds=float(seconds))
    if duration <= timedelta(0):
        return None
    return UsageRecord(record_id, lease_id, job_id, tenant_id, pool_id, devices,
                       ended_at - duration, ended_at, measured_energy_wh=measured_energy_wh)
