"""Rate limits (issue 12, finding 8): 500 wrong keys at full speed used to get 500 answers of
401 and no 429. Now failed authentications per client address and requests per key are
limited, in memory for one server process or in Redis shared by several; over a limit the
answer is 429 problem+json with Retry-After."""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from suanli.api.app import create_app
from suanli.settings import Settings
from tests.api.conftest import Tenant

REDIS_URL = os.environ.get("SUANLI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
WRONG = "sl_0123456789_" + "x" * 43


def _redis_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    return "memory://" if request.param == "memory" else _redis_or_skip()


def _app(database, clock, storage: str, namespace: str, **limits: str):  # type: ignore[no-untyped-def]
    settings = Settings(database_url="sqlite://", authority="CN", auto_migrate=False,
                        run_scheduler=False, rate_limit_storage_url=storage,
                        rate_limit_namespace=namespace, **limits)
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
def namespace() -> Iterator[str]:
    yield f"test:{secrets.token_hex(6)}"  # fresh counters in a shared Redis


def test_500_wrong_keys_from_one_address_meet_429_with_retry_after(
        database, clock, storage: str, namespace: str, consumer: Tenant) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(_app(database, clock, storage, namespace,
                             auth_failures_per_address="30/minute"))
    statuses = Counter()
    first_429 = None
    for _ in range(500):
        response = client.get("/v1/me", headers={"Authorization": f"Bearer {WRONG}"})
        statuses[response.status_code] += 1
        if response.status_code == 429 and first_429 is None:
            first_429 = response
    assert statuses == {401: 30, 429: 470}
    assert first_429 is not None
    assert first_429.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(first_429.headers["Retry-After"]) <= 60
    assert first_429.json()["status"] == 429 and "failed authentications" in \
        first_429.json()["detail"]
    # The right key from the blocked address waits too: a 200 would mark the right guess.
    assert client.get("/v1/me", headers=consumer.headers).status_code == 429
    # A request without any key guesses nothing and is not counted (but is refused: 429).
    other = TestClient(_app(database, clock, storage, namespace + "b",
                            auth_failures_per_address="3/minute"))
    for _ in range(10):
        assert other.get("/v1/me").status_code == 401
    assert other.get("/v1/me", headers=consumer.headers).status_code == 200


def test_a_key_over_its_request_limit_gets_429(database, clock, storage: str,  # type: ignore[no-untyped-def]
                                               namespace: str, consumer: Tenant,
                                               provider: Tenant) -> None:
    client = TestClient(_app(database, clock, storage, namespace, requests_per_key="5/minute"))
    answers = [client.get("/v1/me", headers=consumer.headers).status_code for _ in range(8)]
    assert answers == [200] * 5 + [429] * 3
    limited = client.get("/v1/me", headers=consumer.headers)
    assert "Retry-After" in limited.headers and limited.json()["title"] == "Too many requests"
    assert client.get("/v1/me", headers=provider.headers).status_code == 200  # its own window


def test_several_server_processes_share_the_failure_count_in_redis(
        database, clock, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """Two nodes of one platform (as two `suanli serve` processes would be) behind one
    Redis: failures at either count against the address at both."""
    url = _redis_or_skip()
    first, second = (TestClient(_app(database, clock, url, namespace,
                                     auth_failures_per_address="10/minute"))
                     for _ in range(2))
    wrong = {"Authorization": f"Bearer {WRONG}"}
    assert [first.get("/v1/me", headers=wrong).status_code for _ in range(6)] == [401] * 6
    assert [second.get("/v1/me", headers=wrong).status_code for _ in range(6)] == \
        [401] * 4 + [429] * 2
    assert first.get("/v1/me", headers=wrong).status_code == 429
    # In memory each process counts alone: the same traffic is not limited yet.
    alone = [TestClient(_app(database, clock, "memory://", namespace,
                             auth_failures_per_address="10/minute")) for _ in range(2)]
    assert [c.get("/v1/me", headers=wrong).status_code for c in alone for _ in range(6)] == \
        [401] * 12
