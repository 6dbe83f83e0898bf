"""With the database down every endpoint answers 503 problem+json with Retry-After, and
/v1/health names the dependency that is down (issue 12, finding 14)."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from suanli.adapters.clock import FixedClock
from suanli.adapters.store import create_database
from suanli.api.app import create_app
from suanli.settings import Settings
from tests.conftest import START


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _down_urls(tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    urls = [f"sqlite:///{tmp_path / 'no-such-directory' / 'suanli.db'}"]
    try:
        import psycopg  # noqa: F401
        urls.append(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test")
    except ImportError:
        pass
    return urls


@pytest.fixture(params=["sqlite", "postgresql"])
def down(request, tmp_path) -> TestClient:  # type: ignore[no-untyped-def]
    urls = {url.split(":")[0].split("+")[0]: url for url in _down_urls(tmp_path)}
    if request.param not in urls:
        pytest.skip("psycopg is not installed")
    db = create_database(urls[request.param])
    app = create_app(Settings(auto_migrate=False, search_index=False), database=db,
                     clock=FixedClock(START))
    yield TestClient(app, raise_server_exceptions=False)
    db.dispose()


def _is_outage_problem(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503


def test_health_names_the_database_as_down(down) -> None:  # type: ignore[no-untyped-def]
    response = down.get("/v1/health")
    _is_outage_problem(response)
    assert response.json()["dependencies"] == {"database": "down"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/me"), ("GET", "/v1/pools"), ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"), ("GET", "/v1/ids/CN.GD-I"),
])
def test_every_endpoint_answers_503_not_500(down, method, path) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": "Bearer sl_0123456789_x", "Idempotency-Key": "k1"}
    body = {"name": "x", "command": ["true"]} if method == "POST" else None
    _is_outage_problem(down.request(method, path, headers=headers, json=body))
