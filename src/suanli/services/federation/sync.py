"""The sync between a sub-platform and its parent: the child pushes its subtree's registry and
catalog summaries (full summaries only where the parent lacks them), the parent answers with
the rest of the tree's registry and the summaries the child does not hold yet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from suanli.domain import federation as fed
from suanli.domain.time import aware
from suanli.services.federation import catalog as federated_catalog
from suanli.services.federation import platforms as federation

PUSHED, LAST_SYNC = "catalog_pushed", "last_sync"


def request(session: Session, own: str, now: datetime, *, heartbeat_s: float, pull_s: float,
            registered: bool) -> dict[str, Any] | None:
    """Re-summarise this platform's pools, and the sync message to send now — None when
    nothing changed and the next pull is not due (or there is no parent to send it to)."""
    changed = federated_catalog.refresh_own(session, own, now, heartbeat_s)
    if not registered:
        return None
    pushed = federation.get_state(session, PUSHED) or {}
    last = (federation.get_state(session, LAST_SYNC) or {}).get("at", 0.0)
    held = federated_catalog.origins(session)
    mine = {o: row for o, row in held.items() if fed.is_within(o, own)}
    dirty = changed or any(pushed.get(o) != row.digest for o, row in mine.items())
    if not (dirty or now.timestamp() - last >= pull_s):
        return None
    return {"platforms": federation.subtree(session, own),
            "catalog": [federated_catalog.snapshot(session, o,
                                                   with_groups=pushed.get(o) != row.digest)
                        for o, row in sorted(mine.items())],
            "known": {o: row.digest for o, row in held.items() if o not in mine}}


def apply_reply(session: Session, own: str, house: str, via: str, sent: dict[str, Any],
                reply: dict[str, Any], now: datetime) -> None:
    """Take the parent's answer: the registry, the rest of the tree's summaries, and which of
    ours it acknowledged."""
    federation.apply_registry(session, own, reply.get("registry", {}), trusted_for=house,
                              now=now, skip_within=own)
    for item in reply.get("catalog", []):
        origin = fed.check_authority(item["origin"])
        if not fed.is_within(origin, own):
            federated_catalog.store(session, origin=origin,
                                    generated_at=datetime.fromisoformat(item["generated_at"]),
                                    digest_hex=item["digest"], groups=item.get("groups"),
                                    via=via, now=now)
    listed = set()
    for item in reply.get("origins", []):
        origin = fed.check_authority(item["origin"])
        listed.add(origin)
        if not fed.is_within(origin, own):
            federated_catalog.store(session, origin=origin,
                                    generated_at=datetime.fromisoformat(item["generated_at"]),
                                    digest_hex=item["digest"], groups=None, via=via, now=now)
    for origin in federated_catalog.origins(session):
        if not fed.is_within(origin, own) and origin not in listed:
            federated_catalog.forget_origin(session, origin)  # gone from the tree
    need = set(reply.get("need", []))
    federation.put_state(session, PUSHED, {item["origin"]: item["digest"]
                                           for item in sent["catalog"]
                                           if item["origin"] not in need}, now)
    federation.put_state(session, LAST_SYNC, {"at": now.timestamp()}, now)


def answer(session: Session, own: str, sender: str, message: dict[str, Any],
           now: datetime) -> dict[str, Any]:
    """The parent's side: take the child's subtree (a child speaks for it only), answer with
    the rest of the tree."""
    federation.apply_registry(session, own, message.get("platforms", {}), trusted_for=sender,
                              now=now)
    federation.seen(session, sender, now)
    need = []
    for item in message.get("catalog", [])[:federation.MAX_PLATFORMS]:
        origin = fed.check_authority(str(item.get("origin", "")))
        if not fed.is_within(origin, sender):
            continue
        groups = item.get("groups")
        federated_catalog.store(session, origin=origin,
                                generated_at=datetime.fromisoformat(item["generated_at"]),
                                digest_hex=str(item["digest"]), groups=groups, via=sender,
                                now=now)
        held = federated_catalog.origin(session, origin)
        if groups is None and (held is None or held.digest != item["digest"]):
            need.append(origin)  # we lack the summary it only confirmed: send it in full
    known = message.get("known", {}) or {}
    rest = {o: r for o, r in federated_catalog.origins(session).items()
            if not fed.is_within(o, sender)}
    return {"registry": federation.registry_snapshot(session),
            "catalog": [federated_catalog.snapshot(session, o, with_groups=True)
                        for o, r in sorted(rest.items()) if known.get(o) != r.digest],
            "origins": [{"origin": o, "generated_at": aware(r.generated_at).isoformat(),
                         "digest": r.digest} for o, r in sorted(rest.items())],
            "need": need}
