"""Provider cost model and price guidance: what a device-hour costs, and a fair band around it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum

from suanli.domain.errors import ValidationFailed
from suanli.domain.tariffs import (
    MAX_UNIT_PRICE_FEN,
    MONEY_CONTEXT,
    PRICE_QUANTUM,
    Basis,
    Tariff,
    check_decimal,
)

MAX_CAPEX_FEN = 10**11  # one billion CNY for one device: a sanity bound
MAX_LIFETIME_HOURS = 20 * 8_760
MAX_DEVICE_POWER_KW = Decimal(100)
MAX_ELECTRICITY_FEN_PER_KWH = Decimal(1000)
MAX_OPERATIONS_FEN_PER_DEVICE_HOUR = Decimal(10_000_000)
MAX_UNITS_PER_DEVICE_HOUR = Decimal(1_000_000)
MAX_MARGIN = Decimal(10)  # +1000 %


@dataclass(frozen=True)
class CostModel:
    """One device type at one site; every cost accrues per wall-clock hour, busy or idle."""

    capex_fen: int  # purchase and installation of one device, with its share of the server
    lifetime_hours: int  # amortisation period, e.g. 5 years = 43,800 h
    device_power_kw: Decimal  # average draw of one device, including its host share
    pue: Decimal  # the site's power usage effectiveness
    electricity_fen_per_kwh: Decimal
    operations_fen_per_device_hour: Decimal  # staff, network, maintenance, space
    utilisation: Decimal  # share of hours sold, 0 < u <= 1
    units_per_device_hour: Decimal  # compute units one device delivers in an hour

    def __post_init__(self) -> None:
        capex = self.capex_fen
        if isinstance(capex, bool) or not isinstance(capex, int) or not (
            0 <= capex <= MAX_CAPEX_FEN
        ):
            raise ValidationFailed(f"must be an int fen between 0 and {MAX_CAPEX_FEN}",
                                   field="capex_fen")
        hours = self.lifetime_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or not (
            1 <= hours <= MAX_LIFETIME_HOURS
        ):
            raise ValidationFailed(f"must be an int between 1 and {MAX_LIFETIME_HOURS}",
                                   field="lifetime_hours")
        checks = (
            ("device_power_kw", Decimal(0), MAX_DEVICE_POWER_KW, 6),
            ("pue", Decimal("1.0"), Decimal("3.0"), 4),
            ("electricity_fen_per_kwh", Decimal(0), MAX_ELECTRICITY_FEN_PER_KWH, 4),
            ("operations_fen_per_device_hour", Decimal(0), MAX_OPERATIONS_FEN_PER_DEVICE_HOUR, 4),
            ("utilisation", Decimal("0.01"), Decimal(1), 4),
            ("units_per_device_hour", Decimal("0.000001"), MAX_UNITS_PER_DEVICE_HOUR, 6),
        )
        for name, low, high, places in checks:
            object.__setattr__(self, name, check_decimal(getattr(self, name), name, low, high,
                                                         places))


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Costs in Decimal fen, each quantised half-even to 4 places (the price precision)."""

    amortisation_fen_per_device_hour: Decimal
    electricity_fen_per_device_hour: Decimal
    operations_fen_per_device_hour: Decimal
    cost_fen_per_available_device_hour: Decimal  # the sum: what an hour costs, sold or not
    cost_fen_per_sold_device_hour: Decimal  # idle hours are paid for by the sold ones
    cost_fen_per_unit_hour: Decimal

    def per(self, basis: Basis) -> Decimal:
        if basis == Basis.DEVICE_HOUR:
            return self.cost_fen_per_sold_device_hour
        assert basis == Basis.COMPUTE_UNIT_HOUR, basis
        return self.cost_fen_per_unit_hour


def _quantise(value: Decimal) -> Decimal:
    return value.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def cost_breakdown(model: CostModel) -> CostBreakdown:
    """Cost per device-hour: capex/lifetime + kW x PUE x fen/kWh + operations, / utilisation."""
    with localcontext(MONEY_CONTEXT):
        amortisation = Decimal(model.capex_fen) / model.lifetime_hours
        electricity = model.device_power_kw * model.pue * model.electricity_fen_per_kwh
        available = amortisation + electricity + model.operations_fen_per_device_hour
        sold = available / model.utilisation
        per_unit = sold / model.units_per_device_hour
        result = CostBreakdown(
            amortisation_fen_per_device_hour=_quantise(amortisation),
            electricity_fen_per_device_hour=_quantise(electricity),
            operations_fen_per_device_hour=_quantise(model.operations_fen_per_device_hour),
            cost_fen_per_available_device_hour=_quantise(available),
            cost_fen_per_sold_device_hour=_quantise(sold),
            cost_fen_per_unit_hour=_quantise(per_unit),
        )
    assert result.cost_fen_per_sold_device_hour >= result.cost_fen_per_available_device_hour
    return result


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Price guidance (指导价) for one basis: cost x (1 + min margin) .. cost x (1 + max margin)."""

    basis: Basis
    low_fen: Decimal
    high_fen: Decimal

    def __post_init__(self) -> None:
        if not (Decimal(0) <= self.low_fen <= self.high_fen):
            raise ValidationFailed("need 0 <= low <= high", field="low_fen")


def price_guidance(costs: CostBreakdown, basis: Basis, min_margin: Decimal,
                   max_margin: Decimal) -> PriceBand:
    low_margin = check_decimal(min_margin, "min_margin", Decimal(-1), MAX_MARGIN, 4)
    high_margin = check_decimal(max_margin, "max_margin", Decimal(-1), MAX_MARGIN, 4)
    if high_margin < low_margin:
        raise ValidationFailed("must not be below min_margin", field="max_margin")
    cost = costs.per(basis)
    low = _quantise(cost * (1 + low_margin))
    high = _quantise(cost * (1 + high_margin))
    if high > MAX_UNIT_PRICE_FEN * (1 + MAX_MARGIN):
        raise ValidationFailed("cost is beyond any price a tariff can state", field="costs")
    return PriceBand(basis, low, high)


class BandVerdict(StrEnum):
    BELOW = "below"  # under cost plus the minimum margin: selling at a loss, or dumping
    WITHIN = "within"
    ABOVE = "above"  # over the maximum margin: the guidance calls it excessive


@dataclass(frozen=True, slots=True)
class BandFinding:
    field: str  # the tariff field the price comes from, e.g. "tiers[1].unit_price_fen"
    unit_price_fen: Decimal
    verdict: BandVerdict


def check_tariff_against_band(tariff: Tariff, band: PriceBand) -> tuple[BandFinding, ...]:
    """Judge each list price of a tariff (base, tiers, reserved) against the band.

    Time-of-use and spot prices are deliberate deviations around the list price and are not
    judged; nor is a zero price (a free tier is a promotion, not a price).
    """
    if tariff.basis != band.basis:
        raise ValidationFailed(f"the band is per {band.basis}, the tariff per {tariff.basis}",
                               field="basis")
    prices = [("base_unit_price_fen", tariff.base_unit_price_fen)]
    prices += [(f"tiers[{index}].unit_price_fen", tier.unit_price_fen)
               for index, tier in enumerate(tariff.tiers)]
    if tariff.reserved_unit_price_fen is not None:
        prices.append(("reserved_unit_price_fen", tariff.reserved_unit_price_fen))
    findings = []
    for name, price in prices:
        if price == 0:
            continue
        verdict = (BandVerdict.BELOW if price < band.low_fen
                   else BandVerdict.ABOVE if price > band.high_fen else BandVerdict.WITHIN)
        findings.append(BandFinding(name, price, verdict))
    return tuple(findings)
