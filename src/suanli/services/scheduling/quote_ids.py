"""Quote ids: a quote's option as a token a submission can name to accept it.

A quote reserves nothing and guarantees no price: accepting one asks the scheduler to place
the job on the quoted pool(s) while they still fit, and the tariff in force then is charged.
So the token needs no secret (it grants nothing a job could not ask for by pinning a pool):
it carries its pools, its expiry and the digest of the spec it was quoted for, and is
refused when the spec differs or it has expired (docs/decisions.md, "quotes").
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from suanli.domain.errors import ValidationFailed
from suanli.domain.jobs import JobSpec

QUOTE_TTL_S = 600
MAX_QUOTE_ID_CHARS = 2048
PREFIX = "q1."


@dataclass(frozen=True)
class QuotedOption:
    pools: tuple[tuple[str, int], ...]  # (pool id, devices)
    expires_s: int


def spec_digest(spec: JobSpec) -> str:
    """What a quote was given for: the spec without the quote it names."""
    body = {k: v for k, v in spec.to_json().items() if k != "quote_id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def quote_id(spec: JobSpec, tenant_id: str, pools: tuple[tuple[str, int], ...],
             now: datetime) -> str:
    document = {"t": tenant_id, "s": spec_digest(spec), "p": [list(p) for p in pools],
                "e": int(now.timestamp()) + QUOTE_TTL_S}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_quote(spec: JobSpec, tenant_id: str, now: datetime) -> QuotedOption | None:
    """The option the spec's quote_id accepts; None without one. ValidationFailed (field
    quote_id) when it is not a quote of this tenant for this spec, or it has expired."""
    token = spec.quote_id
    if token is None:
        return None
    if len(token) > MAX_QUOTE_ID_CHARS or not token.startswith(PREFIX):
        raise ValidationFailed("not a quote id from POST /v1/quotes", field="quote_id")
    body = token[len(PREFIX):]
    try:
        document = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        pools = tuple((str(p[0]), int(p[1])) for p in document["p"])
        tenant, digest, expires_s = str(document["t"]), str(document["s"]), int(document["e"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise ValidationFailed("not a quote id from POST /v1/quotes", field="quote_id") from None
    if tenant != tenant_id or digest != spec_digest(spec) or not pools:
        raise ValidationFailed("this quote was given for another job spec or tenant; ask for "
                               "a new quote with this spec", field="quote_id")
    if expires_s < int(now.astimezone(UTC).timestamp()):
        raise ValidationFailed(f"the quote expired at {datetime.fromtimestamp(expires_s, UTC)}"
                               "; ask for a new one", field="quote_id")
    return QuotedOption(pools, expires_s)
