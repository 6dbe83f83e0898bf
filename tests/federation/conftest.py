"""Three platforms in one process — the national CN and the regional CN.GD and CN.SC — each
with its own database and app, talking over an in-memory HTTP transport, on one clock.

The federation loop does not run by itself here: a test calls `net.tick()` to run one pass on
every platform, so each step of the protocol happens exactly when the test says.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from suanli.adapters.store import Database, create_database
from suanli.api.app import create_app
from suanli.bootstrap import parse_authority
from suanli.domain.tenants import Role, TenantClass
from suanli.federation_settings import FederationSettings
from suanli.services import tenants
from suanli.services.peering.runtime import FederationRuntime
from suanli.settings import Settings
from tests.asgi_transport import TestClientTransport
from tests.databases import empty_database

AUTHORITIES = ("CN", "CN.GD", "CN.SC")
HOSTS = {"CN": "cn.test", "CN.GD": "gd.test", "CN.SC": "sc.test"}
SITE = {"name": "Chengdu DC", "province": "CN-SC", "city": "Chengdu", "latitude": 30.6,
        "longitude": 104.1, "pue": "1.2", "electricity_fen_per_kwh": 40,
        "green_share": "0.5", "kind": "hub", "hub": "chengyu"}


@pytest.fixture(scope="session")
def _platform_databases(database_url: str, tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[dict[str, Database]]:
    dbs: dict[str, Database] = {}
    schemas = []
    for index, authority in enumerate(AUTHORITIES):
        if database_url.startswith("postgres"):
            schema = f"fed_{os.getpid()}_{secrets.token_hex(2)}_{index}"
            schemas.append(schema)
            db = create_database(database_url, schema=schema)
        else:
            path = tmp_path_factory.mktemp("federation") / f"{authority}.db"
            db = create_database(f"sqlite:///{path}")
        db.migrate()
        dbs[authority] = db
    yield dbs
    for db in dbs.values():
        if db.schema:
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
        db.dispose()


class Router(httpx.BaseTransport):
    """Sends each request to the app its host name stands for; `down` hosts refuse."""

    def __init__(self) -> None:
        self.clients: dict[str, TestClient] = {}
        self.down: set[str] = set()
        self.sent: list[httpx.Request] = []
        self.drop_responses: dict[str, int] = {}  # host -> how many answers to lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.sent.append(request)
        if host in self.down:
            raise httpx.ConnectError(f"{host} is down", request=request)
        response = TestClientTransport(self.clients[host]).handle_request(request)
        if self.drop_responses.get(host, 0) > 0:
            self.drop_responses[host] -= 1
            response.read()
            raise httpx.ReadTimeout("the answer was lost on the way back", request=request)
        return response


@dataclass
class Node:
    authority: str
    app: FastAPI
    client: TestClient
    db: Database
    operator: dict[str, str] = field(default_factory=dict)

    @property
    def runtime(self) -> FederationRuntime:
        return self.app.state.ctx.federation

    def tenant(self, role: str = "consumer", name: str = "tenant") -> tuple[str, dict[str, str]]:
        with self.db.unit_of_work() as session:
            new = tenants.create_tenant(session, parse_authority(self.authority), name,
                                        Role(role), TenantClass.START_UP,
                                        self.runtime.now())
        return new.tenant_id, {"Authorization": f"Bearer {new.api_key}"}

    def pool(self, provider: dict[str, str], *, price: int = 60, devices: int = 2,
             site: dict[str, Any] | None = None) -> str:
        c = self.client
        p = c.post("/v1/providers", headers=provider,
                   json={"name": "provider", "kind": "computing-centre"}).json()
        s = c.post(f"/v1/providers/{p['id']}/sites", headers=provider, json=site or SITE).json()
        response = c.post(f"/v1/sites/{s['id']}/pools", headers=provider,
                          json={"name": f"cpu {price}", "accelerator": "intel-xeon-8480",
                                "device_count": devices, "engine": "local",
                                "price_fen_per_device_hour": price})
        assert response.status_code == 201, response.text
        return response.json()["id"]


@dataclass
class Net:
    nodes: dict[str, Node]
    router: Router
    clock: Any

    def __getitem__(self, authority: str) -> Node:
        return self.nodes[authority]

    def tick(self, *authorities: str, times: int = 1) -> None:
        """One loop pass on each platform (all by default), one second apart."""
        for _ in range(times):
            self.clock.advance(1)
            for authority in authorities or AUTHORITIES:
                self.nodes[authority].runtime.tick()


def _operator(db: Database, authority: str, clock: Any) -> dict[str, str]:
    with db.unit_of_work() as session:
        new = tenants.create_tenant(session, parse_authority(authority), "operator",
                                    Role.OPERATOR, TenantClass.PUBLIC, clock.now())
    return {"Authorization": f"Bearer {new.api_key}"}


@pytest.fixture
def net(_platform_databases: dict[str, Database], clock: Any, tmp_path: Path) -> Iterator[Net]:
    """CN with CN.GD and CN.SC enrolled, registered and synced once."""
    router = Router()
    nodes: dict[str, Node] = {}
    for authority in AUTHORITIES:
        db = _platform_databases[authority]
        empty_database(db)
        settings = Settings(database_url="sqlite://", authority=authority, auto_migrate=False,
                            run_scheduler=False, platform_name=f"platform {authority}",
                            claim_timeout_s=60)
        app = create_app(settings, database=db, clock=clock)
        client = TestClient(app, base_url=f"http://{HOSTS[authority]}")
        router.clients[HOSTS[authority]] = client
        nodes[authority] = Node(authority, app, client, db, _operator(db, authority, clock))
    tokens = {}
    national = nodes["CN"]
    _start(national, None, None, router, tmp_path)
    for authority in ("CN.GD", "CN.SC"):
        response = national.client.post("/v1/federation/enrolments", headers=national.operator,
                                         json={"authority": authority,
                                               "name": f"platform {authority}"})
        assert response.status_code == 201, response.text
        tokens[authority] = response.json()["enrolment_token"]
    for authority in ("CN.GD", "CN.SC"):
        _start(nodes[authority], "http://cn.test", tokens[authority], router, tmp_path)
    result = Net(nodes, router, clock)
    result.tick("CN.GD", "CN.SC")  # register
    result.tick("CN.GD", "CN.SC")  # first sync: each learns the other from CN
    yield result
    for node in nodes.values():
        node.runtime.stop()
        node.client.close()


def _start(node: Node, parent: str | None, token: str | None, router: Router,
           tmp_path: Path) -> None:
    ctx = node.app.state.ctx
    ctx.federation_settings = FederationSettings(
        key_file=tmp_path / f"{node.authority}.key", parent=parent, enrolment_token=token,
        public_url=f"http://{HOSTS[node.authority]}", run_federation=False,
        catalog_pull_s=0.1, catalog_heartbeat_s=3600, peer_timeout_s=2, peer_retries=2,
        clearing_auto=False)
    ctx.federation_transport = router
    runtime = ctx.build_federation_runtime()
    runtime.peers._backoff_s = 0.0  # no sleeping between retries in tests
    ctx.federation = runtime
    runtime.start()
