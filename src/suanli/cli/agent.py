"""`suanli agent`: run a provider agent beside an engine, or calibrate a pool."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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


@agent_app.callback()
def run(
    ctx: typer.Context,
    platform: Annotated[str | None, typer.Option(help="platform URL, e.g. http://host:8000")]
    = None,
    pool: Annotated[list[str] | None, typer.Option(help="pool id this agent serves (repeat)")]
    = None,
    engine: Annotated[str, typer.Option(help="local, slurm, ray or noop")] = "local",
    engine_option: Annotated[list[str] | None, typer.Option(
        help="engine setting key=value (repeat), e.g. address=http://127.0.0.1:8265")] = None,
    state_dir: Annotated[Path, typer.Option(help="where the agent keeps its state")]
    = Path("suanli-agent"),
    name: str = "agent",
    max_running: Annotated[int, typer.Option(min=1, max=64)] = 4,
    poll_s: Annotated[float, typer.Option(min=0.05, max=60)] = 1.0,
    api_key: Annotated[str | None, typer.Option(envvar="SUANLI_API_KEY",
                                                help="the provider's API key")] = None,
) -> None:
    """Pull work for POOLs from PLATFORM over outbound HTTP and run it on ENGINE."""
    if ctx.invoked_subcommand is not None:
        return
    if not platform or not pool or not api_key:
        raise typer.BadParameter("--platform, at least one --pool and an API key "
                                 "(SUANLI_API_KEY) are required")
    from suanli.adapters.engines import get_engine
    from suanli.agent.runner import PlatformClient, ProviderAgent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = _engine_options(engine_option or [])
    if engine == "local":
        options.setdefault("state_dir", str(state_dir / "engine"))
    runner = ProviderAgent(PlatformClient(platform, api_key), get_engine(engine, **options),
                           list(pool), state_dir, name=name, max_running=max_running,
                           platform_url=platform)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"agent {name}: {engine} engine, pools {', '.join(pool)} -> {platform}")
    runner.run(stop, poll_s=poll_s)
    console.print("agent stopped; engine jobs keep running and are picked up on restart")
