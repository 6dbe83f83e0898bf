"""Providers, sites and pools: /v1/providers, /v1/sites, /v1/pools."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from suanli.api.context import AppContext, context, principal
from suanli.api.fields import (
    ID_CHARS,
    TOKEN_PATTERN,
    AcceleratorKey,
    Architecture,
    DeviceKind,
    Province,
    Vendor,
    WorkloadClass,
    bounded_decimal,
)
from suanli.api.schemas import (
    HubName,
    Page,
    PoolHitOut,
    PoolIn,
    PoolOut,
    PoolPatch,
    ProviderIn,
    ProviderOut,
    ProviderPatch,
    SiteIn,
    SiteOut,
    SitePatch,
)
from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.jobs import MAX_MEMORY_GB
from suanli.domain.resources import MAX_PRICE_FEN_PER_DEVICE_HOUR
from suanli.domain.search import PoolQuery, SortKey
from suanli.domain.tenants import Principal
from suanli.services.registry import inventory as registry
from suanli.services.registry import search

router = APIRouter(prefix="/v1", tags=["registry"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=100_000)]
QueryDecimal = bounded_decimal(0, 10**12)
Out = TypeVar("Out", bound=BaseModel)


def _out(model: type[Out], row: object) -> Out:
    return model.model_validate(row, from_attributes=True)


# -- providers ---------------------------------------------------------------------------

@router.post("/providers", status_code=201, response_model=ProviderOut)
def create_provider(body: ProviderIn, ctx: Ctx, caller: Caller) -> ProviderOut:
    with ctx.db.unit_of_work() as session:
        row = registry.create_provider(session, caller, ctx.authority, name=body.name,
                                       kind=body.kind, country=body.country, now=ctx.clock.now())
        return _out(ProviderOut, row)


@router.get("/providers", response_model=Page[ProviderOut])
def list_providers(ctx: Ctx, caller: Caller, mine: bool = False, include_retired: bool = False,
                   limit: Limit = 50, offset: Offset = 0) -> Page[ProviderOut]:
    with ctx.db.unit_of_work() as session:
        rows = registry.list_providers(session, tenant_id=caller.tenant_id if mine else None,
                                       include_retired=include_retired, limit=limit + 1,
                                       offset=offset)
        return Page[ProviderOut](items=[_out(ProviderOut, r) for r in rows[:limit]],
                                 next_offset=offset + limit if len(rows) > limit else None)


@router.get("/providers/{provider_id}", response_model=ProviderOut)
def get_provider(provider_id: str, ctx: Ctx, caller: Caller) -> ProviderOut:
    with ctx.db.unit_of_work() as session:
        return _out(ProviderOut, registry.get_provider(session, provider_id))


@router.patch("/providers/{provider_id}", response_model=ProviderOut)
def update_provider(provider_id: str, body: ProviderPatch, ctx: Ctx,
                    caller: Caller) -> ProviderOut:
    with ctx.db.unit_of_work() as session:
        row = registry.update_provider(session, caller, provider_id,
                                       body.model_dump(exclude_unset=True), ctx.clock.now())
        return _out(ProviderOut, row)


@router.delete("/providers/{provider_id}", response_model=ProviderOut)
def retire_provider(provider_id: str, ctx: Ctx, caller: Caller) -> ProviderOut:
    with ctx.db.unit_of_work() as session:
        return _out(ProviderOut, registry.retire_provider(session, caller, provider_id,
                                                          ctx.clock.now()))


# -- sites ---------------------------------------------------------------------------------

@router.post("/providers/{provider_id}/sites", status_code=201, response_model=SiteOut)
def create_site(provider_id: str, body: SiteIn, ctx: Ctx, caller: Caller) -> SiteOut:
    with ctx.db.unit_of_work() as session:
        row = registry.create_site(session, caller, provider_id, body.model_dump(),
                                   ctx.clock.now())
        return _out(SiteOut, row)


@router.get("/sites", response_model=Page[SiteOut])
def list_sites(ctx: Ctx, caller: Caller, provider_id: str | None = None, hub: str | None = None,
               province: str | None = None, include_retired: bool = False, limit: Limit = 50,
               offset: Offset = 0) -> Page[SiteOut]:
    with ctx.db.unit_of_work() as session:
        rows = registry.list_sites(session, provider_id=provider_id, hub=hub, province=province,
                                   include_retired=include_retired, limit=limit + 1,
                                   offset=offset)
        return Page[SiteOut](items=[_out(SiteOut, r) for r in rows[:limit]],
                             next_offset=offset + limit if len(rows) > limit else None)


@router.get("/sites/{site_id}", response_model=SiteOut)
def get_site(site_id: str, ctx: Ctx, caller: Caller) -> SiteOut:
    with ctx.db.unit_of_work() as session:
        return _out(SiteOut, registry.get_site(session, site_id))


@router.patch("/sites/{site_id}", response_model=SiteOut)
def update_site(site_id: str, body: SitePatch, ctx: Ctx, caller: Caller) -> SiteOut:
    with ctx.db.unit_of_work() as session:
        row = registry.update_site(session, caller, site_id, body.model_dump(exclude_unset=True),
                                   ctx.clock.now())
        return _out(SiteOut, row)


@router.delete("/sites/{site_id}", response_model=SiteOut)
def retire_site(site_id: str, ctx: Ctx, caller: Caller) -> SiteOut:
    with ctx.db.unit_of_work() as session:
        return _out(SiteOut, registry.retire_site(session, caller, site_id, ctx.clock.now()))


# -- pools ---------------------------------------------------------------------------------

@router.post("/sites/{site_id}/pools", status_code=201, response_model=PoolOut)
def create_pool(site_id: str, body: PoolIn, ctx: Ctx, caller: Caller) -> PoolOut:
    fields = body.model_dump(exclude={"accelerator"})
    with ctx.db.unit_of_work() as session:
        row = registry.create_pool(session, caller, site_id, accelerator=body.accelerator,
                                   fields=fields, now=ctx.clock.now())
        return _out(PoolOut, row)


@router.get("/pools", response_model=Page[PoolHitOut])
def search_pools(
    ctx: Ctx,
    caller: Caller,
    vendor: Vendor | None = None,
    architecture: Architecture | None = None,
    accelerator: AcceleratorKey | None = None,
    device_kind: DeviceKind | None = None,
    min_memory_gb: Annotated[float | None, Query(ge=0, le=MAX_MEMORY_GB,
                                                 allow_inf_nan=False)] = None,
    min_units: Annotated[QueryDecimal | None, Query(description="free effective units")]
    = None,
    workload_class: WorkloadClass = "general",
    province: Province | None = None,
    hub: HubName | None = None,
    max_fen_per_unit_hour: QueryDecimal | None = None,
    max_fen_per_device_hour: Annotated[int | None, Query(
        ge=0, le=MAX_PRICE_FEN_PER_DEVICE_HOUR)] = None,
    min_green_share: Annotated[Decimal | None, Query(ge=0, le=1, allow_inf_nan=False,
                                                     decimal_places=6)] = None,
    available_only: bool = True,
    provider_id: Annotated[str | None, Query(max_length=ID_CHARS, pattern=TOKEN_PATTERN)]
    = None,
    sort: SortKey = SortKey.PRICE_PER_UNIT,
    near_city: Annotated[str | None, Query(max_length=64)] = None,
    count: bool = Query(False, description="also return the total number of matches"),
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[PoolHitOut]:
    near = None
    if near_city is not None:
        try:
            place = ctx.cities.city(near_city)
        except NotFound as exc:
            raise ValidationFailed(exc.detail, field="near_city") from None
        near = (place.latitude, place.longitude)
    query = PoolQuery(vendor=vendor, architecture=architecture, accelerator=accelerator,
                      device_kind=device_kind, min_memory_gb=min_memory_gb, min_units=min_units,
                      workload_class=workload_class, province=province, hub=hub,
                      max_fen_per_unit_hour=max_fen_per_unit_hour,
                      max_fen_per_device_hour=max_fen_per_device_hour,
                      min_green_share=min_green_share, available_only=available_only,
                      provider_id=provider_id, sort=sort, near=near, limit=limit, offset=offset)
    with ctx.db.unit_of_work() as session:
        page = search.search_pools(session, query, ctx.pool_index)
        items = [PoolHitOut(**_out(PoolOut, hit.pool).model_dump(),
                            fen_per_unit_hour=hit.fen_per_unit_hour, latency_ms=hit.latency_ms)
                 for hit in page.items]
        total = search.count_pools(session, query) if count else None
        return Page[PoolHitOut](items=items, next_offset=page.next_offset, total=total)


@router.get("/pools/{pool_id}", response_model=PoolOut)
def get_pool(pool_id: str, ctx: Ctx, caller: Caller) -> PoolOut:
    with ctx.db.unit_of_work() as session:
        return _out(PoolOut, registry.get_pool(session, pool_id))


@router.patch("/pools/{pool_id}", response_model=PoolOut)
def update_pool(pool_id: str, body: PoolPatch, ctx: Ctx, caller: Caller) -> PoolOut:
    changes = body.model_dump(exclude_unset=True, exclude={"expected_version"})
    with ctx.db.unit_of_work() as session:
        row = registry.update_pool(session, caller, pool_id, changes, ctx.clock.now(),
                                   expected_version=body.expected_version)
        return _out(PoolOut, row)


@router.delete("/pools/{pool_id}", response_model=PoolOut)
def retire_pool(pool_id: str, ctx: Ctx, caller: Caller) -> PoolOut:
    with ctx.db.unit_of_work() as session:
        return _out(PoolOut, registry.retire_pool(session, caller, pool_id, ctx.clock.now()))


