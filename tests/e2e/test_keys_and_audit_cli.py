"""Keys, the audit log and rate limits on real `suanli serve` processes, driven by the CLI."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from tests.api.test_rate_limits import WRONG, _redis_or_skip
from tests.e2e.conftest import run_cli


def test_a_tenant_manages_its_keys_from_the_cli_and_operators_read_the_audit(
        node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory()
    made = run_cli("keys", "create", "--name", "reports", "--scope", "read", url=node.url,
                   key=node.operator_key)
    assert made.returncode == 0, made.stderr
    key = re.search(r"API key \(shown once, store it now\): (\S+)", made.stdout).group(1)
    key_id = key.split("_")[1]
    listed = run_cli("keys", "list", url=node.url, key=node.operator_key)
    assert key_id in listed.stdout and "reports" in listed.stdout
    assert run_cli("keys", "create", url=node.url, key=key).returncode == 1  # no admin scope
    rotated = run_cli("keys", "rotate", key_id, url=node.url, key=node.operator_key)
    assert rotated.returncode == 0, rotated.stderr
    new = re.search(r"API key \(shown once, store it now\): (\S+)", rotated.stdout).group(1)
    assert httpx.get(node.url + "/v1/me", headers={"Authorization": f"Bearer {key}"}
                     ).status_code == 401
    revoked = run_cli("keys", "revoke", new.split("_")[1], url=node.url, key=node.operator_key)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    audit = run_cli("audit", "--action", "key.rotate", url=node.url, key=node.operator_key)
    assert audit.returncode == 0, audit.stderr
    assert "key.rotate" in audit.stdout and f"key_id={key_id}" in audit.stdout
    everything = run_cli("audit", url=node.url, key=node.operator_key)
    assert everything.stdout.count("key.") >= 4 and key not in everything.stdout


def test_two_server_processes_share_one_failure_limit_through_redis(node_factory) -> None:  # type: ignore[no-untyped-def]
    """Two `suanli serve` processes of one platform, one database, one Redis: wrong keys
    sent to both are counted together."""
    url = _redis_or_skip()
    env = {"SUANLI_RATE_LIMIT_STORAGE_URL": url,
           "SUANLI_RATE_LIMIT_NAMESPACE": f"e2e:{secrets.token_hex(6)}",
           "SUANLI_AUTH_FAILURES_PER_ADDRESS": "20/minute"}
    first = node_factory(env=env)
    second = node_factory(env=env, storage=first.storage)
    wrong = {"Authorization": f"Bearer {WRONG}"}
    answers = [httpx.get(node.url + "/v1/me", headers=wrong, timeout=10).status_code
               for _ in range(15) for node in (first, second)]
    assert answers.count(401) == 20 and answers.count(429) == 10
    assert answers[:20] == [401] * 20
    limited = httpx.get(second.url + "/v1/me", headers={
        "Authorization": f"Bearer {first.operator_key}"}, timeout=10)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("scheme", ["memory"])
def test_a_bad_storage_url_stops_the_server_at_start(node_factory, scheme: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match="rate limit storage"):
        node_factory(env={"SUANLI_RATE_LIMIT_STORAGE_URL": f"{scheme}-nonsense"})
