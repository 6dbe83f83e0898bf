"""Products of the exchange (算力交易品种): accelerator class x location x one-hour block.

A product is a standard contract: the right to `count` devices (or standard compute units)
of one accelerator class, at one hub or province, for one hour-long block. Its id spells the
three parts, e.g. `nvidia-h100-sxm:ningxia:2026-11-02T10Z`, so the same product has the same id
on every node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

from suanli.domain.errors import ValidationFailed
from suanli.domain.resources import PROVINCES, Hub
from suanli.domain.units import WORKLOAD_CLASSES

BLOCK_S = 3600  # every product is one hour: starts on the hour, like SF Compute's contracts
MAX_HORIZON_S = 30 * 86_400  # blocks trade at most 30 days ahead
# Near-term blocks trade continuously (spot); further out, in periodic call auctions.
CONTINUOUS_HORIZON_S = 6 * 3600
AUCTION_PERIOD_S = 3600  # a call-auction product uncrosses at most this long after the last
SCU_PREFIX = "scu-"  # an effective-unit class: standard compute units of one workload class
UNIT_CLASSES = frozenset(SCU_PREFIX + workload for workload in WORKLOAD_CLASSES)

_CLASS_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,47}$")
_HUBS = frozenset(hub.value for hub in Hub)


class MatchingRule(StrEnum):
    CONTINUOUS = "continuous"  # price-time priority, each order matched as it arrives
    CALL_AUCTION = "call_auction"  # orders collect, then one uniform-price uncross


class QuantityUnit(StrEnum):
    DEVICE = "device"  # devices of the accelerator class, for the hour
    SCU = "scu"  # standard compute units (SCU v1) delivered in the hour


def check_accelerator_class(value: object, field: str = "accelerator_class") -> str:
    """A catalog key (the service checks it exists) or an effective-unit class `scu-<workload>`."""
    if not isinstance(value, str) or not _CLASS_RE.match(value):
        raise ValidationFailed("a catalog accelerator key or scu-<workload class>", field=field)
    if value.startswith(SCU_PREFIX) and value not in UNIT_CLASSES:
        raise ValidationFailed(f"one of {', '.join(sorted(UNIT_CLASSES))}", field=field)
    return value


def check_location(value: object, field: str = "location") -> str:
    """A national hub (e.g. `ningxia`) or a province code (e.g. `CN-GZ`)."""
    if not isinstance(value, str) or (value not in _HUBS and value not in PROVINCES):
        raise ValidationFailed("a hub (e.g. ningxia) or an ISO 3166-2:CN province (e.g. CN-GZ)",
                               field=field)
    return value


def unit_of(accelerator_class: str) -> QuantityUnit:
    return QuantityUnit.SCU if accelerator_class.startswith(SCU_PREFIX) else QuantityUnit.DEVICE


def workload_of(accelerator_class: str) -> str:
    """The workload class an SCU product is rated in; `general` for a device product."""
    if accelerator_class.startswith(SCU_PREFIX):
        return accelerator_class[len(SCU_PREFIX):]
    return "general"


@lru_cache(maxsize=4096)  # a product's id is read on every event of its book
def block_label(block_start_s: int) -> str:
    return datetime.fromtimestamp(block_start_s, UTC).strftime("%Y-%m-%dT%HZ")


@dataclass(frozen=True, slots=True)
class ProductKey:
    accelerator_class: str
    location: str
    block_start_s: int  # epoch seconds, a multiple of BLOCK_S

    def __post_init__(self) -> None:
        check_accelerator_class(self.accelerator_class)
        check_location(self.location)
        start = self.block_start_s
        if isinstance(start, bool) or not isinstance(start, int) or start % BLOCK_S:
            raise ValidationFailed("a block starts on the hour", field="intervals")

    @property
    def id(self) -> str:
        return f"{self.accelerator_class}:{self.location}:{block_label(self.block_start_s)}"

    @property
    def block_end_s(self) -> int:
        return self.block_start_s + BLOCK_S

    @property
    def unit(self) -> QuantityUnit:
        return unit_of(self.accelerator_class)


def parse_product_id(product_id: str) -> ProductKey:
    """The key a product id spells; ValidationFailed naming `product_id` if it spells none."""
    parts = product_id.split(":")
    if len(parts) != 3:
        raise ValidationFailed("<class>:<location>:<YYYY-MM-DDTHHZ>", field="product_id")
    try:
        start = datetime.strptime(parts[2], "%Y-%m-%dT%HZ").replace(tzinfo=UTC)
        key = ProductKey(parts[0], parts[1], int(start.timestamp()))
    except (ValueError, ValidationFailed):
        raise ValidationFailed("<class>:<location>:<YYYY-MM-DDTHHZ>",
                               field="product_id") from None
    assert key.id == product_id
    return key


def default_rule(block_start_s: int, now_s: int) -> MatchingRule:
    """Near-term blocks trade continuously; a block further out than CONTINUOUS_HORIZON_S
    when its product opens collects orders for call auctions (docs/market.md)."""
    if block_start_s - now_s > CONTINUOUS_HORIZON_S:
        return MatchingRule.CALL_AUCTION
    return MatchingRule.CONTINUOUS
