"""The exchange's other pure rules: products, order shapes, escrow arithmetic, the index, RFQ."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanli.domain.costing import CostModel, cost_breakdown
from suanli.domain.errors import ValidationFailed
from suanli.domain.market.index import Bar, Period, Print, bars
from suanli.domain.market.orders import MAX_LEGS, OrderRequest, Shape, Side
from suanli.domain.market.products import (
    MatchingRule,
    ProductKey,
    QuantityUnit,
    default_rule,
    parse_product_id,
)
from suanli.domain.market.rfq import Offer, QuoteRequest, collect, cost_plus, list_price
from suanli.domain.market.settlement import Due, due_after, fee_fen, next_payment

H = 3600
T0 = int(datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp())


def test_product_ids_spell_class_location_and_block() -> None:
    key = ProductKey("nvidia-h100-sxm", "ningxia", T0)
    assert key.id == "nvidia-h100-sxm:ningxia:2026-11-02T10Z"
    assert parse_product_id(key.id) == key
    assert ProductKey("scu-training", "CN-GZ", T0).unit is QuantityUnit.SCU
    for bad in ("x:ningxia:2026-11-02T10Z", "nvidia-h100-sxm:atlantis:2026-11-02T10Z",
                "nvidia-h100-sxm:ningxia:2026-11-02", "scu-cooking:CN-GZ:2026-11-02T10Z"):
        with pytest.raises(ValidationFailed) as caught:
            parse_product_id(bad)
        assert caught.value.field == "product_id"
    with pytest.raises(ValidationFailed):
        ProductKey("nvidia-h100-sxm", "ningxia", T0 + 60)


def test_far_blocks_open_in_call_auctions_near_ones_continuous() -> None:
    assert default_rule(T0, T0 - 2 * H) is MatchingRule.CONTINUOUS
    assert default_rule(T0, T0 - 48 * H) is MatchingRule.CALL_AUCTION


def _order(**changes) -> OrderRequest:  # type: ignore[no-untyped-def]
    fields = dict(side=Side.BID, accelerator_class="nvidia-h100-sxm", location="ningxia",
                  price_fen_per_unit_hour=2_000,
                  shape=Shape(((T0, T0 + 2 * H), (T0 + 3 * H, T0 + 4 * H)), (4, 2)),
                  client_order_id="c-1")
    fields.update(changes)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def test_a_shape_splits_into_one_leg_per_hour_block() -> None:
    legs = _order(all_or_none=True).legs(T0 - H)
    assert [(leg.product.block_start_s, leg.count, leg.min_fill, leg.good_till_s)
            for leg in legs] == [(T0, 4, 4, T0), (T0 + H, 4, 4, T0 + H),
                                 (T0 + 3 * H, 2, 2, T0 + 3 * H)]
    legs = _order(min_fill=2, good_till_s=T0 + 30 * 60).legs(T0 - H)
    assert [leg.good_till_s for leg in legs] == [T0, T0 + 30 * 60, T0 + 30 * 60]


@pytest.mark.parametrize(("changes", "field"), [
    ({"shape": Shape(((T0, T0 + H),), (1,)), "price_fen_per_unit_hour": 0},
     "price_fen_per_unit_hour"),
    ({"client_order_id": "has space"}, "client_order_id"),
    ({"min_fill": 1, "all_or_none": True}, "min_fill"),
    ({"side": Side.ASK}, "pool_id"),
    ({"pool_id": "CN.R1"}, "pool_id"),
    ({"location": "atlantis"}, "location"),
])
def test_bad_orders_name_the_field(changes, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as caught:
        _order(**changes)
    assert caught.value.field == field


@pytest.mark.parametrize(("intervals", "counts", "field"), [
    (((T0, T0 + 90 * 60),), (1,), "intervals[0]"),
    (((T0, T0 + H), (T0, T0 + 2 * H)), (1, 1), "intervals[1]"),
    (((T0, T0 + H),), (0,), "counts[0]"),
    (((T0, T0 + H),), (1, 2), "counts"),
    (((T0, T0 + (MAX_LEGS + 1) * H),), (1,), "intervals"),
])
def test_bad_shapes_name_the_field(intervals, counts, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as caught:
        Shape(intervals, counts)
    assert caught.value.field == field


def test_legs_must_lie_in_the_future_within_the_horizon() -> None:
    with pytest.raises(ValidationFailed):
        _order().legs(T0)
    with pytest.raises(ValidationFailed):
        _order().legs(T0 - 40 * 86_400)
    with pytest.raises(ValidationFailed) as caught:
        _order(min_fill=3).legs(T0 - H)  # the third block has only 2
    assert caught.value.field == "min_fill"


@given(st.integers(1, 10**9), st.integers(0, 2_000), st.integers(1, 7_200),
       st.lists(st.integers(-100, 8_000), max_size=12))
def test_settlement_pays_out_exactly_the_value_and_never_backwards(value, bps, duration,
                                                                   times) -> None:
    fee = fee_fen(value, bps)
    paid = Due(0, 0)
    for elapsed in sorted(times) + [duration]:
        payment = next_payment(value, fee, elapsed, duration, paid)
        assert payment.seller_fen >= 0 and payment.fee_fen >= 0
        paid = Due(paid.seller_fen + payment.seller_fen, paid.fee_fen + payment.fee_fen)
        assert paid.total_fen <= value
    assert paid == Due(value - fee, fee) == due_after(value, fee, duration + 5, duration)


def test_bars_and_the_index_come_from_trades_only() -> None:
    prints = [Print(T0 + 10, 100, 2), Print(T0 + 20, 120, 1), Print(T0 + H + 5, 90, 3),
              Print(T0 + 2 * H, 110, 1)]
    hourly = bars(prints, Period.HOUR)
    assert [(b.start_s, b.open, b.high, b.low, b.close, b.volume, b.value_fen)
            for b in hourly] == [(T0, 100, 120, 100, 120, 3, 320), (T0 + H, 90, 90, 90, 90, 3, 270),
                                 (T0 + 2 * H, 110, 110, 110, 110, 1, 110)]
    assert hourly[0].vwap == Decimal("106.67")
    daily = bars(prints, Period.DAY)  # 10:00 UTC is 18:00 in Beijing: one CST day
    assert len(daily) == 1 and daily[0].volume == 7 and daily[0].vwap == Decimal("100.00")
    assert daily[0].start_s == T0 - 18 * H
    assert hourly[0].final(T0 + H) and not hourly[2].final(T0 + 2 * H + 1)
    with pytest.raises(ValidationFailed):
        bars(list(reversed(prints)), Period.HOUR)
    with pytest.raises(AssertionError):
        Bar(Period.HOUR, T0, 100, 90, 95, 100, 1, 100, 1)


def _offer(pool: str, provider: str, free: tuple[int, ...], list_price_fen: int = 3_000) -> Offer:
    costs = cost_breakdown(CostModel(
        capex_fen=20_000_000, lifetime_hours=43_800, device_power_kw=Decimal("0.7"),
        pue=Decimal("1.2"), electricity_fen_per_kwh=Decimal(40),
        operations_fen_per_device_hour=Decimal(50), utilisation=Decimal("0.6"),
        units_per_device_hour=Decimal("9.89")))
    return Offer(pool, provider, QuantityUnit.DEVICE, free, list_price_fen, costs,
                 Decimal("9.89"))


def test_rfq_asks_each_pool_that_fits_and_respects_the_deadline() -> None:
    request = QuoteRequest("nvidia-h100-sxm", "ningxia", Shape(((T0, T0 + 2 * H),), (4,)))
    offers = [_offer("R1", "P1", (8, 8)), _offer("R2", "P2", (8, 3)), _offer("R3", "P3", (4, 4))]
    quotes = collect(request, offers, {"P3": list_price}, cost_plus(), deadline_s=1.0,
                     elapsed_s=lambda: 0.0)
    cost = _offer("x", "x", ()).costs.cost_fen_per_sold_device_hour
    assert [q.pool_id for q in quotes] == ["R1", "R3"]  # R2 cannot serve the second hour
    assert quotes[0].price_fen_per_unit_hour == int((cost * Decimal("1.25")).to_integral_value(
        rounding="ROUND_CEILING"))
    assert quotes[1].price_fen_per_unit_hour == 3_000 and quotes[1].value_fen == 3_000 * 8
    ticks = iter([0.0, 0.5, 0.9, 1.5, 1.6, 1.7])
    late = collect(request, offers, {}, cost_plus(), deadline_s=1.0, elapsed_s=lambda: next(ticks))
    assert [q.pool_id for q in late] == ["R1"]
