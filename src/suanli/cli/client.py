"""A small HTTP client for the CLI: base URL and API key from SUANLI_URL / SUANLI_API_KEY."""

from __future__ import annotations

from typing import Any

import httpx
import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

err = Console(stderr=True)
TIMEOUT_S = 30.0


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUANLI_", extra="ignore")
    url: str = "http://127.0.0.1:8000"
    api_key: str | None = None


def request(method: str, path: str, *, json: Any = None,
            params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
            text: bool = False) -> Any:
    """Call the platform; print a problem+json error readably and exit non-zero on failure."""
    settings = ClientSettings()
    headers = {**({"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}),
               **(headers or {})}
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        response = httpx.request(method, settings.url.rstrip("/") + path, json=json,
                                 params=clean, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot reach {settings.url}: {exc}[/red]")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            body = response.json()
            message = body.get("detail") or body.get("title") or response.text
        except ValueError:
            message = response.text
        err.print(f"[red]{response.status_code}: {message}[/red]")
        raise typer.Exit(1)
    if text:
        return response.text
    return response.json() if response.content else None
