"""The simulator replays both real traces end to end, through the CLI function too."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from suanli.cli.simulate import simulate
from suanli.domain.placement.model import LatencyClass
from suanli.sim.energy import EnergyDataError, load_energy_data, site_series
from suanli.sim.metrics import jain_index
from suanli.sim.replay import prepare, replay
from suanli.sim.simulator import Simulator
from suanli.sim.traces import load_alibaba, load_philly


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, as in the project's CLI
        """suanli"""

    app.command("simulate")(simulate)
    return app


@pytest.mark.parametrize(("trace", "limit"), [("philly", 1500), ("alibaba", 1500)])
def test_cli_replays_a_trace_and_writes_json_csv_and_png(shared_data, tmp_path, trace, limit):
    result = CliRunner().invoke(cli(), ["simulate", "--trace", trace, "--policy", "balanced",
                                        "--limit", str(limit), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / f"{trace}-balanced.json").read_text())
    assert summary["jobs"] == limit
    assert summary["completed"] + summary["rejected"] == limit
    assert summary["federation"]["hubs"] == 8 and summary["federation"]["pools"] >= 50
    with (tmp_path / f"{trace}-balanced.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == limit
    assert sum(int(r["cost_fen"]) for r in rows) == summary["cost_fen"]
    assert (tmp_path / f"{trace}-balanced.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_lists_every_trace_and_policy_the_simulator_has():
    from suanli.cli.simulate import FORMATS, POLICY_NAMES, PRICE_SHAPES, TRACE_NAMES
    from suanli.domain.placement import POLICIES
    from suanli.sim import energy, traces

    assert tuple(POLICIES) == POLICY_NAMES and traces.TRACES == TRACE_NAMES
    assert traces.FORMATS == FORMATS and energy.PRICE_SHAPES == PRICE_SHAPES


def test_cli_refuses_an_unknown_policy(tmp_path):
    result = CliRunner().invoke(cli(), ["simulate", "--policy", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown policy" in result.output


@pytest.fixture(scope="module")
def philly_sample(shared_data):
    return prepare("philly", limit=3000, data_dir=shared_data)


@pytest.mark.parametrize("policy", ["first-fit", "cheapest", "balanced", "deadline", "green"])
def test_replay_gives_every_device_back_and_accounts_for_every_job(philly_sample, policy):
    trace, federation = philly_sample
    simulator = Simulator(trace, federation, policy)
    outcomes = simulator.run()
    table = simulator.table
    assert (table.free == table.device_count).all() and not table.spot_used.any()
    assert not simulator.leases and not simulator.queue
    for spec, o in zip(trace.jobs, outcomes):
        assert o.rejected or o.finish_s >= o.first_start_s >= spec.submit_s
        assert o.cost_fen >= 0 and o.energy_kwh >= 0 and o.carbon_kg >= 0
        if spec.latency_class is LatencyClass.INTERACTIVE and o.pool >= 0:
            assert federation.pools[o.pool].rtt_ms[spec.home_city] <= 45.0


def test_replay_is_deterministic(philly_sample):
    trace, federation = philly_sample
    first = replay(trace, federation, "random", seed=3).summary
    second = replay(trace, federation, "random", seed=3).summary
    assert {k: v for k, v in first.items() if k != "wall_s"} == \
        {k: v for k, v in second.items() if k != "wall_s"}


def test_deadline_policy_defers_work_and_balanced_moves_batch_work_west(philly_sample):
    trace, federation = philly_sample
    deadline = replay(trace, federation, "deadline").summary
    balanced = replay(trace, federation, "balanced").summary
    assert deadline["deferred"] > 0 and balanced["deferred"] == 0
    assert balanced["west_batch_share"] > 0.3


def test_trace_mapping_is_stable_and_documented_shares_hold(shared_data):
    philly = load_philly(shared_data, limit=5000)
    again = load_philly(shared_data, limit=5000)
    assert philly.jobs == again.jobs
    batch = [j for j in philly.jobs if j.latency_class is LatencyClass.BATCH]
    assert 0.2 < sum(j.spot_allowed for j in batch) / len(batch) < 0.4
    assert all(j.deadline_s and j.deadline_s >= j.submit_s + 6 * 3600 for j in batch)
    alibaba = load_alibaba(shared_data)
    assert alibaba.skipped > 0 and all(j.devices >= 1 for j in alibaba.jobs)
    assert {j.tenant for j in alibaba.jobs} <= {"LS", "BE", "Burstable", "Guaranteed"}


def test_jain_index_bounds():
    assert jain_index([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)


EXAMPLE_TRACE = Path(__file__).resolve().parents[1] / "data" / "sim_own_trace.csv"


def test_cli_replays_your_own_trace_with_energy_from_a_folder(shared_data, tmp_path):
    result = CliRunner().invoke(cli(), [
        "simulate", "--trace", str(EXAMPLE_TRACE), "--format", "csv", "--policy", "cheapest",
        "--energy", str(shared_data / "energy"), "--year", "2023", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "sim_own_trace-cheapest.json").read_text())
    assert summary["jobs"] == 6 and summary["completed"] == 6 and summary["cost_fen"] > 0


def test_cli_says_which_file_line_and_column_is_wrong(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("submit_s,duration_s,devices\n0,60,1\n30,long,1\n", encoding="utf-8")
    result = CliRunner().invoke(cli(), ["simulate", "--trace", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.csv, line 3, column 'duration_s': 'long' is not a number" in \
        " ".join(result.output.split())


def test_energy_of_a_year_that_is_not_there_is_named(shared_data, tmp_path):
    result = CliRunner().invoke(cli(), ["simulate", "--trace", str(EXAMPLE_TRACE), "--energy",
                                        str(shared_data / "energy"), "--year", "2031",
                                        "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "KR_2031.csv" in result.output and "cannot be read" in result.output


def test_energy_files_are_checked_by_line(shared_data, tmp_path):
    energy = tmp_path / "energy"
    (energy / "prices").mkdir(parents=True)
    source = (shared_data / "energy" / "prices" / "KR_2023.csv").read_text().splitlines()
    source[5] = source[5].rsplit(",", 1)[0] + ",n/a"
    (energy / "prices" / "KR_2023.csv").write_text("\n".join(source) + "\n")
    with pytest.raises(EnergyDataError, match=r"KR_2023.csv, line 6, column 'Price \(USD/MWh\)'"):
        load_energy_data(energy, 2023)


@pytest.mark.parametrize("zone", ["DE-LU", "US-CAL-CISO"])
def test_market_price_shapes_follow_the_zone_and_keep_the_tariff_mean(shared_data, zone):
    data = load_energy_data(shared_data / "energy", 2023, zone, "market")
    assert data.price_shape is not None and data.hours == 8760
    price, _ = site_series(data, "CN-BJ", 60, 0.0, 0)
    assert abs(price.mean() - 60) < 1 and price.min() >= 0.2 * 60 - 1


def test_alibaba_snapshot_variant_replays(shared_data, tmp_path):
    source = shared_data / "traces" / "alibaba-gpu-v2023" / "openb_pod_list_default.csv"
    lines = source.read_text().splitlines()[:400]
    variant = tmp_path / "openb_pod_list_multigpu50.csv"
    variant.write_text("\n".join(",".join(line.split(",")[:5]) for line in lines) + "\n")
    trace, federation = prepare(trace_file=variant, data_dir=shared_data)
    assert trace.snapshot and all(j.submit_s == 0 for j in trace.jobs)
    summary = replay(trace, federation, "balanced").summary
    assert summary["completed"] + summary["rejected"] == len(trace.jobs) > 200
