"""The hold taken when a job is placed covers whatever the job can be charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.domain.jobs import JobSpec
from suanli.domain.metering import UsageRecord, meter
from suanli.domain.rating import rate_usage
from suanli.domain.tariffs import BAND_ORDER, Basis, Tariff, Tier, TierMode, TimeOfUse
from suanli.services.billing.wallets import hold_estimate_fen

prices = st.decimals(min_value=0, max_value=50_000, places=4)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    starts = sorted(set(draw(st.lists(st.decimals(min_value=Decimal("0.000001"),
                                                  max_value=5_000, places=6), max_size=4))))
    tiers = tuple(Tier(start, draw(prices)) for start in starts)
    time_of_use = None
    if draw(st.booleans()):
        bands = tuple(draw(st.sampled_from(BAND_ORDER)) for _ in range(24))
        multipliers = {band: draw(st.decimals(min_value=Decimal("0.01"), max_value=5, places=2))
                       for band in set(bands)}
        time_of_use = TimeOfUse(bands, multipliers)
    return Tariff("t", "p", draw(st.sampled_from(list(Basis))), draw(prices), tiers,
                  draw(st.sampled_from(list(TierMode))), time_of_use,
                  draw(st.decimals(min_value=0, max_value=Decimal("0.95"), places=2)),
                  minimum_charge_fen_per_job=draw(st.integers(0, 100_000)))


@settings(max_examples=300, deadline=None)
@given(tariff=tariffs(), devices=st.integers(1, 64), time_limit_s=st.integers(1, 30 * 86_400),
       share=st.fractions(min_value=0, max_value=1), spot=st.booleans(),
       start_s=st.integers(0, 86_400 * 365),
       units=st.decimals(min_value=Decimal("0.000001"), max_value=20, places=6),
       month_to_date=st.decimals(min_value=0, max_value=10_000, places=6))
def test_what_a_job_is_charged_never_exceeds_its_hold(tariff, devices, time_limit_s, share,
                                                      spot, start_s, units,
                                                      month_to_date) -> None:
    spec = JobSpec(name="j", command=("x",), devices=devices, time_limit_s=time_limit_s,
                   spot=spot)
    hold = hold_estimate_fen(tariff, spec, units)
    # billing charges at most the time limit: any run time up to it
    ran_us = max(1, int(time_limit_s * 1_000_000 * share))
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=start_s)
    record = UsageRecord("u", "l", "j", "t", "p", devices, start,
                         start + timedelta(microseconds=ran_us))
    metered = meter(record, units, Decimal("0.4"), Decimal("1.2"))
    rated = rate_usage(tariff, metered.quantity(tariff.basis), record.start, record.end,
                       month_to_date, spot)
    assert rated.amount_fen <= hold


def test_a_fractional_tier_start_is_honoured() -> None:
    """Fixed with this change: rating used int(start), so a tier from 0.5 started at 0."""
    tariff = Tariff("t", "p", Basis.DEVICE_HOUR, Decimal(100),
                    (Tier(Decimal("0.5"), Decimal(10)),))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rated = rate_usage(tariff, Decimal(1), at, at + timedelta(hours=1), Decimal(0))
    assert [(line.tier, line.quantity) for line in rated.lines] == [
        (0, Decimal("0.500000")), (1, Decimal("0.500000"))]
    assert rated.amount_fen == 55
