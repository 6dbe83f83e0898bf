"""Bilateral reconciliation: compare the roaming records two platforms hold about each other,
report what is missing or different on either side, and (on request) repair what can be
repaired without trust: a record the host signed is taken in at home, a record the home
platform lacks is delivered again. Differences open disputes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from suanli.domain import federation as fed
from suanli.domain.clearing import parse_date
from suanli.domain.errors import NotFound, ValidationFailed
from suanli.services.federation import platforms as federation
from suanli.services.peering.runtime import FederationRuntime
from suanli.services.roaming import records as roaming_records
from suanli.services.roaming.records import HOME, HOST

MAX_PAGES = 100
MAX_LISTED = 1_000


def listing(session: Any, sender: str, params: dict[str, str]) -> dict[str, Any]:
    """The records this platform holds with `sender`, one page, for the sender's reconcile."""
    after = params.get("after") or None
    rows = roaming_records.involving(session, sender, since=params.get("since") or None,
                                     through=params.get("through") or None, after=after)
    items = []
    for row in rows:
        item = {"record_id": row.id, "side": row.role, "home": row.home, "host": row.host,
                "amount_fen": row.amount_fen, "digest": row.digest,
                "business_date": row.business_date}
        if row.role == HOST:  # the signed record itself, so the home side can take it in
            item["signed"] = roaming_records.signed_payload(row)
        items.append(item)
    more = len(rows) == roaming_records.MAX_LIST
    return {"items": items, "next_after": rows[-1].id if more and rows else None}


def reconcile(runtime: FederationRuntime, peer: str, since: str | None, through: str | None,
              repair: bool) -> dict[str, Any]:
    peer = fed.check_authority(peer, field="peer")
    if peer == runtime.own:
        raise ValidationFailed("reconcile with another platform", field="peer")
    for value, name in ((since, "since"), (through, "through")):
        if value:
            parse_date(value, name)
    with runtime.db.unit_of_work() as session:
        federation.peer_address(session, peer)  # NotFound for a platform not known here
        local = {row.id: row for row in roaming_records.involving(session, peer, since=since,
                                                                   through=through)}
    remote = _fetch(runtime, peer, since, through)
    missing_here = sorted(set(remote) - set(local))
    missing_there = sorted(set(local) - set(remote))
    mismatched = sorted(i for i in set(local) & set(remote)
                        if (local[i].digest, local[i].amount_fen) != (remote[i]["digest"],
                                                                      remote[i]["amount_fen"]))
    repaired, redelivered = [], 0
    now = runtime.now()
    with runtime.db.unit_of_work() as session:
        for record_id in mismatched:
            roaming_records.record_dispute(
                session, runtime.own, peer, "mismatch",
                f"record {record_id}: here {local[record_id].amount_fen} fen "
                f"({local[record_id].digest[:12]}), at {peer} {remote[record_id]['amount_fen']}"
                f" fen ({remote[record_id]['digest'][:12]})", now, record_id=record_id,
                amount_fen=remote[record_id]["amount_fen"])
        if repair:
            for record_id in missing_here:
                signed = remote[record_id].get("signed")
                if remote[record_id]["side"] == HOST and signed:
                    result = roaming_records.ingest(session, runtime.own, None, signed, now)
                    if result.created:
                        repaired.append(record_id)
            ours = [i for i in missing_there if local[i].role == HOST]
            redelivered = roaming_records.redeliver(session, ours, now)
    return {"platform": runtime.own, "peer": peer, "since": since, "through": through,
            "here": len(local), "there": len(remote),
            "matched": len(set(local) & set(remote)) - len(mismatched),
            "missing_here": missing_here[:MAX_LISTED], "missing_there": missing_there[:MAX_LISTED],
            "mismatched": mismatched[:MAX_LISTED], "repaired": repaired[:MAX_LISTED],
            "redelivered": redelivered,
            "sides": {"here_home": sum(1 for r in local.values() if r.role == HOME),
                      "here_host": sum(1 for r in local.values() if r.role == HOST)}}


def _fetch(runtime: FederationRuntime, peer: str, since: str | None,
           through: str | None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = None
    for _ in range(MAX_PAGES):
        query = {k: v for k, v in {"since": since, "through": through, "after": after}.items()
                 if v}
        path = "/federation/v1/roaming-records" + (f"?{urlencode(query)}" if query else "")
        page = runtime.call(peer, "GET", path)
        for item in page.get("items", []):
            found[item["record_id"]] = item
        after = page.get("next_after")
        if not after:
            return found
    raise NotFound(f"{peer} listed more than {MAX_PAGES} pages; narrow the dates",
                   field="since")
