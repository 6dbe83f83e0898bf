"""Every endpoint, fed generated valid and invalid input with an operator's, a provider's and
a consumer's key: never a 5xx, every 4xx a problem, and no tenant ever reads another's
objects (issue 12: the provider and consumer runs aim every tenant and job parameter at a
third tenant's own).

Schemathesis reads the app's OpenAPI document at import time, so this module builds its own
node on the suite's database (SQLite, or a PostgreSQL schema of its own) instead of using the
function-scoped fixtures.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from suanli.adapters.clock import SystemClock
from suanli.adapters.store import create_database
from suanli.api.app import create_app
from suanli.bootstrap import ensure_operator, load_demo, parse_authority
from suanli.domain.jobs import JobSpec
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.services import tenants
from suanli.services.jobs import lifecycle as jobs
from suanli.settings import Settings
from tests.databases import drop_at_session_end

EXAMPLES_PER_OPERATION = 25  # with the operator's key
ENUM_REPR = re.compile(r"<[A-Z]\w+\.\w+: ")
EXAMPLES_PER_ROLE = 6  # with a provider's and a consumer's (each a run of its own)

_url = os.environ.get("SUANLI_TEST_DATABASE_URL") or \
    f"sqlite:///{tempfile.mkdtemp(prefix='suanli-fuzz-')}/fuzz.db"
_schema_name = f"fuzz_{secrets.token_hex(3)}" if _url.startswith("postgres") else None
_db = drop_at_session_end(create_database(_url, schema=_schema_name))
_db.migrate()
_authority = parse_authority("CN")
_operator_key = ensure_operator(_db, _authority, SystemClock())
load_demo(_db, _authority, SystemClock())
# Fuzzing sends thousands of requests with one key: no rate limit may answer for the app.
_app = create_app(Settings(auto_migrate=False, requests_per_key="1000000/minute",
                           auth_failures_per_address="1000000/minute"), database=_db)


def _tenant(role: Role, name: str) -> tuple[str, str]:
    with _db.unit_of_work() as session:
        new = tenants.create_tenant(session, _authority, name, role, TenantClass.START_UP,
                                    SystemClock().now())
    return new.tenant_id, new.api_key


_keys = {"operator": _operator_key, "provider": _tenant(Role.PROVIDER, "fuzz provider")[1],
         "consumer": _tenant(Role.CONSUMER, "fuzz consumer")[1]}
# The third tenant, whose objects the provider and consumer runs aim at and must never see.
_victim_id, _victim_key = _tenant(Role.CONSUMER, "someone else")
with _db.unit_of_work() as _session:
    _victim_job = jobs.submit(_session, Principal(_victim_id, Role.CONSUMER), _authority,
                              JobSpec(name="private", command=("true",), devices=1),
                              "victim-job", SystemClock().now())[0].id
_AIMED = {"tenant_id": _victim_id, "job_id": _victim_job}

schema = schemathesis.openapi.from_asgi("/openapi.json", _app)
schema.config.generation.update(modes=["positive", "negative"],
                                max_examples=EXAMPLES_PER_OPERATION, deterministic=True)
roles_schema = schemathesis.openapi.from_asgi("/openapi.json", _app)
roles_schema.config.generation.update(modes=["positive", "negative"],
                                      max_examples=EXAMPLES_PER_ROLE, deterministic=True)
roles_schema.config.phases.coverage.enabled = False  # its boundary cases ran as the operator


def _check(case, response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if response.status_code >= 400:
        content_type = response.headers["content-type"]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == response.status_code and problem["detail"]
        assert not ENUM_REPR.search(problem["detail"]), problem["detail"]  # no <Role.X: 'x'>


def _as(case, role: str):  # type: ignore[no-untyped-def]
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_keys[role]}"}
    if role != "operator":  # aim every tenant and job parameter at the third tenant's own
        for where in (case.path_parameters, case.query):
            if where is not None:
                for name in set(where) & set(_AIMED):
                    where[name] = _AIMED[name]
    return case.call()


def _no_cross_tenant_read(case, response) -> None:  # type: ignore[no-untyped-def]
    if response.status_code < 300:
        text = response.text
        assert _victim_id not in text and _victim_job not in text, \
            f"{case.method} {case.formatted_path} showed another tenant's objects: {text[:300]}"


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_no_endpoint_fails_on_any_input(case) -> None:  # type: ignore[no-untyped-def]
    _check(case, _as(case, "operator"))


@roles_schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_a_provider_never_fails_an_endpoint_nor_reads_another_tenant(case) -> None:  # type: ignore[no-untyped-def]
    response = _as(case, "provider")
    _check(case, response)
    _no_cross_tenant_read(case, response)


@roles_schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_a_consumer_never_fails_an_endpoint_nor_reads_another_tenant(case) -> None:  # type: ignore[no-untyped-def]
    response = _as(case, "consumer")
    _check(case, response)
    _no_cross_tenant_read(case, response)
