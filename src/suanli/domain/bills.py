"""A tenant's monthly bill and a provider's payout statement, as values.

Built by services/billing/statements.py from the stored charges; `as_json()` gives each one's
document with its keys in the order the API has always sent them (the CSV and HTML renderings
read the same objects). Figures are kept as stored, in integers: quantities in micro-units,
energy in Wh, unit prices in fen x 10^4, amounts in fen; the Decimal views are exact, and the
totals sum the integers, so a total reads the same however its lines were split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

CURRENCY = "CNY"
TIMEZONE = "Asia/Shanghai"

Document = dict[str, Any]  # a JSON object as the API sends it


def from_micro(value: int) -> Decimal:
    """Micro-units (10^-6) as an exact Decimal with six places."""
    return Decimal(value).scaleb(-6)


def kwh(energy_wh: int) -> Decimal:
    return Decimal(energy_wh) / 1000


@dataclass(frozen=True, slots=True)
class VoucherShare:
    """What one voucher paid of one rated item."""

    voucher_id: str
    programme_id: str
    discount_fen: int

    def as_json(self) -> Document:
        return {"voucher_id": self.voucher_id, "programme_id": self.programme_id,
                "discount_fen": self.discount_fen}


@dataclass(frozen=True, slots=True)
class BillItem:
    """One rated item of a charge: a tier x time-of-use band (or a minimum charge)."""

    kind: str
    tier: int | None
    band: str | None
    quantity_micro: int  # in the tariff's basis
    unit_price_fen_e4: int  # fen x 10^4
    amount_fen: int
    discount_fen: int
    payable_fen: int
    vouchers: tuple[VoucherShare, ...]

    @property
    def quantity(self) -> Decimal:
        return from_micro(self.quantity_micro)

    @property
    def unit_price_fen(self) -> Decimal:
        return Decimal(self.unit_price_fen_e4).scaleb(-4)

    def as_json(self) -> Document:
        return {"kind": self.kind, "tier": self.tier, "band": self.band,
                "quantity": str(self.quantity), "unit_price_fen": str(self.unit_price_fen),
                "amount_fen": self.amount_fen, "discount_fen": self.discount_fen,
                "payable_fen": self.payable_fen,
                "vouchers": [v.as_json() for v in self.vouchers]}


@dataclass(frozen=True, slots=True)
class BillLine:
    """A bill's line: one usage record of one job, what it was charged and how it was paid."""

    usage_record_id: str
    job_id: str
    job_name: str
    lease_id: str
    pool_id: str
    pool_name: str
    provider_id: str
    accelerator: str
    hub: str | None
    province: str
    start: datetime
    end: datetime
    tariff_id: str
    basis: str
    spot: bool
    device_hours_micro: int
    compute_unit_hours_micro: int
    quantity_micro: int  # in the tariff's basis
    facility_energy_wh: int
    items: tuple[BillItem, ...]
    amount_fen: int
    discount_fen: int
    payable_fen: int
    collected_fen: int
    unpaid_fen: int
    transfer_ids: tuple[str, ...]

    @property
    def device_hours(self) -> Decimal:
        return from_micro(self.device_hours_micro)

    @property
    def compute_unit_hours(self) -> Decimal:
        return from_micro(self.compute_unit_hours_micro)

    @property
    def quantity(self) -> Decimal:
        return from_micro(self.quantity_micro)

    @property
    def facility_energy_kwh(self) -> Decimal:
        return kwh(self.facility_energy_wh)

    def as_json(self) -> Document:
        return {
            "usage_record_id": self.usage_record_id, "job_id": self.job_id,
            "job_name": self.job_name, "lease_id": self.lease_id, "pool_id": self.pool_id,
            "pool_name": self.pool_name, "provider_id": self.provider_id,
            "accelerator": self.accelerator, "hub": self.hub, "province": self.province,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "tariff_id": self.tariff_id, "basis": self.basis, "spot": self.spot,
            "device_hours": str(self.device_hours),
            "compute_unit_hours": str(self.compute_unit_hours),
            "quantity": str(self.quantity),
            "facility_energy_kwh": str(self.facility_energy_kwh),
            "items": [item.as_json() for item in self.items], "amount_fen": self.amount_fen,
            "discount_fen": self.discount_fen, "payable_fen": self.payable_fen,
            "collected_fen": self.collected_fen, "unpaid_fen": self.unpaid_fen,
            "transfer_ids": list(self.transfer_ids),
        }


@dataclass(frozen=True, slots=True)
class BillTotals:
    amount_fen: int
    discount_fen: int
    payable_fen: int
    collected_fen: int
    unpaid_fen: int
    device_hours_micro: int
    compute_unit_hours_micro: int
    facility_energy_wh: int

    @classmethod
    def of(cls, lines: tuple[BillLine, ...]) -> BillTotals:
        """The sums of a bill's lines."""
        return cls(amount_fen=sum(line.amount_fen for line in lines),
                   discount_fen=sum(line.discount_fen for line in lines),
                   payable_fen=sum(line.payable_fen for line in lines),
                   collected_fen=sum(line.collected_fen for line in lines),
                   unpaid_fen=sum(line.unpaid_fen for line in lines),
                   device_hours_micro=sum(line.device_hours_micro for line in lines),
                   compute_unit_hours_micro=sum(line.compute_unit_hours_micro for line in lines),
                   facility_energy_wh=sum(line.facility_energy_wh for line in lines))

    def as_json(self) -> Document:
        return {"amount_fen": self.amount_fen, "discount_fen": self.discount_fen,
                "payable_fen": self.payable_fen, "collected_fen": self.collected_fen,
                "unpaid_fen": self.unpaid_fen,
                "device_hours": str(from_micro(self.device_hours_micro)),
                "compute_unit_hours": str(from_micro(self.compute_unit_hours_micro)),
                "facility_energy_kwh": str(kwh(self.facility_energy_wh))}


@dataclass(frozen=True, slots=True)
class VoucherTotal:
    """What one voucher paid over the whole bill."""

    programme_id: str
    voucher_id: str
    discount_fen: int

    def as_json(self) -> Document:
        return {"programme_id": self.programme_id, "voucher_id": self.voucher_id,
                "discount_fen": self.discount_fen}


@dataclass(frozen=True, slots=True)
class WalletMovement:
    """The wallet's posted transfers in the period: opening, in, out, closing, by code."""

    account_id: str
    opening_balance_fen: int
    credits_fen: int
    debits_fen: int
    by_code_fen: Mapping[str, int]  # transfer code -> fen moved, codes sorted

    @property
    def closing_balance_fen(self) -> int:
        return self.opening_balance_fen + self.credits_fen - self.debits_fen

    def as_json(self) -> Document:
        return {"account_id": self.account_id, "opening_balance_fen": self.opening_balance_fen,
                "credits_fen": self.credits_fen, "debits_fen": self.debits_fen,
                "closing_balance_fen": self.closing_balance_fen,
                "by_code_fen": dict(self.by_code_fen)}


@dataclass(frozen=True, slots=True)
class Bill:
    """A tenant's bill for one month (YYYY-MM, Asia/Shanghai)."""

    tenant_id: str
    tenant_name: str
    period: str
    billing_mode: str
    period_start: datetime
    period_end: datetime
    lines: tuple[BillLine, ...]
    totals: BillTotals
    vouchers: tuple[VoucherTotal, ...]
    wallet: WalletMovement
    currency: str = CURRENCY
    timezone: str = TIMEZONE

    def as_json(self) -> Document:
        return {
            "tenant_id": self.tenant_id, "tenant_name": self.tenant_name, "period": self.period,
            "currency": self.currency, "timezone": self.timezone,
            "billing_mode": self.billing_mode,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "lines": [line.as_json() for line in self.lines], "totals": self.totals.as_json(),
            "vouchers": [v.as_json() for v in self.vouchers],
            "wallet": self.wallet.as_json(),
        }


def voucher_totals(lines: tuple[BillLine, ...]) -> tuple[VoucherTotal, ...]:
    """What each voucher paid over the lines, by (programme, voucher)."""
    paid: dict[tuple[str, str], int] = {}
    for line in lines:
        for item in line.items:
            for share in item.vouchers:
                key = (share.programme_id, share.voucher_id)
                paid[key] = paid.get(key, 0) + share.discount_fen
    return tuple(VoucherTotal(p, v, amount) for (p, v), amount in sorted(paid.items()))


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """A payout statement's line: one usage record, who paid what, the fee and the net."""

    usage_record_id: str
    job_id: str
    pool_id: str
    tenant_id: str
    accelerator: str
    end: datetime
    compute_unit_hours_micro: int
    amount_fen: int
    tenant_paid_fen: int
    voucher_paid_fen: int
    unpaid_fen: int
    fee_fen: int
    net_fen: int

    def as_json(self) -> Document:
        return {"usage_record_id": self.usage_record_id, "job_id": self.job_id,
                "pool_id": self.pool_id, "tenant_id": self.tenant_id,
                "accelerator": self.accelerator, "end": self.end.isoformat(),
                "compute_unit_hours": str(from_micro(self.compute_unit_hours_micro)),
                "amount_fen": self.amount_fen, "tenant_paid_fen": self.tenant_paid_fen,
                "voucher_paid_fen": self.voucher_paid_fen, "unpaid_fen": self.unpaid_fen,
                "fee_fen": self.fee_fen, "net_fen": self.net_fen}


@dataclass(frozen=True, slots=True)
class PayoutTotals:
    amount_fen: int
    tenant_paid_fen: int
    voucher_paid_fen: int
    unpaid_fen: int
    fee_fen: int
    net_fen: int

    @classmethod
    def of(cls, lines: tuple[PayoutLine, ...]) -> PayoutTotals:
        return cls(amount_fen=sum(line.amount_fen for line in lines),
                   tenant_paid_fen=sum(line.tenant_paid_fen for line in lines),
                   voucher_paid_fen=sum(line.voucher_paid_fen for line in lines),
                   unpaid_fen=sum(line.unpaid_fen for line in lines),
                   fee_fen=sum(line.fee_fen for line in lines),
                   net_fen=sum(line.net_fen for line in lines))

    def as_json(self) -> Document:
        return {"amount_fen": self.amount_fen, "tenant_paid_fen": self.tenant_paid_fen,
                "voucher_paid_fen": self.voucher_paid_fen, "unpaid_fen": self.unpaid_fen,
                "fee_fen": self.fee_fen, "net_fen": self.net_fen}


@dataclass(frozen=True, slots=True)
class Payout:
    """A provider's payout statement for one month."""

    provider_tenant_id: str
    period: str
    lines: tuple[PayoutLine, ...]
    totals: PayoutTotals
    receivable_account_id: str
    receivable_balance_fen: int
    currency: str = CURRENCY

    def as_json(self) -> Document:
        return {"provider_tenant_id": self.provider_tenant_id, "period": self.period,
                "currency": self.currency, "lines": [line.as_json() for line in self.lines],
                "totals": self.totals.as_json(),
                "receivable_account_id": self.receivable_account_id,
                "receivable_balance_fen": self.receivable_balance_fen}
