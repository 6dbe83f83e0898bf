"""A pool search (可查询): filters, sort order and page, validated before any query runs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from suanli.domain.errors import ValidationFailed
from suanli.domain.resources import Hub, check_province
from suanli.domain.units import WORKLOAD_CLASSES

MAX_PAGE_SIZE = 200
MAX_OFFSET = 100_000


class SortKey(StrEnum):
    PRICE_PER_UNIT = "price_per_unit"  # fen per effective compute-unit-hour, cheapest first
    PRICE = "price"  # fen per device-hour, cheapest first
    LATENCY = "latency"  # round-trip time from `near_city`, nearest first
    GREEN = "green"  # green-power share, greenest first
    FREE = "free"  # most free devices first


@dataclass(frozen=True)
class PoolQuery:
    vendor: str | None = None
    architecture: str | None = None
    accelerator: str | None = None
    device_kind: str | None = None
    min_memory_gb: float | None = None
    min_units: Decimal | None = None  # free capacity in effective units per hour
    workload_class: str = "general"
    province: str | None = None
    hub: str | None = None
    max_fen_per_unit_hour: Decimal | None = None
    max_fen_per_device_hour: int | None = None
    min_green_share: Decimal | None = None
    available_only: bool = True
    provider_id: str | None = None
    sort: SortKey = SortKey.PRICE_PER_UNIT
    near: tuple[float, float] | None = None  # (latitude, longitude) of `near_city`
    limit: int = 20
    offset: int = 0

    def __post_init__(self) -> None:
        if self.workload_class not in WORKLOAD_CLASSES:
            raise ValidationFailed(
                f"unknown workload class {self.workload_class!r}; one of "
                + ", ".join(WORKLOAD_CLASSES), field="workload_class")
        if self.province is not None:
            check_province(self.province)
        if self.hub is not None and self.hub not in {h.value for h in Hub}:
            raise ValidationFailed(
                f"unknown hub {self.hub!r}; one of " + ", ".join(h.value for h in Hub),
                field="hub")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"must be 1..{MAX_PAGE_SIZE}", field="limit")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise ValidationFailed(f"must be 0..{MAX_OFFSET}", field="offset")
        for name in ("min_memory_gb", "min_units", "max_fen_per_unit_hour",
                     "max_fen_per_device_hour"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValidationFailed("must not be negative", field=name)
        if self.min_green_share is not None and not 0 <= self.min_green_share <= 1:
            raise ValidationFailed("must be between 0 and 1", field="min_green_share")
        if self.sort is SortKey.LATENCY and self.near is None:
            raise ValidationFailed("sorting by latency needs near_city", field="near_city")
