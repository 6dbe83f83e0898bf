"""The platform <-> platform wire (`/federation/v1/...`): every message a platform sends
another, requests and answers, as models.

Both ends use them: the routes of `api/routes/federation_peer.py` parse each request with
its model and answer with one; `services/peering/runtime.py` builds its requests from them
and checks each peer's answer before acting on it. Fields carry their exact JSON types
(strict: no "3" for 3); the rules that need the node's state (an authority within the
sender's subtree, a job id issued by its home, a signature that verifies) stay with the
services. Fields a newer platform adds travel on untouched (`extra="allow"`), and
`dump()` gives back the dict as it was sent: the signed documents inside (roaming records,
settlement statements) are kept as the very dicts whose canonical JSON was signed
(`domain.federation.canonical_json`), so their signatures hold byte for byte.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from suanli.domain.errors import ValidationFailed

MAX_ERRORS_SHOWN = 3


class Message(BaseModel):
    """Base of every federation message."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    def dump(self) -> dict[str, Any]:
        """The message as the JSON object it was built or received as (unset defaults left
        out, fields in the order the protocol names them, extra fields kept)."""
        return self.model_dump(mode="json", exclude_unset=True)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, *, what: str = "body") -> M:
    """`data` as a `model`; ValidationFailed (a 422) naming the first field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"]) or what
        raise ValidationFailed(describe(exc), field=field) from None


def describe(error: ValidationError) -> str:
    """The first few problems of a validation error, each naming its field."""
    shown = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
             for e in error.errors()[:MAX_ERRORS_SHOWN]]
    more = error.error_count() - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


# -- registry --------------------------------------------------------------------------------

class PlatformEntry(Message):
    authority: StrictStr
    name: StrictStr | None = None
    level: StrictStr | None = None
    parent: StrictStr | None = None
    endpoint: StrictStr | None = None
    state: StrictStr | None = None


class KeyEntry(Message):
    key_id: StrictStr
    authority: StrictStr
    public_key: StrictStr
    revoked_at: StrictStr | None = None  # ISO 8601


class Registry(Message):
    """GET /federation/v1/platforms: the platforms and keys a platform knows."""

    platforms: list[PlatformEntry] = Field(default_factory=list)
    keys: list[KeyEntry] = Field(default_factory=list)


class Hello(Message):
    """GET /federation/v1/hello: who answers, and who it took the caller to be."""

    platform: StrictStr
    key_id: StrictStr
    you: StrictStr


class PlatformRegistration(Message):
    """POST /federation/v1/platforms/register: a sub-platform presents its endpoint and key,
    signed with that key, with its parent's enrolment token."""

    authority: StrictStr
    name: StrictStr | None = None
    level: StrictStr = "regional"
    endpoint: StrictStr
    public_key: StrictStr
    key_id: StrictStr
    enrolment_token: StrictStr | None = None


class ParentDescriptor(Message):
    authority: StrictStr
    name: StrictStr
    level: StrictStr
    parent: StrictStr | None
    key_id: StrictStr
    public_key: StrictStr


class RegistrationAnswer(Message):
    parent: ParentDescriptor
    registry: Registry


# -- catalog and sync ------------------------------------------------------------------------

class CatalogSummary(Message):
    """One origin's catalog summary; `groups` only when the receiver lacks them."""

    origin: StrictStr
    generated_at: StrictStr  # ISO 8601
    digest: StrictStr
    groups: list[dict[str, Any]] | None = None


class Origin(Message):
    origin: StrictStr
    generated_at: StrictStr
    digest: StrictStr


class SyncRequest(Message):
    """POST /federation/v1/sync: a child's subtree (registry and summaries), and the digests
    of the summaries it already holds of the rest of the tree."""

    platforms: Registry = Field(default_factory=Registry)
    catalog: list[CatalogSummary] = Field(default_factory=list)
    known: dict[StrictStr, StrictStr] = Field(default_factory=dict)


class SyncAnswer(Message):
    """The rest of the tree: its registry, the summaries the child lacks, every origin's
    digest, and which of the child's summaries the parent `need`s in full."""

    registry: Registry = Field(default_factory=Registry)
    catalog: list[CatalogSummary] = Field(default_factory=list)
    origins: list[Origin] = Field(default_factory=list)
    need: list[StrictStr] = Field(default_factory=list)


class CatalogAnswer(Message):
    """GET /federation/v1/catalog: the pool groups of the tree, filtered by the query."""

    platform: StrictStr
    items: list[dict[str, Any]]


# -- jobs ------------------------------------------------------------------------------------

class Attempt(Message):
    """Names one attempt of a home platform's job."""

    home: StrictStr
    home_job_id: StrictStr
    attempt: StrictInt


class Forward(Attempt):
    """POST /federation/v1/jobs/forward: run this attempt for the home platform's tenant."""

    tenant_id: StrictStr
    tenant_class: StrictStr
    spec: dict[str, Any]  # the job spec as the home platform stored it


class Withdraw(Attempt):
    """POST /federation/v1/jobs/withdraw: take the attempt back (cancel it if it runs)."""

    cancel: StrictBool = False


class JobStatus(Message):
    """The state of a guest job, as its host reports it home."""

    home_job_id: StrictStr
    attempt: StrictInt
    host_job_id: StrictStr
    pool_id: StrictStr | None
    max_charge_fen: StrictInt | None
    state: StrictStr
    exit_code: StrictInt | None
    message: StrictStr
    started_at: StrictStr | None
    finished_at: StrictStr | None
    logs: StrictStr | None
    logs_truncated: StrictBool


class StatusPush(JobStatus):
    """POST /federation/v1/jobs/status: a host pushes a guest job's state to its home."""

    home: StrictStr


class ForwardAnswer(Message):
    """The host's word on a forward or withdrawal: accepted (with the job's status), rejected
    or withdrawn (with a reason). Given once: the same attempt again gets the same answer."""

    outcome: StrictStr
    reason: StrictStr | None = None
    home_job_id: StrictStr | None = None
    attempt: StrictInt | None = None
    host_job_id: StrictStr | None = None
    pool_id: StrictStr | None = None
    max_charge_fen: StrictInt | None = None
    state: StrictStr | None = None
    exit_code: StrictInt | None = None
    message: StrictStr | None = None
    started_at: StrictStr | None = None
    finished_at: StrictStr | None = None
    logs: StrictStr | None = None
    logs_truncated: StrictBool | None = None


class Ack(Message):
    ok: StrictBool


# -- roaming records -------------------------------------------------------------------------

class RecordDelivery(Message):
    """POST /federation/v1/roaming-records: a host's signed roaming record; `record` is the
    document whose canonical JSON `signature` covers."""

    record: dict[str, Any]
    signature: StrictStr
    key_id: StrictStr


class RecordSummary(Message):
    record_id: StrictStr
    role: StrictStr
    home: StrictStr
    host: StrictStr
    home_job_id: StrictStr
    host_job_id: StrictStr | None
    tenant_id: StrictStr
    business_date: StrictStr
    amount_fen: StrictInt
    units_micro: StrictInt
    digest: StrictStr
    state: StrictStr
    cycle_id: StrictStr | None
    settled_at: StrictStr | None
    charge: dict[str, Any] | None


class RecordReceipt(Message):
    state: StrictStr
    created: StrictBool
    record: RecordSummary | None


class RecordPage(Message):
    """GET /federation/v1/roaming-records: the records held with the caller, a page."""

    items: list[dict[str, Any]]
    next_after: StrictStr | None


# -- clearing --------------------------------------------------------------------------------

class CollectRequest(Message):
    """POST /federation/v1/clearing/collect: the house asks a platform for its entries of a
    cycle, a page after `after`."""

    cycle_id: StrictStr
    through_date: StrictStr
    after: StrictStr | None = None
    pending_cycles: list[StrictStr] | None = None


class CollectAnswer(Message):
    platform: StrictStr
    columns: dict[StrictStr, list[Any]]
    next_after: StrictStr | None


class StatementDelivery(Message):
    """POST /federation/v1/clearing/statements: the house's signed settlement statement."""

    statement: dict[str, Any]
    signature: StrictStr
    key_id: StrictStr


class StatementAnswer(Message):
    cycle_id: StrictStr
    state: StrictStr
    problem: StrictStr | None = None
