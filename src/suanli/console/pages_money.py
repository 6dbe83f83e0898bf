"""Money (wallet, bills, vouchers, payouts), federation (operators) and the market."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from suanli.console.common import Forbidden, api, current, page
from suanli.console.sessions import ConsoleSession
from suanli.console.views import line_chart

router = APIRouter(include_in_schema=False)
Session = Annotated[ConsoleSession, Depends(current)]

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MONTHS_SHOWN = 6
BILL_TZ = timedelta(hours=8)  # bills are by month in Asia/Shanghai (docs/billing.md)
MARKET_PRODUCTS = 20
MARKET_TRADES = 50


def _months(now: datetime) -> list[str]:
    year, month = (now + BILL_TZ).year, (now + BILL_TZ).month
    found = []
    for _ in range(MONTHS_SHOWN):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found


@router.get("/money")
async def money(request: Request, session: Session, period: str = "") -> Response:
    client = api(request, session)
    months = _months(datetime.now(UTC))
    period = period if PERIOD.match(period) else months[0]
    is_provider = session.role in ("provider", "operator")
    context = {
        "wallet": await client.get_or_none("/v1/wallet"),
        "bill": await client.get_or_none(f"/v1/bills/{period}"),
        "vouchers": await client.get_or_none("/v1/vouchers") or [],
        "entitlements": await client.get_or_none("/v1/federation/entitlements"),
        "payouts": await client.get_or_none(f"/v1/payouts/{period}") if is_provider else None,
        "period": period, "months": months,
    }
    return page(request, "money.html", context, session=session)


@router.get("/money/bills/{period}.{fmt}")
async def bill_download(request: Request, session: Session, period: str, fmt: str) -> Response:
    """The API's own CSV or HTML bill, as a download."""
    if not PERIOD.match(period) or fmt not in ("csv", "html"):
        return page(request, "error.html", {"status": 404, "detail": period}, status=404)
    answer = await api(request, session).raw("GET", f"/v1/bills/{period}",
                                             params={"format": fmt})
    if answer.status_code != 200:
        return page(request, "error.html", {"status": answer.status_code, "detail": period},
                    status=answer.status_code)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "text/html; charset=utf-8"
    return Response(answer.content, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="suanli-bill-{period}.{fmt}"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


@router.get("/federation")
async def federation(request: Request, session: Session) -> Response:
    if not session.is_operator:
        raise Forbidden("operators")
    client = api(request, session)
    context = {
        "platforms": await client.get_or_none("/v1/federation/platforms"),
        "catalog": await client.get_or_none("/v1/federation/catalog"),
        "roaming": await client.get_or_none("/v1/federation/roaming-records"),
        "cycles": await client.get_or_none("/v1/federation/clearing/cycles"),
        "statements": await client.get_or_none("/v1/federation/clearing/statements"),
        "disputes": await client.get_or_none("/v1/federation/disputes"),
    }
    return page(request, "federation.html", context, session=session)


@router.get("/market")
async def market(request: Request, session: Session, product: str = "") -> Response:
    client = api(request, session)
    products = await client.get("/v1/market/products", {"limit": MARKET_PRODUCTS}) or []
    chosen = next((p for p in products if p["id"] == product), products[0] if products else None)
    book = ohlc = index = None
    if chosen is not None:
        book = await client.get_or_none(f"/v1/market/products/{chosen['id']}/book")
        ohlc = await client.get_or_none(f"/v1/market/products/{chosen['id']}/ohlc")
        index = await client.get_or_none("/v1/market/index", {
            "accelerator_class": chosen["accelerator_class"], "location": chosen["location"]})
    trades = await client.get("/v1/market/trades", {"limit": MARKET_TRADES}) or []
    closes: list[Decimal] = [Decimal(str(bar["close"])) for bar in (index or {}).get("bars", [])
                             if bar.get("close") is not None]
    return page(request, "market.html", {
        "products": products, "chosen": chosen, "book": book, "ohlc": ohlc, "index": index,
        "trades": trades, "chart": line_chart(closes)}, session=session)
