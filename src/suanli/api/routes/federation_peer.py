"""The federation protocol, version 1 (`/federation/v1/...`): messages between platforms.

Every request must be signed (see suanli.domain.federation); every answer is signed by this
platform and bound to the request's nonce. Unsigned, stale, replayed, mis-addressed or
altered requests are refused with 401, requests signed with a revoked key with 403 — all as
problem+json, before anything else happens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from suanli.api.federation_runtime import runtime_of
from suanli.domain import federation as fed
from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.resources import check_name
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

    def reply(self, payload: Any, status: int = 200) -> Response:
        content = json.dumps(payload, separators=(",", ":"), default=str).encode()
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
    return msg.reply({"platform": msg.runtime.own, "key_id": msg.runtime.me.key_id,
                      "you": msg.sender})


# -- registry and catalog --------------------------------------------------------------------

@router.post("/platforms/register")
async def register(request: Request) -> Response:
    """A sub-platform registers its endpoint and key. Its first message is signed with the
    key it presents (proof of possession) and carries its parent's enrolment token."""
    body, headers = await _read(request)
    runtime = runtime_of(request.app)
    path = _path(request)

    def work() -> tuple[str, dict[str, Any]]:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValidationFailed("must be a JSON object", field="body")
        reg = federation.Registration(
            authority=fed.check_authority(str(data.get("authority", ""))),
            name=check_name(str(data.get("name") or data.get("authority") or ""), "name"),
            level=str(data.get("level", "regional")),
            endpoint=federation.check_endpoint(str(data.get("endpoint", ""))),
            public_key=str(data.get("public_key", "")), key_id=str(data.get("key_id", "")))
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
            federation.register(session, runtime.own, reg, data.get("enrolment_token"),
                                headers.key_id, now)
            me = federation.self_row(session)
            assert me is not None
            return reg.authority, {
                "parent": {"authority": runtime.own, "name": me.name, "level": me.level,
                           "parent": me.parent, "key_id": runtime.me.key_id,
                           "public_key": runtime.me.public_key_text},
                "registry": federation.registry_snapshot(session)}

    sender, payload = await run_in_threadpool(work)
    return Signed(sender, body, headers, runtime).reply(payload)


@router.get("/platforms")
def platforms(msg: Message) -> Response:
    with msg.runtime.db.unit_of_work() as session:
        return msg.reply(federation.registry_snapshot(session))


@router.post("/sync")
def sync(msg: Message) -> Response:
    """A sub-platform pushes its subtree's registry and catalog, and takes the rest back."""
    return msg.reply(msg.runtime.handle_sync(msg.sender, msg.json()))


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
    return msg.reply({"platform": msg.runtime.own, "items": items})


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
        answer = roaming_host.accept_forward(session, rt.authority_id, msg.sender, msg.json(),
                                             rt.now(), rt.claim_timeout_s, placement)
    return msg.reply(answer)


@router.post("/jobs/withdraw")
def withdraw(msg: Message) -> Response:
    rt = msg.runtime
    with rt.db.unit_of_work() as session:
        answer = roaming_host.withdraw(session, rt.authority_id, msg.sender, msg.json(), rt.now())
    return msg.reply(answer)


@router.post("/jobs/status")
def status(msg: Message) -> Response:
    """A host reports the state of a job it runs for this platform."""
    body = msg.json()
    attempt = body.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise ValidationFailed("must be an integer", field="attempt")
    with msg.runtime.db.unit_of_work() as session:
        roaming.apply_status(session, msg.sender, str(body.get("home_job_id", "")), attempt,
                             body, msg.runtime.now())
    return msg.reply({"ok": True})


# -- roaming records -------------------------------------------------------------------------

@router.post("/roaming-records")
def receive_record(msg: Message) -> Response:
    """A host delivers a signed roaming record; the home platform charges its tenant once."""
    rt = msg.runtime
    with rt.db.unit_of_work() as session:
        result = roaming_records.ingest(session, rt.own, msg.sender, msg.json(), rt.now())
        summary = roaming_records.summary_of(result.row) if result.row else None
    if result.conflict:  # the dispute is recorded (committed above); the sender learns why
        raise Conflict(result.conflict, field="record")
    return msg.reply({"state": "charged", "created": result.created, "record": summary})


@router.get("/roaming-records")
def list_records(msg: Message, request: Request) -> Response:
    """The records this platform holds with the caller, for the caller's reconciliation."""
    params = {k: v for k, v in _params(request, "since", "through", "after").items() if v}
    with msg.runtime.db.unit_of_work() as session:
        page = reconciliation.listing(session, msg.sender, params)
    return msg.reply(page)


# -- clearing --------------------------------------------------------------------------------

@router.post("/clearing/collect")
def collect(msg: Message) -> Response:
    rt, body = msg.runtime, msg.json()
    after, pending = body.get("after"), body.get("pending_cycles") or []
    if not isinstance(pending, list):
        raise ValidationFailed("must be a list of cycle ids", field="pending_cycles")
    with rt.db.unit_of_work() as session:
        columns, next_after = clearing.collect(
            session, rt.own, msg.sender, rt.house,
            fed.check_token(body.get("cycle_id"), field="cycle_id"),
            str(body.get("through_date", "")),
            fed.check_token(after, field="after") if after else None,
            pending_cycles=[fed.check_token(c, field="pending_cycles") for c in pending])
    return msg.reply({"platform": rt.own, "columns": columns, "next_after": next_after})


@router.post("/clearing/statements")
def receive_statement(msg: Message) -> Response:
    rt = msg.runtime
    if msg.sender != rt.house:
        raise fed.SignatureRejected(f"statements come from the clearing house {rt.house}")
    with rt.db.unit_of_work() as session:
        result = clearing.accept_statement(session, rt.own, rt.house, msg.json(), rt.now())
    return msg.reply(result)
