"""Tariffs (资费): how a pool prices usage — unit price, tiers, time-of-use, spot, reserved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from enum import StrEnum

from suanli.domain.errors import ValidationFailed

CURRENCY = "CNY"

# Unit prices are Decimal fen with at most 4 decimal places (0.0001 fen = 0.000001 CNY). Every
# unit price that appears on a bill line — including those derived with a time-of-use multiplier
# or a spot discount — is quantised to this precision, so a tenant can recompute any line amount
# from the quantity and unit price printed on it.
PRICE_DECIMALS = 4
PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_DECIMALS)
PRICE_SCALE = 10**PRICE_DECIMALS

# Quantities (unit-hours or device-hours) carry at most 6 decimal places (micro unit-hours);
# metering quantises to this, rating works on the integer count of micro unit-hours.
QUANTITY_DECIMALS = 6
QUANTITY_QUANTUM = Decimal(1).scaleb(-QUANTITY_DECIMALS)
MICRO_PER_UNIT = 10**QUANTITY_DECIMALS

# Limits chosen so that every product the batch rater forms fits in a signed 64-bit integer
# (see rating._round_mul): quantity_micro <= 1e12, effective price scaled <= 5e12.
MAX_UNIT_PRICE_FEN = Decimal(100_000_000)  # 1,000,000 CNY per unit-hour: a sanity bound
MAX_MULTIPLIER = Decimal(5)
MULTIPLIER_DECIMALS = 2
MAX_SPOT_DISCOUNT = Decimal("0.95")
DISCOUNT_DECIMALS = 2
MAX_TIERS = 8
MAX_TIER_START = Decimal(1_000_000_000)  # unit-hours of month-to-date consumption
MAX_MINIMUM_CHARGE_FEN = 10**10
HOURS_PER_DAY = 24
_MAX_ID_CHARS = 120
# Enough digits that no product of a bounded quantity and a bounded price is ever rounded
# by the Decimal context itself (the default 28 digits is not enough for 1e12 x 5e8 at 10 dp).
MONEY_CONTEXT = Context(prec=60)


class Basis(StrEnum):
    """What one unit of quantity is."""

    COMPUTE_UNIT_HOUR = "compute-unit-hour"
    DEVICE_HOUR = "device-hour"


class TierMode(StrEnum):
    GRADUATED = "graduated"  # each slice of consumption at the price of the tier it falls in
    VOLUME = "volume"  # the whole record at the price of the tier the month has reached


class Band(StrEnum):
    """Time-of-use bands, as in the provincial electricity tables (峰谷分时电价)."""

    CRITICAL_PEAK = "critical-peak"  # 尖峰
    PEAK = "peak"  # 峰
    FLAT = "flat"  # 平
    VALLEY = "valley"  # 谷


# The fixed order bands are listed, split and tie-broken in; scalar and batch rating share it.
BAND_ORDER: tuple[Band, ...] = (Band.CRITICAL_PEAK, Band.PEAK, Band.FLAT, Band.VALLEY)


def as_decimal(value: object, field_name: str) -> Decimal:
    """Accept Decimal or int; refuse float (binary fractions are not money) and other types."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise ValidationFailed(
            f"must be a Decimal or int, got {type(value).__name__}", field=field_name
        )
    result = Decimal(value)
    if not result.is_finite():
        raise ValidationFailed("must be finite", field=field_name)
    return result


def check_decimal(
    value: object, field_name: str, low: Decimal, high: Decimal, max_decimals: int
) -> Decimal:
    result = as_decimal(value, field_name)
    if not (low <= result <= high):
        raise ValidationFailed(f"must be between {low} and {high}, got {result}", field=field_name)
    if result != result.quantize(Decimal(1).scaleb(-max_decimals)):
        raise ValidationFailed(f"at most {max_decimals} decimal places, got {result}",
                               field=field_name)
    return result


def check_identifier(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not (1 <= len(value) <= _MAX_ID_CHARS):
        raise ValidationFailed(f"must be a string of 1-{_MAX_ID_CHARS} characters",
                               field=field_name)
    return value


def quantise_price(value: Decimal) -> Decimal:
    return value.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def to_micro(quantity: object, field_name: str, high: Decimal) -> int:
    """A quantity in units as an integer count of micro-units; more than 6 places is refused."""
    value = check_decimal(quantity, field_name, Decimal(0), high, QUANTITY_DECIMALS)
    micro = int(value.scaleb(QUANTITY_DECIMALS))
    assert Decimal(micro).scaleb(-QUANTITY_DECIMALS) == value
    return micro


@dataclass(frozen=True, slots=True)
class Tier:
    """A tier starting at `from_quantity` unit-hours of month-to-date consumption."""

    from_quantity: Decimal
    unit_price_fen: Decimal


@dataclass(frozen=True)
class TimeOfUse:
    """Hour-of-day bands in Asia/Shanghai local time and a price multiplier per band."""

    hour_bands: tuple[Band, ...]  # 24 entries; index = local hour (0-23)
    multipliers: Mapping[Band, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bands = tuple(self.hour_bands)
        if len(bands) != HOURS_PER_DAY:
            raise ValidationFailed(f"must list {HOURS_PER_DAY} hours, got {len(bands)}",
                                   field="time_of_use.hour_bands")
        for hour, band in enumerate(bands):
            if not isinstance(band, Band):
                raise ValidationFailed(f"hour {hour}: unknown band {band!r}",
                                       field=f"time_of_use.hour_bands[{hour}]")
        multipliers: dict[Band, Decimal] = {}
        for band, value in dict(self.multipliers).items():
            if band not in BAND_ORDER:
                raise ValidationFailed(f"unknown band {band!r}", field="time_of_use.multipliers")
            multipliers[Band(band)] = check_decimal(
                value, f"time_of_use.multipliers[{band}]", Decimal("0.01"), MAX_MULTIPLIER,
                MULTIPLIER_DECIMALS)
        for band in set(bands):
            if band not in multipliers:
                raise ValidationFailed(f"band {band} is used by an hour but has no multiplier",
                                       field=f"time_of_use.multipliers[{band}]")
        object.__setattr__(self, "hour_bands", bands)
        object.__setattr__(self, "multipliers", multipliers)

    def bands_in_use(self) -> tuple[Band, ...]:
        return tuple(band for band in BAND_ORDER if band in self.hour_bands)


FLAT_ALL_DAY = TimeOfUse(hour_bands=(Band.FLAT,) * HOURS_PER_DAY,
                         multipliers={Band.FLAT: Decimal(1)})


@dataclass(frozen=True)
class Tariff:
    """How one pool prices usage, in CNY; see docs/pricing.md for the model and rounding."""

    id: str
    pool_id: str
    basis: Basis
    base_unit_price_fen: Decimal  # tier 0: from 0 up to the first tier's from_quantity
    tiers: tuple[Tier, ...] = ()
    tier_mode: TierMode = TierMode.GRADUATED
    time_of_use: TimeOfUse | None = None  # None: one flat band at multiplier 1
    spot_discount: Decimal = Decimal(0)  # share taken off for preemptible (spot) usage
    reserved_unit_price_fen: Decimal | None = None  # offered to tenants with a commitment
    minimum_charge_fen_per_job: int = 0
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        check_identifier(self.id, "id")
        check_identifier(self.pool_id, "pool_id")
        if self.basis not in tuple(Basis):
            raise ValidationFailed(f"unknown basis {self.basis!r}", field="basis")
        if self.tier_mode not in tuple(TierMode):
            raise ValidationFailed(f"unknown tier mode {self.tier_mode!r}", field="tier_mode")
        if self.currency != CURRENCY:
            raise ValidationFailed(f"only {CURRENCY} is supported", field="currency")
        base = _check_price(self.base_unit_price_fen, "base_unit_price_fen")
        object.__setattr__(self, "base_unit_price_fen", base)
        object.__setattr__(self, "tiers", self._checked_tiers())
        spot = check_decimal(self.spot_discount, "spot_discount", Decimal(0), MAX_SPOT_DISCOUNT,
                             DISCOUNT_DECIMALS)
        object.__setattr__(self, "spot_discount", spot)
        if self.reserved_unit_price_fen is not None:
            reserved = _check_price(self.reserved_unit_price_fen, "reserved_unit_price_fen")
            object.__setattr__(self, "reserved_unit_price_fen", reserved)
        if self.time_of_use is not None and not isinstance(self.time_of_use, TimeOfUse):
            raise ValidationFailed("must be a TimeOfUse", field="time_of_use")
        minimum = self.minimum_charge_fen_per_job
        if isinstance(minimum, bool) or not isinstance(minimum, int) or not (
            0 <= minimum <= MAX_MINIMUM_CHARGE_FEN
        ):
            raise ValidationFailed(f"must be an int fen between 0 and {MAX_MINIMUM_CHARGE_FEN}",
                                   field="minimum_charge_fen_per_job")

    def _checked_tiers(self) -> tuple[Tier, ...]:
        tiers = tuple(self.tiers)
        if len(tiers) > MAX_TIERS - 1:
            raise ValidationFailed(f"at most {MAX_TIERS - 1} tiers above the base price",
                                   field="tiers")
        checked: list[Tier] = []
        previous = Decimal(0)
        for index, tier in enumerate(tiers):
            if not isinstance(tier, Tier):
                raise ValidationFailed("must be a Tier", field=f"tiers[{index}]")
            start = check_decimal(tier.from_quantity, f"tiers[{index}].from_quantity",
                                  QUANTITY_QUANTUM, MAX_TIER_START, QUANTITY_DECIMALS)
            if start <= previous:
                raise ValidationFailed(
                    f"must be above the previous tier's start {previous}, got {start}",
                    field=f"tiers[{index}].from_quantity")
            price = _check_price(tier.unit_price_fen, f"tiers[{index}].unit_price_fen")
            checked.append(Tier(from_quantity=start, unit_price_fen=price))
            previous = start
        return tuple(checked)

    @property
    def schedule(self) -> TimeOfUse:
        return self.time_of_use if self.time_of_use is not None else FLAT_ALL_DAY

    def tier_starts(self) -> tuple[Decimal, ...]:
        """Where each tier starts on the month-to-date axis; tier 0 starts at 0."""
        return (Decimal(0),) + tuple(tier.from_quantity for tier in self.tiers)

    def tier_prices(self) -> tuple[Decimal, ...]:
        return (self.base_unit_price_fen,) + tuple(tier.unit_price_fen for tier in self.tiers)

    def bands_in_use(self) -> tuple[Band, ...]:
        return self.schedule.bands_in_use()

    def unit_price_fen(self, tier: int, band: Band, spot: bool) -> Decimal:
        """The effective unit price of a tier in a band, quantised once to 4 decimal places."""
        prices = self.tier_prices()
        assert 0 <= tier < len(prices), tier
        multiplier = self.schedule.multipliers[band]
        price = prices[tier] * multiplier
        if spot:
            price = price * (Decimal(1) - self.spot_discount)
        result = quantise_price(price)
        assert Decimal(0) <= result <= MAX_UNIT_PRICE_FEN * MAX_MULTIPLIER
        return result


def _check_price(value: object, field_name: str) -> Decimal:
    return check_decimal(value, field_name, Decimal(0), MAX_UNIT_PRICE_FEN, PRICE_DECIMALS)


def reserved_shortfall_fen(tariff: Tariff, committed_quantity: Decimal,
                           month_quantity: Decimal) -> int:
    """At month close: the committed but unused quantity, billed at the reserved price."""
    if tariff.reserved_unit_price_fen is None:
        raise ValidationFailed("the tariff offers no reserved price",
                               field="reserved_unit_price_fen")
    committed = to_micro(committed_quantity, "committed_quantity", MAX_TIER_START)
    used = to_micro(month_quantity, "month_quantity", MAX_TIER_START)
    unused = max(0, committed - used)
    return line_amount_fen(unused, tariff.reserved_unit_price_fen)


def line_amount_fen(quantity_micro: int, unit_price_fen: Decimal) -> int:
    """quantity x unit price, rounded half-even to whole fen: the one rounding of a line."""
    assert quantity_micro >= 0 and unit_price_fen >= 0
    with localcontext(MONEY_CONTEXT):
        amount = Decimal(quantity_micro).scaleb(-QUANTITY_DECIMALS) * unit_price_fen
        return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
