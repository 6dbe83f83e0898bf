"""The registry: providers, sites and pools — create, read, update, retire, search."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar, overload

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import registry as repo
from suanli.catalog import Accelerator, load_catalog, units_per_device_hour
from suanli.domain.errors import Conflict, NotFound, ValidationFailed
from suanli.domain.geo import unit_vector
from suanli.domain.ids import ComputeId, IdKind
from suanli.domain.registry import PoolRecord, ProviderRecord, SiteRecord
from suanli.domain.resources import (
    Engine,
    Hub,
    Pool,
    PoolState,
    ProviderKind,
    Site,
    SiteKind,
    check_name,
)
from suanli.domain.tenants import Principal, Role, require_owner, require_role
from suanli.domain.units import WORKLOAD_CLASSES
from suanli.services.registry.identifiers import allocate

PROVIDER_FIELDS = frozenset({"name", "kind"})
SITE_FIELDS = frozenset({"name", "province", "city", "latitude", "longitude", "pue",
                         "electricity_fen_per_kwh", "green_share", "kind", "hub"})
POOL_FIELDS = frozenset({"name", "device_count", "free_devices", "engine",
                         "price_fen_per_device_hour", "state", "interconnect", "labels"})
# Facts of a site copied onto its pools so that search needs no join.
SITE_FACTS_ON_POOL = {"province": "province", "city": "city", "hub": "hub", "kind": "site_kind",
                      "green_share": "green_share", "latitude": "latitude",
                      "longitude": "longitude"}


E = TypeVar("E", bound=StrEnum)


@overload
def _enum(enum_type: type[E], value: None, field: str) -> None: ...


@overload
def _enum(enum_type: type[E], value: E | str, field: str) -> E: ...


def _enum(enum_type: type[E], value: E | str | None, field: str) -> E | None:
    if value is None or isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum_type)
        raise ValidationFailed(f"unknown value {value!r}; one of {choices}", field=field) from None


def _check_fields(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for name in changes:
        if name not in allowed:
            raise ValidationFailed(f"cannot be changed; changeable: {', '.join(sorted(allowed))}",
                                   field=name)


# -- providers ---------------------------------------------------------------------------

def create_provider(session: Session, principal: Principal, authority: ComputeId, *, name: str,
                    kind: str, country: str = "CN", now: datetime,
                    illustrative: bool = False) -> ProviderRecord:
    require_role(principal, Role.PROVIDER)
    provider_kind = _enum(ProviderKind, kind, "kind")
    if len(country) != 2 or not country.isalpha():
        raise ValidationFailed("must be an ISO 3166-1 alpha-2 code such as CN", field="country")
    provider_id = allocate(session, authority, IdKind.PROVIDER)
    record = ProviderRecord(id=str(provider_id), tenant_id=principal.tenant_id,
                            name=check_name(name, "name"), kind=provider_kind.value,
                            country=country.upper(), retired=False, illustrative=illustrative,
                            created_at=now, updated_at=now)
    repo.insert_provider(session, record)
    return record


def get_provider(session: Session, provider_id: str) -> ProviderRecord:
    row = repo.get_provider(session, _canonical(provider_id, "provider_id"))
    if row is None:
        raise NotFound(f"provider {provider_id} does not exist", field="provider_id")
    return row


def list_providers(session: Session, *, tenant_id: str | None = None, include_retired: bool = False,
                   limit: int = 50, offset: int = 0) -> list[ProviderRecord]:
    return repo.list_providers(session, tenant_id=tenant_id, include_retired=include_retired,
                               limit=limit, offset=offset)


def update_provider(session: Session, principal: Principal, provider_id: str,
                    changes: Mapping[str, Any], now: datetime) -> ProviderRecord:
    row = _writable_provider(session, principal, provider_id)
    _check_fields(changes, PROVIDER_FIELDS)
    if "name" in changes:
        row = dataclasses.replace(row, name=check_name(changes["name"], "name"))
    if "kind" in changes:
        row = dataclasses.replace(row, kind=_enum(ProviderKind, changes["kind"], "kind").value)
    row = dataclasses.replace(row, updated_at=now)
    repo.save_provider(session, row)
    return row


def retire_provider(session: Session, principal: Principal, provider_id: str,
                    now: datetime) -> ProviderRecord:
    row = _writable_provider(session, principal, provider_id)
    for site in repo.sites_of_provider(session, row.id):
        _retire_site_row(session, site, now)
    row = dataclasses.replace(row, retired=True, updated_at=now)
    repo.save_provider(session, row)
    return row


def _writable_provider(session: Session, principal: Principal,
                       provider_id: str) -> ProviderRecord:
    require_role(principal, Role.PROVIDER)
    row = get_provider(session, provider_id)
    require_owner(principal, row.tenant_id, f"provider {row.id}")
    if row.retired:
        raise Conflict(f"provider {row.id} is retired", field="provider_id")
    return row


# -- sites ---------------------------------------------------------------------------------

def create_site(session: Session, principal: Principal, provider_id: str,
                fields: Mapping[str, Any], now: datetime, *,
                illustrative: bool = False) -> SiteRecord:
    provider = _writable_provider(session, principal, provider_id)
    _check_fields(fields, SITE_FIELDS)
    site_id = allocate(session, ComputeId.parse(provider.id), IdKind.SITE)
    site = _site_from_fields(str(site_id), provider.id, fields)
    record = SiteRecord(tenant_id=provider.tenant_id, illustrative=illustrative, created_at=now,
                        updated_at=now, retired=False, **_site_columns(site))
    repo.insert_site(session, record)
    return record


def _site_from_fields(site_id: str, provider_id: str, fields: Mapping[str, Any]) -> Site:
    required = ("name", "province", "city", "latitude", "longitude", "pue",
                "electricity_fen_per_kwh", "green_share", "kind")
    for name in required:
        if fields.get(name) is None:
            raise ValidationFailed("is required", field=name)
    return Site(
        id=site_id, provider_id=provider_id, name=check_name(fields["name"], "name"),
        province=fields["province"], city=check_name(fields["city"], "city"),
        latitude=float(fields["latitude"]), longitude=float(fields["longitude"]),
        pue=Decimal(str(fields["pue"])),
        electricity_fen_per_kwh=int(fields["electricity_fen_per_kwh"]),
        green_share=Decimal(str(fields["green_share"])),
        kind=_enum(SiteKind, fields["kind"], "kind"), hub=_enum(Hub, fields.get("hub"), "hub"),
    )


def _site_columns(site: Site) -> dict[str, Any]:
    columns = dataclasses.asdict(site)
    columns.pop("retired")
    columns["kind"] = site.kind.value
    columns["hub"] = site.hub.value if site.hub else None
    return columns


def site_from_row(row: SiteRecord) -> Site:
    return Site(id=row.id, provider_id=row.provider_id, name=row.name, province=row.province,
                city=row.city, latitude=row.latitude, longitude=row.longitude, pue=row.pue,
                electricity_fen_per_kwh=row.electricity_fen_per_kwh,
                green_share=row.green_share, kind=SiteKind(row.kind),
                hub=Hub(row.hub) if row.hub else None, retired=row.retired)


def get_site(session: Session, site_id: str) -> SiteRecord:
    row = repo.get_site(session, _canonical(site_id, "site_id"))
    if row is None:
        raise NotFound(f"site {site_id} does not exist", field="site_id")
    return row


def list_sites(session: Session, *, provider_id: str | None = None, hub: str | None = None,
               province: str | None = None, include_retired: bool = False, limit: int = 50,
               offset: int = 0) -> list[SiteRecord]:
    return repo.list_sites(
        session, provider_id=_canonical(provider_id, "provider_id") if provider_id else None,
        hub=_enum(Hub, hub, "hub").value if hub else None, province=province or None,
        include_retired=include_retired, limit=limit, offset=offset)


def update_site(session: Session, principal: Principal, site_id: str,
                changes: Mapping[str, Any], now: datetime) -> SiteRecord:
    row = _writable_site(session, principal, site_id)
    _check_fields(changes, SITE_FIELDS)
    current = {name: getattr(row, name) for name in SITE_FIELDS}
    site = _site_from_fields(row.id, row.provider_id, {**current, **changes})
    row = dataclasses.replace(row, **_site_columns(site), updated_at=now)
    repo.save_site(session, row)
    for pool in repo.pools_of_site(session, row.id):
        pool = dataclasses.replace(pool, **{pool_name: getattr(row, site_name)
                                            for site_name, pool_name in SITE_FACTS_ON_POOL.items()})
        geo_x, geo_y, geo_z = unit_vector(pool.latitude, pool.longitude)
        repo.save_pool(session, dataclasses.replace(pool, geo_x=geo_x, geo_y=geo_y, geo_z=geo_z,
                                                    updated_at=now))
    return row


def retire_site(session: Session, principal: Principal, site_id: str,
                now: datetime) -> SiteRecord:
    row = _writable_site(session, principal, site_id)
    return _retire_site_row(session, row, now)


def _retire_site_row(session: Session, row: SiteRecord, now: datetime) -> SiteRecord:
    for pool in repo.pools_of_site(session, row.id):
        repo.save_pool(session, _retired_pool(pool, now))
    row = dataclasses.replace(row, retired=True, updated_at=now)
    repo.save_site(session, row)
    return row


def _writable_site(session: Session, principal: Principal, site_id: str) -> SiteRecord:
    require_role(principal, Role.PROVIDER)
    row = get_site(session, site_id)
    require_owner(principal, row.tenant_id, f"site {row.id}")
    if row.retired:
        raise Conflict(f"site {row.id} is retired", field="site_id")
    return row


# -- pools ---------------------------------------------------------------------------------

def create_pool(session: Session, principal: Principal, site_id: str, *, accelerator: str,
                fields: Mapping[str, Any], now: datetime,
                illustrative: bool = False) -> PoolRecord:
    site = _writable_site(session, principal, site_id)
    _check_fields(fields, POOL_FIELDS)
    device = _accelerator(accelerator)
    pool_id = allocate(session, ComputeId.parse(site.id), IdKind.POOL)
    pool = _pool_from_fields(str(pool_id), site.id, device.key, fields)
    record = new_pool_record(site, device, pool, now, illustrative=illustrative)
    repo.insert_pool(session, record)
    return record


def new_pool_record(site: SiteRecord, device: Accelerator, pool: Pool, now: datetime, *,
                    illustrative: bool = False) -> PoolRecord:
    """A new pool as stored: the pool, its site's facts, its device's facts."""
    values: dict[str, Any] = {pool_name: getattr(site, site_name)
                              for site_name, pool_name in SITE_FACTS_ON_POOL.items()}
    values["geo_x"], values["geo_y"], values["geo_z"] = unit_vector(site.latitude,
                                                                    site.longitude)
    values |= _pool_values(pool)
    return PoolRecord(site_id=site.id, provider_id=site.provider_id, tenant_id=site.tenant_id,
                      illustrative=illustrative, version=1, created_at=now, updated_at=now,
                      vendor=device.vendor, architecture=device.architecture,
                      device_kind=device.kind, memory_gb=device.memory_gb, **values)


def pool_row_values(site: SiteRecord, device: Accelerator, pool: Pool, now: datetime, *,
                    illustrative: bool = False) -> dict[str, Any]:
    """The column values of a new pool row (for bulk inserts by benchmarks and tests)."""
    return dataclasses.asdict(new_pool_record(site, device, pool, now,
                                              illustrative=illustrative))


def _accelerator(key: str) -> Accelerator:
    try:
        return load_catalog().get(key)
    except NotFound as exc:
        raise ValidationFailed(exc.detail, field="accelerator") from None


def _pool_from_fields(pool_id: str, site_id: str, accelerator: str,
                      fields: Mapping[str, Any]) -> Pool:
    for name in ("name", "device_count", "engine", "price_fen_per_device_hour"):
        if fields.get(name) is None:
            raise ValidationFailed("is required", field=name)
    labels = fields.get("labels") or {}
    if not isinstance(labels, dict) or len(labels) > 32:
        raise ValidationFailed("must be a mapping of at most 32 labels", field="labels")
    device_count = int(fields["device_count"])
    free = fields.get("free_devices")
    return Pool(
        id=pool_id, site_id=site_id, name=check_name(fields["name"], "name"),
        accelerator=accelerator, device_count=device_count,
        engine=_enum(Engine, fields["engine"], "engine"),
        price_fen_per_device_hour=int(fields["price_fen_per_device_hour"]),
        state=_enum(PoolState, fields.get("state") or PoolState.ACTIVE, "state"),
        free_devices=device_count if free is None else int(free),
        interconnect=fields.get("interconnect"), labels={str(k): str(v) for k, v in labels.items()},
    )


def _pool_values(pool: Pool) -> dict[str, Any]:
    """The stored values a pool's own fields set, its unit prices included."""
    return {"id": pool.id, "name": pool.name, "accelerator": pool.accelerator,
            "device_count": pool.device_count,
            "free_devices": pool.device_count if pool.free_devices is None else pool.free_devices,
            "engine": pool.engine.value, "state": pool.state.value,
            "interconnect": pool.interconnect, "labels": dict(pool.labels),
            "price_fen_per_device_hour": pool.price_fen_per_device_hour,
            **_unit_prices(pool.accelerator, pool.price_fen_per_device_hour)}


def _unit_prices(accelerator: str, price_fen_per_device_hour: int) -> dict[str, Any]:
    """Price per effective unit-hour, one column per workload class, for indexed sorting."""
    values: dict[str, Any] = {}
    for workload_class in WORKLOAD_CLASSES:
        try:
            units = units_per_device_hour(accelerator, workload_class)
        except NotFound:
            # A device whose vendor publishes no throughput figure (e.g. Kunpeng, MLU590) has
            # no rating yet: it can be registered, is priced per device-hour, and sorts after
            # rated pools by unit price until a calibration measures it.
            units = Decimal(0)
        if workload_class == "general":
            values["units_per_device_hour"] = units
        price = None if units <= 0 else (Decimal(price_fen_per_device_hour) / units
                                         ).quantize(Decimal("0.0001"))
        values[f"fen_per_unit_hour_{workload_class}"] = price
    return values


def pool_from_row(row: PoolRecord) -> Pool:
    return Pool(id=row.id, site_id=row.site_id, name=row.name, accelerator=row.accelerator,
                device_count=row.device_count, engine=Engine(row.engine),
                price_fen_per_device_hour=row.price_fen_per_device_hour,
                state=PoolState(row.state), free_devices=row.free_devices,
                interconnect=row.interconnect, labels=dict(row.labels or {}))


def get_pool(session: Session, pool_id: str) -> PoolRecord:
    row = repo.get_pool(session, _canonical(pool_id, "pool_id"))
    if row is None:
        raise NotFound(f"pool {pool_id} does not exist", field="pool_id")
    return row


def update_pool(session: Session, principal: Principal, pool_id: str,
                changes: Mapping[str, Any], now: datetime, *,
                expected_version: int | None = None) -> PoolRecord:
    row = _writable_pool(session, principal, pool_id)
    if expected_version is not None and expected_version != row.version:
        raise Conflict(f"pool {row.id} is at version {row.version}, not {expected_version}",
                       field="version")
    _check_fields(changes, POOL_FIELDS)
    current = pool_from_row(row)
    merged = {**{name: getattr(current, name) for name in POOL_FIELDS}, **changes}
    if "device_count" in changes and "free_devices" not in changes:
        in_use = current.device_count - (current.free_devices or 0)
        merged["free_devices"] = max(0, int(changes["device_count"]) - in_use)
    if _enum(PoolState, merged["state"], "state") is PoolState.RETIRED:
        raise ValidationFailed("retire a pool with DELETE, not by setting its state",
                               field="state")
    row = dataclasses.replace(
        row, **_pool_values(_pool_from_fields(row.id, row.site_id, row.accelerator, merged)),
        version=row.version + 1, updated_at=now)
    repo.save_pool(session, row)
    return row


def retire_pool(session: Session, principal: Principal, pool_id: str,
                now: datetime) -> PoolRecord:
    row = _retired_pool(_writable_pool(session, principal, pool_id), now)
    repo.save_pool(session, row)
    return row


def _retired_pool(row: PoolRecord, now: datetime) -> PoolRecord:
    return dataclasses.replace(row, state=PoolState.RETIRED.value, free_devices=0,
                               version=row.version + 1, updated_at=now)


def _writable_pool(session: Session, principal: Principal, pool_id: str) -> PoolRecord:
    require_role(principal, Role.PROVIDER)
    row = get_pool(session, pool_id)
    require_owner(principal, row.tenant_id, f"pool {row.id}")
    if row.state == PoolState.RETIRED.value:
        raise Conflict(f"pool {row.id} is retired", field="pool_id")
    return row


def _canonical(text: str, field: str) -> str:
    return str(ComputeId.parse(text, field=field))
