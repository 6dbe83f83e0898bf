"""Energy folders of any year: leap years, the emission-factor fallback, errors by line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from suanli.sim.energy import (
    CARBON_SHAPE_ZONE,
    DEFAULT_CARBON_ZONE,
    EnergyDataError,
    load_energy_data,
    site_series,
)

LEAP_HOURS = 8784


def energy_folder(root: Path, year: int, hours: int, *, factors_year: int) -> Path:
    folder = root / "energy"
    (folder / "prices").mkdir(parents=True)
    (folder / "carbon").mkdir()
    hour = np.arange(hours)
    price = 100 + 50 * np.sin(hour / 24 * 2 * np.pi)
    rows = [f"{year}-01-01 {h % 24:02d}:00:00+00:00,{year}-01-01 {(h + 9) % 24:02d}:00:00+09:00,"
            f"{p:.2f}" for h, p in zip(hour, price)]
    (folder / "prices" / f"KR_{year}.csv").write_text(
        "Datetime (UTC),Datetime (Local),Price (USD/MWh)\n" + "\n".join(rows) + "\n")
    for zone in set(CARBON_SHAPE_ZONE.values()) | {DEFAULT_CARBON_ZONE}:
        lines = [f"t{h},l{h},z,x,{400 + h % 24}" for h in hour]
        (folder / "carbon" / f"{zone}_{year}.csv").write_text("a,b,c,d,carbon\n"
                                                               + "\n".join(lines) + "\n")
    (folder / f"china_provincial_emissions_{factors_year}.json").write_text(
        json.dumps({"data": {"CN-BJ": {"emission_factor": 600.0}}}))
    return folder


def test_a_leap_year_with_last_years_emission_factors(tmp_path):
    folder = energy_folder(tmp_path, 2024, LEAP_HOURS, factors_year=2023)
    data = load_energy_data(folder, 2024)
    assert data.hours == LEAP_HOURS and data.year == 2024
    price, carbon = site_series(data, "CN-BJ", 60, 0.5, 24 * 100)
    assert len(price) == LEAP_HOURS and price.dtype == np.int64
    assert carbon.mean() == pytest.approx(300.0, rel=0.05)  # 600 g/kWh, half of it green


def test_missing_and_short_files_are_named(tmp_path):
    folder = energy_folder(tmp_path, 2024, 100, factors_year=2023)
    with pytest.raises(EnergyDataError, match=r"KR_2024.csv: 100 hourly rows; a year has 8760"):
        load_energy_data(folder, 2024)
    with pytest.raises(EnergyDataError, match=r"KR_2030.csv: cannot be read"):
        load_energy_data(folder, 2030)
    with pytest.raises(EnergyDataError, match="unknown price shape"):
        load_energy_data(folder, 2024, "KR", "weekly")


def test_no_emission_factors_of_that_year_or_before(tmp_path):
    folder = energy_folder(tmp_path, 2024, LEAP_HOURS, factors_year=2025)
    with pytest.raises(EnergyDataError, match=r"china_provincial_emissions_2024.json: not found"):
        load_energy_data(folder, 2024)
