"""What a host may charge for one forwarded attempt (issue 12): the bound it declares when it
accepts, which the home holds every record of the attempt to, and the host keeps to itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import roaming as store
from suanli.domain.federation_records import ForwardedJob, GuestJob
from suanli.domain.job_records import Job
from suanli.domain.jobs import JobSpec
from suanli.domain.roaming import attempt_bound_fen
from suanli.services.roaming.home import ACCEPTED, FINISHED, WITHDRAWING

HOME, HOST = "home", "host"  # roaming_records.role: this platform's side of a record
MAX_AMOUNT_FEN = 10**15
# A host's records are paid only for an attempt it accepted (withdrawing: cancelled at home
# while it ran there; what ran is still paid).
ACCEPTED_STATES = (ACCEPTED, FINISHED, WITHDRAWING)


def left_to_charge(session: Session, guest: GuestJob) -> int:
    """What this platform told the home it may still charge for the attempt: it keeps to the
    bound it declared when it accepted, however many records the attempt makes."""
    if guest.max_charge_fen is None:  # accepted before bounds were declared
        return MAX_AMOUNT_FEN
    assert guest.job_id is not None  # an accepted attempt has its local job
    issued = store.amount_issued_for_host_job(session, HOST, guest.job_id)
    return max(0, guest.max_charge_fen - int(issued))



def refusal(session: Session, forwarded: ForwardedJob, job: Job,
            fields: dict[str, Any]) -> str | None:
    """Why a host's record is not this platform's to pay, or None (issue 12): it must be for
    an attempt the host accepted, name the host's job for it, and keep, with the attempt's
    records before it, to the attempt's bound (attempt_bound_fen)."""
    record, attempt = fields["record_id"], f"job {job.id} attempt {forwarded.attempt}"
    if forwarded.state not in ACCEPTED_STATES or forwarded.host_job_id is None:
        return (f"record {record} is for {attempt}, which {forwarded.host} did not accept "
                f"(the attempt is {forwarded.state})")
    if fields["host_job_id"] != forwarded.host_job_id:
        return (f"record {record} names host job {fields['host_job_id']}; {attempt} runs as "
                f"{forwarded.host_job_id}")
    if forwarded.max_charge_fen is None:
        return f"record {record}: {forwarded.host} declared no charge bound for {attempt}"
    spec = JobSpec.from_json(job.spec)
    bound = attempt_bound_fen(forwarded.max_charge_fen, spec.devices, spec.time_limit_s,
                              spec.max_price_fen_per_device_hour)
    before = store.amount_charged_for_attempt(session, HOME, job.id, forwarded.host_job_id)
    if int(before) + fields["amount_fen"] > bound:
        return (f"record {record} asks {fields['amount_fen']} fen for {attempt}, which has "
                f"{int(before)} fen charged of a bound of {bound} fen (devices x time limit x "
                f"the agreed price)")
    return None
