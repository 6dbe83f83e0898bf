"""A small HTTP client for the CLI: the platform and key from the environment or `suanli login`."""

from __future__ import annotations

from typing import Any

import httpx
import typer
from rich.console import Console

from suanli.cli import config

err = Console(stderr=True)
TIMEOUT_S = 30.0


def settings() -> config.ClientConfig:
    """The URL and key in force, or exit with the reason the stored login is unusable."""
    try:
        return config.load()
    except config.ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def request(method: str, path: str, *, json: Any = None,
            params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
            text: bool = False, authenticated: bool = True) -> Any:
    """Call the platform; print a problem+json error readably and exit non-zero on failure."""
    current = settings()
    auth = ({"Authorization": f"Bearer {current.api_key}"}
            if current.api_key and authenticated else {})
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        response = httpx.request(method, current.url + path, json=json, params=clean,
                                 headers={**auth, **(headers or {})}, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot reach {current.url} ({current.url_from}): {exc}[/red]")
        err.print("is `suanli serve` running there? `suanli login --url URL --key KEY` "
                  "points the CLI elsewhere")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            body = response.json()
            message = body.get("detail") or body.get("title") or response.text
        except ValueError:
            message = response.text
        err.print(f"[red]{response.status_code}: {message}[/red]")
        if response.status_code == 401:
            err.print("log in with `suanli login --url URL --key KEY` (as `suanli serve` "
                      "prints it), or set SUANLI_API_KEY")
        raise typer.Exit(1)
    if text:
        return response.text
    return response.json() if response.content else None
