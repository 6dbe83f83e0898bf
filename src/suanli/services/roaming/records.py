"""Roaming records (漫游话单): the host turns each usage record of a guest job into a record
signed with its key, pays its provider, and delivers the record home until acknowledged; the
home platform verifies it, charges its tenant once, and keeps it for clearing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.platform_key import PlatformIdentity
from suanli.adapters.store.repositories import federation as federation_store
from suanli.adapters.store.repositories import jobs as job_store
from suanli.adapters.store.repositories import roaming as store
from suanli.domain import federation as fed
from suanli.domain.clearing import business_date, parse_date
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from suanli.domain.federation_records import Dispute, ForwardedJob, NewDispute, RoamingRecord
from suanli.domain.ids import ComputeId
from suanli.domain.resources import Hub
from suanli.domain.time import aware
from suanli.services.roaming import bounds
from suanli.services.roaming import money as roaming_money
from suanli.services.roaming.home import FORWARDING, WITHDRAWING

HOME, HOST = bounds.HOME, bounds.HOST  # this platform's side of a record
ISSUED, DELIVERED, CHARGED = "issued", "delivered", "charged"
MAX_BATCH = 200
MAX_LIST = 10_000
MAX_RETRY_DELAY_S = 30
DOCUMENT_VERSION = 1


def _ms(seconds: float | None) -> int:
    return round((seconds or 0.0) * 1000)


# -- host: issuing ---------------------------------------------------------------------------

def issue_records(session: Session, me: PlatformIdentity, now: datetime,
                  cutoff_hour: int = 0) -> int:
    """Sign a roaming record for each usage record of a guest job that has none yet, and pay
    the provider; returns how many were issued."""
    pending = store.unsigned_guest_usage(session, MAX_BATCH)
    for usage, guest in pending:
        amount, units, tariff_id = roaming_money.host_price(session, usage)
        amount = min(amount, bounds.left_to_charge(session, guest))
        ended = aware(usage.ended_at)
        day = business_date(ended, cutoff_hour)
        document: dict[str, Any] = {
            "v": DOCUMENT_VERSION, "record_id": usage.id, "home": guest.home,
            "host": me.authority, "home_job_id": guest.home_job_id, "attempt": guest.attempt,
            "host_job_id": usage.job_id, "lease_id": usage.lease_id,
            "tenant_id": guest.home_tenant_id, "pool_id": usage.pool_id,
            "provider_id": usage.provider_id, "province": usage.province, "hub": usage.hub,
            "accelerator": usage.accelerator,
            "devices": usage.devices, "started_at": aware(usage.started_at).isoformat(),
            "ended_at": ended.isoformat(), "wall_ms": _ms(usage.wall_s),
            "device_ms": _ms(usage.device_seconds), "energy_wh": round(usage.energy_wh),
            "units_micro": units, "amount_fen": amount, "currency": "CNY",
            "tariff_id": tariff_id, "business_date": day,
            "issued_at": now.isoformat()}
        paid = roaming_money.pay_host(session, record_id=usage.id, home=guest.home,
                                      provider_tenant_id=usage.provider_tenant_id,
                                      amount_fen=amount, job_id=usage.job_id, now=now)
        store.add_record(session, RoamingRecord(
            id=usage.id, role=HOST, home=guest.home, host=me.authority,
            home_job_id=guest.home_job_id, host_job_id=usage.job_id,
            tenant_id=guest.home_tenant_id, business_date=day,
            amount_fen=amount, units_micro=units, document=document,
            signature=fed.sign_document(me.private_key, me.key_id, document), key_id=me.key_id,
            digest=fed.document_digest(document), state=ISSUED, tries=0, next_try_at=now,
            charge=paid, cycle_id=None, settled_at=None, created_at=now))
    session.flush()
    return len(pending)


@dataclass(frozen=True)
class Delivery:
    record_id: str
    home: str
    payload: dict[str, Any]


def due_deliveries(session: Session, now: datetime) -> list[Delivery]:
    rows = store.records_due(session, HOST, ISSUED, now, MAX_BATCH)
    return [Delivery(row.id, row.home, signed_payload(row)) for row in rows]


def signed_payload(row: RoamingRecord) -> dict[str, Any]:
    return {"record": row.document, "signature": row.signature, "key_id": row.key_id}


def delivery_done(session: Session, record_id: str, now: datetime, *, ok: bool) -> None:
    row = store.get_record(session, record_id)
    assert row is not None and row.role == HOST
    if ok:
        store.save_record(session, replace(row, state=DELIVERED, next_try_at=None))
        return
    tries = row.tries + 1
    store.save_record(session, replace(row, tries=tries, next_try_at=now + timedelta(
        seconds=min(MAX_RETRY_DELAY_S, 0.5 * 2 ** min(tries, 8)))))


def redeliver(session: Session, record_ids: list[str], now: datetime) -> int:
    """Send records home again (reconciliation found them missing there)."""
    rows = store.records_by_ids(session, record_ids, HOST)
    for row in rows:
        store.save_record(session, replace(row, state=ISSUED, next_try_at=now))
    return len(rows)


# -- home: ingesting -------------------------------------------------------------------------

@dataclass(frozen=True)
class Ingested:
    row: RoamingRecord | None
    created: bool
    conflict: str | None = None


def verify_payload(session: Session, payload: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The record document, signature and key id of a payload whose signature holds."""
    document, signature, key_id = (payload.get("record"), payload.get("signature"),
                                   payload.get("key_id"))
    if not isinstance(document, dict) or not isinstance(signature, str) or \
            not isinstance(key_id, str):
        raise ValidationFailed("must hold record, signature and key_id", field="record")
    host = fed.check_authority(str(document.get("host", "")), field="record.host")
    signer, _ = fed.parse_key_id(key_id)
    if signer != host:
        raise fed.SignatureRejected(f"a record of {host} signed by {signer}", field="key_id")
    key = federation_store.get_key(session, key_id)
    if key is None:
        raise fed.SignatureRejected(f"unknown key {key_id}", field="key_id")
    if key.revoked_at is not None:
        raise fed.KeyRevoked(f"key {key_id} was revoked", field="key_id")
    if not fed.verify_document(fed.public_key_from_text(key.public_key), key_id, document,
                               signature):
        raise fed.SignatureRejected("the record's signature does not verify: it was altered",
                                    field="signature")
    return document, signature, key_id


def ingest(session: Session, own: str, sender: str | None, payload: dict[str, Any],
           now: datetime) -> Ingested:
    """Take a host's signed record (pushed by it, or fetched by reconciliation with sender
    None) and charge the tenant once; the same record again is acknowledged, a different
    one under the same id is a dispute."""
    document, signature, key_id = verify_payload(session, payload)
    fields = _check_document(document, own)
    if sender is not None and sender != fields["host"]:
        raise Forbidden(f"{sender} may not deliver records of {fields['host']}")
    digest = fed.document_digest(document)
    held = store.get_record(session, fields["record_id"])
    if held is not None:
        if held.digest == digest:
            return Ingested(held, False)
        detail = (f"record {held.id} delivered again with different content "
                  f"(held {held.digest[:12]}, now {digest[:12]})")
        record_dispute(session, own, fields["host"], "mismatch", detail, now,
                       record_id=held.id, amount_fen=fields["amount_fen"])
        return Ingested(held, False, detail)
    # The attempt's row is locked: two records of one attempt are judged one after the other.
    forwarded = federation_store.lock_forward(session, fields["home_job_id"],
                                              fields["attempt"])
    job = job_store.get_job(session, fields["home_job_id"])
    if forwarded is None or forwarded.host != fields["host"] or job is None or \
            job.tenant_id != fields["tenant_id"]:
        detail = (f"record {fields['record_id']} is for job {fields['home_job_id']} attempt "
                  f"{fields['attempt']}, which was not forwarded to {fields['host']}")
        record_dispute(session, own, fields["host"], "other", detail, now,
                       record_id=fields["record_id"], amount_fen=fields["amount_fen"])
        return Ingested(None, False, detail)
    if forwarded.state == FORWARDING or (forwarded.state == WITHDRAWING
                                         and forwarded.host_job_id is None):
        # The host's answer has not arrived yet (lost, or its status push failed): refused
        # for now, without a dispute; the host delivers the record again.
        return Ingested(None, False, f"record {fields['record_id']}: job {job.id} attempt "
                        f"{forwarded.attempt} is not known here as accepted yet; retry")
    refusal = bounds.refusal(session, forwarded, job, fields)
    if refusal is not None:
        record_dispute(session, own, fields["host"], "bound", refusal, now,
                       record_id=fields["record_id"], amount_fen=fields["amount_fen"])
        return Ingested(None, False, refusal)
    charge = roaming_money.charge_home(session, tenant_id=job.tenant_id, host=fields["host"],
                                       record_id=fields["record_id"],
                                       amount_fen=fields["amount_fen"],
                                       units_micro=fields["units_micro"], job_id=job.id,
                                       where=_where(document), now=now)
    row = RoamingRecord(
        id=fields["record_id"], role=HOME, home=own, host=fields["host"],
        home_job_id=job.id, host_job_id=fields["host_job_id"], tenant_id=job.tenant_id,
        business_date=fields["business_date"], amount_fen=fields["amount_fen"],
        units_micro=fields["units_micro"], document=document, signature=signature,
        key_id=key_id, digest=digest, state=CHARGED, tries=0, next_try_at=None,
        charge=charge, cycle_id=None, settled_at=None, created_at=now)
    store.add_record(session, row)
    session.flush()
    return Ingested(row, True)


def _where(document: dict[str, Any]) -> roaming_money.Where:
    """Where the job ran, for voucher eligibility: a record without it is judged as run at no
    particular place (only vouchers open to any place apply)."""
    try:
        ended = datetime.fromisoformat(str(document.get("ended_at")))
    except ValueError:
        raise ValidationFailed("must be an ISO time", field="record.ended_at") from None
    if ended.tzinfo is None:
        raise ValidationFailed("must carry its UTC offset", field="record.ended_at")
    hub = document.get("hub")
    return roaming_money.Where(ended - timedelta(microseconds=1),
                               str(document.get("provider_id") or ""),
                               str(document.get("province") or ""),
                               hub if hub in {h.value for h in Hub} else None)


def _check_document(document: dict[str, Any], own: str) -> dict[str, Any]:
    try:
        record_id = str(ComputeId.parse(str(document["record_id"]), field="record.record_id"))
        host = fed.check_authority(str(document["host"]), field="record.host")
        home = fed.check_authority(str(document["home"]), field="record.home")
        home_job_id = str(ComputeId.parse(str(document["home_job_id"]),
                                          field="record.home_job_id"))
        fields = {"record_id": record_id, "host": host, "home": home,
                  "home_job_id": home_job_id, "attempt": document["attempt"],
                  "host_job_id": str(document["host_job_id"])[:72],
                  "tenant_id": str(document["tenant_id"]),
                  "amount_fen": document["amount_fen"], "units_micro": document["units_micro"],
                  "business_date": parse_date(str(document["business_date"]),
                                              "record.business_date").isoformat()}
    except KeyError as exc:
        raise ValidationFailed(f"missing {exc.args[0]}", field="record") from None
    if ComputeId.parse(record_id).authority_id.body != host:
        raise ValidationFailed("a record id is issued by its host", field="record.record_id")
    if home != own:
        raise Forbidden(f"record {record_id} belongs to {home}, this is {own}")
    for name in ("attempt", "amount_fen", "units_micro"):
        value = fields[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**15:
            raise ValidationFailed("must be a non-negative integer", field=f"record.{name}")
    return fields


def record_dispute(session: Session, raised_by: str, counterparty: str, kind: str,
                   detail: str, now: datetime, *, record_id: str | None = None,
                   cycle_id: str | None = None, amount_fen: int | None = None
                   ) -> Dispute:
    """Open a dispute (the same open one is not recorded twice)."""
    new = NewDispute(cycle_id=cycle_id, record_id=record_id, raised_by=raised_by,
                     counterparty=counterparty, kind=kind, detail=detail[:1000],
                     amount_fen=amount_fen, created_at=now)
    held = store.find_open_dispute(session, new)
    if held is not None:
        return held
    return store.add_dispute(session, new)


# -- listing ---------------------------------------------------------------------------------

def involving(session: Session, peer: str, *, since: str | None = None,
              through: str | None = None, limit: int = MAX_LIST,
              after: str | None = None) -> list[RoamingRecord]:
    """Records between this platform and `peer` (either role), by id, for reconciliation."""
    return store.records_with_peer(
        session, peer, home=HOME, host=HOST,
        since=parse_date(since, "since").isoformat() if since else None,
        through=parse_date(through, "through").isoformat() if through else None,
        after=after, limit=min(limit, MAX_LIST))


def get(session: Session, record_id: str) -> RoamingRecord:
    row = store.get_record(session, record_id)
    if row is None:
        raise NotFound(f"roaming record {record_id} is not held here", field="record_id")
    return row


def summary_of(row: RoamingRecord) -> dict[str, Any]:
    return {"record_id": row.id, "role": row.role, "home": row.home, "host": row.host,
            "home_job_id": row.home_job_id, "host_job_id": row.host_job_id,
            "tenant_id": row.tenant_id, "business_date": row.business_date,
            "amount_fen": row.amount_fen, "units_micro": row.units_micro, "digest": row.digest,
            "state": row.state, "cycle_id": row.cycle_id,
            "settled_at": aware(row.settled_at).isoformat() if row.settled_at else None,
            "charge": row.charge}


def conflict_error(detail: str) -> Conflict:
    return Conflict(detail, field="record")


def of_job(session: Session, job_id: str) -> tuple[list[ForwardedJob], list[RoamingRecord]]:
    """A home job's forward attempts and the roaming records its hosts signed for it."""
    return (federation_store.forwards_of_job(session, job_id),
            store.records_of_home_job(session, job_id))


def listing(session: Session, *, tenant_id: str | None, peer: str | None, role: str | None,
            since: str | None, through: str | None, limit: int) -> list[RoamingRecord]:
    """Records held here, newest first; `tenant_id` limits them to that consumer's own."""
    return store.list_records(session, tenant_id=tenant_id, home_role=HOME, peer=peer,
                              role=role, since=since, through=through, limit=limit)


def disputes(session: Session, state: str | None, limit: int = 500) -> list[Dispute]:
    return store.list_disputes(session, state, limit)


def resolve_dispute(session: Session, dispute_id: int, resolution: str,
                    now: datetime) -> Dispute:
    row = store.get_dispute(session, dispute_id)
    if row is None:
        raise NotFound(f"dispute {dispute_id} does not exist", field="dispute_id")
    row = replace(row, state="resolved", resolution=resolution, resolved_at=now)
    store.save_dispute(session, row)
    return row
