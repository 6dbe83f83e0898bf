"""`suanli serve` does not log every request unless asked to (issue 10)."""

from __future__ import annotations

import httpx

ACCESS_LINE = '"GET /v1/health HTTP/1.1" 200'


def _requests_then_log(node) -> str:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert httpx.get(node.url + "/v1/health", timeout=10).status_code == 200
    node.stop()  # flushes the output
    return node.output.read_text()


def test_the_access_log_is_off_by_default(node_factory) -> None:  # type: ignore[no-untyped-def]
    text = _requests_then_log(node_factory())
    assert ACCESS_LINE not in text
    assert "suanli CN" in text  # the start-up lines are still there


def test_a_setting_turns_the_access_log_on(node_factory) -> None:  # type: ignore[no-untyped-def]
    text = _requests_then_log(node_factory(env={"SUANLI_ACCESS_LOG": "true"}))
    assert text.count(ACCESS_LINE) >= 3
