"""Rating (计费): apply a tariff to metered usage, one record at a time or as NumPy columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from suanli.domain.errors import ValidationFailed
from suanli.domain.metering import MAX_RECORD_DURATION, require_aware
from suanli.domain.tariffs import (
    MAX_TIER_START,
    MICRO_PER_UNIT,
    PRICE_SCALE,
    QUANTITY_DECIMALS,
    Band,
    Tariff,
    TierMode,
    line_amount_fen,
    to_micro,
)
from suanli.domain.time import SECONDS_PER_DAY, SECONDS_PER_HOUR, SHANGHAI_OFFSET_S

MAX_RECORD_QUANTITY = Decimal(1_000_000)  # unit-hours in one usage record
MAX_RECORD_QUANTITY_MICRO = int(MAX_RECORD_QUANTITY) * MICRO_PER_UNIT
MAX_MONTH_TO_DATE_MICRO = int(MAX_TIER_START) * MICRO_PER_UNIT
MAX_DURATION_S = int(MAX_RECORD_DURATION.total_seconds())
MIN_START_S = 0  # 1970-01-01
MAX_START_S = 4_102_444_800  # 2100-01-01
MAX_JOB_RATED_FEN = 10**15
MAX_BATCH_RECORDS = 16_000_000
DEFAULT_CHUNK_RECORDS = 16_384  # keeps a chunk's working set in L2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROUND_DIVISOR = MICRO_PER_UNIT * PRICE_SCALE  # micro-units x price/10^4 -> fen
_INT64_SAFE = 2**62


class LineKind(StrEnum):
    USAGE = "usage"
    RESERVED = "reserved"  # inside the tenant's monthly commitment: flat, no TOU, no spot
    MINIMUM = "minimum"  # top-up to the tariff's minimum charge per job


@dataclass(frozen=True, slots=True)
class RatedLine:
    """One bill line; amount_fen == round_half_even(quantity x unit_price_fen)."""

    kind: LineKind
    tier: int | None
    band: Band | None
    quantity: Decimal
    unit_price_fen: Decimal
    amount_fen: int


@dataclass(frozen=True, slots=True)
class RatedUsage:
    tariff_id: str
    lines: tuple[RatedLine, ...]
    amount_fen: int


def unix_seconds(moment: datetime, field_name: str) -> int:
    """Whole seconds since the epoch, floored: time-of-use splits work to the second."""
    require_aware(moment, field_name)
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    if not (MIN_START_S <= seconds <= MAX_START_S + MAX_DURATION_S):
        raise ValidationFailed("must be between 1970 and 2100", field=field_name)
    return seconds


def rate_usage(tariff: Tariff, quantity: Decimal, start: datetime, end: datetime,
               month_to_date_quantity: Decimal, spot: bool = False, *,
               committed_quantity: Decimal = Decimal(0), closes_job: bool = True,
               job_rated_before_fen: int = 0) -> RatedUsage:
    """Rate one usage record; `month_to_date_quantity` is the tenant's use before this record.

    `closes_job` with `job_rated_before_fen` lets the minimum charge per job top up the last
    record of a job; by default a record is a whole job.
    """
    quantity_micro = to_micro(quantity, "quantity", MAX_RECORD_QUANTITY)
    mtd_micro = to_micro(month_to_date_quantity, "month_to_date_quantity", MAX_TIER_START)
    committed_micro = to_micro(committed_quantity, "committed_quantity", MAX_TIER_START)
    start_s = unix_seconds(start, "start")
    end_s = unix_seconds(end, "end")
    _check_interval(start_s, end_s)
    _check_job_before(job_rated_before_fen)
    if committed_micro > 0 and tariff.reserved_unit_price_fen is None:
        raise ValidationFailed("the tariff offers no reserved price", field="committed_quantity")
    band_seconds = _band_seconds(tariff, start_s, end_s)
    lines: list[RatedLine] = []
    for kind, tier, part_micro in _segments(tariff, mtd_micro, quantity_micro, committed_micro):
        if kind == LineKind.RESERVED:
            assert tariff.reserved_unit_price_fen is not None
            lines.append(_line(kind, None, None, part_micro, tariff.reserved_unit_price_fen))
            continue
        assert tier is not None
        for band, band_micro in _split_by_band(part_micro, band_seconds):
            lines.append(_line(kind, tier, band, band_micro,
                               tariff.unit_price_fen(tier, band, spot)))
    total_fen = sum(line.amount_fen for line in lines)
    minimum = tariff.minimum_charge_fen_per_job
    if closes_job and total_fen + job_rated_before_fen < minimum:
        top_up = minimum - job_rated_before_fen - total_fen
        lines.append(RatedLine(LineKind.MINIMUM, None, None, Decimal(0), Decimal(0), top_up))
        total_fen += top_up
    assert total_fen == sum(line.amount_fen for line in lines) and total_fen >= 0
    assert sum(line.quantity for line in lines) * MICRO_PER_UNIT == quantity_micro
    return RatedUsage(tariff.id, tuple(lines), total_fen)


def _check_interval(start_s: int, end_s: int) -> None:
    if not (MIN_START_S <= start_s <= MAX_START_S):
        raise ValidationFailed("must be between 1970 and 2100", field="start")
    if end_s < start_s:
        raise ValidationFailed("must not be before start", field="end")
    if end_s - start_s > MAX_DURATION_S:
        raise ValidationFailed(f"a record covers at most {MAX_DURATION_S} s", field="end")


def _check_job_before(job_rated_before_fen: int) -> None:
    value = job_rated_before_fen
    if isinstance(value, bool) or not isinstance(value, int) or not (
        0 <= value <= MAX_JOB_RATED_FEN
    ):
        raise ValidationFailed(f"must be an int between 0 and {MAX_JOB_RATED_FEN}",
                               field="job_rated_before_fen")


def _line(kind: LineKind, tier: int | None, band: Band | None, quantity_micro: int,
          unit_price_fen: Decimal) -> RatedLine:
    quantity = Decimal(quantity_micro).scaleb(-QUANTITY_DECIMALS)
    return RatedLine(kind, tier, band, quantity, unit_price_fen,
                     line_amount_fen(quantity_micro, unit_price_fen))


def _band_seconds(tariff: Tariff, start_s: int, end_s: int) -> dict[Band, int]:
    """Seconds of [start, end) in each band, walking hour by hour (the plain reference)."""
    # A record shorter than a second is priced in the band of its start.
    end_s = max(end_s, start_s + 1)
    hour_bands = tariff.schedule.hour_bands
    seconds = {band: 0 for band in tariff.bands_in_use()}
    moment = start_s
    while moment < end_s:
        local_hour_index = (moment + SHANGHAI_OFFSET_S) // SECONDS_PER_HOUR
        next_hour = (local_hour_index + 1) * SECONDS_PER_HOUR - SHANGHAI_OFFSET_S
        until = min(end_s, next_hour)
        seconds[hour_bands[local_hour_index % 24]] += until - moment
        moment = until
    assert sum(seconds.values()) == end_s - start_s
    return seconds


def _segments(tariff: Tariff, mtd_micro: int, quantity_micro: int,
              committed_micro: int) -> list[tuple[LineKind, int | None, int]]:
    """Cut [mtd, mtd + quantity) on the month-to-date axis into reserved and tier slices."""
    reach = mtd_micro + quantity_micro
    segments: list[tuple[LineKind, int | None, int]] = []
    reserved = max(0, min(reach, committed_micro) - mtd_micro)
    if reserved:
        segments.append((LineKind.RESERVED, None, reserved))
    floor = max(mtd_micro, committed_micro)
    starts = [int(start.scaleb(QUANTITY_DECIMALS)) for start in tariff.tier_starts()]
    if tariff.tier_mode == TierMode.GRADUATED:
        for tier, tier_start in enumerate(starts):
            tier_end = starts[tier + 1] if tier + 1 < len(starts) else reach
            part = max(0, min(reach, tier_end) - max(floor, tier_start))
            if part:
                segments.append((LineKind.USAGE, tier, part))
    else:
        # The tier of the month's last unit so far: consumption in (start_k, start_k+1].
        reached = sum(1 for tier_start in starts[1:] if tier_start < reach)
        part = max(0, reach - floor)
        if part:
            segments.append((LineKind.USAGE, reached, part))
    assert sum(part for _, _, part in segments) == quantity_micro
    return segments


def _split_by_band(part_micro: int, band_seconds: dict[Band, int]) -> list[tuple[Band, int]]:
    """Share a slice over bands in proportion to time; the rounding rest goes to the main band."""
    total_s = sum(band_seconds.values())
    shares = {band: part_micro * seconds // total_s for band, seconds in band_seconds.items()}
    main_band = max(band_seconds, key=lambda band: band_seconds[band])  # first of equals
    shares[main_band] += part_micro - sum(shares.values())
    return [(band, share) for band, share in shares.items() if share]


# --- vectorised batch path --------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    """A tariff as integer tables for NumPy."""

    band_count: int
    graduated: bool
    starts_micro: NDArray[np.int64]  # (tiers,)
    prices_scaled: NDArray[np.int64]  # (tiers, bands, 2): [.., 0] normal, [.., 1] spot; x 10^4
    reserved_scaled: int  # -1 when the tariff has no reserved price
    prefix_s: NDArray[np.int32]  # (86400, bands): seconds of each band before a second of day
    day_s: NDArray[np.int64]  # (bands,): seconds of each band in a day
    minimum_fen: int


def _compile(tariff: Tariff) -> _Compiled:
    bands = tariff.bands_in_use()
    tiers = len(tariff.tier_starts())
    prices = np.zeros((tiers, len(bands), 2), dtype=np.int64)
    for tier in range(tiers):
        for index, band in enumerate(bands):
            for spot in (0, 1):
                price = tariff.unit_price_fen(tier, band, bool(spot))
                prices[tier, index, spot] = int(price.scaleb(4))
    band_of_hour = np.array([bands.index(band) for band in tariff.schedule.hour_bands])
    band_of_second = np.repeat(band_of_hour, SECONDS_PER_HOUR)
    one_hot = (band_of_second[:, None] == np.arange(len(bands))[None, :]).astype(np.int64)
    inclusive = np.cumsum(one_hot, axis=0)
    prefix = inclusive - one_hot  # seconds strictly before each second of the day
    reserved = tariff.reserved_unit_price_fen
    return _Compiled(
        band_count=len(bands),
        graduated=tariff.tier_mode == TierMode.GRADUATED,
        starts_micro=np.array([int(s.scaleb(QUANTITY_DECIMALS)) for s in tariff.tier_starts()],
                              dtype=np.int64),
        prices_scaled=prices,
        reserved_scaled=-1 if reserved is None else int(reserved.scaleb(4)),
        prefix_s=prefix.astype(np.int32),  # half the cache footprint of int64 for the gathers
        day_s=inclusive[-1].copy(),
        minimum_fen=tariff.minimum_charge_fen_per_job,
    )


def rate_batch(tariff: Tariff, quantity_micro: ArrayLike, start_s: ArrayLike, end_s: ArrayLike,
               month_to_date_micro: ArrayLike, spot: ArrayLike, *,
               committed_micro: ArrayLike | None = None, closes_job: ArrayLike | None = None,
               job_rated_before_fen: ArrayLike | None = None,
               chunk_records: int = DEFAULT_CHUNK_RECORDS) -> NDArray[np.int64]:
    """Rate columns of records under one tariff; amounts equal rate_usage's, to the fen.

    Quantities are integer micro-units (10^-6 unit-hour), times whole Unix seconds.
    """
    assert 1 <= chunk_records <= 1_048_576, chunk_records
    quantity = _column(quantity_micro, "quantity_micro", 0, MAX_RECORD_QUANTITY_MICRO)
    n = len(quantity)
    if n > MAX_BATCH_RECORDS:
        raise ValidationFailed(f"at most {MAX_BATCH_RECORDS} records", field="quantity_micro")
    start = _column(start_s, "start_s", MIN_START_S, MAX_START_S, n)
    end = _column(end_s, "end_s", MIN_START_S, MAX_START_S + MAX_DURATION_S, n)
    _check_column(end >= start, "end_s", "must not be before start_s")
    _check_column(end - start <= MAX_DURATION_S, "end_s", f"at most {MAX_DURATION_S} s long")
    mtd = _column(month_to_date_micro, "month_to_date_micro", 0, MAX_MONTH_TO_DATE_MICRO, n)
    spot_flags = np.asarray(spot, dtype=np.bool_)
    if spot_flags.shape != (n,):
        raise ValidationFailed(f"must have {n} entries", field="spot")
    committed = None
    if committed_micro is not None:
        committed = _column(committed_micro, "committed_micro", 0, MAX_MONTH_TO_DATE_MICRO, n)
        if tariff.reserved_unit_price_fen is None and bool(committed.any()):
            raise ValidationFailed("the tariff offers no reserved price", field="committed_micro")
    closes = (np.ones(n, dtype=np.bool_) if closes_job is None
              else np.asarray(closes_job, dtype=np.bool_))
    if closes.shape != (n,):
        raise ValidationFailed(f"must have {n} entries", field="closes_job")
    before = (np.zeros(n, dtype=np.int64) if job_rated_before_fen is None
              else _column(job_rated_before_fen, "job_rated_before_fen", 0, MAX_JOB_RATED_FEN, n))
    compiled = _compile(tariff)
    amounts = np.empty(n, dtype=np.int64)
    for low in range(0, n, chunk_records):
        high = min(n, low + chunk_records)
        chunk_committed = None if committed is None else committed[low:high]
        amounts[low:high] = _rate_chunk(compiled, quantity[low:high], start[low:high],
                                        end[low:high], mtd[low:high], spot_flags[low:high],
                                        chunk_committed)
    if compiled.minimum_fen > 0:
        top_up = np.maximum(0, compiled.minimum_fen - before - amounts)
        amounts += np.where(closes, top_up, 0)
    assert amounts.shape == (n,) and (n == 0 or int(amounts.min()) >= 0)
    return amounts


def _column(values: ArrayLike, field_name: str, low: int, high: int,
            length: int | None = None) -> NDArray[np.int64]:
    array = np.asarray(values)
    if array.ndim != 1 or (length is not None and len(array) != length):
        raise ValidationFailed(f"must be a 1-D column of {length} entries", field=field_name)
    if array.dtype.kind not in "iu" and array.size:
        raise ValidationFailed(f"must be integers, got {array.dtype}", field=field_name)
    array = array.astype(np.int64, copy=False)
    _check_column((array >= low) & (array <= high), field_name, f"must be in [{low}, {high}]")
    return array


def _check_column(ok: NDArray[np.bool_], field_name: str, detail: str) -> None:
    if not bool(ok.all()):
        first = int(np.flatnonzero(~ok)[0])
        raise ValidationFailed(f"record {first}: {detail}", field=field_name)


def _rate_chunk(c: _Compiled, quantity: NDArray[np.int64], start: NDArray[np.int64],
                end: NDArray[np.int64], mtd: NDArray[np.int64], spot: NDArray[np.bool_],
                committed: NDArray[np.int64] | None) -> NDArray[np.int64]:
    reach = mtd + quantity
    amounts = np.zeros(len(quantity), dtype=np.int64)
    floor = mtd
    if committed is not None:
        floor = np.maximum(mtd, committed)
        if c.reserved_scaled >= 0:
            reserved = np.maximum(0, np.minimum(reach, committed) - mtd)
            amounts += _round_mul(reserved, np.int64(c.reserved_scaled))
    band_split = _band_split(c, start, end) if c.band_count > 1 else None
    spot_index = spot.astype(np.intp)
    if c.graduated:
        tiers = len(c.starts_micro)
        for tier in range(tiers):
            upper = reach if tier + 1 == tiers else np.minimum(reach, c.starts_micro[tier + 1])
            part = np.maximum(0, upper - np.maximum(floor, c.starts_micro[tier]))
            if not bool(part.any()):
                continue
            prices = c.prices_scaled[tier][:, spot_index].T  # (n, bands)
            amounts += _rate_part(part, band_split, prices)
    else:
        reached = np.searchsorted(c.starts_micro[1:], reach, side="left")
        part = np.maximum(0, reach - floor)
        prices = c.prices_scaled[reached, :, spot_index]  # (n, bands)
        amounts += _rate_part(part, band_split, prices)
    return amounts


def _band_split(c: _Compiled, start: NDArray[np.int64], end: NDArray[np.int64]
                ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.intp]]:
    """Seconds in each band per record, the total, and the band with the most seconds."""
    end = np.maximum(end, start + 1)
    start_day, start_second = np.divmod(start + SHANGHAI_OFFSET_S, SECONDS_PER_DAY)
    end_day, end_second = np.divmod(end + SHANGHAI_OFFSET_S, SECONDS_PER_DAY)
    within_day = c.prefix_s[end_second] - c.prefix_s[start_second]  # int32, |x| < 86,400
    seconds = (end_day - start_day)[:, None] * c.day_s[None, :] + within_day
    return seconds, end - start, np.argmax(seconds, axis=1)


def _rate_part(part: NDArray[np.int64],
               band_split: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.intp]] | None,
               prices: NDArray[np.int64]) -> NDArray[np.int64]:
    if band_split is None:
        return _round_mul(part, prices[:, 0])
    seconds, total, main_band = band_split
    shares = part[:, None] * seconds // total[:, None]
    shares[np.arange(len(part)), main_band] += part - shares.sum(axis=1)
    amounts: NDArray[np.int64] = _round_mul(shares, prices).sum(axis=1)
    return amounts


def _round_mul(quantity: NDArray[np.int64], price: NDArray[np.int64] | np.int64
               ) -> NDArray[np.int64]:
    """round_half_even(quantity_micro x price_scaled / 10^10), exactly, in int64."""
    divisor = np.int64(_ROUND_DIVISOR)
    if int(np.max(quantity, initial=0)) * int(np.max(price, initial=0)) < _INT64_SAFE:
        quotient, rest = np.divmod(quantity * price, divisor)
    else:
        # Too big for one int64 product: q = whole x 10^6 + micro, and
        # q x p / 10^10 = whole x p / 10^4 + micro x p / 10^10, each product below 2^63.
        whole, micro = np.divmod(quantity, np.int64(MICRO_PER_UNIT))
        whole_q, whole_r = np.divmod(whole * price, np.int64(PRICE_SCALE))
        micro_q, micro_r = np.divmod(micro * price, divisor)
        carry, rest = np.divmod(whole_r * np.int64(MICRO_PER_UNIT) + micro_r, divisor)
        quotient = whole_q + micro_q + carry
    round_up = (2 * rest > divisor) | ((2 * rest == divisor) & ((quotient & 1) == 1))
    rounded: NDArray[np.int64] = quotient + round_up
    return rounded
