"""`suanli keys list|create|rotate|revoke` and `suanli audit`: API keys and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suanli.cli.client import request

console = Console()
keys_app = typer.Typer(help="Your API keys (operators: any tenant's).", no_args_is_help=True)
Tenant = Annotated[str | None, typer.Option("--tenant", help="operators: another tenant")]


def _print_new(body: dict[str, Any]) -> None:
    console.print(f"key {body['key_id']} of {body['tenant_id']} "
                  f"(scopes {', '.join(body['scopes'])}"
                  f"{', expires ' + body['expires_at'] if body['expires_at'] else ''})")
    console.print(f"API key (shown once, store it now): {body['api_key']}")


@keys_app.command("list")
def list_keys(tenant: Tenant = None) -> None:
    """The keys of your tenant, revoked and expired ones too (never their secrets)."""
    items = request("GET", "/v1/keys", params={"tenant_id": tenant})
    table = Table(title="API keys")
    for column in ("key id", "name", "scopes", "state", "created", "expires", "rotated from"):
        table.add_column(column)
    for k in items:
        table.add_row(k["key_id"], k["name"], ",".join(k["scopes"]), k["state"],
                      k["created_at"], k["expires_at"] or "-", k["rotated_from"] or "-")
    console.print(table)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="read, submit, spend or admin; repeat it (default: your key's)")] = None,
    expires_at: Annotated[str | None, typer.Option(
        help="ISO time with offset, e.g. 2027-01-01T00:00:00+08:00")] = None,
    tenant: Tenant = None,
) -> None:
    """Make a key; its secret is printed once."""
    _print_new(request("POST", "/v1/keys", json={
        "name": name, "scopes": scope or None, "expires_at": expires_at, "tenant_id": tenant}))


@keys_app.command("rotate")
def rotate_key(key_id: Annotated[str, typer.Argument(help="the key's id")], grace_s: Annotated[int, typer.Option(
        help="seconds the old key keeps working (default: it stops now)")] = 0) -> None:
    """Replace a key with a new one of the same name, scopes and expiry."""
    _print_new(request("POST", f"/v1/keys/{key_id}/rotate", json={"grace_s": grace_s}))


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="the key's id")]) -> None:
    """Stop a key at once."""
    body = request("POST", f"/v1/keys/{key_id}/revoke")
    console.print(f"key {body['key_id']} of {body['tenant_id']}: {body['state']}")


def audit(
    action: Annotated[str | None, typer.Option(help="e.g. wallet.deposit, key.revoke")] = None,
    actor: Annotated[str | None, typer.Option(help="the acting tenant's id")] = None,
    target: Annotated[str | None, typer.Option(help="part of the target, e.g. a tenant id")]
    = None,
    since: Annotated[str | None, typer.Option(help="ISO time with offset")] = None,
    after_id: Annotated[int | None, typer.Option(help="entries after this id")] = None,
    limit: Annotated[int, typer.Option(help="at most this many entries")] = 100,
) -> None:
    """Operators: the audit log of admin and money actions, oldest first."""
    body = request("GET", "/v1/audit", params={"action": action, "actor": actor,
                                               "target": target, "since": since,
                                               "after_id": after_id, "limit": limit})
    table = Table(title="audit log")
    for column in ("id", "at", "actor", "key", "action", "target", "idempotency key",
                   "status", "outcome"):
        table.add_column(column)
    for e in body["items"]:
        table.add_row(str(e["id"]), e["at"], e["actor"]["tenant_id"] or "-",
                      e["actor"]["key_id"] or "-", e["action"], e["target"] or "-",
                      e["idempotency_key"] or "-", str(e["status"]), e["outcome"])
    console.print(table)
    if body["next_after_id"]:
        console.print(f"more: --after-id {body['next_after_id']}")
