"""Chinese cities, great-circle distance and a round-trip-time model fitted on real pings.

The RTT model is `rtt_ms = RTT_BASE_MS + FIBRE_RTT_MS_PER_KM * great_circle_km * ROUTE_FACTOR`:
a fixed overhead (last mile, hosting, queueing) plus light in fibre over a path that is
`ROUTE_FACTOR` times longer than the great circle. `FIBRE_RTT_MS_PER_KM` is physics; the other two
are least-squares fits by `tools/fit_latency.py` on WonderProxy's "A day in the life of the
internet" pings (2020-07-19, shared/data/network/wondernetwork-*.csv): the average RTT of the
2,409 server pairs in the same country and under 5,000 km apart, taking for each pair the
better of its two directions and dropping sources whose ping to themselves is broken
(> 5 ms; three of the four mainland servers). R² 0.728, RMSE 11.7 ms; see docs/latency.md.
The pairs are mostly in the United States; the three usable mainland pairs (Shanghai to
Hangzhou, Shenzhen, Zhangjiakou) lie within 11 ms of the model.

The model is for traffic inside one network jurisdiction: Hong Kong to the mainland measures
2-12 times the model (cross-border routing), so treat its value there as a floor.

The city table ships inside the package (`suanli/data/cities.csv`); `suanli.catalog.load_cities`
reads it once and hands it over as `Cities`. Nothing here reads a file.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from suanli.domain.errors import NotFound, ValidationFailed
from suanli.domain.resources import Hub, check_province, check_range

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
# Light in single-mode fibre travels at c / 1.468 (group index at 1550 nm) ≈ 204.19 km/ms;
# a round trip covers each km twice.
FIBRE_RTT_MS_PER_KM = 2.0 / 204.19

# Fitted by tools/fit_latency.py (re-run it after changing the selection; a test pins these).
RTT_BASE_MS = 12.398
ROUTE_FACTOR = 1.674
RTT_FIT_R2 = 0.728
RTT_FIT_RMSE_MS = 11.7
RTT_FIT_PAIRS = 2409


@dataclass(frozen=True)
class City:
    name: str
    name_zh: str
    province: str  # ISO 3166-2:CN, a key of resources.PROVINCES
    latitude: float
    longitude: float
    hub: Hub | None = None  # the national hub region the city lies in, if any
    cluster: str | None = None  # the national data-centre cluster (国家数据中心集群) it hosts

    def __post_init__(self) -> None:
        check_province(self.province)
        check_range(self.latitude, -90, 90, "latitude")
        check_range(self.longitude, -180, 180, "longitude")


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance along the Earth's surface (haversine on a sphere of the mean radius)."""
    for value, low, high, name in (
        (lat1, -90, 90, "lat1"), (lat2, -90, 90, "lat2"),
        (lon1, -180, 180, "lon1"), (lon2, -180, 180, "lon2"),
    ):
        check_range(value, low, high, name)
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    # min() guards asin against rounding just above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def unit_vector(latitude: float, longitude: float) -> tuple[float, float, float]:
    """The point on the unit sphere; chord length between two is monotonic in great-circle km."""
    lat, lon = math.radians(latitude), math.radians(longitude)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def rtt_ms_for_km(distance_km: float) -> float:
    """Modelled average round-trip time over a great-circle distance."""
    if distance_km < 0:
        raise ValidationFailed("distance must not be negative", field="distance_km")
    return RTT_BASE_MS + FIBRE_RTT_MS_PER_KM * distance_km * ROUTE_FACTOR


def rtt_ms(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Modelled average round-trip time between two points, in milliseconds."""
    return rtt_ms_for_km(great_circle_km(lat1, lon1, lat2, lon2))


def rtt_ms_between(city_a: City, city_b: City) -> float:
    """Modelled average round-trip time between two cities."""
    return rtt_ms(city_a.latitude, city_a.longitude, city_b.latitude, city_b.longitude)


def distance_km_between(city_a: City, city_b: City) -> float:
    return great_circle_km(city_a.latitude, city_a.longitude, city_b.latitude, city_b.longitude)


class Cities:
    """The city table: every city in file order, found by English or Chinese name."""

    def __init__(self, cities: Iterable[City]) -> None:
        self._cities = tuple(cities)
        self._index: dict[str, City] = {}
        for c in self._cities:
            for key in (_fold(c.name), _fold(c.name_zh)):
                if key in self._index:
                    raise ValidationFailed(f"city name {key!r} appears twice", field="name")
                self._index[key] = c

    def __iter__(self) -> Iterator[City]:
        return iter(self._cities)

    def __len__(self) -> int:
        return len(self._cities)

    def all(self) -> tuple[City, ...]:
        """Every city in the table, in file order."""
        return self._cities

    def city(self, name: str) -> City:
        """The city called `name` (English or Chinese; case, spaces, hyphens, apostrophes
        ignored). Raises NotFound with the closest names as a suggestion."""
        found = self._index.get(_fold(name))
        if found is not None:
            return found
        names = [c.name for c in self._cities]
        close = difflib.get_close_matches(name.strip().title(), names, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise NotFound(f"unknown city {name!r}{hint}", field="city")

    def rtt_ms_between(self, city_a: City | str, city_b: City | str) -> float:
        """Modelled average round-trip time between two cities (objects or names)."""
        return rtt_ms_between(self._resolve(city_a), self._resolve(city_b))

    def distance_km_between(self, city_a: City | str, city_b: City | str) -> float:
        return distance_km_between(self._resolve(city_a), self._resolve(city_b))

    def _resolve(self, city: City | str) -> City:
        return city if isinstance(city, City) else self.city(city)


def _fold(name: str) -> str:
    # "Xi'an", "xian", "XI AN" and "Gui-an" must all find their city.
    text = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in text if ch.isalnum())
