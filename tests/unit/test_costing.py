"""Provider costing and price guidance."""

from __future__ import annotations

from decimal import Decimal

import pytest

from suanli.domain.costing import (
    BandVerdict,
    CostModel,
    PriceBand,
    check_tariff_against_band,
    cost_breakdown,
    price_guidance,
)
from suanli.domain.errors import ValidationFailed
from suanli.domain.tariffs import Basis, Tariff, Tier

D = Decimal


def _model(**overrides: object) -> CostModel:
    # An accelerator bought for 200,000 CNY, written off over 5 years, drawing 0.8 kW at a
    # site with PUE 1.25 and power at 0.45 CNY/kWh.
    fields: dict[str, object] = {
        "capex_fen": 20_000_000, "lifetime_hours": 43_800, "device_power_kw": D("0.8"),
        "pue": D("1.25"), "electricity_fen_per_kwh": D(45),
        "operations_fen_per_device_hour": D(100), "utilisation": D("0.6"),
        "units_per_device_hour": D(4)}
    fields.update(overrides)
    return CostModel(**fields)  # type: ignore[arg-type]


def test_cost_per_device_hour_and_per_unit_hour_by_hand() -> None:
    costs = cost_breakdown(_model())
    assert costs.amortisation_fen_per_device_hour == D("456.6210")  # 20,000,000 / 43,800
    assert costs.electricity_fen_per_device_hour == D("45.0000")  # 0.8 x 1.25 x 45
    assert costs.cost_fen_per_available_device_hour == D("601.6210")
    assert costs.cost_fen_per_sold_device_hour == D("1002.7017")  # / 0.6
    assert costs.cost_fen_per_unit_hour == D("250.6754")  # / 4


def test_guidance_band_and_verdicts() -> None:
    band = price_guidance(cost_breakdown(_model()), Basis.DEVICE_HOUR, D("0.1"), D("0.8"))
    assert (band.low_fen, band.high_fen) == (D("1102.9719"), D("1804.8631"))
    tariff = Tariff(id="t", pool_id="p", basis=Basis.DEVICE_HOUR, base_unit_price_fen=D(1500),
                    tiers=(Tier(D(100), D(1000)), Tier(D(1000), D(0))),
                    reserved_unit_price_fen=D(2000))
    findings = {f.field: f.verdict for f in check_tariff_against_band(tariff, band)}
    assert findings == {"base_unit_price_fen": BandVerdict.WITHIN,
                        "tiers[0].unit_price_fen": BandVerdict.BELOW,
                        "reserved_unit_price_fen": BandVerdict.ABOVE}


def test_basis_must_match() -> None:
    band = PriceBand(Basis.COMPUTE_UNIT_HOUR, D(1), D(2))
    tariff = Tariff(id="t", pool_id="p", basis=Basis.DEVICE_HOUR, base_unit_price_fen=D(1))
    with pytest.raises(ValidationFailed) as caught:
        check_tariff_against_band(tariff, band)
    assert caught.value.field == "basis"


def test_lower_utilisation_raises_the_cost_of_a_sold_hour() -> None:
    busy = cost_breakdown(_model(utilisation=D("0.9"))).cost_fen_per_sold_device_hour
    idle = cost_breakdown(_model(utilisation=D("0.3"))).cost_fen_per_sold_device_hour
    # 601.621004566... a wall-clock hour, spread over the sold share of hours
    assert (busy, idle) == (D("668.4678"), D("2005.4033"))


@pytest.mark.parametrize("overrides, field", [
    ({"capex_fen": -1}, "capex_fen"),
    ({"lifetime_hours": 0}, "lifetime_hours"),
    ({"pue": D("0.9")}, "pue"),
    ({"utilisation": D(0)}, "utilisation"),
    ({"electricity_fen_per_kwh": 45.0}, "electricity_fen_per_kwh"),
])
def test_model_validation_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _model(**overrides)
    assert caught.value.field == field


def test_margins_must_be_ordered() -> None:
    with pytest.raises(ValidationFailed) as caught:
        price_guidance(cost_breakdown(_model()), Basis.DEVICE_HOUR, D("0.5"), D("0.1"))
    assert caught.value.field == "max_margin"
