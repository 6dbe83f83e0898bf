"""The protocol's defences over HTTP: only fresh, signed, untampered, unreplayed messages from a
known, unrevoked key addressed to this platform get through — and enrolment is one-time."""

from __future__ import annotations

import json
import secrets

from suanli.adapters.platform_key import PlatformIdentity
from suanli.domain import federation as fed
from suanli.domain.ids import ComputeId


def _send(node, me: PlatformIdentity, *, path: str = "/federation/v1/hello",  # type: ignore[no-untyped-def]
          method: str = "GET", body: bytes = b"", audience: str | None = None,
          timestamp: int | None = None, nonce: str | None = None,
          wire_body: bytes | None = None, headers: dict[str, str] | None = None):
    stamp = timestamp if timestamp is not None else int(node.runtime.now().timestamp())
    signed = fed.sign_request(me.private_key, me.key_id, audience or node.authority, method,
                              path, body, stamp, nonce or secrets.token_urlsafe(18))
    return node.client.request(method, path, content=wire_body if wire_body is not None
                               else body, headers={**signed.as_headers(), **(headers or {})})


def _problem(response, status: int, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if field:
        assert body["errors"][0]["field"] == field, body
    return body


def test_a_signed_message_from_a_known_peer_is_answered_and_the_answer_is_signed(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    nonce = "a-fresh-nonce-0001"
    response = _send(sc, gd.runtime.me, nonce=nonce)
    assert response.status_code == 200, response.text
    assert response.json() == {"platform": "CN.SC", "key_id": sc.runtime.me.key_id,
                               "you": "CN.GD"}
    answer = fed.SignatureHeaders.read(response.headers)
    assert answer.key_id == sc.runtime.me.key_id and answer.audience == "CN.GD"
    message = fed.canonical_response(nonce, 200, "CN.GD", answer.key_id, answer.timestamp,
                                     answer.nonce, fed.sha256_hex(response.content))
    assert fed.verify(sc.runtime.me.public_raw, message, answer.signature)


def test_unsigned_stale_replayed_misaddressed_and_tampered_messages_are_refused(net) -> None:  # type: ignore[no-untyped-def]
    gd, sc = net["CN.GD"], net["CN.SC"]
    me = gd.runtime.me
    _problem(sc.client.get("/federation/v1/hello"), 401, fed.HEADER_KEY_ID)
    now = int(sc.runtime.now().timestamp())
    _problem(_send(sc, me, timestamp=now - 301), 401, fed.HEADER_TIMESTAMP)
    _problem(_send(sc, me, timestamp=now + 301), 401, fed.HEADER_TIMESTAMP)
    assert _send(sc, me, timestamp=now - 299).status_code == 200
    assert _send(sc, me, nonce="once-only-nonce-01").status_code == 200
    replay = _problem(_send(sc, me, nonce="once-only-nonce-01"), 401, fed.HEADER_NONCE)
    assert "replayed" in replay["detail"]
    _problem(_send(sc, me, audience="CN"), 401, fed.HEADER_AUDIENCE)
    body = json.dumps({"home": "CN.GD", "home_job_id": "x", "attempt": 1}).encode()
    tampered = body.replace(b'"attempt": 1', b'"attempt": 2')
    assert tampered != body
    problem = _problem(_send(sc, me, method="POST", path="/federation/v1/jobs/withdraw",
                             body=body, wire_body=tampered), 401, fed.HEADER_SIGNATURE)
    assert "altered" in problem["detail"]
    # The signature names the path: the same signed message sent elsewhere does not verify.
    signed = fed.sign_request(me.private_key, me.key_id, "CN.SC", "GET", "/federation/v1/hello",
                              b"", now, secrets.token_urlsafe(18))
    _problem(sc.client.get("/federation/v1/platforms", headers=signed.as_headers()), 401)


def test_an_unknown_key_is_refused_and_a_revoked_one_forbidden(net, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from suanli.adapters.platform_key import identity

    gd, sc, cn = net["CN.GD"], net["CN.SC"], net["CN"]
    stranger = identity("CN.GD", tmp_path / "stolen-name.key")
    _problem(_send(sc, stranger), 401, fed.HEADER_KEY_ID)
    revoked = cn.client.post(f"/v1/federation/keys/{gd.runtime.me.key_id}/revoke",
                             headers=cn.operator)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    net.tick("CN.SC")  # SC learns of the revocation from the national registry
    _problem(_send(sc, gd.runtime.me), 403, fed.HEADER_KEY_ID)
    assert _send(sc, net["CN"].runtime.me).status_code == 200


def test_enrolment_is_needed_once_and_the_token_works_once(net, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from suanli.adapters.peers import PeerAddress, PeerClient, PeerRejected
    from suanli.adapters.platform_key import identity

    cn = net["CN"]
    newcomer = identity("CN.YRD", tmp_path / "yrd.key")
    client = PeerClient(newcomer, transport=net.router, retries=1,
                        wall_clock=lambda: net.clock.now().timestamp())
    parent = PeerAddress("CN", "http://cn.test", None)
    body = {"authority": "CN.YRD", "name": "Yangtze", "level": "regional",
            "endpoint": "http://yrd.test", "public_key": newcomer.public_key_text,
            "key_id": newcomer.key_id, "enrolment_token": "sle_guessed"}
    try:
        client.call(parent, "POST", "/federation/v1/platforms/register", body)
        raise AssertionError("a guessed token must not register")
    except PeerRejected as exc:
        assert exc.status == 401
    token = cn.client.post("/v1/federation/enrolments", headers=cn.operator,
                           json={"authority": "CN.YRD", "name": "Yangtze"}).json()
    reply = client.call(parent, "POST", "/federation/v1/platforms/register",
                        {**body, "enrolment_token": token["enrolment_token"]})
    assert reply.body["parent"]["key_id"] == cn.runtime.me.key_id
    assert reply.verify_with("CN", cn.runtime.me.public_raw, "CN.YRD")
    thief = identity("CN.YRD", tmp_path / "thief.key")
    thief_client = PeerClient(thief, transport=net.router, retries=1,
                              wall_clock=lambda: net.clock.now().timestamp())
    try:  # the token is spent, and a key of its own does not make the thief CN.YRD
        thief_client.call(parent, "POST", "/federation/v1/platforms/register",
                          {**body, "public_key": thief.public_key_text,
                           "key_id": thief.key_id,
                           "enrolment_token": token["enrolment_token"]})
        raise AssertionError("a used token must not register another key")
    except PeerRejected as exc:
        assert exc.status == 401
    # Not a sub-platform of CN: refused however it is asked.
    bad = cn.client.post("/v1/federation/enrolments", headers=cn.operator,
                         json={"authority": "CN.GD.SZ", "name": "Shenzhen"})
    assert bad.status_code == 422


def test_registration_spreads_platforms_keys_and_delegations(net) -> None:  # type: ignore[no-untyped-def]
    gd = net["CN.GD"]
    listed = gd.client.get("/v1/federation/platforms", headers=gd.operator).json()
    assert [p["authority"] for p in listed["platforms"]] == ["CN", "CN.GD", "CN.SC"]
    assert {k["authority"] for k in listed["keys"]} == {"CN", "CN.GD", "CN.SC"}
    sc_pool = ComputeId.platform("CN.SC").child("provider", 7).child("site", 1).child("pool", 2)
    resolved = gd.client.get(f"/v1/ids/{sc_pool}").json()
    assert resolved["authoritative_platform"] == "CN.SC"
    assert resolved["endpoint"] == "http://sc.test" and not resolved["local"]
    national = gd.client.get(f"/v1/ids/{ComputeId.platform('CN').child('tenant', 3)}").json()
    assert national["authoritative_platform"] == "CN" and national["endpoint"] == "http://cn.test"
    unknown = ComputeId.platform("CN.XJ").child("provider", 1)
    assert gd.client.get(f"/v1/ids/{unknown}").json()["authoritative_platform"] == "CN"
