"""`suanli jobs ...`: quote, submit and follow work, read its output and cost, cancel it."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suanli.cli.client import request
from suanli.cli.names import accelerator_key, vendor_name
from suanli.cli.names import device_kind as parse_device_kind

console = Console(highlight=False)
jobs_app = typer.Typer(help="Jobs (算力任务): quote, submit, follow, read output and cost.",
                       no_args_is_help=True)
FINAL = {"succeeded", "failed", "cancelled"}
MAX_WATCH_S = 7 * 24 * 3600
DEFAULT_TAIL_LINES = 20

Command = Annotated[list[str], typer.Argument(
    help="the program and its arguments, after --, e.g. -- python3 train.py")]
Name = Annotated[str, typer.Option(help="a name for the job")]
Devices = Annotated[int, typer.Option(min=1, max=4096, help="devices (accelerators, or CPU "
                                                             "sockets) the job needs")]
Accelerator = Annotated[str | None, typer.Option(
    help="catalog key or model, e.g. nvidia-h100-sxm or H100-SXM (`suanli accelerators`)")]
Vendor = Annotated[str | None, typer.Option(help="e.g. NVIDIA, Huawei (any case)")]
DeviceKind = Annotated[str | None, typer.Option(help="gpu, npu, dcu, xpu or cpu")]
WorkloadClass = Annotated[str, typer.Option(help="general, training, inference or hpc")]
Province = Annotated[list[str] | None, typer.Option(
    help="residency: an allowed province, e.g. CN-GZ (repeat)")]
PoolId = Annotated[str | None, typer.Option(help="pin the job to this pool")]
TimeLimit = Annotated[int, typer.Option(min=1, help="seconds the job may run; billing never "
                                                     "charges beyond it")]
MaxPrice = Annotated[int | None, typer.Option(help="only pools at most this list price")]
Spot = Annotated[bool, typer.Option(help="accept preemptible (spot) capacity")]
PollS = Annotated[float, typer.Option(min=0.1, max=60, help="seconds between status checks")]
Stack = Annotated[str | None, typer.Option(
    help="software stack the program is built for: CUDA, CANN, ROCm, DTK, Neuware, XPU, "
         "SynapseAI or CPU (pools without it are never chosen)")]
LatencyClass = Annotated[str, typer.Option(
    help="realtime (<= 20 ms to the users), interactive (<= 45 ms) or batch")]
UserCity = Annotated[str | None, typer.Option(help="the users' city, e.g. Shenzhen or 深圳")]
MaxRtt = Annotated[float | None, typer.Option(help="round-trip bound to --user-city, ms")]
DataProvince = Annotated[str | None, typer.Option(help="province the input data lies in")]
DataSite = Annotated[str | None, typer.Option(help="site id the input data lies at")]
DataGb = Annotated[float, typer.Option(min=0, help="size of the input data, GB")]
Deadline = Annotated[int | None, typer.Option(min=1, help="seconds after submission it "
                                                          "should be done by")]
Budget = Annotated[int | None, typer.Option(min=0, help="the lease may cost at most this, fen")]
Priority = Annotated[int, typer.Option(min=0, max=9, help="0..9, higher goes first in a pass")]
MultiPool = Annotated[bool, typer.Option(help="allow a gang over pools of one interconnect")]


def _needs(software_stack: str | None, latency_class: str, user_city: str | None,
           max_rtt_ms: float | None, data_province: str | None, data_site: str | None,
           data_gb: float, deadline_s: int | None, budget_fen: int | None, priority: int,
           multi_pool: bool) -> dict[str, Any]:
    """What placement weighs beyond the devices (docs/placement.md), unset ones left out."""
    body = {"software_stack": software_stack, "latency_class": latency_class,
            "user_city": user_city, "max_rtt_ms": max_rtt_ms,
            "data_province": data_province, "data_site": data_site,
            "data_gb": data_gb or None, "deadline_s": deadline_s, "budget_fen": budget_fen,
            "priority": priority or None, "multi_pool": multi_pool or None}
    return {k: v for k, v in body.items() if v is not None}


def _spec(command: list[str], name: str, devices: int, accelerator: str | None,
          vendor: str | None, kind: str | None, workload_class: str,
          province: list[str] | None, pool_id: str | None, time_limit_s: int,
          max_price: int | None, spot: bool) -> dict[str, Any]:
    body = {"name": name, "command": command, "devices": devices,
            "accelerator": accelerator_key(accelerator), "vendor": vendor_name(vendor),
            "device_kind": parse_device_kind(kind), "workload_class": workload_class,
            "provinces": province or [], "pool_id": pool_id, "time_limit_s": time_limit_s,
            "max_price_fen_per_device_hour": max_price, "spot": spot}
    return {k: v for k, v in body.items() if v is not None}


def _fen(fen: int | None) -> str:
    if fen is None:
        return "-"
    return f"{fen} fen ({fen / 100:,.2f} CNY)"


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:g} h" if seconds % 36 == 0 else f"{seconds} s"


def _print_quote(body: dict[str, Any]) -> None:
    table = Table(title=f"quote: {body['devices']} device(s) for up to "
                        f"{_hours(body['time_limit_s'])} ({body['candidates']} pools could "
                        "take it now)")
    for column in ("rank", "pool", "accelerator", "city", "list fen/device-h",
                   "estimated cost", "hold", "score", "why"):
        table.add_column(column)
    for option in body["options"]:
        estimate = option["estimate"]
        table.add_row(str(option["rank"]), option["pool_id"], option["accelerator"],
                      option["city"], str(option["price_fen_per_device_hour"]),
                      _fen(estimate["estimated_cost_fen"]), f"{estimate['hold_fen']} fen",
                      "-" if option["score"] is None else f"{option['score']:g}",
                      escape(option["placement"].get("reason", option["placement"]
                                                     .get("policy", ""))))
    console.print(table)
    if body["message"]:
        console.print(body["message"])
    else:
        console.print("estimated cost: the charge under each pool's tariff in force if the job "
                      "runs its whole time limit from now; a job that ends sooner costs less")


def _quote(body: dict[str, Any], limit: int) -> None:
    _print_quote(request("POST", "/v1/quotes", json=body, params={"limit": limit}))


@jobs_app.command("quote")
def quote(command: Command, name: Name = "job", devices: Devices = 1,
          accelerator: Accelerator = None, vendor: Vendor = None,
          device_kind: DeviceKind = None, workload_class: WorkloadClass = "general",
          province: Province = None, pool_id: PoolId = None, time_limit_s: TimeLimit = 3600,
          max_price_fen_per_device_hour: MaxPrice = None, spot: Spot = False,
          limit: Annotated[int, typer.Option(min=1, max=10, help="options to show")] = 3,
          software_stack: Stack = None, latency_class: LatencyClass = "batch",
          user_city: UserCity = None, max_rtt_ms: MaxRtt = None,
          data_province: DataProvince = None, data_site: DataSite = None,
          data_gb: DataGb = 0.0, deadline_s: Deadline = None, budget_fen: Budget = None,
          priority: Priority = 0, multi_pool: MultiPool = False,
          ) -> None:
    """Where a job would run and what it would cost, before submitting it (nothing is held)."""
    _quote({**_spec(command, name, devices, accelerator, vendor, device_kind, workload_class,
                    province, pool_id, time_limit_s, max_price_fen_per_device_hour, spot),
            **_needs(software_stack, latency_class, user_city, max_rtt_ms, data_province,
                     data_site, data_gb, deadline_s, budget_fen, priority, multi_pool)},
           limit)


@jobs_app.command("submit")
def submit(
    command: Command, name: Name = "job", devices: Devices = 1,
    accelerator: Accelerator = None, vendor: Vendor = None, device_kind: DeviceKind = None,
    workload_class: WorkloadClass = "general", province: Province = None,
    pool_id: PoolId = None, time_limit_s: TimeLimit = 3600,
    max_price_fen_per_device_hour: MaxPrice = None, spot: Spot = False,
    idempotency_key: Annotated[str | None, typer.Option(
        help="resubmitting with the same key returns the same job")] = None,
    wait: Annotated[bool, typer.Option(
        help="follow the job until it ends: state changes, then its output and cost")] = False,
    dry_run: Annotated[bool, typer.Option(
        help="only quote: where it would run and the estimated cost (like `jobs quote`)")]
    = False,
    tail: Annotated[int, typer.Option(min=0, max=10_000, help="with --wait: output lines "
                                                              "to show")] = DEFAULT_TAIL_LINES,
    poll_s: PollS = 1.0,
    software_stack: Stack = None, latency_class: LatencyClass = "batch",
    user_city: UserCity = None, max_rtt_ms: MaxRtt = None,
    data_province: DataProvince = None, data_site: DataSite = None, data_gb: DataGb = 0.0,
    deadline_s: Deadline = None, budget_fen: Budget = None, priority: Priority = 0,
    multi_pool: MultiPool = False,
) -> None:
    """Submit a job, e.g. `suanli jobs submit --wait --device-kind cpu -- python3 train.py`.

    With --wait, exits 0 only if the job succeeds.
    """
    body = {**_spec(command, name, devices, accelerator, vendor, device_kind, workload_class,
                    province, pool_id, time_limit_s, max_price_fen_per_device_hour, spot),
            **_needs(software_stack, latency_class, user_city, max_rtt_ms, data_province,
                     data_site, data_gb, deadline_s, budget_fen, priority, multi_pool)}
    if dry_run:
        _quote(body, 3)
        return
    key = idempotency_key or str(uuid.uuid4())
    job = request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})
    console.print(f"submitted {job['id']} ({job['state']}); idempotency key {key}")
    if wait:
        job = _follow(job, poll_s)
        _print_outcome(job, tail)
        if job["state"] != "succeeded":
            raise typer.Exit(1)


def _event_line(event: dict[str, Any]) -> str:
    at = str(event["at"])[11:19]
    return f"  {at}  {event['to_state']:<10} {escape(event['reason'])}"


def _follow(job: dict[str, Any], poll_s: float) -> dict[str, Any]:
    """Print each state change as it happens (not the polls) until the job ends."""
    shown = 0
    started = time.monotonic()
    message = job.get("message") or ""
    while True:
        events = job.get("events", [])
        for event in events[shown:]:
            console.print(_event_line(event))
        shown = max(shown, len(events))
        if job["state"] in FINAL or time.monotonic() - started > MAX_WATCH_S:
            return job
        if job.get("message") and job["message"] != message:
            message = job["message"]
            console.print(f"  {'':8}  {'':<10} {escape(message)}")
        time.sleep(poll_s)
        job = request("GET", f"/v1/jobs/{job['id']}")


def _print_outcome(job: dict[str, Any], tail_lines: int) -> None:
    exit_code = "" if job.get("exit_code") is None else f", exit code {job['exit_code']}"
    console.print(f"job {job['id']} {job['state']}{exit_code}"
                  + (f": {escape(job['message'])}" if job.get("message") else ""))
    if tail_lines:
        text = request("GET", f"/v1/jobs/{job['id']}/logs", text=True)
        lines = text.splitlines()[-tail_lines:]
        console.print(f"output (last {len(lines)} lines):" if lines else "output: (none)")
        for line in lines:
            console.out(f"  {line}", highlight=False)
    _print_cost(job)


def _print_cost(job: dict[str, Any]) -> None:
    cost = job.get("cost")
    if not cost:
        return
    limit = _hours(int(job["spec"]["time_limit_s"]))
    if cost["records"]:
        voucher = f", vouchers {cost['discount_fen']} fen" if cost["discount_fen"] else ""
        console.print(f"cost: {_fen(cost['payable_fen'])} for {cost['device_hours']} "
                      f"device-hours (rated {cost['amount_fen']} fen{voucher}); estimate "
                      f"for the whole {limit} time limit: {_fen(cost['estimated_cost_fen'])}")
    else:
        console.print(f"cost: nothing charged yet; estimate for the whole {limit} time "
                      f"limit: {_fen(cost['estimated_cost_fen'])}")


def _status_table(job: dict[str, Any]) -> Table:
    table = Table(title=f"job {job['id']}", show_header=False)
    table.add_row("name", escape(job["name"]))
    table.add_row("state", job["state"])
    table.add_row("pool", job.get("pool_id") or "-")
    table.add_row("attempts", str(job["attempts"]))
    if job.get("exit_code") is not None:
        table.add_row("exit code", str(job["exit_code"]))
    if job.get("message"):
        table.add_row("message", escape(job["message"]))
    cost = job.get("cost") or {}
    table.add_row("estimated cost", _fen(cost.get("estimated_cost_fen")))
    if cost.get("records"):
        table.add_row("charged", f"{_fen(cost['payable_fen'])} for {cost['device_hours']} "
                                 f"device-hours ({cost['compute_unit_hours']} unit-hours)")
    return table


@jobs_app.command("list")
def list_jobs(state: Annotated[str | None, typer.Option(
                  help="only jobs in this state, e.g. running")] = None,
              limit: Annotated[int, typer.Option(min=1, max=200, help="at most this many")]
              = 50) -> None:
    """Your jobs, newest first."""
    page = request("GET", "/v1/jobs", params={"state": state, "limit": limit})
    table = Table(title="jobs")
    for column in ("id", "name", "state", "pool_id", "attempts", "created_at"):
        table.add_column(column)
    for job in page["items"]:
        table.add_row(job["id"], escape(job["name"]), job["state"], job.get("pool_id") or "",
                      str(job["attempts"]), job["created_at"])
    console.print(table)
    if not page["items"]:
        console.print("no jobs" + (f" in state {state}" if state else ""))


@jobs_app.command("get")
def get(job_id: Annotated[str, typer.Argument(help="the job's id, e.g. CN.J00000001-8")],
        watch: Annotated[bool, typer.Option(help="follow it until it ends")] = False,
        poll_s: PollS = 1.0) -> None:
    """A job: its state, pool, estimated and charged cost, and its state changes."""
    job = request("GET", f"/v1/jobs/{job_id}")
    if watch:
        job = _follow(job, poll_s)
    console.print(_status_table(job))
    if not watch:
        for event in job.get("events", []):
            console.print(_event_line(event))


@jobs_app.command("logs")
def logs(job_id: Annotated[str, typer.Argument(help="the job's id")]) -> None:
    """The job's output (stdout, then stderr), as its agent reported it when it ended."""
    console.out(request("GET", f"/v1/jobs/{job_id}/logs", text=True), end="", highlight=False)


@jobs_app.command("cancel")
def cancel(job_id: Annotated[str, typer.Argument(help="the job's id")]) -> None:
    """Cancel a job; a running one is stopped by its agent at the next heartbeat."""
    job = request("POST", f"/v1/jobs/{job_id}/cancel")
    console.print(f"job {job['id']} is {job['state']}")
