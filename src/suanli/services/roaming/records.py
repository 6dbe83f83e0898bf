"""Roaming records (漫游话单): the host turns each usage record of a guest job into a record
signed with its key, pays its provider, and delivers the record home until acknowledged; the
home platform verifies it, charges its tenant once, and keeps it for clearing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from suanli.adapters.platform_key import PlatformIdentity
from suanli.adapters.store.federation_tables import (
    ClearingDisputeRow,
    FederationKeyRow,
    GuestJobRow,
    RoamingJobRow,
    RoamingRecordRow,
)
from suanli.adapters.store.job_tables import JobRow, UsageRecordRow
from suanli.adapters.store.tables import PoolRow
from suanli.domain import federation as fed
from suanli.domain.clearing import business_date, parse_date
from suanli.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
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
    pending = session.execute(
        select(UsageRecordRow, GuestJobRow)
        .join(GuestJobRow, GuestJobRow.job_id == UsageRecordRow.job_id)
        .outerjoin(RoamingRecordRow, RoamingRecordRow.id == UsageRecordRow.id)
        .where(RoamingRecordRow.id.is_(None))
        .order_by(UsageRecordRow.created_at).limit(MAX_BATCH)).all()
    for usage, guest in pending:
        pool = session.get(PoolRow, usage.pool_id)
        assert pool is not None
        amount, units, tariff_id = roaming_money.host_price(session, usage)
        amount = min(amount, bounds.left_to_charge(session, guest))
        ended = aware(usage.ended_at)
        document = {
            "v": DOCUMENT_VERSION, "record_id": usage.id, "home": guest.home,
            "host": me.authority, "home_job_id": guest.home_job_id, "attempt": guest.attempt,
            "host_job_id": usage.job_id, "lease_id": usage.lease_id,
            "tenant_id": guest.home_tenant_id, "pool_id": usage.pool_id,
            "provider_id": pool.provider_id, "province": pool.province, "hub": pool.hub,
            "accelerator": usage.accelerator,
            "devices": usage.devices, "started_at": aware(usage.started_at).isoformat(),
            "ended_at": ended.isoformat(), "wall_ms": _ms(usage.wall_s),
            "device_ms": _ms(usage.device_seconds), "energy_wh": round(usage.energy_wh),
            "units_micro": units, "amount_fen": amount, "currency": "CNY",
            "tariff_id": tariff_id, "business_date": business_date(ended, cutoff_hour),
            "issued_at": now.isoformat()}
        paid = roaming_money.pay_host(session, record_id=usage.id, home=guest.home,
                                      provider_tenant_id=usage.provider_tenant_id,
                                      amount_fen=amount, job_id=usage.job_id, now=now)
        session.add(RoamingRecordRow(
            id=usage.id, role=HOST, home=guest.home, host=me.authority,
            home_job_id=guest.home_job_id, host_job_id=usage.job_id,
            tenant_id=guest.home_tenant_id, business_date=document["business_date"],
            amount_fen=amount, units_micro=units, document=document,
            signature=fed.sign_document(me.private_key, me.key_id, document), key_id=me.key_id,
            digest=fed.document_digest(document), state=ISSUED, tries=0, next_try_at=now,
            charge=paid, created_at=now))
    session.flush()
    return len(pending)


@dataclass(frozen=True)
class Delivery:
    record_id: str
    home: str
    payload: dict[str, Any]


def due_deliveries(session: Session, now: datetime) -> list[Delivery]:
    rows = session.scalars(select(RoamingRecordRow)
                           .where(RoamingRecordRow.role == HOST,
                                  RoamingRecordRow.state == ISSUED,
                                  RoamingRecordRow.next_try_at <= now)
                           .order_by(RoamingRecordRow.next_try_at).limit(MAX_BATCH)).all()
    return [Delivery(row.id, row.home, signed_payload(row)) for row in rows]


def signed_payload(row: RoamingRecordRow) -> dict[str, Any]:
    return {"record": row.document, "signature": row.signature, "key_id": row.key_id}


def delivery_done(session: Session, record_id: str, now: datetime, *, ok: bool) -> None:
    row = session.get(RoamingRecordRow, record_id)
    assert row is not None and row.role == HOST
    if ok:
        row.state, row.next_try_at = DELIVERED, None
        return
    row.tries += 1
    row.next_try_at = now + timedelta(seconds=min(MAX_RETRY_DELAY_S, 0.5 * 2 ** min(row.tries,
                                                                                   8)))


def redeliver(session: Session, record_ids: list[str], now: datetime) -> int:
    """Send records home again (reconciliation found them missing there)."""
    rows = session.scalars(select(RoamingRecordRow).where(RoamingRecordRow.id.in_(record_ids),
                                                          RoamingRecordRow.role == HOST)).all()
    for row in rows:
        row.state, row.next_try_at = ISSUED, now
    return len(rows)


# -- home: ingesting -------------------------------------------------------------------------

@dataclass(frozen=True)
class Ingested:
    row: RoamingRecordRow | None
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
    key = session.get(FederationKeyRow, key_id)
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
    held = session.get(RoamingRecordRow, fields["record_id"])
    if held is not None:
        if held.digest == digest:
            return Ingested(held, False)
        detail = (f"record {held.id} delivered again with different content "
                  f"(held {held.digest[:12]}, now {digest[:12]})")
        record_dispute(session, own, fields["host"], "mismatch", detail, now,
                       record_id=held.id, amount_fen=fields["amount_fen"])
        return Ingested(held, False, detail)
    # The attempt's row is locked: two records of one attempt are judged one after the other.
    forwarded = session.get(RoamingJobRow, (fields["home_job_id"], fields["attempt"]),
                            with_for_update=True)
    job = session.get(JobRow, fields["home_job_id"])
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
    row = RoamingRecordRow(
        id=fields["record_id"], role=HOME, home=own, host=fields["host"],
        home_job_id=job.id, host_job_id=fields["host_job_id"], tenant_id=job.tenant_id,
        business_date=fields["business_date"], amount_fen=fields["amount_fen"],
        units_micro=fields["units_micro"], document=document, signature=signature,
        key_id=key_id, digest=digest, state=CHARGED, tries=0, next_try_at=None,
        charge=charge, created_at=now)
    session.add(row)
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
                   ) -> ClearingDisputeRow:
    """Open a dispute (the same open one is not recorded twice)."""
    held = session.scalar(select(ClearingDisputeRow).where(
        ClearingDisputeRow.state == "open", ClearingDisputeRow.kind == kind,
        ClearingDisputeRow.counterparty == counterparty,
        ClearingDisputeRow.record_id == record_id if record_id else
        ClearingDisputeRow.record_id.is_(None),
        ClearingDisputeRow.cycle_id == cycle_id if cycle_id else
        ClearingDisputeRow.cycle_id.is_(None), ClearingDisputeRow.detail == detail[:1000]))
    if held is not None:
        return held
    row = ClearingDisputeRow(cycle_id=cycle_id, record_id=record_id, raised_by=raised_by,
                             counterparty=counterparty, kind=kind, detail=detail[:1000],
                             amount_fen=amount_fen, state="open", resolution="",
                             created_at=now)
    session.add(row)
    session.flush()
    return row


# -- listing ---------------------------------------------------------------------------------

def involving(session: Session, peer: str, *, since: str | None = None,
              through: str | None = None, limit: int = MAX_LIST,
              after: str | None = None) -> list[RoamingRecordRow]:
    """Records between this platform and `peer` (either role), by id, for reconciliation."""
    stmt = select(RoamingRecordRow).where(or_(
        and_(RoamingRecordRow.role == HOME, RoamingRecordRow.host == peer),
        and_(RoamingRecordRow.role == HOST, RoamingRecordRow.home == peer)))
    if since:
        stmt = stmt.where(RoamingRecordRow.business_date >= parse_date(since, "since")
                          .isoformat())
    if through:
        stmt = stmt.where(RoamingRecordRow.business_date <= parse_date(through, "through")
                          .isoformat())
    if after:
        stmt = stmt.where(RoamingRecordRow.id > after)
    return list(session.scalars(stmt.order_by(RoamingRecordRow.id).limit(min(limit, MAX_LIST))))


def get(session: Session, record_id: str) -> RoamingRecordRow:
    row = session.get(RoamingRecordRow, record_id)
    if row is None:
        raise NotFound(f"roaming record {record_id} is not held here", field="record_id")
    return row


def summary_of(row: RoamingRecordRow) -> dict[str, Any]:
    return {"record_id": row.id, "role": row.role, "home": row.home, "host": row.host,
            "home_job_id": row.home_job_id, "host_job_id": row.host_job_id,
            "tenant_id": row.tenant_id, "business_date": row.business_date,
            "amount_fen": row.amount_fen, "units_micro": row.units_micro, "digest": row.digest,
            "state": row.state, "cycle_id": row.cycle_id,
            "settled_at": aware(row.settled_at).isoformat() if row.settled_at else None,
            "charge": row.charge}


def conflict_error(detail: str) -> Conflict:
    return Conflict(detail, field="record")


def of_job(session: Session, job_id: str) -> tuple[list[RoamingJobRow], list[RoamingRecordRow]]:
    """A home job's forward attempts and the roaming records its hosts signed for it."""
    attempts = session.scalars(select(RoamingJobRow).where(RoamingJobRow.job_id == job_id)
                               .order_by(RoamingJobRow.attempt)).all()
    records = session.scalars(select(RoamingRecordRow)
                              .where(RoamingRecordRow.home_job_id == job_id)
                              .order_by(RoamingRecordRow.id)).all()
    return list(attempts), list(records)


def listing(session: Session, *, tenant_id: str | None, peer: str | None, role: str | None,
            since: str | None, through: str | None, limit: int) -> list[RoamingRecordRow]:
    """Records held here, newest first; `tenant_id` limits them to that consumer's own."""
    stmt = select(RoamingRecordRow)
    if tenant_id is not None:
        stmt = stmt.where(RoamingRecordRow.tenant_id == tenant_id, RoamingRecordRow.role == HOME)
    if peer:
        stmt = stmt.where((RoamingRecordRow.home == peer) | (RoamingRecordRow.host == peer))
    if role:
        stmt = stmt.where(RoamingRecordRow.role == role)
    if since:
        stmt = stmt.where(RoamingRecordRow.business_date >= since)
    if through:
        stmt = stmt.where(RoamingRecordRow.business_date <= through)
    return list(session.scalars(stmt.order_by(RoamingRecordRow.created_at.desc(),
                                              RoamingRecordRow.id).limit(limit)))


def disputes(session: Session, state: str | None, limit: int = 500) -> list[ClearingDisputeRow]:
    stmt = select(ClearingDisputeRow)
    if state:
        stmt = stmt.where(ClearingDisputeRow.state == state)
    return list(session.scalars(stmt.order_by(ClearingDisputeRow.id.desc()).limit(limit)))


def resolve_dispute(session: Session, dispute_id: int, resolution: str,
                    now: datetime) -> ClearingDisputeRow:
    row = session.get(ClearingDisputeRow, dispute_id)
    if row is None:
        raise NotFound(f"dispute {dispute_id} does not exist", field="dispute_id")
    row.state, row.resolution, row.resolved_at = "resolved", resolution, now
    return row
