"""How much money a job's hold takes before its lease opens: a pure bound on its charge."""

from __future__ import annotations

import math
from decimal import Decimal

from suanli.domain.jobs import JobSpec
from suanli.domain.ledger import MAX_TRANSFER_FEN
from suanli.domain.tariffs import MICRO_PER_UNIT, Basis, Tariff


def max_unit_price_fen(tariff: Tariff, spot: bool) -> Decimal:
    """The highest effective unit price any line of this tariff can carry."""
    prices = [tariff.unit_price_fen(tier, band, spot)
              for tier in range(len(tariff.tier_prices())) for band in tariff.bands_in_use()]
    if tariff.reserved_unit_price_fen is not None:
        prices.append(tariff.reserved_unit_price_fen)
    return max(prices)


def hold_estimate_fen(tariff: Tariff, spec: JobSpec, units_per_device_hour: Decimal) -> int:
    """The most the job can be charged: devices x its time limit at the tariff's highest
    effective price (any tier, any band), plus rounding room, and at least the minimum charge.

    Billing never charges more than the time limit (see charging), so the hold covers the
    whole charge; a tariff changed meanwhile does not matter, the hold keeps its tariff.
    """
    device_hours = Decimal(spec.devices * spec.time_limit_s) / 3600
    quantity = device_hours if tariff.basis == Basis.DEVICE_HOUR else (
        device_hours * units_per_device_hour)
    # Metering rounds the quantity to the micro-unit, each line rounds to the fen: room for both.
    lines = len(tariff.tier_prices()) * len(tariff.bands_in_use()) + 2
    bound = (quantity + Decimal(1) / MICRO_PER_UNIT) * max_unit_price_fen(tariff, spec.spot)
    estimate: int = math.ceil(bound) + (lines if bound > 0 else 0)
    return min(MAX_TRANSFER_FEN, max(estimate, tariff.minimum_charge_fen_per_job))
