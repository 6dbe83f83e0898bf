"""`suanli login | logout | whoami`: remember which platform the CLI talks to, and as whom."""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from suanli.cli import config
from suanli.cli.client import TIMEOUT_S, settings

console = Console(soft_wrap=True)  # URLs and paths stay whole, to be copied
err = Console(stderr=True, soft_wrap=True)


def _check(url: str, key: str) -> dict[str, Any]:
    """The tenant behind the key at the platform, or exit saying what is wrong."""
    try:
        response = httpx.get(url.rstrip("/") + "/v1/me", timeout=TIMEOUT_S,
                             headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(2) from None
    if response.status_code in (401, 403):
        err.print(f"[red]{url} refused the key ({response.status_code}): "
                  f"{_detail(response)}[/red]")
        raise typer.Exit(1)
    if response.status_code != 200:
        err.print(f"[red]{url}/v1/me answered {response.status_code}: {_detail(response)}; "
                  "is this a suanli platform?[/red]")
        raise typer.Exit(1)
    tenant: dict[str, Any] = response.json()
    return tenant


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)
    except ValueError:
        return response.text[:200]


def _describe(tenant: dict[str, Any]) -> str:
    return f"{tenant['id']} {tenant['name']!r} ({tenant['role']}, {tenant['tenant_class']})"


def login(
    url: Annotated[str, typer.Option(help="the platform, as `suanli serve` prints it, "
                                          "e.g. http://127.0.0.1:8000")] = config.DEFAULT_URL,
    key: Annotated[str | None, typer.Option(
        help="your API key (sl_...); asked for when not given, so it stays out of the "
             "shell history")] = None,
    status: Annotated[bool, typer.Option(
        "--status", help="only show the platform and tenant in use (like `suanli whoami`)")]
    = False,
    check: Annotated[bool, typer.Option(
        help="ask the platform who the key belongs to before storing it")] = True,
) -> None:
    """Store the platform URL and API key for the CLI (mode 0600 in your config directory).

    SUANLI_URL and SUANLI_API_KEY, when set, win over what is stored.
    """
    if status:
        whoami()
        return
    if key is None:
        key = typer.prompt("API key", hide_input=True)
    key = key.strip()
    if not key:
        raise typer.BadParameter("must not be empty", param_hint="--key")
    tenant = _check(url, key) if check else None
    path = config.save(url, key)
    who = f" as {_describe(tenant)}" if tenant else ""
    console.print(f"logged in to {url.rstrip('/')}{who}; stored in {path}")
    for name in (config.URL_ENV, config.KEY_ENV):
        if os.environ.get(name):
            console.print(f"[yellow]note: {name} is set and wins over the stored login[/yellow]")


def logout() -> None:
    """Forget the stored platform URL and API key."""
    path = config.config_path()
    if config.clear():
        console.print(f"logged out: removed {path}")
    else:
        console.print(f"not logged in (no {path})")


def whoami() -> None:
    """The platform the CLI talks to, where that comes from, and the tenant of the key."""
    current = settings()
    console.print(f"platform {current.url} (from {current.url_from})")
    if current.api_key is None:
        console.print("no API key: `suanli login --url URL --key KEY`, or set SUANLI_API_KEY")
        raise typer.Exit(1)
    tenant = _check(current.url, current.api_key)
    console.print(f"tenant {_describe(tenant)} (key from {current.key_from})")
