"""Overview (the map), pools search, a pool, the accelerator catalog."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from suanli.console.common import api, current, page
from suanli.console.sessions import ConsoleSession
from suanli.console.views import MAP_HEIGHT, MAP_WIDTH, METRICS, graticule, places, totals

router = APIRouter(include_in_schema=False)
Session = Annotated[ConsoleSession, Depends(current)]

MAP_POOLS = 2000  # every pool of a national platform; the demo has 178
PAGE = 200  # the API's largest page
# GET /v1/pools's filters, as the search form names them
POOL_FILTERS = ("vendor", "architecture", "accelerator", "device_kind", "min_memory_gb",
                "min_units", "workload_class", "province", "hub", "max_fen_per_unit_hour",
                "max_fen_per_device_hour", "min_green_share", "available_only", "provider_id",
                "sort", "near_city")
POOL_SORTS = ("price_per_unit", "price", "latency", "green", "free")
SEARCH_LIMIT = 50


async def _overview(request: Request, session: ConsoleSession, metric: str) -> dict[str, Any]:
    metric = metric if metric in METRICS else METRICS[0]
    pools = await api(request, session).all_pages("/v1/pools", {"limit": PAGE}, MAP_POOLS)
    sites, hubs = places(pools, metric)
    return {"metric": metric, "metrics": METRICS, "sites": sites, "hubs": hubs,
            "graticule": graticule(), "map_width": MAP_WIDTH, "map_height": MAP_HEIGHT,
            "by_vendor": totals(pools, "vendor"), "by_hub": totals(pools, "hub"),
            "pool_count": len(pools), "devices": sum(p["device_count"] for p in pools),
            "free": sum(p["free_devices"] for p in pools)}


@router.get("/")
async def overview(request: Request, session: Session, metric: str = "utilisation") -> Response:
    return page(request, "overview.html", await _overview(request, session, metric),
                session=session)


@router.get("/overview/live")
async def overview_live(request: Request, session: Session,
                        metric: str = "utilisation") -> Response:
    """The map and totals alone: the overview polls it (htmx)."""
    return page(request, "_overview_live.html", await _overview(request, session, metric),
                session=session, fragment=True)


@router.get("/pools")
async def pools(request: Request, session: Session) -> Response:
    chosen = {name: request.query_params.get(name, "").strip() for name in POOL_FILTERS}
    params: dict[str, Any] = {k: v for k, v in chosen.items() if v}
    if params.get("sort") and params["sort"] not in POOL_SORTS:
        params.pop("sort")
    if "available_only" in params:
        params["available_only"] = "true"
    params["limit"] = SEARCH_LIMIT
    found = await api(request, session).get("/v1/pools", params)
    base = {k: v for k, v in chosen.items() if v and k != "sort"}
    return page(request, "pools.html", {"filters": chosen, "sorts": POOL_SORTS, "base": base,
                                        "items": found["items"]}, session=session)


@router.get("/pools/{pool_id}")
async def pool(request: Request, session: Session, pool_id: str) -> Response:
    client = api(request, session)
    found = await client.get(f"/v1/pools/{pool_id}")
    context = {
        "pool": found,
        "tariff": await client.get_or_none(f"/v1/pools/{pool_id}/tariff"),
        "calibration": await client.get_or_none(f"/v1/pools/{pool_id}/calibration"),
        "guidance": await client.get_or_none(f"/v1/pools/{pool_id}/price-guidance"),
        "accelerator": await client.get_or_none(
            f"/v1/catalog/accelerators/{found['accelerator']}"),
    }
    return page(request, "pool.html", context, session=session)


@router.get("/catalog")
async def catalog(request: Request, session: Session) -> Response:
    found = await api(request, session).get("/v1/catalog/accelerators")
    units = await api(request, session).get_or_none("/v1/units")
    return page(request, "catalog.html", {"items": found["items"], "units": units},
                session=session)
