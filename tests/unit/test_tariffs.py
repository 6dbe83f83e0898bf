"""Tariffs: validation that names the field, effective unit prices and their rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from suanli.domain.errors import ValidationFailed
from suanli.domain.tariffs import (
    Band,
    Basis,
    Tariff,
    Tier,
    TimeOfUse,
    line_amount_fen,
    reserved_shortfall_fen,
)

D = Decimal
# Valley 00-08, flat 08-10 and 12-17 and 21-24, peak 10-12 and 17-19, critical peak 19-21.
HOURS = ([Band.VALLEY] * 8 + [Band.FLAT] * 2 + [Band.PEAK] * 2 + [Band.FLAT] * 5
         + [Band.PEAK] * 2 + [Band.CRITICAL_PEAK] * 2 + [Band.FLAT] * 3)
MULTIPLIERS = {Band.VALLEY: D("0.5"), Band.FLAT: D(1), Band.PEAK: D("1.5"),
               Band.CRITICAL_PEAK: D("1.8")}


def _tariff(**overrides: object) -> Tariff:
    fields: dict[str, object] = {"id": "tariff-1", "pool_id": "pool-1",
                                 "basis": Basis.DEVICE_HOUR, "base_unit_price_fen": D(1000)}
    fields.update(overrides)
    return Tariff(**fields)  # type: ignore[arg-type]


def test_effective_price_applies_band_multiplier_and_spot_discount() -> None:
    tariff = _tariff(time_of_use=TimeOfUse(tuple(HOURS), MULTIPLIERS),
                     spot_discount=D("0.35"))
    assert tariff.unit_price_fen(0, Band.PEAK, spot=False) == D(1500)
    assert tariff.unit_price_fen(0, Band.VALLEY, spot=True) == D(325)
    assert tariff.unit_price_fen(0, Band.CRITICAL_PEAK, spot=True) == D(1170)
    assert tariff.bands_in_use() == (Band.CRITICAL_PEAK, Band.PEAK, Band.FLAT, Band.VALLEY)


def test_effective_price_is_quantised_half_even_to_four_places() -> None:
    tou = TimeOfUse(tuple(HOURS), MULTIPLIERS)
    # 1000.0001 x 0.5 = 500.00005: a tie, to the even 500.0000
    assert _tariff(base_unit_price_fen=D("1000.0001"),
                   time_of_use=tou).unit_price_fen(0, Band.VALLEY, False) == D("500.0000")
    # 1000.0003 x 0.5 = 500.00015: a tie, to the even 500.0002
    assert _tariff(base_unit_price_fen=D("1000.0003"),
                   time_of_use=tou).unit_price_fen(0, Band.VALLEY, False) == D("500.0002")
    # 1234.5678 x 0.5 x 0.65 = 401.234535 -> 401.2345
    assert _tariff(base_unit_price_fen=D("1234.5678"), time_of_use=tou,
                   spot_discount=D("0.35")).unit_price_fen(0, Band.VALLEY, True) == D("401.2345")


def test_line_amount_rounds_half_even_to_whole_fen() -> None:
    assert line_amount_fen(500_000, D(1001)) == 500  # 500.5 -> 500
    assert line_amount_fen(1_500_000, D(1001)) == 1502  # 1501.5 -> 1502
    assert line_amount_fen(1, D("0.0001")) == 0
    assert line_amount_fen(10**12, D(100_000_000)) == 10**14


def test_no_time_of_use_means_one_flat_band() -> None:
    tariff = _tariff()
    assert tariff.bands_in_use() == (Band.FLAT,)
    assert tariff.unit_price_fen(0, Band.FLAT, False) == D(1000)


def test_reserved_shortfall_bills_the_unused_commitment() -> None:
    tariff = _tariff(reserved_unit_price_fen=D("700.5"))
    assert reserved_shortfall_fen(tariff, D(100), D("60.5")) == 27670  # 39.5 x 700.5 = 27669.75
    assert reserved_shortfall_fen(tariff, D(100), D(150)) == 0
    with pytest.raises(ValidationFailed):
        reserved_shortfall_fen(_tariff(), D(100), D(0))


@pytest.mark.parametrize("overrides, field", [
    ({"base_unit_price_fen": 10.5}, "base_unit_price_fen"),
    ({"base_unit_price_fen": D("0.00001")}, "base_unit_price_fen"),
    ({"base_unit_price_fen": D(-1)}, "base_unit_price_fen"),
    ({"base_unit_price_fen": D("100000001")}, "base_unit_price_fen"),
    ({"tiers": (Tier(D(100), D(900)), Tier(D(100), D(800)))}, "tiers[1].from_quantity"),
    ({"tiers": (Tier(D(0), D(900)),)}, "tiers[0].from_quantity"),
    ({"tiers": (Tier(D(10), D("1.00001")),)}, "tiers[0].unit_price_fen"),
    ({"tiers": tuple(Tier(D(i + 1), D(1)) for i in range(8))}, "tiers"),
    ({"spot_discount": D("0.96")}, "spot_discount"),
    ({"spot_discount": D("0.355")}, "spot_discount"),
    ({"reserved_unit_price_fen": 7}, None),  # an int is accepted
    ({"minimum_charge_fen_per_job": D(5)}, "minimum_charge_fen_per_job"),
    ({"currency": "USD"}, "currency"),
    ({"basis": "gpu-hour"}, "basis"),
    ({"id": ""}, "id"),
])
def test_validation_names_the_field(overrides: dict[str, object], field: str | None) -> None:
    if field is None:
        assert _tariff(**overrides).reserved_unit_price_fen == D(7)
        return
    with pytest.raises(ValidationFailed) as caught:
        _tariff(**overrides)
    assert caught.value.field == field


def test_time_of_use_validation() -> None:
    with pytest.raises(ValidationFailed) as caught:
        TimeOfUse(tuple(HOURS[:23]), MULTIPLIERS)
    assert caught.value.field == "time_of_use.hour_bands"
    with pytest.raises(ValidationFailed) as caught:
        TimeOfUse(tuple(HOURS), {Band.VALLEY: D("0.5"), Band.FLAT: D(1), Band.PEAK: D("1.5")})
    assert caught.value.field == "time_of_use.multipliers[critical-peak]"
    with pytest.raises(ValidationFailed) as caught:
        TimeOfUse(tuple(HOURS), {**MULTIPLIERS, Band.PEAK: D("5.01")})
    assert caught.value.field == "time_of_use.multipliers[peak]"
    with pytest.raises(ValidationFailed) as caught:
        TimeOfUse(tuple(HOURS[:23]) + ("noon",), MULTIPLIERS)  # type: ignore[operator]
    assert caught.value.field == "time_of_use.hour_bands[23]"
