"""`suanli jobs ...`: submit work, watch it live, read its logs, cancel it."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from suanli.cli.client import request

console = Console()
jobs_app = typer.Typer(help="Jobs (算力任务).", no_args_is_help=True)
FINAL = {"succeeded", "failed", "cancelled"}
MAX_WATCH_S = 7 * 24 * 3600


def _status_table(job: dict) -> Table:
    table = Table(title=f"job {job['id']}", show_header=False)
    table.add_row("name", job["name"])
    table.add_row("state", f"[bold]{job['state']}[/bold]")
    table.add_row("pool", job.get("pool_id") or "-")
    table.add_row("attempts", str(job["attempts"]))
    if job.get("exit_code") is not None:
        table.add_row("exit code", str(job["exit_code"]))
    if job.get("message"):
        table.add_row("message", job["message"])
    return table


def _watch(job_id: str, poll_s: float) -> dict:
    job = request("GET", f"/v1/jobs/{job_id}")
    started = time.monotonic()
    with Live(_status_table(job), console=console, refresh_per_second=4) as live:
        while job["state"] not in FINAL and time.monotonic() - started < MAX_WATCH_S:
            time.sleep(poll_s)
            job = request("GET", f"/v1/jobs/{job_id}")
            live.update(_status_table(job))
    return job


@jobs_app.command("submit")
def submit(
    command: Annotated[list[str], typer.Argument(help="program and arguments (after --)")],
    name: Annotated[str, typer.Option(help="a name for the job")] = "job",
    devices: Annotated[int, typer.Option(min=1)] = 1,
    accelerator: Annotated[str | None, typer.Option(help="catalog key")] = None,
    vendor: str | None = None,
    device_kind: Annotated[str | None, typer.Option(help="gpu, npu, cpu ...")] = None,
    workload_class: str = "general",
    province: Annotated[list[str] | None, typer.Option(help="allowed province (repeat)")]
    = None,
    pool_id: str | None = None,
    time_limit_s: int = 3600,
    idempotency_key: Annotated[str | None, typer.Option(
        help="resubmitting with the same key returns the same job")] = None,
    wait: Annotated[bool, typer.Option(help="follow the job live until it ends")] = False,
    poll_s: float = 1.0,
) -> None:
    """Submit a job, e.g. `suanli jobs submit --wait -- python train.py`."""
    key = idempotency_key or str(uuid.uuid4())
    body = {"name": name, "command": command, "devices": devices, "accelerator": accelerator,
            "vendor": vendor, "device_kind": device_kind, "workload_class": workload_class,
            "provinces": province or [], "pool_id": pool_id, "time_limit_s": time_limit_s}
    job = request("POST", "/v1/jobs", json={k: v for k, v in body.items() if v is not None},
                  headers={"Idempotency-Key": key})
    console.print(f"submitted [bold]{job['id']}[/bold] ({job['state']}); idempotency key {key}")
    if wait:
        job = _watch(job["id"], poll_s)
        if job["state"] != "succeeded":
            raise typer.Exit(1)


@jobs_app.command("list")
def list_jobs(state: str | None = None, limit: int = 50) -> None:
    page = request("GET", "/v1/jobs", params={"state": state, "limit": limit})
    table = Table(title="jobs")
    for column in ("id", "name", "state", "pool_id", "attempts", "created_at"):
        table.add_column(column)
    for job in page["items"]:
        table.add_row(job["id"], job["name"], job["state"], job.get("pool_id") or "",
                      str(job["attempts"]), job["created_at"])
    console.print(table)


@jobs_app.command("get")
def get(job_id: str, watch: bool = False, poll_s: float = 1.0) -> None:
    job = _watch(job_id, poll_s) if watch else request("GET", f"/v1/jobs/{job_id}")
    console.print(_status_table(job))
    for event in job.get("events", []):
        console.print(f"  {event['at']}  {event['from_state'] or '-':>10} -> "
                      f"{event['to_state']:<10} {event['reason']}")


@jobs_app.command("logs")
def logs(job_id: str) -> None:
    console.out(request("GET", f"/v1/jobs/{job_id}/logs", text=True), end="")


@jobs_app.command("cancel")
def cancel(job_id: str) -> None:
    job = request("POST", f"/v1/jobs/{job_id}/cancel")
    console.print(f"job {job['id']} is {job['state']}")
