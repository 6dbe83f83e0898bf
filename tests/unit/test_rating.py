"""Rating: tiers, time-of-use splits, reserved, minimum charge; batch equals scalar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suanli.domain.errors import ValidationFailed
from suanli.domain.rating import (
    MAX_DURATION_S,
    MAX_RECORD_QUANTITY_MICRO,
    LineKind,
    RatedLine,
    _round_mul,
    rate_batch,
    rate_usage,
)
from suanli.domain.tariffs import (
    BAND_ORDER,
    MAX_UNIT_PRICE_FEN,
    Band,
    Basis,
    Tariff,
    Tier,
    TierMode,
    TimeOfUse,
)

D = Decimal
SH = timezone(timedelta(hours=8))
DAY = datetime(2025, 3, 3, tzinfo=SH)
VALLEY_PEAK = TimeOfUse(
    tuple([Band.VALLEY] * 8 + [Band.PEAK] * 4 + [Band.FLAT] * 12),
    {Band.VALLEY: D("0.5"), Band.PEAK: D("1.5"), Band.FLAT: D(1)})


def _tariff(**overrides: object) -> Tariff:
    fields: dict[str, object] = {"id": "t", "pool_id": "p", "basis": Basis.DEVICE_HOUR,
                                 "base_unit_price_fen": D(1000)}
    fields.update(overrides)
    return Tariff(**fields)  # type: ignore[arg-type]


GRADUATED = _tariff(tiers=(Tier(D(100), D(900)), Tier(D(1000), D(800))))
VOLUME = _tariff(tiers=(Tier(D(100), D(900)), Tier(D(1000), D(800))), tier_mode=TierMode.VOLUME)


def _rate(tariff: Tariff, quantity: str, mtd: str, hours: float = 1, start_hour: int = 12,
          **kwargs: object) -> tuple[int, list[RatedLine]]:
    start = DAY + timedelta(hours=start_hour)
    result = rate_usage(tariff, D(quantity), start, start + timedelta(hours=hours), D(mtd),
                        **kwargs)  # type: ignore[arg-type]
    return result.amount_fen, list(result.lines)


def _summary(lines: list[RatedLine]) -> list[tuple[str, int | None, str | None, str, int]]:
    return [(line.kind.value, line.tier, line.band.value if line.band else None,
             str(line.quantity), line.amount_fen) for line in lines]


def test_graduated_tiers_price_each_slice_at_its_tier() -> None:
    amount, lines = _rate(GRADUATED, "50", "80")
    assert _summary(lines) == [("usage", 0, "flat", "20.000000", 20_000),
                               ("usage", 1, "flat", "30.000000", 27_000)]
    assert amount == 47_000
    assert _rate(GRADUATED, "1000", "50")[0] == 50 * 1000 + 900 * 900 + 50 * 800


def test_volume_tiers_price_the_whole_record_at_the_reached_tier() -> None:
    assert _rate(VOLUME, "50", "80")[0] == 50 * 900
    assert _rate(VOLUME, "40", "60")[0] == 40 * 1000  # reaching exactly 100 stays in tier 0
    assert _rate(VOLUME, "0.000001", "100")[0] == 0  # 0.0009 fen rounds to 0
    assert _rate(VOLUME, "10", "995")[1][0].tier == 2


def test_a_record_spanning_bands_is_split_by_time() -> None:
    # 06:00-09:00 on 2 devices = 6 device-hours: 2 h valley (4 dh at 500), 1 h peak (2 at 1500)
    tariff = _tariff(time_of_use=VALLEY_PEAK)
    amount, lines = _rate(tariff, "6", "0", hours=3, start_hour=6)
    assert _summary(lines) == [("usage", 0, "peak", "2.000000", 3000),
                               ("usage", 0, "valley", "4.000000", 2000)]
    assert amount == 5000


def test_band_split_rest_goes_to_the_band_with_most_time() -> None:
    # 1 unit over 07:00-10:00: 1 h valley, 2 h peak; 1/3 and 2/3 of a micro-unit do not divide
    tariff = _tariff(time_of_use=VALLEY_PEAK)
    _, lines = _rate(tariff, "1", "0", hours=3, start_hour=7)
    assert [(line.band, line.quantity) for line in lines] == [
        (Band.PEAK, D("0.666667")), (Band.VALLEY, D("0.333333"))]


def test_tiers_and_bands_split_together() -> None:
    # 20 units from month-to-date 90 over 07:00-08:00 (valley) and 08:00-09:00 (peak):
    # tier 0 gets 10 (5 valley, 5 peak), tier 1 gets 10 (5 valley, 5 peak).
    tariff = _tariff(tiers=(Tier(D(100), D(900)),), time_of_use=VALLEY_PEAK)
    amount, lines = _rate(tariff, "20", "90", hours=2, start_hour=7)
    assert _summary(lines) == [
        ("usage", 0, "peak", "5.000000", 7500), ("usage", 0, "valley", "5.000000", 2500),
        ("usage", 1, "peak", "5.000000", 6750), ("usage", 1, "valley", "5.000000", 2250)]
    assert amount == 19_000


def test_a_record_over_midnight_uses_shanghai_local_hours() -> None:
    # 23:00-01:00 Shanghai is 15:00-17:00 UTC: 1 h flat, 1 h valley.
    tariff = _tariff(time_of_use=VALLEY_PEAK)
    start = datetime(2025, 3, 3, 15, tzinfo=UTC)
    result = rate_usage(tariff, D(2), start, start + timedelta(hours=2), D(0))
    assert [(line.band, line.amount_fen) for line in result.lines] == [
        (Band.FLAT, 1000), (Band.VALLEY, 500)]


def test_spot_discount_applies_to_usage_but_not_to_the_commitment() -> None:
    tariff = _tariff(spot_discount=D("0.35"), reserved_unit_price_fen=D(700))
    amount, lines = _rate(tariff, "50", "80", spot=True, committed_quantity=D(100))
    assert _summary(lines) == [("reserved", None, None, "20.000000", 14_000),
                               ("usage", 0, "flat", "30.000000", 19_500)]
    assert amount == 33_500


def test_minimum_charge_tops_up_the_job() -> None:
    tariff = _tariff(minimum_charge_fen_per_job=5000)
    amount, lines = _rate(tariff, "1", "0")
    assert amount == 5000 and lines[-1].kind == LineKind.MINIMUM and lines[-1].amount_fen == 4000
    assert _rate(tariff, "1", "0", closes_job=False)[0] == 1000
    assert _rate(tariff, "1", "0", job_rated_before_fen=3000)[0] == 2000
    assert _rate(tariff, "1", "0", job_rated_before_fen=4500)[0] == 1000


def test_the_rounding_rest_goes_to_the_main_band_in_both_paths() -> None:
    # One micro-unit over 07:00-10:00 (1 h valley, 2 h peak): both shares floor to 0 and the
    # rest goes to peak, the band with most time: 0.000001 x 150,000,000 = 150 fen.
    tariff = _tariff(base_unit_price_fen=D(100_000_000), time_of_use=VALLEY_PEAK)
    start = DAY + timedelta(hours=7)
    scalar = rate_usage(tariff, D("0.000001"), start, start + timedelta(hours=3), D(0))
    assert [(line.band, line.amount_fen) for line in scalar.lines] == [(Band.PEAK, 150)]
    start_s = int(start.timestamp())
    assert rate_batch(tariff, [1], [start_s], [start_s + 3 * 3600], [0], [False]).tolist() == [150]


def test_a_zero_length_record_is_priced_in_the_band_of_its_start() -> None:
    tariff = _tariff(time_of_use=VALLEY_PEAK)
    start = DAY + timedelta(hours=9, minutes=30)
    result = rate_usage(tariff, D(1), start, start, D(0))
    assert [(line.band, line.amount_fen) for line in result.lines] == [(Band.PEAK, 1500)]


@pytest.mark.parametrize("kwargs, field", [
    ({"quantity": D("1.0000001")}, "quantity"),
    ({"quantity": D(-1)}, "quantity"),
    ({"quantity": 1.5}, "quantity"),
    ({"month_to_date_quantity": D("1000000001")}, "month_to_date_quantity"),
    ({"end": DAY - timedelta(seconds=1)}, "end"),
    ({"end": DAY + timedelta(days=32)}, "end"),
    ({"start": datetime(2025, 3, 3)}, "start"),
    ({"committed_quantity": D(5)}, "committed_quantity"),
    ({"job_rated_before_fen": -1}, "job_rated_before_fen"),
])
def test_rating_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"tariff": GRADUATED, "quantity": D(1), "start": DAY,
                                    "end": DAY + timedelta(hours=1),
                                    "month_to_date_quantity": D(0)}
    arguments.update(kwargs)
    with pytest.raises(ValidationFailed) as caught:
        rate_usage(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_batch_validation_names_the_column_and_record() -> None:
    with pytest.raises(ValidationFailed, match="record 1") as caught:
        rate_batch(GRADUATED, [1, -1], [0, 0], [1, 1], [0, 0], [False, False])
    assert caught.value.field == "quantity_micro"
    with pytest.raises(ValidationFailed) as caught:
        rate_batch(GRADUATED, [1], [10], [5], [0], [False])
    assert caught.value.field == "end_s"
    with pytest.raises(ValidationFailed) as caught:
        rate_batch(GRADUATED, np.array([1.5]), [0], [1], [0], [False])
    assert caught.value.field == "quantity_micro"


def test_batch_of_nothing_is_empty() -> None:
    assert rate_batch(GRADUATED, [], [], [], [], []).shape == (0,)


# --- properties ---------------------------------------------------------------------------

PRICE_SCALED_LIMIT = int(MAX_UNIT_PRICE_FEN) * 5 * 10**4


@given(quantity=st.integers(0, MAX_RECORD_QUANTITY_MICRO),
       price=st.integers(0, PRICE_SCALED_LIMIT))
def test_round_mul_is_exact_half_even_on_both_paths(quantity: int, price: int) -> None:
    quotient, rest = divmod(quantity * price, 10**10)
    expected = quotient + (1 if 2 * rest > 10**10 or (2 * rest == 10**10 and quotient % 2)
                           else 0)
    got = _round_mul(np.array([quantity], dtype=np.int64), np.array([price], dtype=np.int64))
    assert int(got[0]) == expected


def test_round_mul_ties_on_the_split_path() -> None:
    quantity = np.array([10**12 + 5, 10**12 + 15, 5, 15], dtype=np.int64)
    price = np.array([10**9] * 4, dtype=np.int64)  # forces the split path: 1e21 > 2^62
    assert _round_mul(quantity, price).tolist() == [10**11, 10**11 + 2, 0, 2]


prices = st.decimals(min_value=0, max_value=MAX_UNIT_PRICE_FEN, places=4,
                     allow_nan=False, allow_infinity=False)
small_prices = st.decimals(min_value=0, max_value=5000, places=4)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    price = st.one_of(small_prices, prices)
    # Small whole starts line up with whole quantities below, so records end exactly on them.
    starts = sorted(draw(st.sets(st.integers(1, 20) | st.integers(1, 5000), max_size=3)))
    tiers = tuple(Tier(D(start), draw(price)) for start in starts)
    tou = None
    if draw(st.booleans()):
        bands = draw(st.lists(st.sampled_from(BAND_ORDER), min_size=24, max_size=24))
        multipliers = {band: draw(st.decimals(min_value=D("0.01"), max_value=5, places=2))
                       for band in set(bands)}
        tou = TimeOfUse(tuple(bands), multipliers)
    return Tariff(
        id="t", pool_id="p", basis=Basis.COMPUTE_UNIT_HOUR, base_unit_price_fen=draw(price),
        tiers=tiers, tier_mode=draw(st.sampled_from(list(TierMode))), time_of_use=tou,
        spot_discount=draw(st.decimals(min_value=0, max_value=D("0.95"), places=2)),
        reserved_unit_price_fen=draw(st.none() | price),
        minimum_charge_fen_per_job=draw(st.sampled_from([0, 0, 1, 5000, 10**8])))


whole_units = st.integers(0, 20).map(lambda units: units * 10**6)
records = st.lists(st.tuples(
    st.one_of(st.integers(0, 10**8), st.integers(0, MAX_RECORD_QUANTITY_MICRO), whole_units),
    st.integers(1_735_660_800, 1_767_196_800),  # start: during 2025
    st.one_of(st.integers(0, 86_400), st.integers(0, MAX_DURATION_S)),  # duration
    st.one_of(st.integers(0, 6_000 * 10**6), whole_units),  # month to date
    st.booleans(),  # spot
    st.integers(0, 6_000 * 10**6),  # committed
    st.booleans(),  # closes job
    st.integers(0, 10**4),  # job rated before
), min_size=1, max_size=12)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Tariff, list[tuple]]:
    tariff = draw(tariffs())
    rows = draw(records)
    # Make some records end exactly on a tier start or on the commitment: the edges where
    # "reached" and "inside" are easiest to get wrong.
    edges = [int(start) * 10**6 for start in tariff.tier_starts()[1:]]
    for index, row in enumerate(rows):
        if edges and draw(st.booleans()):
            edge = draw(st.sampled_from(edges))
            quantity = min(row[0], edge)
            rows[index] = (quantity, row[1], row[2], edge - quantity) + row[4:]
    return tariff, rows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_batch_rating_equals_scalar_rating(case: tuple[Tariff, list[tuple]]) -> None:
    tariff, rows = case
    columns = list(zip(*rows, strict=True))
    quantity, start, duration, mtd, spot, committed, closes, before = (
        np.array(column) for column in columns)
    if tariff.reserved_unit_price_fen is None:
        committed = np.zeros_like(committed)
    batch = rate_batch(tariff, quantity, start, start + duration, mtd, spot,
                       committed_micro=committed, closes_job=closes,
                       job_rated_before_fen=before, chunk_records=5)
    for index, row in enumerate(rows):
        q, s, d, m, is_spot, _, closes_job, rated_before = row
        scalar = rate_usage(
            tariff, D(q).scaleb(-6), datetime.fromtimestamp(s, UTC),
            datetime.fromtimestamp(s + d, UTC), D(m).scaleb(-6), is_spot,
            committed_quantity=D(int(committed[index])).scaleb(-6), closes_job=closes_job,
            job_rated_before_fen=rated_before)
        assert scalar.amount_fen == int(batch[index]), (index, scalar)
        for line in scalar.lines:  # each line is reproducible from what it prints
            if line.kind != LineKind.MINIMUM:
                assert line.amount_fen == int((line.quantity * line.unit_price_fen)
                                              .quantize(D(1), rounding="ROUND_HALF_EVEN"))
