"""`suanli simulate`: replay a real GPU trace through the placement engine and report on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
# Spelled out so that loading the main CLI does not import NumPy; a test keeps them in step
# with the registries.
TRACE_NAMES = ("philly", "alibaba")
FORMATS = ("philly", "alibaba", "csv")
PRICE_SHAPES = ("tou", "market")
POLICY_NAMES = ("first-fit", "random", "cheapest", "least-loaded", "balanced", "lean", "green",
                "deadline", "east-west", "provider-balance")


def simulate(
    trace: Annotated[str, typer.Option(
        help=f"a trace of the shared data ({', '.join(TRACE_NAMES)}) or a trace FILE")]
    = "philly",
    trace_format: Annotated[str | None, typer.Option(
        "--format", help=f"format of a trace FILE: {', '.join(FORMATS)} (default: from its "
        "header); csv is described in docs/simulator.md")] = None,
    policy: Annotated[str, typer.Option(help=f"placement policy: {', '.join(POLICY_NAMES)}")]
    = "balanced",
    limit: Annotated[int | None, typer.Option(help="replay only the first N jobs")] = None,
    energy: Annotated[Path | None, typer.Option(
        help="folder of hourly energy data laid out as shared/data/energy (prices/, carbon/, "
        "china_provincial_emissions_<year>.json); default: the shared data")] = None,
    year: Annotated[int, typer.Option(help="year of the energy files (<zone>_<year>.csv)")]
    = 2023,
    price_zone: Annotated[str, typer.Option(
        help="market whose price shapes the sites' electricity prices")] = "KR",
    price_shape: Annotated[str, typer.Option(
        help="tou: provincial time-of-use bands x the market's day factor; market: the "
        "market's own hourly shape")] = "tou",
    out: Annotated[Path, typer.Option(help="folder for the JSON, CSV and PNG")] = Path("sim-out"),
    seed: Annotated[int, typer.Option(help="seed of the federation and the random policy")] = 7,
) -> None:
    """Replay a GPU trace (Philly, Alibaba or your own) on a simulated federation of the hubs."""
    from suanli.sim.energy import EnergyDataError
    from suanli.sim.replay import prepare, replay
    from suanli.sim.report import write_report
    from suanli.sim.traces import TraceError

    path = None if trace in TRACE_NAMES and not Path(trace).is_file() else Path(trace)
    if path is not None and not path.is_file():
        raise typer.BadParameter(f"{trace!r} is neither a trace ({', '.join(TRACE_NAMES)}) "
                                 "nor a file", param_hint="--trace")
    if trace_format is not None and trace_format not in FORMATS:
        raise typer.BadParameter(f"unknown format {trace_format!r}; one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    if policy not in POLICY_NAMES:
        raise typer.BadParameter(f"unknown policy {policy!r}; one of {', '.join(POLICY_NAMES)}",
                                 param_hint="--policy")
    if price_shape not in PRICE_SHAPES:
        raise typer.BadParameter(f"unknown price shape {price_shape!r}; one of "
                                 f"{', '.join(PRICE_SHAPES)}", param_hint="--price-shape")
    if limit is not None and limit < 1:
        raise typer.BadParameter("limit must be at least 1", param_hint="--limit")
    if energy is not None and not energy.is_dir():
        raise typer.BadParameter(f"{energy} is not a folder", param_hint="--energy")
    with console.status(f"loading the {trace} trace and building the federation"):
        try:
            jobs, federation = prepare(
                trace if path is None else None, trace_file=path, trace_format=trace_format,
                limit=limit, seed=seed, energy_dir=energy, year=year, price_zone=price_zone,
                price_shape=price_shape)
        except (TraceError, EnergyDataError) as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    if not jobs.jobs:
        console.print(f"[red]error:[/red] {trace}: no job holds a device", highlight=False)
        raise typer.Exit(2)
    snapshot = " (a snapshot: every job arrives at second 0)" if jobs.snapshot else ""
    console.print(f"{jobs.name}: {len(jobs.jobs):,} jobs{snapshot}; federation of "
                  f"{len(federation.pools)} pools, {federation.devices:,} devices in 8 hubs and "
                  "city edges")
    with Progress(TextColumn("[bold]replaying[/bold] {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{jobs.name} / {policy}", total=len(jobs.jobs))
        result = replay(jobs, federation, policy, seed=seed,
                        on_progress=lambda done: progress.update(task, completed=done))
    paths = write_report(out, result.summary, jobs, federation, result.outcomes)
    console.print(_table(result.summary))
    for kind, path_out in paths.items():
        console.print(f"{kind}: {path_out}")


def _table(summary: dict) -> Table:
    table = Table(title=f"{summary['trace']} under {summary['policy']}", show_header=False)
    rows = (
        ("jobs completed / rejected", f"{summary['completed']:,} / {summary['rejected']:,}"),
        ("JCT mean / p95", f"{summary['jct_mean_h']:.2f} h / {summary['jct_p95_h']:.2f} h"),
        ("queueing mean / p95",
         f"{summary['queue_mean_h']:.2f} h / {summary['queue_p95_h']:.2f} h"),
        ("paid", f"{summary['cost_fen'] / 100:,.2f} CNY"),
        ("energy / its cost", (f"{summary['energy_kwh']:,.0f} kWh / "
                               f"{summary['electricity_fen'] / 100:,.2f} CNY")),
        ("carbon", f"{summary['carbon_kg']:,.0f} kg CO2"),
        ("batch work in western hubs", f"{100 * summary['west_batch_share']:.1f} %"),
        ("fairness (Jain, tenants)", f"{summary['fairness_jain']:.3f}"),
        ("deferred / preemptions", f"{summary['deferred']:,} / {summary['preemptions']:,}"),
        ("utilisation by hub", ", ".join(f"{h} {100 * u:.0f}%"
                                         for h, u in summary["utilisation_by_hub"].items())),
        ("wall time", f"{summary['wall_s']:.1f} s"),
    )
    for name, value in rows:
        table.add_row(name, value)
    return table


def main() -> None:  # pragma: no cover - `python -m suanli.cli.simulate`
    typer.run(simulate)


if __name__ == "__main__":  # pragma: no cover
    main()
