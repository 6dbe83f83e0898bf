"""The platform registry and message authentication of the federation (多级互联互通).

- Each platform has a row in `federation_platforms` and one or more keys; the national platform
  keeps the registry of the whole tree, every other platform a copy fetched from its parent.
- A sub-platform joins with a one-time enrolment token its parent's operator issued; from then
  on it is known by its key. Joining also writes the identifier delegation, so `/v1/ids/{id}`
  resolves ids of any platform to its endpoint.
- `verify_message` is what every `/federation/v1/...` endpoint runs first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.orm import Session

from suanli.adapters.peers import PeerAddress
from suanli.adapters.platform_key import PlatformIdentity
from suanli.adapters.store.repositories import federation as store
from suanli.domain import federation as fed
from suanli.domain.federation_records import Enrolment, Platform, PlatformKey
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.resources import check_name
from suanli.domain.tenants import Principal, Role, TenantClass, require_role
from suanli.domain.time import aware
from suanli.services import tenants

ACTIVE, SUSPENDED = "active", "suspended"
MAX_PLATFORMS = 4096


def check_endpoint(endpoint: str, field: str = "endpoint") -> str:
    parsed = urlparse(endpoint or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(endpoint) > 300:
        raise ValidationFailed("must be an http(s) URL of at most 300 characters", field=field)
    return endpoint.rstrip("/")


# -- this platform ---------------------------------------------------------------------------

def ensure_self(session: Session, me: PlatformIdentity, *, name: str, level: str,
                endpoint: str | None, parent: str | None, now: datetime) -> Platform:
    """Record this platform and its current key (idempotent; refreshes name and endpoint)."""
    row = store.get_platform(session, me.authority)
    if row is None:
        row = Platform(authority=me.authority, name=check_name(name, "name"), level=level,
                       parent=parent, endpoint=endpoint, is_self=True, guest_tenant_id=None,
                       state=ACTIVE, created_at=now, updated_at=now)
    else:
        row = replace(row, name=check_name(name, "name"), level=level, parent=parent,
                      endpoint=endpoint, is_self=True, updated_at=now)
    store.save_platform(session, row)
    if store.get_key(session, me.key_id) is None:
        store.save_key(session, PlatformKey(key_id=me.key_id, authority=me.authority,
                                            public_key=me.public_key_text, created_at=now))
    session.flush()
    return row


def self_row(session: Session) -> Platform | None:
    return store.self_platform(session)


# -- enrolment and registration --------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def enrol(session: Session, principal: Principal, own: str, *, authority: str, name: str,
          level: str, now: datetime) -> str:
    """An operator admits a direct sub-platform: returns a one-time token for its first start.

    Enrolling again issues a new token (the old one stops working); an already registered
    platform keeps its key until it registers anew with the token.
    """
    require_role(principal, Role.OPERATOR)
    authority = fed.check_authority(authority)
    if fed.parent_of(authority) != own:
        raise ValidationFailed(f"must be a direct sub-platform of {own}, like {own}.GD",
                               field="authority")
    if level not in tuple(fed.PlatformLevel) or level == fed.PlatformLevel.NATIONAL:
        raise ValidationFailed("regional or industry", field="level")
    token = f"sle_{secrets.token_urlsafe(24)}"
    row = store.get_enrolment(session, authority)
    if row is None:
        store.save_enrolment(session, Enrolment(
            authority=authority, token_sha256=_token_hash(token), level=level,
            name=check_name(name, "name"), created_by=principal.tenant_id, created_at=now))
    else:
        store.save_enrolment(session, replace(
            row, token_sha256=_token_hash(token), level=level, name=check_name(name, "name"),
            created_by=principal.tenant_id, created_at=now, used_at=None))
    session.flush()
    return token


@dataclass(frozen=True)
class Registration:
    authority: str
    name: str
    level: str
    endpoint: str
    public_key: str
    key_id: str


def register(session: Session, own: str, reg: Registration, token: str | None,
             signer_key_id: str, now: datetime) -> Platform:
    """A sub-platform registers (or refreshes) its endpoint and key.

    Allowed with a valid unused enrolment token, or when the message is signed with a key
    this platform already holds, active, for that authority (restart, new endpoint, rotation).
    """
    if fed.parent_of(reg.authority) != own:
        raise Forbidden(f"{reg.authority} is not a direct sub-platform of {own}")
    known = store.get_key(session, signer_key_id)
    by_known_key = (known is not None and known.authority == reg.authority
                    and known.revoked_at is None)
    if not by_known_key:
        enrolment = store.get_enrolment(session, reg.authority)
        if enrolment is None or enrolment.used_at is not None or not token or \
                not hmac.compare_digest(enrolment.token_sha256, _token_hash(token)):
            raise fed.SignatureRejected(f"{reg.authority} is not enrolled here, or the "
                                        "enrolment token is wrong or used",
                                        field="enrolment_token")
        store.save_enrolment(session, replace(enrolment, used_at=now, key_id=reg.key_id))
        level, name = enrolment.level, enrolment.name
    else:
        held = store.get_platform(session, reg.authority)
        level, name = (held.level, reg.name) if held is not None else (reg.level, reg.name)
    row = upsert_platform(session, authority=reg.authority, name=name, level=level, parent=own,
                          endpoint=reg.endpoint, now=now)
    row = replace(row, last_seen_at=now)
    store.save_platform(session, row)
    add_key(session, reg.key_id, reg.authority, reg.public_key, now)
    return row


def upsert_platform(session: Session, *, authority: str, name: str, level: str,
                    parent: str | None, endpoint: str | None, now: datetime,
                    state: str = ACTIVE) -> Platform:
    row = store.get_platform(session, authority)
    if row is None:
        count = store.count_platforms(session)
        if count >= MAX_PLATFORMS:
            raise Conflict(f"at most {MAX_PLATFORMS} platforms", field="authority")
        row = Platform(authority=authority, name=check_name(name, "name"), level=level,
                       parent=parent, endpoint=endpoint, is_self=False, guest_tenant_id=None,
                       state=state, created_at=now, updated_at=now)
    else:
        assert not row.is_self, "this platform's own row is written by ensure_self"
        row = replace(row, name=check_name(name, "name"), level=level, parent=parent,
                      state=state, endpoint=endpoint or row.endpoint, updated_at=now)
    store.save_platform(session, row)
    if endpoint and level in tuple(fed.PlatformLevel):
        store.save_delegation(session, authority=authority, name=check_name(name, "name"),
                              level=level, endpoint=endpoint, now=now)
    session.flush()
    return row


def add_key(session: Session, key_id: str, authority: str, public_key: str,
            now: datetime, revoked_at: datetime | None = None) -> PlatformKey:
    raw = fed.public_key_from_text(public_key)
    if fed.key_id(authority, raw) != key_id:
        raise ValidationFailed("does not match the public key and authority", field="key_id")
    row = store.get_key(session, key_id)
    if row is None:
        row = PlatformKey(key_id=key_id, authority=authority, public_key=public_key,
                          created_at=now, revoked_at=revoked_at)
        store.save_key(session, row)
    elif revoked_at is not None and row.revoked_at is None:
        row = replace(row, revoked_at=revoked_at)  # revocation is final: never undone by a sync
        store.save_key(session, row)
    return row


def revoke_key(session: Session, principal: Principal, key_id: str,
               now: datetime) -> PlatformKey:
    require_role(principal, Role.OPERATOR)
    row = store.get_key(session, key_id)
    if row is None:
        raise NotFound(f"key {key_id} is not known here", field="key_id")
    if row.revoked_at is None:
        row = replace(row, revoked_at=now)
        store.save_key(session, row)
    return row


# -- the registry a parent hands down --------------------------------------------------------

def registry_snapshot(session: Session) -> dict[str, Any]:
    platforms = store.list_platforms(session)
    keys = store.list_keys(session)
    return {
        "platforms": [{"authority": p.authority, "name": p.name, "level": p.level,
                       "parent": p.parent, "endpoint": p.endpoint, "state": p.state}
                      for p in platforms],
        "keys": [{"key_id": k.key_id, "authority": k.authority, "public_key": k.public_key,
                  "revoked_at": aware(k.revoked_at).isoformat() if k.revoked_at else None}
                 for k in keys],
    }


def apply_registry(session: Session, own: str, snapshot: dict[str, Any], *, trusted_for: str,
                   now: datetime, skip_within: str | None = None) -> int:
    """Take platforms and keys from a snapshot, for authorities within `trusted_for` only
    (a parent is trusted for the whole tree, a child only for its own subtree), leaving out
    those within `skip_within` (a platform knows its own subtree first-hand). This platform's
    own row and keys are never taken from others. Returns the platforms applied."""
    applied = 0

    def taken(authority: str) -> bool:
        return authority != own and fed.is_within(authority, trusted_for) and not (
            skip_within and fed.is_within(authority, skip_within))

    for item in snapshot.get("platforms", [])[:MAX_PLATFORMS]:
        authority = fed.check_authority(str(item.get("authority", "")))
        if not taken(authority):
            continue
        endpoint = item.get("endpoint")
        upsert_platform(session, authority=authority, name=str(item.get("name", authority)),
                        level=str(item.get("level", "regional")), parent=item.get("parent"),
                        endpoint=check_endpoint(endpoint) if endpoint else None, now=now,
                        state=SUSPENDED if item.get("state") == SUSPENDED else ACTIVE)
        applied += 1
    for item in snapshot.get("keys", [])[:MAX_PLATFORMS * 4]:
        authority = fed.check_authority(str(item.get("authority", "")))
        if not taken(authority):
            continue
        revoked = item.get("revoked_at")
        add_key(session, str(item["key_id"]), authority, str(item["public_key"]), now,
                datetime.fromisoformat(revoked) if revoked else None)
    session.flush()
    return applied


def subtree(session: Session, own: str) -> dict[str, Any]:
    """The registry entries below this platform, for its parent."""
    snapshot = registry_snapshot(session)
    return {"platforms": [p for p in snapshot["platforms"]
                          if fed.is_within(p["authority"], own) and p["authority"] != own],
            "keys": [k for k in snapshot["keys"]
                     if fed.is_within(k["authority"], own) and k["authority"] != own]}


# -- finding peers ---------------------------------------------------------------------------

def peer_address(session: Session, authority: str) -> PeerAddress:
    """How to reach a platform: its endpoint and newest active key."""
    row = store.get_platform(session, authority)
    if row is None or row.is_self:
        raise NotFound(f"platform {authority} is not known here", field="platform")
    if not row.endpoint:
        raise NotFound(f"platform {authority} has no endpoint yet", field="platform")
    key = store.newest_active_key(session, authority)
    return PeerAddress(authority, row.endpoint,
                       fed.public_key_from_text(key.public_key) if key else None)


def platform(session: Session, authority: str) -> Platform | None:
    return store.get_platform(session, authority)


def seen(session: Session, authority: str, now: datetime) -> None:
    """Note that a platform was heard from now (nothing when it is not known here)."""
    store.set_last_seen(session, authority, now)


def platforms(session: Session) -> list[Platform]:
    return store.list_platforms(session)


def guest_tenant(session: Session, own_authority_id: Any, home: str,
                 now: datetime) -> str:
    """The local tenant standing for `home`'s users when their jobs run here (created once)."""
    row = store.get_platform(session, home)
    if row is None:
        raise NotFound(f"platform {home} is not known here", field="home")
    if row.guest_tenant_id is None:
        new = tenants.create_tenant(session, own_authority_id, f"roaming users of {home}",
                                    Role.CONSUMER, TenantClass.ENTERPRISE, now)
        store.set_guest_tenant(session, home, new.tenant_id)
        session.flush()
        return str(new.tenant_id)
    return row.guest_tenant_id


def is_guest_tenant(session: Session, tenant_id: str) -> str | None:
    """The home platform a guest tenant stands for, or None for an ordinary tenant."""
    return store.platform_of_guest_tenant(session, tenant_id)


# -- authenticating a message ----------------------------------------------------------------

def verify_message(session: Session, own: str, headers: fed.SignatureHeaders, method: str,
                   path: str, body: bytes, now: datetime,
                   window_s: int = fed.REPLAY_WINDOW_S, *,
                   public_key: PlatformKey | None = None) -> str:
    """Authenticate a federation request and remember its nonce; returns the sender's authority.

    Checks, in order: the timestamp is within the window, the message is meant for this
    platform, the key is known and not revoked, the signature covers exactly these bytes,
    and the nonce was not seen before. The nonce is written in the caller's transaction,
    which it commits before acting on the message.
    """
    fed.check_fresh(headers.timestamp, now, window_s)
    if headers.audience != own:
        raise fed.SignatureRejected(f"the message is addressed to {headers.audience}, "
                                    f"this is {own}", field=fed.HEADER_AUDIENCE)
    key = public_key or store.get_key(session, headers.key_id)
    if key is None:
        raise fed.SignatureRejected(f"unknown key {headers.key_id}", field=fed.HEADER_KEY_ID)
    if key.revoked_at is not None:
        raise fed.KeyRevoked(f"key {headers.key_id} was revoked", field=fed.HEADER_KEY_ID)
    message = fed.canonical_request(method, path, headers.audience, headers.key_id,
                                    headers.timestamp, headers.nonce, fed.sha256_hex(body))
    if not fed.verify(fed.public_key_from_text(key.public_key), message, headers.signature):
        raise fed.SignatureRejected("the signature does not verify: the message was altered "
                                    "or signed with another key", field=fed.HEADER_SIGNATURE)
    expires = datetime.fromtimestamp(fed.nonce_expiry(headers.timestamp, window_s), UTC)
    if not store.add_nonce(session, headers.key_id, headers.nonce, max(expires, now)):
        raise fed.SignatureRejected("this nonce was seen before: a replayed message",
                                    field=fed.HEADER_NONCE)
    return key.authority


def purge_nonces(session: Session, now: datetime) -> int:
    """Forget nonces whose window has passed (their timestamps alone now reject replays)."""
    return store.purge_nonces(session, now - timedelta(seconds=1))


# -- small persistent state of the loop ------------------------------------------------------

def get_state(session: Session, name: str) -> dict[str, Any] | None:
    return store.get_state(session, name)


def put_state(session: Session, name: str, value: dict[str, Any], now: datetime) -> None:
    store.put_state(session, name, value, now)


def presented_key(session: Session, reg: Registration, now: datetime) -> PlatformKey:
    """The key a registering platform signs with: the stored one, or a transient one that is
    checked against the message before anything is stored."""
    stored = store.get_key(session, reg.key_id)
    return stored or PlatformKey(key_id=reg.key_id, authority=reg.authority,
                                 public_key=reg.public_key, created_at=now)
