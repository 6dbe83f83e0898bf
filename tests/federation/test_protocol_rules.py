"""The signed canonical form, key ids, freshness and document signatures (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from suanli.adapters.platform_key import KeyFileError, identity, load_or_create
from suanli.domain import federation as fed
from suanli.domain.errors import Unauthenticated, ValidationFailed

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _key() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw)


def _signed(key: Ed25519PrivateKey, raw: bytes, body: bytes = b'{"a":1}'):  # type: ignore[no-untyped-def]
    return fed.sign_request(key, fed.key_id("CN.GD", raw), "CN.SC", "POST",
                            "/federation/v1/jobs/forward", body, int(NOW.timestamp()),
                            "n0nce-n0nce-n0nce-1")


def _verifies(raw: bytes, headers: fed.SignatureHeaders, *, method: str = "POST",
              path: str = "/federation/v1/jobs/forward", audience: str = "CN.SC",
              body: bytes = b'{"a":1}') -> bool:
    message = fed.canonical_request(method, path, audience, headers.key_id, headers.timestamp,
                                    headers.nonce, fed.sha256_hex(body))
    return fed.verify(raw, message, headers.signature)


def test_a_signature_covers_method_path_audience_body_time_and_nonce() -> None:
    key, raw = _key()
    headers = _signed(key, raw)
    assert _verifies(raw, headers)
    assert not _verifies(raw, headers, body=b'{"a":2}')
    assert not _verifies(raw, headers, method="PUT")
    assert not _verifies(raw, headers, path="/federation/v1/jobs/withdraw")
    assert not _verifies(raw, headers, audience="CN.GD")
    for changed in (fed.SignatureHeaders(headers.key_id, headers.timestamp + 1, headers.nonce,
                                         headers.signature, headers.audience),
                    fed.SignatureHeaders(headers.key_id, headers.timestamp, "another-nonce-x1",
                                         headers.signature, headers.audience)):
        assert not _verifies(raw, changed)


def test_another_key_does_not_verify() -> None:
    key, raw = _key()
    _, other = _key()
    assert not _verifies(other, _signed(key, raw))


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=199))
def test_any_flipped_byte_of_the_body_breaks_the_signature(body: bytes, position: int) -> None:
    key, raw = _KEY
    headers = _signed(key, raw, body)
    if not body:
        return
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1:]
    assert _verifies(raw, headers, body=body)
    assert not _verifies(raw, headers, body=tampered)


_KEY = _key()


def test_headers_are_read_and_checked_for_shape() -> None:
    key, raw = _key()
    headers = _signed(key, raw)
    assert fed.SignatureHeaders.read(headers.as_headers()) == headers
    lower = {k.lower(): v for k, v in headers.as_headers().items()}
    assert fed.SignatureHeaders.read(lower) == headers
    for name in headers.as_headers():
        missing = {k: v for k, v in headers.as_headers().items() if k != name}
        with pytest.raises(fed.SignatureRejected) as caught:
            fed.SignatureHeaders.read(missing)
        assert caught.value.field == name and isinstance(caught.value, Unauthenticated)
    for name, bad in ((fed.HEADER_TIMESTAMP, "yesterday"), (fed.HEADER_NONCE, "short"),
                      (fed.HEADER_SIGNATURE, "xyz"), (fed.HEADER_KEY_ID, "CN.GD"),
                      (fed.HEADER_AUDIENCE, "not an authority")):
        with pytest.raises(fed.SignatureRejected):
            fed.SignatureHeaders.read({**headers.as_headers(), name: bad})


def test_a_timestamp_outside_the_window_is_a_replay_or_skew() -> None:
    stamp = int(NOW.timestamp())
    fed.check_fresh(stamp - 300, NOW, 300)
    fed.check_fresh(stamp + 300, NOW, 300)
    for off in (-301, 301, -86400):
        with pytest.raises(fed.SignatureRejected) as caught:
            fed.check_fresh(stamp + off, NOW, 300)
        assert caught.value.field == fed.HEADER_TIMESTAMP
    assert fed.nonce_expiry(stamp, 300) == stamp + 300


def test_key_ids_name_the_authority_and_the_key() -> None:
    _, raw = _key()
    kid = fed.key_id("cn.gd", raw)
    authority, fingerprint = fed.parse_key_id(kid)
    assert authority == "CN.GD" and fingerprint == fed.fingerprint(raw) and len(fingerprint) == 16
    for bad in ("", "CN.GD", "CN.GD:XYZ", "cn.gd:0123456789abcdef", "C:0123456789abcdef"):
        with pytest.raises(fed.SignatureRejected):
            fed.parse_key_id(bad)


def test_authorities_and_their_tree() -> None:
    assert fed.check_authority(" cn.gd ") == "CN.GD"
    for bad in ("C", "CN..GD", "CN.G1", "", "CN.ABCDEFGHI"):
        with pytest.raises(ValidationFailed):
            fed.check_authority(bad)
    assert fed.is_within("CN.GD.SZ", "CN.GD") and fed.is_within("CN.GD", "CN.GD")
    assert not fed.is_within("CN.GDX", "CN.GD") and not fed.is_within("CN", "CN.GD")
    assert fed.parent_of("CN.GD.SZ") == "CN.GD" and fed.parent_of("CN") is None


def test_documents_are_signed_over_their_canonical_json() -> None:
    key, raw = _key()
    kid = fed.key_id("CN.SC", raw)
    document = {"b": 2, "a": "算力", "nested": {"y": [1, 2], "x": None}}
    signature = fed.sign_document(key, kid, document)
    reordered = {"nested": {"x": None, "y": [1, 2]}, "a": "算力", "b": 2}
    assert fed.canonical_json(document) == fed.canonical_json(reordered)
    assert fed.verify_document(raw, kid, reordered, signature)
    assert not fed.verify_document(raw, kid, {**document, "b": 3}, signature)
    assert not fed.verify_document(raw, "CN.GD:" + kid.split(":")[1], document, signature)
    assert fed.document_digest(document) == fed.document_digest(reordered)


def test_the_key_file_is_created_private_and_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys" / "platform.key"
    first = identity("CN.GD", path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = identity("CN.GD", path)
    assert again.public_raw == first.public_raw and again.key_id == first.key_id
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_or_create(path)
    path.chmod(0o600)
    path.write_text("not a key")
    with pytest.raises(KeyFileError, match="not a PEM"):
        load_or_create(path)
