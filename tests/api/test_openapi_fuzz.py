"""Every endpoint, fed generated valid and invalid input: never a 5xx, every 4xx a problem.

Schemathesis reads the app's OpenAPI document at import time, so this module builds its own
node on the suite's database (SQLite, or a PostgreSQL schema of its own) instead of using the
function-scoped fixtures.
"""

from __future__ import annotations

import os
import secrets
import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from suanli.adapters.clock import SystemClock
from suanli.adapters.store import create_database
from suanli.api.app import create_app
from suanli.services.bootstrap import ensure_operator, load_demo, parse_authority
from suanli.settings import Settings
from tests.databases import drop_at_session_end

EXAMPLES_PER_OPERATION = 25

_url = os.environ.get("SUANLI_TEST_DATABASE_URL") or \
    f"sqlite:///{tempfile.mkdtemp(prefix='suanli-fuzz-')}/fuzz.db"
_schema_name = f"fuzz_{secrets.token_hex(3)}" if _url.startswith("postgres") else None
_db = drop_at_session_end(create_database(_url, schema=_schema_name))
_db.migrate()
_authority = parse_authority("CN")
_operator_key = ensure_operator(_db, _authority, SystemClock())
load_demo(_db, _authority, SystemClock())
_app = create_app(Settings(auto_migrate=False), database=_db)

schema = schemathesis.openapi.from_asgi("/openapi.json", _app)
schema.config.generation.update(modes=["positive", "negative"],
                                max_examples=EXAMPLES_PER_OPERATION, deterministic=True)


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_no_endpoint_fails_on_any_input(case) -> None:  # type: ignore[no-untyped-def]
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_operator_key}"}
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if response.status_code >= 400:
        content_type = response.headers["content-type"]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == response.status_code and problem["detail"]
