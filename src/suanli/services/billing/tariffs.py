"""Tariffs per pool (资费), stored as versions; and price guidance from the cost model (指导价).

A pool without a tariff of its own is priced at its list price, `price_fen_per_device_hour`,
as a flat device-hour tariff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import billing as billing_repo
from suanli.catalog import load_catalog, units_per_device_hour
from suanli.domain.costing import (
    BandFinding,
    CostBreakdown,
    CostModel,
    PriceBand,
    check_tariff_against_band,
    cost_breakdown,
    price_guidance,
)
from suanli.domain.billing_records import PricedPool, StoredTariff
from suanli.domain.errors import Conflict, SuanliError, ValidationFailed
from suanli.domain.resources import PoolState
from suanli.domain.tariffs import Band, Basis, Tariff, Tier, TierMode, TimeOfUse
from suanli.domain.tenants import Principal, Role, require_owner, require_role
from suanli.services.registry import inventory as registry

MAX_VERSIONS_LISTED = 100
MAX_CACHED_TARIFFS = 1_000
_CACHE_KEY = "suanli.tariffs_in_force"
HOURS_PER_YEAR = 8_760

# Illustrative defaults for the cost model where the caller gives none: the catalog has no
# purchase prices. Pass capex_fen (and the rest) for a real device; see docs/billing.md.
DEFAULT_CAPEX_FEN = {"cpu": 3_000_000, "default": 15_000_000}  # 30,000 / 150,000 CNY a device
DEFAULT_LIFETIME_HOURS = 5 * HOURS_PER_YEAR
DEFAULT_UTILISATION = Decimal("0.6")
DEFAULT_OPERATIONS_SHARE_OF_CAPEX_PER_YEAR = Decimal("0.08")
DEFAULT_MIN_MARGIN = Decimal("0.05")
DEFAULT_MAX_MARGIN = Decimal("0.60")


# -- documents <-> tariffs -------------------------------------------------------------------

def to_document(tariff: Tariff) -> dict[str, Any]:
    """A tariff as JSON: prices and shares as decimal strings, never floats."""
    tou = tariff.time_of_use
    return {
        "id": tariff.id, "pool_id": tariff.pool_id, "basis": tariff.basis.value,
        "base_unit_price_fen": str(tariff.base_unit_price_fen),
        "tiers": [{"from_quantity": str(t.from_quantity), "unit_price_fen": str(t.unit_price_fen)}
                  for t in tariff.tiers],
        "tier_mode": tariff.tier_mode.value,
        "time_of_use": None if tou is None else {
            "hour_bands": [band.value for band in tou.hour_bands],
            "multipliers": {band.value: str(value) for band, value in tou.multipliers.items()}},
        "spot_discount": str(tariff.spot_discount),
        "reserved_unit_price_fen": (None if tariff.reserved_unit_price_fen is None
                                    else str(tariff.reserved_unit_price_fen)),
        "minimum_charge_fen_per_job": tariff.minimum_charge_fen_per_job,
        "currency": tariff.currency,
    }


def parse_decimal(value: Any, field: str) -> Decimal:
    """A decimal from a string or an int; a float (a binary fraction) is refused."""
    if isinstance(value, (float, bool)):
        raise ValidationFailed("must be a decimal string or an integer, not a float",
                               field=field)
    try:
        result = Decimal(str(value)) if isinstance(value, (str, int)) else value
    except ArithmeticError:
        raise ValidationFailed(f"not a decimal number: {value!r}", field=field) from None
    if not isinstance(result, Decimal) or not result.is_finite():
        raise ValidationFailed("must be a finite decimal number", field=field)
    return result


E = TypeVar("E", bound=StrEnum)


def _enum(enum_type: type[E], value: Any, field: str) -> E:
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum_type)
        raise ValidationFailed(f"unknown value {value!r}; one of {choices}", field=field) from None


def from_document(document: Mapping[str, Any], tariff_id: str, pool_id: str) -> Tariff:
    """Build (and so validate) a tariff from JSON; errors name the document's field."""
    tiers = tuple(
        Tier(parse_decimal(tier.get("from_quantity"), f"tiers[{i}].from_quantity"),
             parse_decimal(tier.get("unit_price_fen"), f"tiers[{i}].unit_price_fen"))
        for i, tier in enumerate(document.get("tiers") or ()))
    tou_doc = document.get("time_of_use")
    time_of_use = None
    if tou_doc is not None:
        bands = tuple(_enum(Band, band, f"time_of_use.hour_bands[{hour}]")
                      for hour, band in enumerate(tou_doc.get("hour_bands") or ()))
        multipliers = {_enum(Band, band, "time_of_use.multipliers"):
                       parse_decimal(value, f"time_of_use.multipliers[{band}]")
                       for band, value in (tou_doc.get("multipliers") or {}).items()}
        time_of_use = TimeOfUse(bands, multipliers)
    reserved = document.get("reserved_unit_price_fen")
    return Tariff(
        id=tariff_id, pool_id=pool_id,
        basis=_enum(Basis, document.get("basis", Basis.DEVICE_HOUR.value), "basis"),
        base_unit_price_fen=parse_decimal(document.get("base_unit_price_fen"),
                                          "base_unit_price_fen"),
        tiers=tiers,
        tier_mode=_enum(TierMode, document.get("tier_mode", TierMode.GRADUATED.value),
                        "tier_mode"),
        time_of_use=time_of_use,
        spot_discount=parse_decimal(document.get("spot_discount", "0"), "spot_discount"),
        reserved_unit_price_fen=(None if reserved is None
                                 else parse_decimal(reserved, "reserved_unit_price_fen")),
        minimum_charge_fen_per_job=document.get("minimum_charge_fen_per_job", 0),
    )


def stored_tariff(document: Mapping[str, Any]) -> Tariff:
    """A tariff from a stored document (it carries its own id and pool)."""
    return from_document(document, document["id"], document["pool_id"])


# -- the tariff in force ---------------------------------------------------------------------

@dataclass(frozen=True)
class PoolTariff:
    tariff: Tariff
    version: int | None  # None: the pool's list price, no tariff of its own
    created_at: datetime | None = None


def list_price_tariff(pool: PricedPool) -> Tariff:
    return Tariff(id=f"{pool.id}/list@{pool.price_fen_per_device_hour}", pool_id=pool.id,
                  basis=Basis.DEVICE_HOUR,
                  base_unit_price_fen=Decimal(pool.price_fen_per_device_hour))


def current_tariff(session: Session, pool: PricedPool) -> PoolTariff:
    """The tariff in force for new leases on the pool.

    Remembered for the rest of the session (one unit of work): a scheduling pass asks for the same
    pools' tariffs for every pending job, and a tariff set meanwhile by another transaction
    applies from the next pass on."""
    cache = session.info.setdefault(_CACHE_KEY, {})
    key = (pool.id, pool.price_fen_per_device_hour)
    if key not in cache:
        if len(cache) >= MAX_CACHED_TARIFFS:
            cache.clear()
        row = billing_repo.latest_tariff(session, pool.id)
        cache[key] = (PoolTariff(list_price_tariff(pool), None) if row is None else
                      PoolTariff(stored_tariff(row.document), row.version, row.created_at))
    return cache[key]


def tariffs_in_force(session: Session, pools: Sequence[PricedPool]) -> dict[str, Tariff]:
    """The tariff in force on each of `pools`, by pool id, read in one query (a placement
    table prices every pool of the platform at once)."""
    stored = billing_repo.latest_tariffs(session)
    return {pool.id: (stored_tariff(stored[pool.id].document) if pool.id in stored
                      else list_price_tariff(pool)) for pool in pools}


def get_tariff(session: Session, pool_id: str) -> PoolTariff:
    return current_tariff(session, registry.get_pool(session, pool_id))


def set_tariff(session: Session, principal: Principal, pool_id: str,
               document: Mapping[str, Any], now: datetime) -> PoolTariff:
    """A new version of the pool's tariff, by the pool's provider (or an operator).

    It applies to leases opened from now on; a running job keeps the tariff it was placed at.
    """
    require_role(principal, Role.PROVIDER)
    pool = registry.get_pool(session, pool_id)
    require_owner(principal, pool.tenant_id, f"pool {pool.id}")
    if pool.state == PoolState.RETIRED.value:
        raise Conflict(f"pool {pool.id} is retired", field="pool_id")
    # The pool row is the lock that makes versions sequential under concurrent PUTs.
    billing_repo.lock_pool_for_tariff(session, pool.id)
    version = billing_repo.max_tariff_version(session, pool.id) + 1
    tariff = from_document(document, f"{pool.id}/v{version}", pool.id)
    billing_repo.add_tariff(session, StoredTariff(
        id=tariff.id, pool_id=pool.id, version=version, document=to_document(tariff),
        created_by=principal.tenant_id, created_at=now))
    session.info.pop(_CACHE_KEY, None)
    return PoolTariff(tariff, version, now)


def tariff_history(session: Session, pool_id: str) -> list[PoolTariff]:
    pool = registry.get_pool(session, pool_id)
    rows = billing_repo.tariff_versions(session, pool.id, MAX_VERSIONS_LISTED)
    return [PoolTariff(stored_tariff(r.document), r.version, r.created_at) for r in rows]


# -- metering facts of a pool ----------------------------------------------------------------

def units_rating(pool: PricedPool, workload_class: str) -> Decimal:
    """Compute units one device of the pool delivers in an hour, for the workload class; the
    general rating where the class is not rated for this device."""
    for workload in (workload_class, "general"):
        try:
            return units_per_device_hour(pool.accelerator, workload)
        except SuanliError:
            continue
    return Decimal(pool.units_per_device_hour)


def device_power_kw(accelerator: str) -> Decimal:
    """The catalog TDP in kW (0 when the vendor publishes none)."""
    tdp_w = load_catalog().get(accelerator).tdp_w
    return Decimal(0) if tdp_w is None else (Decimal(str(tdp_w)) / 1000).quantize(
        Decimal("0.000001"))


# -- price guidance --------------------------------------------------------------------------

@dataclass(frozen=True)
class Guidance:
    pool_id: str
    model: CostModel
    costs: CostBreakdown
    band: PriceBand
    tariff: PoolTariff
    findings: tuple[BandFinding, ...]
    defaults_used: tuple[str, ...]

    @property
    def within_band(self) -> bool:
        return all(f.verdict.value == "within" for f in self.findings)


def guidance(session: Session, pool_id: str, *, capex_fen: int | None = None,
             lifetime_hours: int | None = None, utilisation: Decimal | None = None,
             operations_fen_per_device_hour: Decimal | None = None,
             min_margin: Decimal | None = None, max_margin: Decimal | None = None,
             basis: str | None = None) -> Guidance:
    """The cost of a device-hour at the pool's site (PUE, electricity price, catalog TDP) and
    a fair price band around it; flags each list price of the pool's tariff outside it."""
    pool = registry.get_pool(session, pool_id)
    site = billing_repo.get_site_costs(session, pool.site_id)
    assert site is not None
    defaults: list[str] = []
    if capex_fen is None:
        capex_fen = DEFAULT_CAPEX_FEN.get(pool.device_kind, DEFAULT_CAPEX_FEN["default"])
        defaults.append("capex_fen")
    if lifetime_hours is None:
        lifetime_hours = DEFAULT_LIFETIME_HOURS
        defaults.append("lifetime_hours")
    if utilisation is None:
        utilisation = DEFAULT_UTILISATION
        defaults.append("utilisation")
    if operations_fen_per_device_hour is None:
        yearly = Decimal(capex_fen) * DEFAULT_OPERATIONS_SHARE_OF_CAPEX_PER_YEAR
        operations_fen_per_device_hour = (yearly / HOURS_PER_YEAR).quantize(Decimal("0.0001"))
        defaults.append("operations_fen_per_device_hour")
    model = CostModel(capex_fen=capex_fen, lifetime_hours=lifetime_hours,
                      device_power_kw=device_power_kw(pool.accelerator),
                      pue=Decimal(site.pue).quantize(Decimal("0.01")),
                      electricity_fen_per_kwh=Decimal(site.electricity_fen_per_kwh),
                      operations_fen_per_device_hour=operations_fen_per_device_hour,
                      utilisation=utilisation,
                      units_per_device_hour=units_rating(pool, "general").quantize(
                          Decimal("0.000001")))
    in_force = current_tariff(session, pool)
    chosen = _enum(Basis, basis, "basis") if basis else in_force.tariff.basis
    band = price_guidance(cost_breakdown(model), chosen,
                          DEFAULT_MIN_MARGIN if min_margin is None else min_margin,
                          DEFAULT_MAX_MARGIN if max_margin is None else max_margin)
    findings = (check_tariff_against_band(in_force.tariff, band)
                if in_force.tariff.basis == chosen else ())
    return Guidance(pool.id, model, cost_breakdown(model), band, in_force, findings,
                    tuple(defaults))
