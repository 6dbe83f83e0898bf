"""Fixtures for tests through the HTTP API: an app on the test database and tenants with keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from suanli.api.app import create_app
from suanli.bootstrap import parse_authority
from suanli.domain.tenants import Role, TenantClass
from suanli.services import tenants
from suanli.settings import Settings


@dataclass
class Tenant:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def app(database, clock):  # type: ignore[no-untyped-def]
    settings = Settings(database_url="sqlite://", authority="CN", auto_migrate=False)
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
def client(app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app)


@pytest.fixture
def make_tenant(database, clock):  # type: ignore[no-untyped-def]
    def make(role: str = "consumer", name: str = "t", tenant_class: str = "start-up") -> Tenant:
        with database.unit_of_work() as session:
            new = tenants.create_tenant(session, parse_authority("CN"), name, Role(role),
                                        TenantClass(tenant_class), clock.now())
        return Tenant(new.tenant_id, new.api_key)

    return make


@pytest.fixture
def operator(make_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return make_tenant("operator", "operator")


@pytest.fixture
def provider(make_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return make_tenant("provider", "provider one")


@pytest.fixture
def consumer(make_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return make_tenant("consumer", "consumer one")
