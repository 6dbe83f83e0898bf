"""Rendering: the Jinja2 environment, money and number formats, the map and the charts.

Money is shown from integer fen or Decimal strings, never through float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from suanli.console.i18n import translator

ENV = Environment(loader=PackageLoader("suanli.console", "templates"),
                  autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

# No page loads or sends anything anywhere but this server (issue 17), and no inline script.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")


def yuan(fen: Any) -> str:
    """¥ with two decimals from integer fen (or a Decimal string of fen)."""
    if fen is None or fen == "":
        return "—"
    try:
        amount = Decimal(str(fen))
    except InvalidOperation:
        return str(fen)
    sign = "-" if amount < 0 else ""
    cents = abs(amount).quantize(Decimal("1"))
    whole, part = divmod(int(cents), 100)
    return f"{sign}¥{whole:,}.{part:02d}"


def number(value: Any, places: int = 2) -> str:
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount.quantize(Decimal(1).scaleb(-places)):,}"


def percent(part: Any, whole: Any) -> str:
    try:
        ratio = Decimal(str(part)) * 100 / Decimal(str(whole))
    except (InvalidOperation, ArithmeticError):
        return "—"
    return f"{ratio:.0f}%"


ENV.filters.update(yuan=yuan, number=number)
ENV.globals.update(percent=percent)


def render_page(name: str, lang: str, context: dict[str, Any]) -> str:
    return ENV.get_template(name).render(t=translator(lang), lang=lang, **context)


# -- the map ------------------------------------------------------------------------------
# No province outlines: no open dataset of them is packaged here (docs/decisions.md), so
# hubs and sites stand on an equirectangular projection of longitude and latitude, scaled
# by cos(35°) so that China keeps its proportions.
MAP_WEST, MAP_EAST, MAP_NORTH, MAP_SOUTH = 73.0, 136.0, 54.0, 17.0
MAP_WIDTH = 720.0
_SHRINK = math.cos(math.radians(35))
_SCALE = MAP_WIDTH / ((MAP_EAST - MAP_WEST) * _SHRINK)
MAP_HEIGHT = round((MAP_NORTH - MAP_SOUTH) * _SCALE)
METRICS = ("utilisation", "price", "carbon")
BUCKETS = 5


def graticule() -> list[dict[str, Any]]:
    """Meridians every 10° and parallels every 10°, labelled, for bearings on a bare map."""
    lines = []
    for lon in range(80, 136, 10):
        (x, top), (_, bottom) = project(lon, MAP_NORTH), project(lon, MAP_SOUTH)
        lines.append({"x1": x, "y1": top, "x2": x, "y2": bottom, "label": f"{lon}°E",
                      "lx": x + 2, "ly": bottom - 4})
    for lat in range(20, 51, 10):
        (left, y), (right, _) = project(MAP_WEST, lat), project(MAP_EAST, lat)
        lines.append({"x1": left, "y1": y, "x2": right, "y2": y, "label": f"{lat}°N",
                      "lx": left + 2, "ly": y - 3})
    return lines


def project(longitude: float, latitude: float) -> tuple[float, float]:
    x = (min(max(longitude, MAP_WEST), MAP_EAST) - MAP_WEST) * _SHRINK * _SCALE
    y = (MAP_NORTH - min(max(latitude, MAP_SOUTH), MAP_NORTH)) * _SCALE
    return round(x, 1), round(y, 1)


@dataclass
class Place:
    """A site (or a hub, all its sites together) on the map."""

    name: str
    hub: str
    kind: str
    x: float
    y: float
    devices: int = 0
    free: int = 0
    pools: int = 0
    min_fen_per_unit_hour: Decimal | None = None
    green_weighted: Decimal = Decimal(0)
    bucket: int = 0

    @property
    def utilisation(self) -> Decimal:
        return Decimal(self.devices - self.free) / self.devices if self.devices else Decimal(0)

    @property
    def green_share(self) -> Decimal:
        return self.green_weighted / self.devices if self.devices else Decimal(0)

    @property
    def radius(self) -> float:
        return round(3 + 2.2 * math.log10(1 + self.devices), 1)

    def add(self, pool: dict[str, Any]) -> None:
        self.devices += pool["device_count"]
        self.free += pool["free_devices"]
        self.pools += 1
        self.green_weighted += Decimal(pool["green_share"] or 0) * pool["device_count"]
        price = pool.get("fen_per_unit_hour")
        if price is not None:
            value = Decimal(price)
            if self.min_fen_per_unit_hour is None or value < self.min_fen_per_unit_hour:
                self.min_fen_per_unit_hour = value


def places(pools: list[dict[str, Any]], metric: str) -> tuple[list[Place], list[Place]]:
    """Sites and hubs of the pools, each given a colour bucket 0 (good) .. 4 by `metric`."""
    sites: dict[tuple[float, float], Place] = {}
    hubs: dict[str, list[dict[str, Any]]] = {}
    for pool in pools:
        spot = (pool["longitude"], pool["latitude"])
        if spot not in sites:
            x, y = project(*spot)
            sites[spot] = Place(pool["city"], pool["hub"] or "", pool["site_kind"], x, y)
        sites[spot].add(pool)
        hubs.setdefault(pool["hub"] or "", []).append(pool)
    hub_places = []
    for hub, members in sorted(hubs.items()):
        if not hub:
            continue
        x, y = project(sum(p["longitude"] for p in members) / len(members),
                       sum(p["latitude"] for p in members) / len(members))
        place = Place(hub, hub, "hub", x, y)
        for pool in members:
            place.add(pool)
        hub_places.append(place)
    site_places = list(sites.values())
    _colour(site_places, metric)
    _colour(hub_places, metric)
    return site_places, hub_places


def _colour(found: list[Place], metric: str) -> None:
    """Buckets by rank, so a few outliers do not wash the map out."""
    def badness(place: Place) -> Decimal:
        if metric == "price":
            return place.min_fen_per_unit_hour or Decimal(0)
        if metric == "carbon":
            return 1 - place.green_share
        return place.utilisation

    ranked = sorted(found, key=badness)
    for index, place in enumerate(ranked):
        place.bucket = min(BUCKETS - 1, index * BUCKETS // max(1, len(ranked)))


def totals(pools: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Devices, free devices and pools by vendor or hub, largest first."""
    found: dict[str, dict[str, Any]] = {}
    for pool in pools:
        name = pool.get(field) or "—"
        row = found.setdefault(name, {"name": name, "pools": 0, "devices": 0, "free": 0})
        row["pools"] += 1
        row["devices"] += pool["device_count"]
        row["free"] += pool["free_devices"]
    return sorted(found.values(), key=lambda r: -r["devices"])


# -- charts: server-drawn SVG, no script --------------------------------------------------
CHART_W, CHART_H, CHART_PAD = 600.0, 180.0, 24.0


def line_chart(values: list[Decimal]) -> dict[str, Any] | None:
    """The polyline points of a series scaled into the chart box, with its low and high."""
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    spread = (high - low) or Decimal(1)
    step = (CHART_W - 2 * CHART_PAD) / (len(values) - 1)
    points = []
    for index, value in enumerate(values):
        y = CHART_H - CHART_PAD - float((value - low) / spread) * (CHART_H - 2 * CHART_PAD)
        points.append(f"{CHART_PAD + index * step:.1f},{y:.1f}")
    return {"points": " ".join(points), "low": low, "high": high, "width": CHART_W,
            "height": CHART_H}
