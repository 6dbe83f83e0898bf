"""The federation protocol, version 1 (`/federation/v1/...`): messages between platforms.

Every request must be signed (see suanli.domain.federation); every answer is signed by this
platform and bound to the request's nonce. Unsigned, stale, replayed, mis-addressed or
altered requests are refused with 401, requests signed with a revoked key with 403 — all as
problem+json, before anything else happens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from suanli.api.federation_runtime import runtime_of
from suanli.domain import federation as fed
from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.resources import check_name
from suanli.protocol import federation as wire
from suanli.services.clearing import cycle as clearing
from suanli.services.federation import catalog as federated_catalog
from suanli.services.federation import platforms as federation
from suanli.services.peering import reconciliation
from suanli.services.peering.runtime import FederationRuntime
from suanli.services.roaming import home as roaming
from suanli.services.roaming import host as roaming_host
from suanli.services.roaming import records as roaming_records
from suanli.services.scheduling import placement

router = APIRouter(prefix="/federation/v1", tags=["federation protocol"])
M = TypeVar("M", bound=BaseModel)


@dataclass
class Signed:
    """An authenticated federation request."""

    sender: str
    body: bytes
    headers: fed.SignatureHeaders
    runtime: FederationRuntime

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            raise ValidationFailed("must be a JSON object", field="body") from None
        if not isinstance(value, dict):
            raise ValidationFailed("must be a JSON object", field="body")
        return value

    def parse(self, model: type[M]) -> M:
        """The body as the protocol's `model`; a 422 naming the field when it is not one."""
        return wire.parse(model, self.json())

    def reply(self, payload: wire.Message, status: int = 200) -> Response:
        """The answer, signed and bound to the request's nonce."""
        content = json.dumps(payload.dump(), separators=(",", ":"), default=str).encode()
        headers = self.runtime.signed_response_headers(self.headers.nonce, status, self.sender,
                                                       content)
        return Response(content, status_code=status, media_type="application/json",
                        headers=headers)


def _path(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


async def _read(request: Request) -> tuple[bytes, fed.SignatureHeaders]:
    body = await request.body()
    if len(body) > fed.MAX_BODY_BYTES:
        raise ValidationFailed(f"at most {fed.MAX_BODY_BYTES} bytes", field="body")
    return body, fed.SignatureHeaders.read(request.headers)


async def signed(request: Request) -> Signed:
    body, headers = await _read(request)
    runtime = runtime_of(request.app)
    path = _path(request)

    def verify() -> str:
        with runtime.db.unit_of_work() as session:
            return federation.verify_message(session, runtime.own, headers, request.method,
                                             path, body, runtime.now(),
                                             runtime.settings.replay_window_s)

    return Signed(await run_in_threadpool(verify), body, headers, runtime)


Message = Annotated[Signed, Depends(signed)]


@router.get("/hello")
def hello(msg: Message) -> Response:
    """A signed ping: who this platform is, and who it took the caller to be."""
    return msg.reply(wire.Hello(platform=msg.runtime.own, key_id=msg.runtime.me.key_id,
                                you=msg.sender))


# -- registry and catalog --------------------------------------------------------------------

@router.post("/platforms/register")
async def register(request: Request) -> Response:
    """A sub-platform registers its endpoint and key. Its first message is signed with the
    key it presents (proof of possession) and carries its parent's enrolment token."""
    body, headers = await _read(request)
    runtime = runtime_of(request.app)
    path = _path(request)

    def work() -> tuple[str, wire.RegistrationAnswer]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ValidationFailed("must be a JSON object", field="body") from None
        if not isinstance(data, dict):
            raise ValidationFailed("must be a JSON object", field="body")
        offer = wire.parse(wire.PlatformRegistration, data)
        reg = federation.Registration(
            authority=fed.check_authority(offer.authority),
            name=check_name(offer.name or offer.authority, "name"),
            level=offer.level, endpoint=federation.check_endpoint(offer.endpoint),
            public_key=offer.public_key, key_id=offer.key_id)
        if headers.key_id != reg.key_id or fed.key_id(
                reg.authority, fed.public_key_from_text(reg.public_key)) != reg.key_id:
            raise fed.SignatureRejected("the message must be signed with the key registered",
                                        field=fed.HEADER_KEY_ID)
        now = runtime.now()
        with runtime.db.unit_of_work() as session:
            presented = federation.presented_key(session, reg, now)
            federation.verify_message(session, runtime.own, headers, request.method, path,
                                      body, now, runtime.settings.replay_window_s,
                                      public_key=presented)
        with runtime.db.unit_of_work() as session:
            federation.register(session, runtime.own, reg, offer.enrolment_token,
                                headers.key_id, now)
            me = federation.self_row(session)
            assert me is not None
            return reg.authority, wire.RegistrationAnswer(
                parent=wire.ParentDescriptor(
                    authority=runtime.own, name=me.name, level=me.level, parent=me.parent,
                    key_id=runtime.me.key_id, public_key=runtime.me.public_key_text),
                registry=wire.Registry.model_validate(federation.registry_snapshot(session)))

    sender, payload = await run_in_threadpool(work)
    return Signed(sender, body, headers, runtime).reply(payload)


@router.get("/platforms")
def platforms(msg: Message) -> Response:
    with msg.runtime.db.unit_of_work() as session:
        return msg.reply(wire.Registry.model_validate(federation.registry_snapshot(session)))


@router.post("/sync")
def sync(msg: Message) -> Response:
    """A sub-platform pushes its subtree's registry and catalog, and takes the rest back."""
    return msg.reply(msg.runtime.handle_sync(msg.sender, msg.parse(wire.SyncRequest)))


def _params(request: Request, *names: str) -> dict[str, str | None]:
    """Query parameters a peer sent, each id-like or absent."""
    return {name: fed.check_token(request.query_params[name], field=name)
            if request.query_params.get(name) else None for name in names}


@router.get("/catalog")
def catalog(msg: Message, request: Request) -> Response:
    params = _params(request, "accelerator", "province", "hub", "platform", "min_free_devices")
    free = params.get("min_free_devices") or "0"
    if not free.isdigit() or len(free) > 7:
        raise ValidationFailed("must be a whole number of devices", field="min_free_devices")
    with msg.runtime.db.unit_of_work() as session:
        items = federated_catalog.query(
            session, msg.runtime.now(), accelerator=params.get("accelerator"),
            province=params.get("province"), hub=params.get("hub"),
            platform=params.get("platform"),
            min_free_devices=int(free))
    return msg.reply(wire.CatalogAnswer(platform=msg.runtime.own, items=items))


# -- jobs ------------------------------------------------------------------------------------

@router.post("/jobs/forward")
def forward(msg: Message) -> Response:
    """A home platform offers a job attempt; answered once: accepted, rejected or withdrawn."""
    rt = msg.runtime
    with rt.db.unit_of_work() as session:
        # Committed on its own: a job draws its id in a transaction of its own, which on
        # SQLite must not wait behind this request's first write.
        federation.guest_tenant(session, rt.authority_id, msg.sender, rt.now())
    with rt.db.unit_of_work() as session:
        answer = roaming_host.accept_forward(session, rt.authority_id, msg.sender,
                                             msg.parse(wire.Forward).dump(), rt.now(),
                                             rt.claim_timeout_s, placement)
    return msg.reply(wire.ForwardAnswer.model_validate(answer))


@router.post("/jobs/withdraw")
def withdraw(msg: Message) -> Response:
    rt = msg.runtime
    with rt.db.unit_of_work() as session:
        answer = roaming_host.withdraw(session, rt.authority_id, msg.sender,
                                       msg.parse(wire.Withdraw).dump(), rt.now())
    return msg.reply(wire.ForwardAnswer.model_validate(answer))


@router.post("/jobs/status")
def status(msg: Message) -> Response:
    """A host reports the state of a job it runs for this platform."""
    status = msg.parse(wire.StatusPush)
    with msg.runtime.db.unit_of_work() as session:
        roaming.apply_status(session, msg.sender, status.home_job_id, status.attempt,
                             status.dump(), msg.runtime.now())
    return msg.reply(wire.Ack(ok=True))


# -- roaming records -------------------------------------------------------------------------

@router.post("/roaming-records")
def receive_record(msg: Message) -> Response:
    """A host delivers a signed roaming record; the home platform charges its tenant once."""
    rt = msg.runtime
    with rt.db.unit_of_work() as session:
        result = roaming_records.ingest(session, rt.own, msg.sender,
                                        msg.parse(wire.RecordDelivery).dump(), rt.now())
        summary = roaming_records.summary_of(result.row) if result.row else None
    if result.conflict:  # the dispute is recorded (committed above); the sender learns why
        raise Conflict(result.conflict, field="record")
    return msg.reply(wire.RecordReceipt.model_validate(
        {"state": "charged", "created": result.created, "record": summary}))


@router.get("/roaming-records")
def list_records(msg: Message, request: Request) -> Response:
    """The records this platform holds with the caller, for the caller's reconciliation."""
    params = {k: v for k, v in _params(request, "since", "through", "after").items() if v}
    with msg.runtime.db.unit_of_work() as session:
        page = reconciliation.listing(session, msg.sender, params)
    return msg.reply(wire.RecordPage.model_validate(page))


# -- clearing --------------------------------------------------------------------------------

@router.post("/clearing/collect")
def collect(msg: Message) -> Response:
    rt, asked = msg.runtime, msg.parse(wire.CollectRequest)
    with rt.db.unit_of_work() as session:
        columns, next_after = clearing.collect(
            session, rt.own, msg.sender, rt.house,
            fed.check_token(asked.cycle_id, field="cycle_id"), asked.through_date,
            fed.check_token(asked.after, field="after") if asked.after else None,
            pending_cycles=[fed.check_token(c, field="pending_cycles")
                            for c in asked.pending_cycles or []])
    return msg.reply(wire.CollectAnswer(platform=rt.own, columns=columns,
                                        next_after=next_after))


@router.post("/clearing/statements")
def receive_statement(msg: Message) -> Response:
    rt = msg.runtime
    if msg.sender != rt.house:
        raise fed.SignatureRejected(f"statements come from the clearing house {rt.house}")
    with rt.db.unit_of_work() as session:
        result = clearing.accept_statement(session, rt.own, rt.house,
                                           msg.parse(wire.StatementDelivery).dump(), rt.now())
    return msg.reply(wire.StatementAnswer.model_validate(result))
