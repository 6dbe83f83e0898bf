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
from functools import lru_cache
from pathlib import Path

import numpy as np

HOURS_PER_YEAR = 8760
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


@dataclass(frozen=True)
class EnergyData:
    """The real series the mapping uses, read once."""

    day_factor: np.ndarray  # 365 values, mean ~1
    carbon_shape: dict[str, np.ndarray]  # zone -> 8760 values, mean 1
    emission_factor: dict[str, float]  # province -> gCO2/kWh


def _column(path: Path, column: int) -> np.ndarray:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    values = np.array([float(r[column]) for r in rows[:HOURS_PER_YEAR]])
    if len(values) != HOURS_PER_YEAR:
        raise ValueError(f"{path.name}: expected {HOURS_PER_YEAR} hourly rows")
    return values


@lru_cache(maxsize=4)
def load_energy_data(data_dir: Path) -> EnergyData:
    """Reads the price, carbon and emission-factor files under `data_dir` (shared/data)."""
    energy = data_dir / "energy"
    price = _column(energy / "prices" / f"{PRICE_SHAPE_ZONE}_2023.csv", 2)
    daily = price.reshape(365, 24).mean(axis=1)
    day_factor = np.clip(daily / daily.mean(), *DAY_FACTOR_CLIP)
    zones = set(CARBON_SHAPE_ZONE.values()) | {DEFAULT_CARBON_ZONE}
    carbon_shape = {}
    for zone in sorted(zones):
        series = _column(energy / "carbon" / f"{zone}_2023.csv", 4)
        carbon_shape[zone] = series / series.mean()
    with (energy / "china_provincial_emissions_2023.json").open(encoding="utf-8") as f:
        factors = {k: float(v["emission_factor"]) for k, v in json.load(f)["data"].items()}
    return EnergyData(day_factor=day_factor, carbon_shape=carbon_shape, emission_factor=factors)


def site_series(data: EnergyData, province: str, tariff_fen_per_kwh: int, green_share: float,
                hour0: int) -> tuple[np.ndarray, np.ndarray]:
    """(electricity fen/kWh as int64, carbon g/kWh) for one site, hour 0 = hour `hour0` of 2023."""
    hours = (np.arange(HOURS_PER_YEAR) + hour0) % HOURS_PER_YEAR
    tou = time_of_use_shape(province)[hours % 24]
    price = tariff_fen_per_kwh * tou * data.day_factor[hours // 24]
    zone = CARBON_SHAPE_ZONE.get(province, DEFAULT_CARBON_ZONE)
    factor = data.emission_factor.get(province)
    if factor is None:  # Hong Kong, Macao, Taiwan are not in the national table
        factor = float(np.mean(list(data.emission_factor.values())))
    carbon = factor * data.carbon_shape[zone][hours] * (1.0 - green_share)
    return np.rint(price).astype(np.int64), carbon
