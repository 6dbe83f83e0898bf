"""`suanli agent`: run a provider agent beside an engine, or calibrate a pool."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from suanli.cli.client import settings as client_settings
from suanli.cli.names import accelerator_key

if TYPE_CHECKING:
    from suanli.catalog import Accelerator

console = Console()
agent_app = typer.Typer(help="The provider agent (runs on the provider's side).",
                        invoke_without_command=True)


def _engine_options(options: list[str]) -> dict[str, str]:
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{option!r}: use key=value", param_hint="--engine-option")
        parsed[key.replace("-", "_")] = value
    return parsed


def _make_engine(engine: str, engine_option: list[str], state_dir: Path,
                 sandbox: str | None):  # type: ignore[no-untyped-def]
    """The engine from the command line's settings; a bad setting or a sandbox that cannot
    be had ends the command with the reason (exit 2), never a traceback."""
    from suanli.adapters.engines import EngineError, get_engine
    from suanli.domain.errors import ValidationFailed

    options = _engine_options(engine_option)
    if sandbox is not None:
        if engine != "local":
            raise typer.BadParameter("only the local engine has a job sandbox; on "
                                     f"{engine} the cluster confines jobs", param_hint="--sandbox")
        if options.get("sandbox", sandbox) != sandbox:
            raise typer.BadParameter("--sandbox and --engine-option sandbox= disagree",
                                     param_hint="--sandbox")
        options["sandbox"] = sandbox
    if engine == "local":
        options.setdefault("state_dir", str(state_dir / "engine"))
    elif engine == "slurm":
        options.setdefault("output_dir", str((state_dir / "slurm-output").resolve()))
    try:
        return get_engine(engine, **options)
    except ValidationFailed as exc:
        raise typer.BadParameter(exc.detail, param_hint="--engine-option") from None
    except EngineError as exc:
        Console(stderr=True).print(f"[red]cannot start the {engine} engine:[/red] {exc.detail}")
        raise typer.Exit(2) from None


@agent_app.callback()
def run(
    ctx: typer.Context,
    platform: Annotated[str | None, typer.Option(
        help="platform URL, e.g. http://127.0.0.1:8000 (default: SUANLI_URL or `suanli login`)")]
    = None,
    pool: Annotated[list[str] | None, typer.Option(help="pool id this agent serves (repeat)")]
    = None,
    engine: Annotated[str, typer.Option(help="local, slurm, ray or noop")] = "local",
    engine_option: Annotated[list[str] | None, typer.Option(
        help="engine setting key=value (repeat), e.g. address=http://127.0.0.1:8265")] = None,
    state_dir: Annotated[Path, typer.Option(
        help="where the agent keeps its state (made absolute: jobs run elsewhere)")]
    = Path("suanli-agent"),
    name: Annotated[str, typer.Option(help="the agent's name, shown to the platform")]
    = "agent",
    max_running: Annotated[int, typer.Option(min=1, max=64, help="jobs at once")] = 4,
    poll_s: Annotated[float, typer.Option(min=0.05, max=60, help="seconds between rounds")]
    = 1.0,
    api_key: Annotated[str | None, typer.Option(
        envvar="SUANLI_API_KEY", help="the provider's API key (default: `suanli login`)")]
    = None,
    sandbox: Annotated[str | None, typer.Option(
        help="local engine's job sandbox: strict (default: bubblewrap, no network), network "
             "(jobs that ask get the network) or none (development only: jobs unconfined)")]
    = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="log every request and round, not only "
                                               "state changes")] = False,
) -> None:
    """Pull work for POOLs from PLATFORM over outbound HTTP and run it on ENGINE.

    Logs registrations, claims and job state changes; exits non-zero when the platform
    refuses the agent for good (a bad key, another provider's pool, a pool that is gone).
    """
    if ctx.invoked_subcommand is not None:
        return
    stored = client_settings()
    platform = platform or stored.url
    api_key = api_key or stored.api_key
    if not pool or not api_key:
        raise typer.BadParameter("at least one --pool and a provider's API key "
                                 "(SUANLI_API_KEY or `suanli login`) are required")
    # Jobs are strangers' code: the engine's processes must not inherit the key.
    os.environ.pop("SUANLI_API_KEY", None)
    from suanli.agent.runner import AgentRefused, PlatformClient, ProviderAgent

    _configure_logging(verbose)
    state_dir = state_dir.expanduser().resolve()
    runner = ProviderAgent(PlatformClient(platform, api_key),
                           _make_engine(engine, engine_option or [], state_dir, sandbox),
                           list(pool), state_dir, name=name, max_running=max_running,
                           platform_url=platform)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"agent {name}: {engine} engine, {len(pool)} pool(s) -> {platform} "
                  f"(state in {state_dir})")
    try:
        runner.run(stop, poll_s=poll_s)
    except AgentRefused as exc:
        Console(stderr=True).print(f"[red]agent {name} stopped: {exc}[/red]")
        raise typer.Exit(3) from None
    console.print("agent stopped; engine jobs keep running and are picked up on restart")


def _configure_logging(verbose: bool) -> None:
    """State changes at INFO; each HTTP request (httpx logs them at INFO) only with -v."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logging.getLogger("httpcore").setLevel(logging.WARNING)


@agent_app.command()
def calibrate(
    platform: Annotated[str | None, typer.Option(
        help="platform URL to upload to (default with --pool: SUANLI_URL or `suanli login`)")]
    = None,
    pool: Annotated[str | None, typer.Option(help="the pool whose devices this machine holds")]
    = None,
    devices: Annotated[int | None, typer.Option(
        min=1, max=1024, help="GPUs to probe (default: all visible); on a CPU, the sockets "
                              "the figures cover (default: from /proc/cpuinfo)")] = None,
    size: Annotated[int | None, typer.Option(
        min=64, max=16384, help="largest matmul order n (default 2048 on a CPU, 8192 on a GPU)")]
    = None,
    copy_mib: Annotated[int | None, typer.Option(
        min=1, max=4096, help="buffer copied to measure bandwidth (default 256 CPU, 1024 GPU)")]
    = None,
    repeats: Annotated[int | None, typer.Option(min=1, max=50, help="timed repeats")] = None,
    accelerator: Annotated[str | None, typer.Option(
        help="catalog key to compare with on a dry run (default: the pool's)")] = None,
    cpu_only: Annotated[bool, typer.Option("--cpu", help="probe the CPUs even beside a GPU")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
    = False,
    dry_run: Annotated[bool, typer.Option(help="measure and print; upload nothing")] = False,
    api_key: Annotated[str | None, typer.Option(
        envvar="SUANLI_API_KEY", help="the provider's API key (default: `suanli login`)")]
    = None,
) -> None:
    """Measure this machine's matmul FLOPS and memory bandwidth; upload them for POOL."""
    import json
    from dataclasses import asdict

    import httpx

    from suanli.agent.calibrate import ProbeError, probe
    from suanli.agent.runner import PlatformClient, PlatformError
    from suanli.services.registry.calibration import compare

    if pool:
        stored = client_settings()
        platform, api_key = platform or stored.url, api_key or stored.api_key
    if not dry_run and not (platform and pool and api_key):
        raise typer.BadParameter("--platform, --pool and an API key (SUANLI_API_KEY) are "
                                 "required to upload; use --dry-run to only measure")
    device = _catalog_entry(accelerator_key(accelerator)) if accelerator else None
    client = PlatformClient(platform, api_key) if platform and pool and api_key else None
    errors = Console(stderr=True)
    errors.print("measuring (a few seconds)...")
    try:
        result = probe(devices=devices, size=size, copy_mib=copy_mib, repeats=repeats,
                       use_gpu=not cpu_only)
        if dry_run:
            if device is None and client is not None:
                device = _catalog_entry(client.call("GET", f"/v1/pools/{pool}")["accelerator"])
            view = asdict(compare(result.figures, result.devices, result.device_kind, device)) \
                if device is not None else None
            output = {"probe": result.to_json(), "comparison": view}
        else:
            assert client is not None
            view = client.call("POST", f"/v1/pools/{pool}/calibrations", json=result.to_json())
            output = {"probe": result.to_json(), "calibration": view}
    except (ProbeError, PlatformError, httpx.HTTPError) as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        if client:
            client.close()
    if as_json:
        print(json.dumps(output, indent=2))
    else:
        _print_calibration(result, view)


def _catalog_entry(key: str) -> Accelerator:
    from suanli.catalog import load_catalog
    from suanli.domain.errors import NotFound

    try:
        return load_catalog().get(key)
    except NotFound as exc:
        raise typer.BadParameter(exc.detail, param_hint="--accelerator") from None


def _print_calibration(result, view) -> None:
    from rich.table import Table

    from suanli.services.registry.calibration import FIGURES

    cores = f", {result.cores} cores" if result.cores else ""
    table = Table(title=f"{result.device_name}: {result.devices} device(s){cores} "
                        f"({result.backend}, {result.duration_s:.1f} s)")
    for column in ("figure", "measured", "per device", "datasheet", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    datasheet = (view or {}).get("datasheet", {})
    ratios = (view or {}).get("ratios", {})
    for name in FIGURES:
        if name in result.figures:
            value = result.figures[name]
            cells = [f"{value:,.4g}", f"{value / result.devices:,.4g}"]
        else:
            cells = ["not measured", ""]
        sheet = f"{datasheet[name]:,.4g}" if name in datasheet else "-"
        ratio = f"{ratios[name] * 100:.3g}%" if name in ratios else "-"
        table.add_row(name, *cells, sheet, ratio)
    console.print(table)
    for name, why in result.not_measured.items():
        console.print(f"  {name} not measured: {why}", style="dim")
    if view is None:
        console.print("no comparison: pass --accelerator KEY, or --platform and --pool")
        return
    colour = "red" if view["over_declared"] else "green"
    console.print(f"[{colour}]{view['verdict']}[/{colour}]"
                  + (" (over_declared)" if view["over_declared"] else ""))
    for note in view.get("notes", []):
        console.print(f"  note: {note}")
    if "id" in view:
        console.print(f"stored as calibration {view['id']} of pool {view['pool_id']}")
