"""Escrow and settlement (托管与结算) of the exchange: pure money arithmetic in integer fen.

A bid leg's worst case is held from the buyer's wallet into the buyer's escrow account; a
trade posts its value into escrow; as the block is delivered, escrow pays the seller's
receivable and the platform's fee pro rata to the reserved time delivered (docs/market.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from suanli.domain.errors import ValidationFailed

FEE_BPS = 100  # the platform's fee on a trade's value: 1 %
MAX_FEE_BPS = 2_000
BPS = 10_000
HOLD_GRACE_S = 86_400  # a bid's hold outlives its good-till time by a day, as a safety net


def escrow_account_id(tenant_id: str) -> str:
    """Where a member's bids are held and its bought, undelivered blocks are paid into."""
    return f"escrow:{tenant_id}"


def check_fee_bps(fee_bps: int) -> int:
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not (
            0 <= fee_bps <= MAX_FEE_BPS):
        raise ValidationFailed(f"0-{MAX_FEE_BPS} basis points", field="fee_bps")
    return fee_bps


def trade_value_fen(price_fen_per_unit_hour: int, quantity: int) -> int:
    """A trade's value: price x quantity for one one-hour block."""
    assert price_fen_per_unit_hour > 0 and quantity > 0
    return price_fen_per_unit_hour * quantity


def fee_fen(value_fen: int, fee_bps: int) -> int:
    """The platform's fee on a value, rounded down (the seller keeps the fraction)."""
    return value_fen * check_fee_bps(fee_bps) // BPS


@dataclass(frozen=True, slots=True)
class Due:
    """Cumulative amounts owed from escrow after `elapsed_s` of a block."""

    seller_fen: int
    fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.seller_fen + self.fee_fen


def due_after(value_fen: int, fee: int, elapsed_s: int, duration_s: int) -> Due:
    """What the seller and the platform have earned after `elapsed_s` of `duration_s`: each
    share pro rata, rounded down, so both only grow with time and sum to the value at the end."""
    assert 0 <= fee <= value_fen and duration_s > 0
    elapsed = min(max(elapsed_s, 0), duration_s)
    return Due((value_fen - fee) * elapsed // duration_s, fee * elapsed // duration_s)


def next_payment(value_fen: int, fee: int, elapsed_s: int, duration_s: int,
                 paid: Due) -> Due:
    """The payment that brings what was paid up to what is due (never negative)."""
    due = due_after(value_fen, fee, elapsed_s, duration_s)
    payment = Due(due.seller_fen - paid.seller_fen, due.fee_fen - paid.fee_fen)
    assert payment.seller_fen >= 0 and payment.fee_fen >= 0, (due, paid)
    return payment
