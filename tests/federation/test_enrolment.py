"""Enrolling a sub-platform again replaces its one-time token (found by the type checker: the
second enrolment called check_name without its field and answered 500)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from suanli.adapters.peers import PeerAddress, PeerClient, PeerRejected
from suanli.adapters.platform_key import identity


def test_enrolling_again_issues_a_new_token_and_the_old_one_stops_working(
        net: Any, tmp_path: Path) -> None:
    cn = net["CN"]
    first = cn.client.post("/v1/federation/enrolments", headers=cn.operator,
                           json={"authority": "CN.YRD", "name": "Yangtze"})
    again = cn.client.post("/v1/federation/enrolments", headers=cn.operator,
                           json={"authority": "CN.YRD", "name": " Yangtze Delta "})
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    old, new = first.json()["enrolment_token"], again.json()["enrolment_token"]
    assert old != new

    newcomer = identity("CN.YRD", tmp_path / "yrd.key")
    client = PeerClient(newcomer, transport=net.router, retries=1,
                        wall_clock=lambda: net.clock.now().timestamp())
    parent = PeerAddress("CN", "http://cn.test", None)
    body = {"authority": "CN.YRD", "name": "Yangtze Delta", "level": "regional",
            "endpoint": "http://yrd.test", "public_key": newcomer.public_key_text,
            "key_id": newcomer.key_id}
    try:
        client.call(parent, "POST", "/federation/v1/platforms/register",
                    {**body, "enrolment_token": old})
        raise AssertionError("a replaced token must not register")
    except PeerRejected as exc:
        assert exc.status == 401
    reply = client.call(parent, "POST", "/federation/v1/platforms/register",
                        {**body, "enrolment_token": new})
    assert reply.body["parent"]["key_id"] == cn.runtime.me.key_id
