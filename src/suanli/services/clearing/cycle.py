"""Clearing and settlement (清算/结算) between platforms.

The national platform is the clearing house. A cycle clears every roaming record up to a
business date that is not settled yet:

1. the house asks each platform to `collect`: the platform locks its unsettled records (up to
   the date) into the cycle and reports its side of each — id, home, host, amount, digest;
2. the house matches the two sides of each record; only records both sides hold with the same
   content are netted. Missing and mismatched ones are left out (listed in the statement) and
   roll into a later cycle; mismatches open a dispute;
3. it nets bilaterally (per pair) and multilaterally (per platform) and signs one statement
   per platform;
4. each platform checks its statement against its own records, marks the netted ones settled,
   releases the left-out ones, and moves the cleared peer positions onto its position with the
   house in the ledger.

A platform cut off during collection simply has nothing in the cycle: its counterparties'
records with it are left out and cleared, once, in the first cycle after the partition heals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from suanli.adapters.platform_key import PlatformIdentity
from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import clearing as store
from suanli.adapters.store.repositories import federation as federation_store
from suanli.domain import clearing as rules
from suanli.domain import clearing_run as run
from suanli.domain import federation as fed
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.federation_records import ClearingCycle, ClearingStatement, RoamingRecord
from suanli.domain.ledger import Transfer
from suanli.services.federation import platforms as federation
from suanli.services.roaming import money as roaming_money
from suanli.services.roaming.records import HOME, HOST, record_dispute

ISSUED, DELIVERED, ACCEPTED, DISPUTED = "issued", "delivered", "accepted", "disputed"
MAX_EXCLUDED_LISTED = 10_000
MAX_ENTRIES = 2_000_000
COLLECT_PAGE = 20_000  # entries per collect message: about 4 MiB of JSON
MAX_PENDING_CYCLES = 1_000


def cycle_id_for(session: Session, through_date: str) -> str:
    count = store.last_cycle_id(session, through_date)
    seq = 1 if count is None else int(count.rsplit(".", 1)[1]) + 1
    return f"{through_date}.{seq:02d}"


# -- a participant: collecting its side ------------------------------------------------------

def collect(session: Session, own: str, sender: str, house: str, cycle_id: str,
            through_date: str, after: str | None = None, limit: int = COLLECT_PAGE,
            pending_cycles: list[str] | None = None
            ) -> tuple[dict[str, list[Any]], str | None]:
    """Lock this platform's unsettled records up to `through_date` into the cycle (on the
    first page) and report them a page at a time, by record id, as columns (side, record_id,
    home, host, amount_fen, digest); returns (columns, the id to continue after, or None at
    the end). Asked again for the same cycle, it reports the same
    records (and any new ones).

    `pending_cycles` are the house's earlier cycles whose statement to this platform is still
    on its way: their records stay with them. Records locked into any other earlier cycle
    (one the house never finished) are taken into this one."""
    if sender != house:
        raise Forbidden(f"only the clearing house {house} collects records")
    through = rules.parse_date(through_date, "through_date").isoformat()
    if not cycle_id.startswith(through + ".") or len(cycle_id) > 64:
        raise ValidationFailed("must be <through_date>.<seq>", field="cycle_id")
    assert 1 <= limit <= COLLECT_PAGE
    if after is None:
        keep = [c for c in (pending_cycles or [])[:MAX_PENDING_CYCLES] if c != cycle_id]
        store.take_records_into_cycle(
            session, cycle_id, through,
            also_from_other_cycles=not _has_disputed_statement(session, own), keep=keep)
    rows = store.cycle_sides(session, cycle_id, after, limit)
    columns: dict[str, list[Any]] = {name: [] for name in ("side", *run.FIELDS)}
    for row in rows:
        for name, value in (("record_id", row.id), ("side", row.role), ("home", row.home),
                            ("host", row.host), ("amount_fen", row.amount_fen),
                            ("digest", row.digest)):
            columns[name].append(value)
    return columns, rows[-1].id if len(rows) == limit else None


def _has_disputed_statement(session: Session, own: str) -> bool:
    """Whether records locked into a cycle may be waiting on a disputed statement (then they
    stay with it, for the operators); False lets an unfinished cycle's records go again."""
    return store.has_statement_in_state(session, own, DISPUTED)


def pending_cycles(session: Session, platform: str) -> list[str]:
    """At the house: earlier cycles whose statement to `platform` is not delivered yet."""
    return store.statement_cycles(session, platform, "issued", ISSUED, MAX_PENDING_CYCLES)


# -- the house: matching, netting, statements ------------------------------------------------

def build_statements(house: PlatformIdentity, cycle_id: str, through_date: str,
                     sides: dict[str, dict[str, list[Any]]], unreachable: list[str],
                     now: datetime) -> tuple[dict[str, Any], dict[str, dict[str, Any]],
                                             list[run.Mismatch]]:
    """Match what each platform reported (as columns), net the agreed records, and write one
    statement per platform that reported. Returns (summary, statements, mismatches)."""
    parts: dict[str, list[dict[str, np.ndarray]]] = {HOME: [], HOST: []}
    for platform, columns in sides.items():
        # Object arrays: a million strings become pointers, not fixed-width copies.
        arrays = {name: np.asarray(columns.get(name, []),
                                   dtype=np.int64 if name == "amount_fen" else object)
                  [:MAX_ENTRIES] for name in ("side", *run.FIELDS)}
        for side in (HOME, HOST):  # a platform speaks for its own side of each record only
            mask = (arrays["side"] == side) & (arrays[side] == platform)
            parts[side].append({name: arrays[name][mask] for name in run.FIELDS})
    home_side = run.Entries.concatenate(parts[HOME])
    host_side = run.Entries.concatenate(parts[HOST])
    cleared = run.clear(home_side, host_side)
    gross, positions = cleared.gross, cleared.positions
    statements = {}
    for platform in sorted(sides):
        counterparties = sorted({peer for pair in gross if platform in pair for peer in pair
                                 if peer != platform})
        lines: list[dict[str, Any]] = [
            {"platform": peer, "receivable_fen": gross.get((peer, platform), 0),
             "payable_fen": gross.get((platform, peer), 0),
             "net_fen": gross.get((peer, platform), 0) - gross.get((platform, peer), 0)}
            for peer in counterparties]
        left_out = sorted(cleared.excluded.get(platform, []))
        print_ = cleared.fingerprints.get(platform, run.fingerprint([]))
        document: dict[str, Any] = {
            "v": 1, "cycle_id": cycle_id, "house": house.authority, "platform": platform,
            "through_date": through_date, "issued_at": now.isoformat(),
            "records": int(print_.split(":")[0]), "records_fingerprint": print_,
            "counterparties": lines, "net_fen": positions.get(platform, 0),
            "excluded": [{"record_id": i, "reason": why}
                         for i, why in left_out[:MAX_EXCLUDED_LISTED]],
            "excluded_truncated": len(left_out) > MAX_EXCLUDED_LISTED}
        assert document["net_fen"] == sum(line["net_fen"] for line in lines)
        statements[platform] = document
    summary = {"participants": sorted(sides), "unreachable": sorted(unreachable),
               "records_cleared": cleared.agreed, "gross_fen": sum(gross.values()),
               "net_positions": dict(sorted(positions.items())),
               "bilateral": {f"{a}|{b}": v for (a, b), v in cleared.bilateral.items()},
               "house_payments": rules.house_payments(positions),
               "missing": cleared.missing_at_home + cleared.missing_at_host,
               "mismatched": len(cleared.mismatched)}
    return summary, statements, cleared.mismatched


def store_cycle(session: Session, house: PlatformIdentity, cycle_id: str, through_date: str,
                summary: dict[str, Any], statements: dict[str, dict[str, Any]],
                mismatches: list[run.Mismatch], created_by: str | None,
                now: datetime) -> ClearingCycle:
    row = ClearingCycle(id=cycle_id, through_date=through_date, state="issued",
                        summary=summary, created_by=created_by, created_at=now)
    store.add_cycle(session, row)
    for platform, document in statements.items():
        store.add_statement(session, ClearingStatement(
            cycle_id=cycle_id, platform=platform, role="issued", document=document,
            signature=fed.sign_document(house.private_key, house.key_id, document),
            key_id=house.key_id, net_fen=document["net_fen"], state=ISSUED, tries=0,
            next_try_at=now, created_at=now, updated_at=now))
    for m in mismatches:
        record_dispute(session, house.authority, m.host, "mismatch",
                       f"record {m.record_id}: home {m.home} holds {m.home_amount_fen} fen "
                       f"({m.home_digest[:12]}), host {m.host} holds {m.host_amount_fen} fen "
                       f"({m.host_digest[:12]})", now, record_id=m.record_id,
                       cycle_id=cycle_id, amount_fen=m.host_amount_fen)
    session.flush()
    return row


def due_statements(session: Session, now: datetime) -> list[ClearingStatement]:
    return store.statements_due(session, "issued", ISSUED, now, 100)


# -- a participant: accepting its statement --------------------------------------------------

def accept_statement(session: Session, own: str, house: str, payload: dict[str, Any],
                     now: datetime) -> dict[str, Any]:
    """Check a signed statement against this platform's own records; if it holds, settle the
    netted records, release the left-out ones and post the cleared positions to the ledger."""
    document, signature, key_id = (payload.get("statement"), payload.get("signature"),
                                   payload.get("key_id"))
    if not isinstance(document, dict) or not isinstance(signature, str) or \
            not isinstance(key_id, str):
        raise ValidationFailed("must hold statement, signature and key_id", field="statement")
    signer, _ = fed.parse_key_id(key_id)
    key = federation_store.get_key(session, key_id)
    if signer != house or key is None or key.revoked_at is not None or \
            not fed.verify_document(fed.public_key_from_text(key.public_key), key_id,
                                    document, signature):
        raise fed.SignatureRejected("the statement is not signed by the clearing house",
                                    field="signature")
    if document.get("platform") != own:
        raise Forbidden(f"the statement is for {document.get('platform')}, this is {own}")
    cycle_id = str(document["cycle_id"])
    held = store.get_statement(session, cycle_id, own)
    if held is not None and held.role == "received":
        if held.document != document:
            raise Conflict(f"cycle {cycle_id} was already stated differently", field="statement")
        return {"cycle_id": cycle_id, "state": held.state}
    problem = _check_against_records(session, own, cycle_id, document)
    state = DISPUTED if problem else ACCEPTED
    if problem:
        record_dispute(session, own, house, "statement", problem, now, cycle_id=cycle_id,
                       amount_fen=int(document.get("net_fen", 0)))
    else:
        _settle(session, own, house, cycle_id, document, now)
    if held is None:
        store.add_statement(session, ClearingStatement(
            cycle_id=cycle_id, platform=own, role="received", document=document,
            signature=signature, key_id=key_id, net_fen=int(document["net_fen"]),
            state=state, tries=0, next_try_at=None, created_at=now, updated_at=now))
    else:  # the house is also a participant: its own issued statement, now accepted
        store.save_statement(session, replace(held, state=state, updated_at=now))
    session.flush()
    return {"cycle_id": cycle_id, "state": state, "problem": problem}


def _cycle_records(session: Session, own: str, cycle_id: str,
                   document: dict[str, Any]) -> tuple[list[RoamingRecord], set[str]]:
    left_out = {str(x["record_id"]) for x in document.get("excluded", [])}
    rows = store.unsettled_records_of_cycle(session, cycle_id)
    return [r for r in rows if r.id not in left_out], left_out


def _check_against_records(session: Session, own: str, cycle_id: str,
                           document: dict[str, Any]) -> str | None:
    if document.get("excluded_truncated"):
        return "the statement's list of left-out records is truncated; reconcile first"
    netted, _ = _cycle_records(session, own, cycle_id, document)
    gross: dict[tuple[str, str], int] = defaultdict(int)
    for row in netted:
        gross[(row.home, row.host)] += row.amount_fen
    print_ = run.fingerprint((r.amount_fen, r.digest) for r in netted)
    if print_ != document.get("records_fingerprint"):
        return (f"cycle {cycle_id}: the statement nets {document.get('records')} records "
                f"({document.get('records_fingerprint')}), this platform holds "
                f"{len(netted)} for it ({print_})")
    for line in document.get("counterparties", []):
        peer = line["platform"]
        if (gross.get((peer, own), 0), gross.get((own, peer), 0)) != (
                line["receivable_fen"], line["payable_fen"]):
            return f"cycle {cycle_id}: amounts with {peer} differ from this platform's records"
    return None


def _settle(session: Session, own: str, house: str, cycle_id: str, document: dict[str, Any],
            now: datetime) -> None:
    netted, left_out = _cycle_records(session, own, cycle_id, document)
    store.mark_settled(session, [row.id for row in netted], now)
    if left_out:
        store.release_records(session, cycle_id, sorted(left_out))
    transfers = []
    for line in document.get("counterparties", []):
        peer, pay, receive = line["platform"], line["payable_fen"], line["receivable_fen"]
        if not (pay or receive):
            continue
        peer_account = roaming_money.open_peer(session, peer, now)
        house_account = roaming_money.open_clearing(session, house, now)
        if pay:  # what we owed the peer, we now owe the house
            transfers.append(Transfer(f"clr:{cycle_id}:{peer}:pay", peer_account,
                                      house_account, pay, "clearing", reference=cycle_id))
        if receive:  # what the peer owed us, the house now owes us
            transfers.append(Transfer(f"clr:{cycle_id}:{peer}:receive", house_account,
                                      peer_account, receive, "clearing", reference=cycle_id))
    if transfers:
        ledger_store.apply_many(session, transfers, now, linked=True)


def statement_delivered(session: Session, cycle_id: str, platform: str, now: datetime, *,
                        ok: bool, state: str | None = None) -> None:
    row = store.get_statement(session, cycle_id, platform)
    assert row is not None
    if ok:
        row = replace(row, updated_at=now, state=DISPUTED if state == DISPUTED else DELIVERED,
                      next_try_at=None)
    else:
        tries = row.tries + 1
        row = replace(row, updated_at=now, tries=tries, next_try_at=now + timedelta(
            seconds=min(60, 0.5 * 2 ** min(tries, 8))))
    store.save_statement(session, row)


# -- reading ---------------------------------------------------------------------------------

def cycles(session: Session, limit: int = 50) -> list[ClearingCycle]:
    return store.list_cycles(session, limit)


def statements(session: Session, cycle_id: str | None = None,
               platform: str | None = None) -> list[ClearingStatement]:
    return store.list_statements(session, cycle_id, platform, 1000)


def statement(session: Session, cycle_id: str, platform: str) -> ClearingStatement:
    row = store.get_statement(session, cycle_id, platform)
    if row is None:
        raise NotFound(f"no statement of cycle {cycle_id} for {platform}", field="cycle_id")
    return row


def open_positions(session: Session, own: str) -> dict[str, dict[str, int]]:
    """Per peer: what it owes us and what we owe it in records not settled yet."""
    rows = store.unsettled_sides(session)
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"receivable_fen": 0,
                                                          "payable_fen": 0, "records": 0})
    for side in rows:
        role, home, host, amount = side.role, side.home, side.host, side.amount_fen
        peer = home if role == HOST else host
        out[peer]["receivable_fen" if role == HOST else "payable_fen"] += amount
        out[peer]["records"] += 1
    return dict(out)


def ledger_positions(session: Session, own: str, house: str) -> dict[str, dict[str, int]]:
    """The ledger's peer accounts (one per other platform known here), this platform's account
    with the house and its roaming account: posted debits, credits and balance of each."""
    peers = sorted({p.authority for p in federation.platforms(session) if p.authority != own})
    ids = [roaming_money.peer_account_id(p) for p in peers] + [
        roaming_money.clearing_account_id(house), roaming_money.ROAMING_ACCOUNT]
    accounts = ledger_store.get_accounts(session, ids)
    return {a.id: {"debits_posted_fen": a.debits_posted_fen,
                   "credits_posted_fen": a.credits_posted_fen,
                   "balance_fen": a.balance_fen} for a in accounts.values()}
