"""The federation protocol's rules: platform levels, key ids, the signed canonical form, replays.

Every message between platforms (`/federation/v1/...`) is signed with the sender's Ed25519 key.
The signature covers one canonical text, so a receiver can check that nothing it relies on was
changed and that the message was meant for it:

    suanli-fed-v1 request
    <METHOD>
    <path and query, exactly as sent>
    <audience: the receiving platform's authority, e.g. CN.SC>
    <key id>
    <timestamp: integer Unix seconds>
    <nonce>
    <hex SHA-256 of the body bytes>

A response is signed the same way, bound to the request it answers by the request's nonce, so
an old response can never be passed off as the answer to a new request. Documents that outlive
a message (roaming records, settlement statements) carry a signature of their own over their
canonical JSON, so they stay verifiable after they are stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from suanli.domain.errors import Forbidden, Unauthenticated, ValidationFailed

PROTOCOL = "suanli-fed-v1"
REPLAY_WINDOW_S = 300  # a message is accepted within +-5 minutes of its timestamp
MAX_REPLAY_WINDOW_S = 3600
MAX_BODY_BYTES = 16 << 20  # a clearing page of 10,000 records is ~3 MiB
PUBLIC_KEY_BYTES = 32

HEADER_KEY_ID = "Suanli-Key-Id"
HEADER_TIMESTAMP = "Suanli-Timestamp"
HEADER_NONCE = "Suanli-Nonce"
HEADER_SIGNATURE = "Suanli-Signature"
HEADER_AUDIENCE = "Suanli-Audience"

_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIGNATURE_RE = re.compile(r"^[A-Za-z0-9_-]{86}$")  # 64 bytes, base64url without padding
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{16}$")
_AUTHORITY_RE = re.compile(r"^[A-Z]{2,8}(\.[A-Z]{2,8}){0,7}$")


class PlatformLevel(StrEnum):
    """The levels of the multi-level platform (多级互联互通平台)."""

    NATIONAL = "national"
    REGIONAL = "regional"
    INDUSTRY = "industry"


class SignatureRejected(Unauthenticated):
    """A federation message whose signature, key, freshness or nonce does not hold."""


class KeyRevoked(Forbidden):
    """A message signed with a key its platform (or the registry) has revoked."""


# -- encodings and keys ----------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str, *, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValidationFailed("must be base64url", field=field) from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_authority(text: str, *, field: str = "authority") -> str:
    """An authority path such as `CN` or `CN.GD`, canonical upper case."""
    canonical = text.strip().upper() if isinstance(text, str) else ""
    if not _AUTHORITY_RE.match(canonical):
        raise ValidationFailed("must be an authority path like CN or CN.GD", field=field)
    return canonical


_TOKEN_RE = re.compile(r"^[A-Za-z0-9._:*+-]{1,128}$")


def check_token(text: object, *, field: str) -> str:
    """An id-like value from a peer (record or cycle id, catalog key): no blanks, no control
    bytes, at most 128 characters."""
    if not isinstance(text, str) or not _TOKEN_RE.match(text):
        raise ValidationFailed("must be 1-128 characters of A-Z a-z 0-9 . _ : * + -",
                               field=field)
    return text


def is_within(authority: str, ancestor: str) -> bool:
    """Whether `authority` is `ancestor` or was delegated under it (CN.GD.SZ within CN.GD)."""
    return authority == ancestor or authority.startswith(ancestor + ".")


def parent_of(authority: str) -> str | None:
    head, dot, _ = authority.rpartition(".")
    return head if dot else None


def fingerprint(public_raw: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    assert len(public_raw) == PUBLIC_KEY_BYTES
    return sha256_hex(public_raw)[:16]


def key_id(authority: str, public_raw: bytes) -> str:
    """`<authority>:<fingerprint>`, e.g. `CN.GD:3f2a9c01d4e5b6a7`: who signs, with which key."""
    return f"{check_authority(authority)}:{fingerprint(public_raw)}"


def parse_key_id(text: str) -> tuple[str, str]:
    """(authority, fingerprint) of a key id; SignatureRejected if it is malformed."""
    authority, colon, print_ = (text or "").partition(":")
    if not colon or not _FINGERPRINT_RE.match(print_) or not _AUTHORITY_RE.match(authority):
        raise SignatureRejected("malformed key id", field=HEADER_KEY_ID)
    return authority, print_


def public_key_from_text(text: str, *, field: str = "public_key") -> bytes:
    raw = from_b64url(text, field=field)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValidationFailed(f"must be {PUBLIC_KEY_BYTES} bytes", field=field)
    return raw


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    return b64url(private_key.sign(message))


def verify(public_raw: bytes, message: bytes, signature: str) -> bool:
    if not _SIGNATURE_RE.match(signature or ""):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            from_b64url(signature, field="signature"), message)
    except (InvalidSignature, ValueError, ValidationFailed):
        return False
    return True


# -- the canonical form ----------------------------------------------------------------------

def canonical_request(method: str, path: str, audience: str, signer: str, timestamp: int,
                      nonce: str, body_sha256: str) -> bytes:
    """The text a request signature covers (see the module docstring)."""
    return "\n".join([f"{PROTOCOL} request", method.upper(), path, audience, signer,
                      str(timestamp), nonce, body_sha256]).encode()


def canonical_response(request_nonce: str, status: int, audience: str, signer: str,
                       timestamp: int, nonce: str, body_sha256: str) -> bytes:
    """The text a response signature covers: bound to the request by the request's nonce."""
    return "\n".join([f"{PROTOCOL} response", request_nonce, str(status), audience, signer,
                      str(timestamp), nonce, body_sha256]).encode()


@dataclass(frozen=True)
class SignatureHeaders:
    """The four signature headers plus the audience, read and checked for shape."""

    key_id: str
    timestamp: int
    nonce: str
    signature: str
    audience: str

    @classmethod
    def read(cls, headers: Mapping[str, str]) -> SignatureHeaders:
        """SignatureRejected (401) naming the first header that is missing or malformed."""
        values = {}
        for name in (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE,
                     HEADER_AUDIENCE):
            value = headers.get(name) or headers.get(name.lower())
            if not value:
                raise SignatureRejected(f"the {name} header is missing: federation messages "
                                        "must be signed", field=name)
            values[name] = value.strip()
        parse_key_id(values[HEADER_KEY_ID])
        stamp = values[HEADER_TIMESTAMP]
        if not stamp.isdigit() or len(stamp) > 12:
            raise SignatureRejected("must be integer Unix seconds", field=HEADER_TIMESTAMP)
        if not _NONCE_RE.match(values[HEADER_NONCE]):
            raise SignatureRejected("must be 16-64 base64url characters", field=HEADER_NONCE)
        if not _SIGNATURE_RE.match(values[HEADER_SIGNATURE]):
            raise SignatureRejected("must be a base64url Ed25519 signature",
                                    field=HEADER_SIGNATURE)
        audience = values[HEADER_AUDIENCE].upper()
        if not _AUTHORITY_RE.match(audience):
            raise SignatureRejected("must be an authority path", field=HEADER_AUDIENCE)
        return cls(values[HEADER_KEY_ID], int(stamp), values[HEADER_NONCE],
                   values[HEADER_SIGNATURE], audience)

    def as_headers(self) -> dict[str, str]:
        return {HEADER_KEY_ID: self.key_id, HEADER_TIMESTAMP: str(self.timestamp),
                HEADER_NONCE: self.nonce, HEADER_SIGNATURE: self.signature,
                HEADER_AUDIENCE: self.audience}


def check_fresh(timestamp: int, now: datetime, window_s: int = REPLAY_WINDOW_S) -> None:
    """SignatureRejected unless `timestamp` is within +-window_s of now (clock skew included)."""
    assert 1 <= window_s <= MAX_REPLAY_WINDOW_S
    skew = abs(now.timestamp() - timestamp)
    if skew > window_s:
        raise SignatureRejected(f"timestamp is {skew:.0f} s from this platform's clock; "
                                f"at most {window_s} s is accepted (replay or clock skew)",
                                field=HEADER_TIMESTAMP)


def nonce_expiry(timestamp: int, window_s: int = REPLAY_WINDOW_S) -> int:
    """Until when a nonce must be remembered: after that its timestamp alone rejects it."""
    return timestamp + window_s


def sign_request(private_key: Ed25519PrivateKey, signer: str, audience: str, method: str,
                 path: str, body: bytes, timestamp: int, nonce: str) -> SignatureHeaders:
    message = canonical_request(method, path, audience, signer, timestamp, nonce,
                                sha256_hex(body))
    return SignatureHeaders(signer, timestamp, nonce, sign(private_key, message), audience)


# -- signed documents ------------------------------------------------------------------------

def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no blanks, UTF-8: the one byte form of a document both sides sign."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def document_digest(document: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(document))


def sign_document(private_key: Ed25519PrivateKey, signer: str,
                  document: Mapping[str, Any]) -> str:
    return sign(private_key, f"{PROTOCOL} document\n{signer}\n".encode()
                + canonical_json(document))


def verify_document(public_raw: bytes, signer: str, document: Mapping[str, Any],
                    signature: str) -> bool:
    return verify(public_raw, f"{PROTOCOL} document\n{signer}\n".encode()
                  + canonical_json(document), signature)
