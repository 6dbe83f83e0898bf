"""The `suanli` command: serve a platform node, administer it, and use it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from suanli.cli.agent import agent_app
from suanli.cli.billing import bills_app, ledger_app, programmes_app, tariffs_app, wallet_app
from suanli.cli.federation import federation_app
from suanli.cli.jobs import jobs_app
from suanli.cli.keys import audit, keys_app
from suanli.cli.registry import pools, providers, sites
from suanli.cli.simulate import simulate

app = typer.Typer(help="suanli (算力): a compute-power internet.", no_args_is_help=True)
admin = typer.Typer(help="Administer the local platform database directly.",
                    no_args_is_help=True)
app.add_typer(admin, name="admin")
app.add_typer(providers, name="providers")
app.add_typer(sites, name="sites")
app.add_typer(pools, name="pools")
app.add_typer(agent_app, name="agent")
app.add_typer(jobs_app, name="jobs")
app.add_typer(federation_app, name="federation")
app.command("simulate")(simulate)
app.add_typer(wallet_app, name="wallet")
app.add_typer(bills_app, name="bills")
app.add_typer(tariffs_app, name="tariffs")
app.add_typer(programmes_app, name="programmes")
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")  # issue 12
app.command("audit")(audit)  # issue 12
console = Console()


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="load the illustrative national federation")] = False,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL")] = None,
    authority: Annotated[str | None, typer.Option(help="identifier authority, e.g. CN.GD")]
    = None,
    parent: Annotated[str | None, typer.Option(help="federation: the parent platform's URL")]
    = None,
    enrolment_token: Annotated[str | None, typer.Option(
        help="federation: the one-time token from the parent's operator")] = None,
    key_file: Annotated[str | None, typer.Option(help="federation: Ed25519 key file")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="federation: where peers reach this node")] = None,
) -> None:
    """Run a platform node (SQLite by default; PostgreSQL via --database-url)."""
    import uvicorn

    from suanli.adapters.clock import SystemClock
    from suanli.api.app import create_app
    from suanli.bootstrap import ensure_operator, load_demo
    from suanli.settings import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "database_url": database_url,
                                   "authority": authority, "demo": demo or None}.items()
                 if v is not None}
    settings = Settings(**overrides)
    api = create_app(settings)
    ctx = api.state.ctx
    ctx.federation_settings = _federation_settings(parent, enrolment_token, key_file,
                                                   public_url, settings.authority)
    key = ensure_operator(ctx.db, ctx.authority, SystemClock())
    if key:
        console.print(f"[bold]first start: operator API key (shown once):[/bold] {key}")
    if settings.demo:
        summary = load_demo(ctx.db, ctx.authority, SystemClock())
        console.print(f"[yellow]demo federation (ILLUSTRATIVE data): {summary.providers} "
                      f"providers, {summary.sites} sites, {summary.pools} pools[/yellow]")
        console.print(f"[bold]demo consumer API key:[/bold] {summary.consumer_key}")
    console.print(f"suanli {ctx.authority} on http://{settings.host}:{settings.port} "
                  f"(API docs at /docs, database {ctx.db.dialect})")
    uvicorn.run(api, host=settings.host, port=settings.port, log_level="info")


def _federation_settings(parent: str | None, token: str | None, key_file: str | None,
                         public_url: str | None, authority: str):  # type: ignore[no-untyped-def]
    """Issue 6: the federation options of `serve` over SUANLI_* settings; a node always keeps
    its key in a file (suanli-<authority>.key here unless SUANLI_KEY_FILE says otherwise)."""
    from suanli.adapters.platform_key import default_key_file
    from suanli.federation_settings import FederationSettings

    overrides = {k: v for k, v in {"parent": parent, "enrolment_token": token,
                                   "key_file": key_file, "public_url": public_url}.items()
                 if v is not None}
    settings = FederationSettings(**overrides)
    if settings.key_file is None:
        settings.key_file = default_key_file(authority.strip().upper())
    return settings


@admin.command("create-tenant")
def create_tenant(
    name: str,
    role: Annotated[str, typer.Option(help="consumer, provider or operator")] = "consumer",
    tenant_class: Annotated[str, typer.Option("--class", help="small-firm, start-up, "
                                              "research, enterprise, public")] = "enterprise",
    database_url: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a tenant and print its API key once (only its hash is stored)."""
    from suanli.adapters.clock import SystemClock
    from suanli.adapters.store import create_database
    from suanli.bootstrap import parse_authority
    from suanli.domain.errors import SuanliError
    from suanli.services import tenants
    from suanli.settings import Settings

    settings = Settings(**({"database_url": database_url} if database_url else {}))
    db = create_database(settings.database_url, schema=settings.database_schema)
    db.migrate()
    try:
        with db.unit_of_work() as session:
            new = tenants.create_tenant(session, parse_authority(settings.authority), name,
                                        tenants.parse_role(role),
                                        tenants.parse_tenant_class(tenant_class),
                                        SystemClock().now())
    except SuanliError as exc:
        Console(stderr=True).print(f"[red]{exc.field or 'error'}: {exc.detail}[/red]")
        raise typer.Exit(1) from None
    console.print(f"tenant {new.tenant_id} ({new.role.value}, {new.tenant_class.value})")
    console.print(f"API key (shown once, store it now): {new.api_key}")


@admin.command("migrate")
def migrate(database_url: Annotated[str | None, typer.Option()] = None) -> None:
    """Bring the database schema to the newest revision."""
    from suanli.adapters.store import create_database
    from suanli.settings import Settings

    settings = Settings(**({"database_url": database_url} if database_url else {}))
    create_database(settings.database_url, schema=settings.database_schema).migrate()
    console.print("database is at the newest revision")


if __name__ == "__main__":
    app()
