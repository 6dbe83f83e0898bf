"""One node's part in the federation at run time: its identity, its peers, and the loop that
registers with the parent, syncs the catalog and registry, forwards jobs, pushes status,
delivers roaming records and statements, and clears each day at the house.

No transaction is held open across a call to another platform: each step reads what is due in
one transaction, talks to peers, and writes the outcome in another.
"""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from suanli.adapters.clock import Clock
from suanli.adapters.peers import (
    PeerAddress,
    PeerClient,
    PeerError,
    PeerRejected,
    read_answer,
)
from suanli.adapters.platform_key import PlatformIdentity, identity
from suanli.adapters.store import Database
from suanli.domain import clearing as rules
from suanli.domain import federation as fed
from suanli.domain.ids import ComputeId
from suanli.federation_settings import FederationSettings
from suanli.protocol import federation as wire
from suanli.services.clearing import cycle as clearing
from suanli.services.federation import platforms as federation
from suanli.services.federation import sync as federation_sync
from suanli.services.roaming import home as roaming
from suanli.services.roaming import host as roaming_host
from suanli.services.roaming import records as roaming_records

log = logging.getLogger("suanli.federation")
MAX_ERRORS_LOGGED = 20
NONCE_PURGE_S = 30.0
MAX_COLLECT_PAGES = 1_000
REGISTERED = "registered"
A = TypeVar("A", bound=wire.Message)


class FederationRuntime:
    """Owns the key, the peer client and the loop thread of one platform node."""

    def __init__(self, db: Database, clock: Clock, authority: ComputeId, *, name: str,
                 public_url: str, settings: FederationSettings, claim_timeout_s: int = 120,
                 me: PlatformIdentity | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.authority_id = authority
        self.own = authority.body
        self.name, self.public_url = name, public_url.rstrip("/")
        self.level = settings.level()
        self.parent_authority = fed.parent_of(self.own)
        self.house = self.own.split(".")[0]  # the national platform clears
        self.claim_timeout_s = claim_timeout_s
        self.me = me or identity(self.own, settings.key_file)
        self.peers = PeerClient(self.me, timeout_s=settings.peer_timeout_s,
                                retries=settings.peer_retries, transport=transport,
                                wall_clock=lambda: clock.now().timestamp())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clearing_lock = threading.Lock()
        self._statements_lock = threading.Lock()
        self._errors = 0
        self._last_purge = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Record this platform, its key and the roaming configuration (idempotent)."""
        if self.settings.parent and not self.parent_authority:
            raise ValueError(f"{self.own} is a root authority and cannot have a parent")
        now = self.clock.now()
        with self.db.unit_of_work() as session:
            federation.ensure_self(session, self.me, name=self.name, level=self.level,
                                   endpoint=self.public_url, parent=self.parent_authority,
                                   now=now)
            federation.put_state(session, roaming.CONFIG, {
                "authority": self.own, "policy": self.settings.roaming_policy,
                "price_margin": self.settings.roaming_price_margin,
                "give_up_s": max(30.0, 2 * self.claim_timeout_s)}, now)

    def start(self) -> None:
        self.prepare()
        if self.settings.run_federation:
            self._thread = threading.Thread(target=self._run, name="suanli-federation",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.peers.close()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.federation_interval_s):
            try:
                self.tick()
                self._errors = 0
            except Exception:  # the loop must outlive one bad pass; the next retries
                self._errors += 1
                if self._errors <= MAX_ERRORS_LOGGED:
                    log.exception("federation pass failed")

    def tick(self) -> None:
        """One pass; each step stands alone, so one peer being down stops nothing else."""
        for step in (self._purge, self._register, self._sync, self._forward, self._push_status,
                     self._records, self._statements, self._auto_clear):
            if self._stop.is_set():
                return
            try:
                step()
            except PeerError as exc:
                log.info("federation %s: %s", step.__name__, exc)

    # -- helpers -----------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def address(self, authority: str) -> PeerAddress:
        with self.db.unit_of_work() as session:
            return federation.peer_address(session, authority)

    def parent_address(self) -> PeerAddress | None:
        if not (self.settings.parent and self.parent_authority):
            return None
        with self.db.unit_of_work() as session:
            known = federation.platform(session, self.parent_authority)
            if known is not None and known.endpoint:
                return federation.peer_address(session, self.parent_authority)
        return PeerAddress(self.parent_authority, self.settings.parent.rstrip("/"), None)

    def call(self, authority: str, method: str, path: str, body: Any = None) -> Any:
        """A raw exchange (operators' tools, tests); the loop speaks in `send`."""
        return self.peers.call(self.address(authority), method, path, body).body

    def send(self, authority: str, path: str, request: wire.Message, answer: type[A]) -> A:
        """POST one protocol message to a known platform; its answer, checked."""
        return self.peers.send(self.address(authority), "POST", path, request, answer)

    def signed_response_headers(self, request_nonce: str, status: int, audience: str,
                                body: bytes) -> dict[str, str]:
        nonce, stamp = secrets.token_urlsafe(18), int(self.now().timestamp())
        message = fed.canonical_response(request_nonce, status, audience, self.me.key_id, stamp,
                                         nonce, fed.sha256_hex(body))
        return fed.SignatureHeaders(self.me.key_id, stamp, nonce,
                                    fed.sign(self.me.private_key, message),
                                    audience).as_headers()

    # -- registration and sync with the parent ------------------------------------------------

    def _purge(self) -> None:
        now = self.now()
        if now.timestamp() - self._last_purge >= NONCE_PURGE_S:
            with self.db.unit_of_work() as session:
                federation.purge_nonces(session, now)
            self._last_purge = now.timestamp()

    def _register(self) -> None:
        parent = self.parent_address()
        if parent is None:
            return
        with self.db.unit_of_work() as session:
            done = federation.get_state(session, REGISTERED)
        if done and done.get("endpoint") == self.public_url and done.get("key_id") == \
                self.me.key_id and parent.public_raw is not None:
            return
        offer = wire.PlatformRegistration(
            authority=self.own, name=self.name, level=self.level, endpoint=self.public_url,
            public_key=self.me.public_key_text, key_id=self.me.key_id,
            enrolment_token=self.settings.enrolment_token)
        reply = self.peers.call(parent, "POST", "/federation/v1/platforms/register",
                                offer.dump())
        answer = read_answer(parent.authority, wire.RegistrationAnswer, reply.body)
        descriptor = answer.parent
        raw = fed.public_key_from_text(descriptor.public_key)
        if descriptor.authority != parent.authority or \
                not reply.verify_with(parent.authority, raw, self.own):
            raise PeerRejected(parent.authority, 502, {"detail": "the parent's answer is not "
                                                       "signed by the key it presents"})
        now = self.now()
        with self.db.unit_of_work() as session:
            federation.upsert_platform(session, authority=parent.authority,
                                       name=descriptor.name, level=descriptor.level,
                                       parent=descriptor.parent,
                                       endpoint=parent.endpoint, now=now)
            federation.add_key(session, descriptor.key_id, parent.authority,
                               descriptor.public_key, now)
            federation.apply_registry(session, self.own, answer.registry.dump(),
                                      trusted_for=self.house, now=now, skip_within=self.own)
            federation.put_state(session, REGISTERED, {"endpoint": self.public_url,
                                                       "key_id": self.me.key_id}, now)
        log.info("registered with parent %s at %s", parent.authority, parent.endpoint)

    def _sync(self) -> None:
        now = self.now()
        with self.db.unit_of_work() as session:
            request = federation_sync.request(
                session, self.own, now, heartbeat_s=self.settings.catalog_heartbeat_s,
                pull_s=self.settings.catalog_pull_s,
                registered=bool(self.settings.parent
                                and federation.get_state(session, REGISTERED)))
        if request is None:
            return
        parent = self.parent_address()
        assert parent is not None
        reply = self.peers.send(parent, "POST", "/federation/v1/sync",
                                wire.SyncRequest.model_validate(request), wire.SyncAnswer)
        with self.db.unit_of_work() as session:
            federation_sync.apply_reply(session, self.own, self.house,
                                        self.parent_authority or self.own, request,
                                        reply.dump(), self.now())

    def handle_sync(self, sender: str, request: wire.SyncRequest) -> wire.SyncAnswer:
        """The parent's side of a sync: take the child's subtree, answer with the rest."""
        with self.db.unit_of_work() as session:
            answer = federation_sync.answer(session, self.own, sender, request.dump(),
                                            self.now())
        return wire.SyncAnswer.model_validate(answer)

    # -- jobs --------------------------------------------------------------------------------

    def _forward(self) -> None:
        now = self.now()
        with self.db.unit_of_work() as session:
            config = roaming.RoamingConfig.load(session)
            if config is None:
                return
            work = roaming.due_outbound(session, config, now)
        for item in work:
            offer: wire.Attempt = wire.Forward.model_validate(item.body) \
                if item.kind == "forward" else wire.Withdraw.model_validate(item.body)
            try:
                answer = self.send(item.host, f"/federation/v1/jobs/{item.kind}", offer,
                                   wire.ForwardAnswer)
            except PeerError as exc:
                with self.db.unit_of_work() as session:
                    roaming.record_unreachable(session, item, str(exc), self.now())
                continue
            with self.db.unit_of_work() as session:
                roaming.apply_answer(session, item, answer.dump(), self.now())

    def _push_status(self) -> None:
        now = self.now()
        with self.db.unit_of_work() as session:
            roaming_host.mark_status_changes(session, now)
            pushes = roaming_host.due_status(session, now)
        for push in pushes:
            ok = True
            try:
                self.send(push.home, "/federation/v1/jobs/status",
                          wire.StatusPush.model_validate({**push.status, "home": push.home}),
                          wire.Ack)
            except PeerError as exc:
                ok = False
                log.info("status of %s to %s: %s", push.home_job_id, push.home, exc)
            with self.db.unit_of_work() as session:
                roaming_host.status_pushed(session, push, self.now(), ok=ok)

    def _records(self) -> None:
        with self.db.unit_of_work() as session:
            roaming_records.issue_records(session, self.me, self.now(),
                                          self.settings.clearing_cutoff_hour)
        with self.db.unit_of_work() as session:
            deliveries = roaming_records.due_deliveries(session, self.now())
        for delivery in deliveries:
            ok = True
            try:
                self.send(delivery.home, "/federation/v1/roaming-records",
                          wire.RecordDelivery.model_validate(delivery.payload),
                          wire.RecordReceipt)
            except PeerError as exc:
                ok = False
                log.info("record %s to %s: %s", delivery.record_id, delivery.home, exc)
            with self.db.unit_of_work() as session:
                roaming_records.delivery_done(session, delivery.record_id, self.now(), ok=ok)

    # -- clearing ----------------------------------------------------------------------------

    def _statements(self) -> None:
        if self.own != self.house:
            return
        with self._statements_lock:  # the loop and an operator's cycle may both deliver
            self._deliver_statements()

    def _deliver_statements(self) -> None:
        with self.db.unit_of_work() as session:
            due = [(r.cycle_id, r.platform, {"statement": r.document, "signature": r.signature,
                                             "key_id": r.key_id})
                   for r in clearing.due_statements(session, self.now())]
        for cycle_id, platform, payload in due:
            state, ok = None, True
            try:
                if platform == self.own:
                    with self.db.unit_of_work() as session:
                        state = clearing.accept_statement(session, self.own, self.house,
                                                          payload, self.now())["state"]
                else:
                    state = self.send(platform, "/federation/v1/clearing/statements",
                                      wire.StatementDelivery.model_validate(payload),
                                      wire.StatementAnswer).state
            except PeerError as exc:
                ok = False
                log.info("statement %s to %s: %s", cycle_id, platform, exc)
            with self.db.unit_of_work() as session:
                if platform != self.own or not ok:
                    clearing.statement_delivered(session, cycle_id, platform, self.now(),
                                                 ok=ok, state=state)

    def _auto_clear(self) -> None:
        if self.own != self.house or not self.settings.clearing_auto:
            return
        now = self.now()
        closed = rules.business_date(now - timedelta(seconds=self.settings.clearing_grace_s),
                                     self.settings.clearing_cutoff_hour)
        day = (rules.parse_date(closed) - timedelta(days=1)).isoformat()
        with self.db.unit_of_work() as session:
            done = any(c.through_date >= day for c in clearing.cycles(session, limit=5))
        if not done:
            self.run_clearing(day, created_by="daily cut-off")

    def run_clearing(self, through_date: str, created_by: str | None) -> dict[str, Any]:
        """Run one clearing cycle now (the house only); returns its summary."""
        if self.own != self.house:
            raise fed.SignatureRejected(f"only the national platform {self.house} clears")
        through = rules.parse_date(through_date, "through_date").isoformat()
        with self._clearing_lock:
            with self.db.unit_of_work() as session:
                cycle_id = clearing.cycle_id_for(session, through)
                participants = [p.authority for p in federation.platforms(session)
                                if p.state == "active" and (p.is_self or p.endpoint)]
            sides: dict[str, dict[str, list[Any]]] = {}
            unreachable = []
            for platform in participants:
                try:
                    sides[platform] = self._collect(platform, cycle_id, through)
                except PeerError as exc:
                    unreachable.append(platform)
                    log.info("clearing %s: %s unreachable: %s", cycle_id, platform, exc)
            now = self.now()
            summary, statements, mismatches = clearing.build_statements(
                self.me, cycle_id, through, sides, unreachable, now)
            with self.db.unit_of_work() as session:
                clearing.store_cycle(session, self.me, cycle_id, through, summary, statements,
                                     mismatches, created_by, now)
        self._statements()
        return {"cycle_id": cycle_id, "through_date": through, **summary}

    def _collect(self, platform: str, cycle_id: str, through: str) -> dict[str, list[Any]]:
        """Every entry a platform reports for the cycle, as columns, page by page."""
        columns: dict[str, list[Any]] = {}
        after = None
        with self.db.unit_of_work() as session:
            pending = clearing.pending_cycles(session, platform)
        for _ in range(MAX_COLLECT_PAGES):
            if platform == self.own:
                with self.db.unit_of_work() as session:
                    page, after = clearing.collect(session, self.own, self.house, self.house,
                                                   cycle_id, through, after,
                                                   pending_cycles=pending)
            else:
                reply = self.send(platform, "/federation/v1/clearing/collect",
                                  wire.CollectRequest(cycle_id=cycle_id, through_date=through,
                                                      after=after, pending_cycles=pending),
                                  wire.CollectAnswer)
                page, after = reply.columns, reply.next_after
            for name, values in page.items():
                columns.setdefault(name, []).extend(values)
            if not after:
                return columns
        raise PeerRejected(platform, 413, {"detail": f"more than {MAX_COLLECT_PAGES} pages"})
