"""The one HTTP adapter to other platforms: signed requests, verified responses, bounded
retries with backoff and jitter, and a timeout on everything."""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from suanli.adapters.platform_key import PlatformIdentity
from suanli.domain import federation as fed
from suanli.protocol import federation as wire

MAX_RETRIES = 10
MAX_BACKOFF_S = 5.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
A = TypeVar("A", bound=wire.Message)


class PeerError(Exception):
    """A message to another platform did not get a usable answer."""

    def __init__(self, authority: str, detail: str) -> None:
        super().__init__(f"{authority}: {detail}")
        self.authority = authority
        self.detail = detail


class PeerUnreachable(PeerError):
    """No answer after every attempt; the message may or may not have been processed."""


class PeerRejected(PeerError):
    """The peer answered with a 4xx problem: retrying the same message will not help."""

    def __init__(self, authority: str, status: int, problem: dict[str, Any]) -> None:
        super().__init__(authority, f"{status} {problem.get('detail') or problem.get('title')}")
        self.status = status
        self.problem = problem


class PeerResponseInvalid(PeerError):
    """The answer was not signed by the key this platform holds for the peer, or is not the
    message the protocol defines for the request."""


def read_answer(authority: str, model: type[A], body: Any) -> A:
    """A peer's answer as the protocol's `model`; PeerResponseInvalid naming the first fields
    that are missing or of the wrong type (nothing of such an answer is acted on)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise PeerResponseInvalid(authority, f"malformed {model.__name__}: "
                                  f"{wire.describe(exc)}") from None


@dataclass(frozen=True)
class PeerAddress:
    authority: str
    endpoint: str  # base URL, no trailing slash
    public_raw: bytes | None  # None only while learning the key (first registration)


@dataclass(frozen=True)
class PeerReply:
    status: int
    body: Any
    headers: dict[str, str]
    request_nonce: str
    raw: bytes

    def verify_with(self, authority: str, public_raw: bytes, own_authority: str) -> bool:
        """Check the response signature with a key learnt from the response itself."""
        return _response_signed(self, authority, public_raw, own_authority)


class PeerClient:
    """Signs and sends federation messages for one platform; thread-safe for sequential use."""

    def __init__(self, me: PlatformIdentity, *, timeout_s: float = 5.0, retries: int = 3,
                 backoff_s: float = 0.2, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 wall_clock: Callable[[], float] = time.time) -> None:
        assert 0 < timeout_s <= 120 and 1 <= retries <= MAX_RETRIES and 0 <= backoff_s <= 5
        self._me = me
        self._retries, self._backoff_s = retries, backoff_s
        self._sleep, self._wall_clock = sleep, wall_clock
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), transport=transport,
                                  follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def call(self, peer: PeerAddress, method: str, path: str, body: Any = None, *,
             retries: int | None = None) -> PeerReply:
        """Send `body` (JSON) to `path` at `peer`; retry transport failures and 5xx.

        Every attempt is signed afresh (new timestamp and nonce): the receiver rejects a nonce
        it has seen, so a retry is a new message, and the receiver's idempotency by business
        key (job id, record id) makes the retries safe.
        """
        assert path.startswith("/federation/v1/"), path
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        assert len(payload) <= fed.MAX_BODY_BYTES, "message too large"
        attempts = min(retries or self._retries, MAX_RETRIES)
        last = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._backoff(attempt))
            try:
                reply = self._send(peer, method, path, payload)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if reply.status in RETRY_STATUSES:
                last = f"HTTP {reply.status}"
                continue
            if reply.status >= 400:
                problem = reply.body if isinstance(reply.body, dict) else {"detail": reply.raw[:200]}
                raise PeerRejected(peer.authority, reply.status, problem)
            if peer.public_raw is not None and not _response_signed(
                    reply, peer.authority, peer.public_raw, self._me.authority):
                raise PeerResponseInvalid(peer.authority, "the response signature does not "
                                          "verify with the key held for this platform")
            return reply
        raise PeerUnreachable(peer.authority, f"{attempts} attempts failed; last: {last}")

    def send(self, peer: PeerAddress, method: str, path: str, request: wire.Message | None,
             answer: type[A]) -> A:
        """One message of the protocol: `request` sent (as `call` does), the answer checked
        against its model."""
        reply = self.call(peer, method, path, None if request is None else request.dump())
        return read_answer(peer.authority, answer, reply.body)

    def _send(self, peer: PeerAddress, method: str, path: str, payload: bytes) -> PeerReply:
        nonce = secrets.token_urlsafe(18)
        signed = fed.sign_request(self._me.private_key, self._me.key_id, peer.authority, method,
                                  path, payload, int(self._wall_clock()), nonce)
        request = self._http.build_request(
            method, peer.endpoint + path, content=payload or None,
            headers={**signed.as_headers(), "Content-Type": "application/json"})
        # What we signed must be what goes on the wire: the path exactly as encoded.
        assert request.url.raw_path.decode() == path, (request.url.raw_path, path)
        response = self._http.send(request)
        raw = response.content
        try:
            parsed: Any = response.json() if raw else None
        except ValueError:
            parsed = None
        return PeerReply(response.status_code, parsed, dict(response.headers), nonce, raw)

    def _backoff(self, attempt: int) -> float:
        # Exponential with full jitter, capped: retries from many platforms do not align.
        return random.uniform(0, min(MAX_BACKOFF_S, self._backoff_s * (2 ** attempt)))


def _response_signed(reply: PeerReply, authority: str, public_raw: bytes,
                     own_authority: str) -> bool:
    try:
        headers = fed.SignatureHeaders.read(reply.headers)
    except fed.SignatureRejected:
        return False
    signer_authority, _ = fed.parse_key_id(headers.key_id)
    if signer_authority != authority or headers.audience != own_authority:
        return False
    if headers.key_id != fed.key_id(authority, public_raw):
        return False
    message = fed.canonical_response(reply.request_nonce, reply.status, headers.audience,
                                     headers.key_id, headers.timestamp, headers.nonce,
                                     fed.sha256_hex(reply.raw))
    return fed.verify(public_raw, message, headers.signature)
