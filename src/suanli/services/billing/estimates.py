"""What a job would cost on a pool, priced as billing will price it: the tariff in force.

The estimate is the charge that metering and rating (the same domain functions charging
uses) would make for the job running its whole time limit from now: devices x time limit,
in the tariff's basis, with its tiers (the tenant's month-to-date use of the pool), its
time-of-use bands over the interval, spot discount and minimum charge. A job that ends
sooner is charged less; for the same usage, estimate and charge are equal to the fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import usage as usage_store
from suanli.domain.errors import ValidationFailed
from suanli.domain.billing_records import PricedPool
from suanli.domain.job_records import PoolFacts
from suanli.domain.jobs import JobSpec
from suanli.domain.metering import SHANGHAI, UsageRecord, billing_period, meter
from suanli.domain.rating import rate_usage
from suanli.domain.tariffs import QUANTITY_DECIMALS, Basis, Tariff
from suanli.services.billing import tariffs as tariff_store
from suanli.services.billing import wallets as billing

_ESTIMATE_ID = "estimate"
HOURS_PER_DAY = 24


@dataclass(frozen=True)
class CostEstimate:
    pool_id: str
    tariff_id: str
    basis: str
    quantity: Decimal  # in the tariff's basis, for the whole time limit
    amount_fen: int | None  # None: beyond what one usage record can be rated for
    hold_fen: int  # what a prepaid wallet must have available: the worst case
    note: str = ""


def _units(pool: PoolFacts, spec: JobSpec) -> Decimal:
    return tariff_store.units_rating(pool, spec.workload_class).quantize(Decimal("0.000001"))


def _month_to_date(session: Session, tariff: Tariff, pool: PoolFacts, tenant_id: str | None,
                   end: datetime) -> Decimal:
    """The tenant's use of this pool this month, as charging reads it; only tiers need it."""
    if tenant_id is None or len(tariff.tier_starts()) < 2:
        return Decimal(0)
    year, month = billing_period(end - timedelta(microseconds=1))
    used = usage_store.quantity_used_micro(session, tenant_id=tenant_id, pool_id=pool.id,
                                           period=f"{year:04d}-{month:02d}",
                                           basis=tariff.basis.value)
    return Decimal(used).scaleb(-QUANTITY_DECIMALS)


def estimate(session: Session, pool: PoolFacts, spec: JobSpec, now: datetime,
             tenant_id: str | None = None) -> CostEstimate:
    """The job's price on the pool if it runs its whole time limit from `now`."""
    tariff = tariff_store.current_tariff(session, pool).tariff
    units = _units(pool, spec)
    end = now + timedelta(seconds=spec.time_limit_s)
    record = UsageRecord(_ESTIMATE_ID, _ESTIMATE_ID, _ESTIMATE_ID, tenant_id or _ESTIMATE_ID,
                         pool.id, spec.devices, now, end)
    # Energy is metered but not priced by a tariff: any power and PUE give the same quantity.
    quantity = meter(record, units, Decimal(0), Decimal(1)).quantity(tariff.basis)
    hold = billing.hold_estimate_fen(tariff, spec, units)
    try:
        rated = rate_usage(tariff, quantity, now, end,
                           _month_to_date(session, tariff, pool, tenant_id, end), spec.spot)
    except ValidationFailed as exc:
        return CostEstimate(pool.id, tariff.id, tariff.basis.value, quantity, None, hold,
                            f"cannot be rated as one record: {exc.detail}")
    return CostEstimate(pool.id, tariff.id, tariff.basis.value, quantity, rated.amount_fen, hold)


def device_hour_prices(session: Session, pool: PoolFacts, spec: JobSpec) -> tuple[int, ...]:
    """The tariff in force as whole fen per device-hour by UTC hour of day (one value when it
    has no time-of-use bands), at its first tier: what placement weighs pools by."""
    tariff = tariff_store.current_tariff(session, pool).tariff
    return tariff_device_hour_prices(tariff, pool, spec.workload_class, spec.spot)


def tariff_device_hour_prices(tariff: Tariff, pool: PricedPool, workload_class: str,
                              spot: bool) -> tuple[int, ...]:
    """`device_hour_prices` of a tariff already read (a placement table reads them all)."""
    per_device = Decimal(1) if tariff.basis == Basis.DEVICE_HOUR else \
        tariff_store.units_rating(pool, workload_class).quantize(Decimal("0.000001"))
    bands = tariff.schedule.hour_bands
    utc_hours = range(HOURS_PER_DAY) if len(set(bands)) > 1 else range(1)
    offset_h = int(SHANGHAI.utcoffset(None).total_seconds()) // 3600
    prices = []
    for utc_hour in utc_hours:
        band = bands[(utc_hour + offset_h) % HOURS_PER_DAY]
        price = tariff.unit_price_fen(0, band, spot) * per_device
        prices.append(int(price.to_integral_value(rounding=ROUND_HALF_UP)))
    return tuple(prices)
