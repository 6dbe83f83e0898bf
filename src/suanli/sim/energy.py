"""Hourly electricity price and grid carbon for Chinese sites, built from real series and tariffs.

No public hourly series of Chinese electricity prices or grid carbon exists (shared/data/README),
so each site's year is assembled from three real ingredients:

price (fen/kWh) = site tariff x time-of-use shape(hour of day) x day factor(day of year)
    - the site's average tariff (the demo federation's `electricity_fen_per_kwh`);
    - the shape of the provincial time-of-use tables (峰谷分时电价): peak, flat and valley
      hours at 1.6 : 1.0 : 0.45 (the ratios the 2021 NDRC notice asks for, peak >= 1.5x flat
      ... valley well below), normalised to a daily mean of 1. Eastern provinces price the
      evening peak and the night valley; solar-rich north-western provinces (Gansu, Ningxia,
      Qinghai, Xinjiang, western Inner Mongolia) moved the valley to midday;
    - day-to-day variation from a real wholesale market: each day's mean of the 2023 Korean
      hourly price (green-dcc, KR) over its annual mean, clipped to 0.7-1.3.
carbon (g/kWh) = provincial factor x shape(hour of year) x (1 - site green share)
    - the 2023 provincial grid emission factor (china_provincial_emissions_2023.json);
    - the hourly shape of a 2023 grid with a similar mix (Electricity Maps via green-dcc),
      normalised to an annual mean of 1: wind-heavy north (ERCOT), solar-heavy north-west
      (CAISO), coal-heavy north China plain (Korea), the rest (Tokyo);
    - the site's contracted green power (green certificates / direct supply) displaces grid power.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

PEAK, FLAT, VALLEY = 1.6, 1.0, 0.45
PRICE_SHAPE_ZONE = "KR"
DAY_FACTOR_CLIP = (0.7, 1.3)

SOLAR_VALLEY_PROVINCES = frozenset({"CN-GS", "CN-NX", "CN-QH", "CN-XJ", "CN-NM"})
CARBON_SHAPE_ZONE: dict[str, str] = {
    **{p: "US-TEX-ERCO" for p in ("CN-NM", "CN-GS", "CN-XJ", "CN-HE", "CN-JL", "CN-HL")},
    **{p: "US-CAL-CISO" for p in ("CN-NX", "CN-QH", "CN-XZ")},
    **{p: "KR" for p in ("CN-BJ", "CN-TJ", "CN-SX", "CN-SD", "CN-LN", "CN-HA")},
}
DEFAULT_CARBON_ZONE = "JP-TK"


def _band_shape(solar_valley: bool) -> np.ndarray:
    hours = np.arange(24)
    if solar_valley:
        valley = (hours >= 10) & (hours < 16)
        peak = (hours >= 18) & (hours < 23)
    else:
        valley = hours < 8
        peak = ((hours >= 10) & (hours < 12)) | ((hours >= 14) & (hours < 19))
    shape = np.where(peak, PEAK, np.where(valley, VALLEY, FLAT))
    return shape / shape.mean()


def time_of_use_shape(province: str) -> np.ndarray:
    """24 multipliers with mean 1: the province's peak/flat/valley pattern."""
    return _band_shape(province in SOLAR_VALLEY_PROVINCES)


PRICE_SHAPES = ("tou", "market")
PRICE_CLIP = (0.2, 3.0)  # a market hour's price over the annual mean, for the "market" shape
DEFAULT_YEAR = 2023


class EnergyDataError(ValueError):
    """An energy file that cannot be used: names the file, and the line and column."""


@dataclass(frozen=True)
class EnergyData:
    """The real series the mapping uses, read once; one value per hour of the year."""

    day_factor: np.ndarray  # one value per day, mean ~1
    carbon_shape: dict[str, np.ndarray]  # zone -> hourly values, mean 1
    emission_factor: dict[str, float]  # province -> gCO2/kWh
    price_shape: np.ndarray | None = None  # hourly market shape, mean 1 ("market" shape only)
    year: int = DEFAULT_YEAR
    price_zone: str = PRICE_SHAPE_ZONE

    @property
    def hours(self) -> int:
        return len(self.day_factor) * 24


def _column(path: Path, column: int, hours: int | None = None) -> np.ndarray:
    """The numbers of one column of an hourly file (header line first)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise EnergyDataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not rows or len(rows[0]) <= column:
        raise EnergyDataError(f"{path}, line 1: expected at least {column + 1} columns "
                              "(as in shared/data/energy)")
    name = rows[0][column]
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            values.append(float(row[column]))
        except (ValueError, IndexError):
            raw = row[column] if len(row) > column else ""
            raise EnergyDataError(f"{path}, line {line}, column {name!r}: "
                                  f"{raw!r} is not a number") from None
    expected = (hours,) if hours else (8760, 8784)
    if len(values) not in expected:
        raise EnergyDataError(f"{path}: {len(values)} hourly rows; a year has "
                              f"{' or '.join(map(str, expected))}")
    return np.array(values)


def _utc_offset_h(path: Path) -> int:
    """The hours local time runs ahead of UTC in the first row (2nd column, ISO with offset)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        next(rows, None)
        first = next(rows, None)
    try:
        assert first is not None
        offset = datetime.fromisoformat(first[1]).utcoffset()
    except (AssertionError, IndexError, ValueError):
        return 0
    return 0 if offset is None else round(offset.total_seconds() / 3600)


def _emission_file(energy_dir: Path, year: int) -> Path:
    """The provincial factors of `year`, else the newest year before it that is present."""
    exact = energy_dir / f"china_provincial_emissions_{year}.json"
    if exact.is_file():
        return exact
    older = sorted(p for p in energy_dir.glob("china_provincial_emissions_*.json")
                   if p.stem.rsplit("_", 1)[-1].isdigit()
                   and int(p.stem.rsplit("_", 1)[-1]) <= year)
    if not older:
        raise EnergyDataError(f"{exact}: not found (nor an earlier year's)")
    return older[-1]


@lru_cache(maxsize=16)
def load_energy_data(energy_dir: Path, year: int = DEFAULT_YEAR,
                     price_zone: str = PRICE_SHAPE_ZONE, price_shape: str = "tou") -> EnergyData:
    """Reads the price, carbon and emission-factor files of `year` under `energy_dir`.

    `energy_dir` is laid out as shared/data/energy: prices/<zone>_<year>.csv (price in the 3rd
    column), carbon/<zone>_<year>.csv (gCO2/kWh in the 5th), china_provincial_emissions_<year>
    .json. `price_zone` gives the market whose days (price_shape "tou") or hours ("market")
    shape the sites' prices.
    """
    if price_shape not in PRICE_SHAPES:
        raise EnergyDataError(f"unknown price shape {price_shape!r}; one of "
                              f"{', '.join(PRICE_SHAPES)}")
    price = _column(energy_dir / "prices" / f"{price_zone}_{year}.csv", 2)
    hours = len(price)
    daily = price.reshape(hours // 24, 24).mean(axis=1)
    day_factor = np.clip(daily / daily.mean(), *DAY_FACTOR_CLIP)
    market = None
    if price_shape == "market":  # the zone's hours by its local clock, laid over China's
        local = np.roll(price, _utc_offset_h(energy_dir / "prices" / f"{price_zone}_{year}.csv"))
        market = np.clip(local / local.mean(), *PRICE_CLIP)
        market = market / market.mean()
    zones = set(CARBON_SHAPE_ZONE.values()) | {DEFAULT_CARBON_ZONE}
    carbon_shape = {}
    for zone in sorted(zones):
        series = _column(energy_dir / "carbon" / f"{zone}_{year}.csv", 4, hours)
        carbon_shape[zone] = series / series.mean()
    path = _emission_file(energy_dir, year)
    try:
        with path.open(encoding="utf-8") as f:
            factors = {k: float(v["emission_factor"]) for k, v in json.load(f)["data"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnergyDataError(f"{path}: expected {{\"data\": {{province: "
                              f"{{\"emission_factor\": g/kWh}}}}}} ({exc})") from exc
    return EnergyData(day_factor=day_factor, carbon_shape=carbon_shape, emission_factor=factors,
                      price_shape=market, year=year, price_zone=price_zone)


def site_series(data: EnergyData, province: str, tariff_fen_per_kwh: int, green_share: float,
                hour0: int) -> tuple[np.ndarray, np.ndarray]:
    """(electricity fen/kWh as int64, carbon g/kWh) for one site, hour 0 = hour `hour0` of
    the data's year."""
    year = data.hours
    hours = (np.arange(year) + hour0) % year
    if data.price_shape is None:
        shape = time_of_use_shape(province)[hours % 24] * data.day_factor[hours // 24]
    else:
        shape = data.price_shape[hours]
    price = tariff_fen_per_kwh * shape
    zone = CARBON_SHAPE_ZONE.get(province, DEFAULT_CARBON_ZONE)
    factor = data.emission_factor.get(province)
    if factor is None:  # Hong Kong, Macao, Taiwan are not in the national table
        factor = float(np.mean(list(data.emission_factor.values())))
    carbon = factor * data.carbon_shape[zone][hours] * (1.0 - green_share)
    return np.rint(price).astype(np.int64), carbon
