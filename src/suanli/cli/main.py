"""The `suanli` command: serve a platform node, administer it, and use it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from suanli.cli.agent import agent_app
from suanli.cli.ask import ask
from suanli.cli.billing import bills_app, ledger_app, programmes_app, tariffs_app, wallet_app
from suanli.cli.catalog import accelerators
from suanli.cli.federation import federation_app
from suanli.cli.jobs import jobs_app
from suanli.cli.keys import audit, keys_app
from suanli.cli.login import login, logout, whoami
from suanli.cli.market import market_app
from suanli.cli.mcp import mcp
from suanli.cli.registry import pools, providers, sites
from suanli.cli.simulate import simulate

HELP = ("suanli (算力): a compute-power internet.\n\n"
        "Start a node with `suanli serve --demo` and run the `suanli login ...` command it "
        "prints. Then find compute with `suanli pools search`, run work with `suanli jobs "
        "submit --wait -- CMD` and read the bill with `suanli bills show`. Every command has "
        "--help.")

if TYPE_CHECKING:
    from suanli.federation_settings import FederationSettings

app = typer.Typer(help=HELP, no_args_is_help=True)
admin = typer.Typer(help="Administer the local platform database directly (no server needed).",
                    no_args_is_help=True)
# soft_wrap: the keys and login commands it prints must stay on one line, to be copied
console = Console(highlight=False, soft_wrap=True)

DatabaseUrl = Annotated[str | None, typer.Option(
    help="SQLAlchemy URL; default sqlite:///suanli-<authority>.db here, or SUANLI_DATABASE_URL")]
Authority = Annotated[str | None, typer.Option(
    help="the node's identifier authority, e.g. CN or CN.GD (default CN, or SUANLI_AUTHORITY)")]


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(
        help="load the illustrative national federation, with a demo consumer, a demo "
             "provider and an agent that runs the demo pools' jobs here")] = False,
    demo_agent: Annotated[bool, typer.Option(
        help="with --demo: start the demo agent (local engine) for the demo pools")] = True,
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")]
    = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (default 8000)")] = None,
    database_url: DatabaseUrl = None,
    authority: Authority = None,
    name: Annotated[str | None, typer.Option(
        help="how this node names itself to peers (default from the authority)")] = None,
    parent: Annotated[str | None, typer.Option(help="federation: the parent platform's URL")]
    = None,
    enrolment_token: Annotated[str | None, typer.Option(
        help="federation: the one-time token from the parent's operator")] = None,
    key_file: Annotated[str | None, typer.Option(
        help="federation: Ed25519 key file (default suanli-<authority>.key here)")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="federation: where peers reach this node")] = None,
) -> None:
    """Run a platform node: the HTTP API, scheduling and (with --parent) federation.

    SQLite in ./suanli-<authority>.db by default; PostgreSQL via --database-url.
    """
    import uvicorn

    from suanli.adapters.clock import SystemClock
    from suanli.api.app import create_app
    from suanli.bootstrap import ensure_operator
    from suanli.cli import demo as demo_files
    from suanli.console import install as install_console
    from suanli.mcp import http as mcp_http
    from suanli.settings import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "database_url": database_url,
                                   "authority": authority, "platform_name": name,
                                   "demo": demo or None}.items()
                 if v is not None}
    settings = Settings(**overrides)
    _note_old_default(settings)
    api = create_app(settings)
    install_console(api)  # issue 17: the web console at /
    ctx = api.state.ctx
    ctx.federation_settings = _federation_settings(parent, enrolment_token, key_file,
                                                   public_url, settings.authority)
    url = demo_files.client_url(settings.host, settings.port)
    key = ensure_operator(ctx.db, ctx.authority, SystemClock())
    if key:
        console.print(f"[bold]first start: operator API key (shown once):[/bold] {key}")
        console.print(f"  log in as the operator:       suanli login --url {url} --key {key}")
    agent = _start_demo(ctx, settings, url, demo_agent) if settings.demo else None
    mcp_http.mount(api, host=settings.host,  # issue 15: the MCP server at /mcp
                   spend_file=demo_files.side_file(settings.database_url, settings.authority,
                                                   "-mcp-spend.json"))
    console.print(f"suanli {ctx.authority.body} ({escape(settings.platform_name)}) on "
                  f"{url} (console at {url}/, API docs at {url}/docs, database {ctx.db.dialect})")
    if agent is not None:
        _run_with(api, agent)
    uvicorn.run(api, host=settings.host, port=settings.port, log_level="info",
                access_log=settings.access_log)


def _run_with(api, agent) -> None:  # type: ignore[no-untyped-def]
    """Start the demo agent with the app and stop it inside the app's shutdown: uvicorn ends
    the process by re-raising SIGTERM/SIGINT once it has shut down, so code after
    `uvicorn.run` would never run."""
    from starlette.concurrency import run_in_threadpool

    inner = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app):  # type: ignore[no-untyped-def]
        async with inner(app) as state:
            agent.start()
            try:
                yield state
            finally:
                await run_in_threadpool(agent.stop)

    api.router.lifespan_context = lifespan


def _note_old_default(settings) -> None:  # type: ignore[no-untyped-def]
    """Before issue 10 every node defaulted to ./suanli.db; say so rather than look empty."""
    from suanli.settings import default_database_url

    default = default_database_url(settings.authority)
    if settings.database_url == default and Path("suanli.db").exists() \
            and not Path(default.removeprefix("sqlite:///")).exists():
        console.print("[yellow]note: ./suanli.db is no longer the default database; pass "
                      "--database-url sqlite:///suanli.db to keep using it[/yellow]")


def _start_demo(ctx, settings, url: str, with_agent: bool):  # type: ignore[no-untyped-def]
    """Load the demo, print its keys and login commands; the demo agent, not yet started."""
    from suanli.adapters.clock import SystemClock
    from suanli.bootstrap import load_demo
    from suanli.cli import demo as demo_files
    from suanli.services.demo_access import demo_pool_ids

    key_path = demo_files.key_file(settings.database_url, settings.authority)
    try:
        saved = demo_files.read_keys(key_path)
    except demo_files.DemoKeyFileError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    summary = load_demo(ctx.db, ctx.authority, SystemClock(), saved_keys=saved)
    if not summary.keys_reused:
        demo_files.write_keys(key_path, summary.keys)
    keys = summary.keys
    console.print(f"[yellow]demo federation (ILLUSTRATIVE data): {summary.providers} "
                  f"providers, {summary.sites} sites, {summary.pools} pools[/yellow]")
    console.print(f"[bold]demo consumer API key:[/bold] {keys.consumer_key}")
    console.print(f"[bold]demo provider API key:[/bold] {keys.provider_key}")
    console.print(f"  log in as the demo consumer:  suanli login --url {url} "
                  f"--key {keys.consumer_key}")
    console.print(f"  log in as the demo provider:  suanli login --url {url} "
                  f"--key {keys.provider_key}")
    console.print(f"  (keys {'reused from' if summary.keys_reused else 'saved in'} {key_path}, "
                  "mode 0600)")
    if not with_agent:
        return None
    with ctx.db.unit_of_work() as session:
        pool_ids = demo_pool_ids(session)
    state_dir = demo_files.side_file(settings.database_url, settings.authority, "-demo-agent")
    console.print(f"demo agent: runs the jobs of all {len(pool_ids)} demo pools here, on the "
                  f"local engine (state in {state_dir})")
    return demo_files.DemoAgent(url, keys.provider_key, pool_ids, state_dir)


def _federation_settings(parent: str | None, token: str | None, key_file: str | None,
                         public_url: str | None, authority: str) -> FederationSettings:
    """Issue 6: the federation options of `serve` over SUANLI_* settings; a node always keeps
    its key in a file (suanli-<authority>.key here unless SUANLI_KEY_FILE says otherwise)."""
    from suanli.adapters.platform_key import default_key_file
    from suanli.federation_settings import FederationSettings

    overrides: dict[str, Any] = {
        k: v for k, v in {"parent": parent, "enrolment_token": token,
                          "key_file": key_file, "public_url": public_url}.items()
        if v is not None}
    settings = FederationSettings(**overrides)
    if settings.key_file is None:
        settings.key_file = default_key_file(authority.strip().upper())
    return settings


def _settings(database_url: str | None, authority: str | None):  # type: ignore[no-untyped-def]
    from suanli.settings import Settings

    overrides = {k: v for k, v in {"database_url": database_url, "authority": authority}.items()
                 if v}
    return Settings(**overrides)


@admin.command("create-tenant")
def create_tenant(
    name: Annotated[str, typer.Argument(help="the tenant's name, e.g. 'Lab Compute'")],
    role: Annotated[str, typer.Option(help="consumer, provider or operator")] = "consumer",
    tenant_class: Annotated[str, typer.Option("--class", help="small-firm, start-up, "
                                              "research, enterprise, public")] = "enterprise",
    database_url: DatabaseUrl = None,
    authority: Authority = None,
) -> None:
    """Create a tenant and print its API key once (only its hash is stored)."""
    from suanli.adapters.clock import SystemClock
    from suanli.adapters.store import create_database
    from suanli.bootstrap import parse_authority
    from suanli.domain.errors import SuanliError
    from suanli.services import tenants

    settings = _settings(database_url, authority)
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
def migrate(database_url: DatabaseUrl = None, authority: Authority = None) -> None:
    """Bring the database schema to the newest revision."""
    from suanli.adapters.store import create_database

    settings = _settings(database_url, authority)
    create_database(settings.database_url, schema=settings.database_schema).migrate()
    console.print(f"database {settings.database_url} is at the newest revision")


app.command("login")(login)
app.command("logout")(logout)
app.command("whoami")(whoami)
app.add_typer(providers, name="providers")
app.add_typer(sites, name="sites")
app.add_typer(pools, name="pools")
app.command("accelerators")(accelerators)
app.add_typer(jobs_app, name="jobs")
app.add_typer(agent_app, name="agent")
app.add_typer(wallet_app, name="wallet")
app.add_typer(bills_app, name="bills")
app.add_typer(tariffs_app, name="tariffs")
app.add_typer(programmes_app, name="programmes")
app.add_typer(ledger_app, name="ledger")
app.add_typer(federation_app, name="federation")
app.add_typer(market_app, name="market")  # issue 14: the compute exchange
app.add_typer(keys_app, name="keys")  # issue 12
app.command("audit")(audit)  # issue 12
app.command("simulate")(simulate)
app.command("mcp")(mcp)  # issue 15: MCP over stdio
app.command("ask")(ask)  # issue 15: requests in words, no model
app.add_typer(admin, name="admin")


if __name__ == "__main__":
    app()
