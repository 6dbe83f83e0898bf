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
POLICY_NAMES = ("first-fit", "random", "cheapest", "least-loaded", "balanced", "green",
                "deadline", "east-west", "provider-balance")


def simulate(
    trace: Annotated[str, typer.Option(help=f"trace to replay: {', '.join(TRACE_NAMES)}")]
    = "philly",
    policy: Annotated[str, typer.Option(help=f"placement policy: {', '.join(POLICY_NAMES)}")]
    = "balanced",
    limit: Annotated[int | None, typer.Option(help="replay only the first N jobs")] = None,
    out: Annotated[Path, typer.Option(help="folder for the JSON, CSV and PNG")] = Path("sim-out"),
    seed: Annotated[int, typer.Option(help="seed of the federation and the random policy")] = 7,
) -> None:
    """Replay a GPU trace (Philly or Alibaba) on a simulated federation of the eight hubs."""
    from suanli.sim.replay import prepare, replay
    from suanli.sim.report import write_report

    if trace not in TRACE_NAMES:
        raise typer.BadParameter(f"unknown trace {trace!r}; one of {', '.join(TRACE_NAMES)}",
                                 param_hint="--trace")
    if policy not in POLICY_NAMES:
        raise typer.BadParameter(f"unknown policy {policy!r}; one of {', '.join(POLICY_NAMES)}",
                                 param_hint="--policy")
    if limit is not None and limit < 1:
        raise typer.BadParameter("limit must be at least 1", param_hint="--limit")
    with console.status(f"loading the {trace} trace and building the federation"):
        jobs, federation = prepare(trace, limit=limit, seed=seed)
    console.print(f"{trace}: {len(jobs.jobs):,} jobs; federation of {len(federation.pools)} "
                  f"pools, {federation.devices:,} devices in 8 hubs and city edges")
    with Progress(TextColumn("[bold]replaying[/bold] {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{trace} / {policy}", total=len(jobs.jobs))
        result = replay(jobs, federation, policy, seed=seed,
                        on_progress=lambda done: progress.update(task, completed=done))
    paths = write_report(out, result.summary, jobs, federation, result.outcomes)
    console.print(_table(result.summary))
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")


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
