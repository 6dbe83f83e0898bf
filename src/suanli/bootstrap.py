"""Builds a platform node: settings, store, clock, search index, background loops, federation.

One place wires them (`build_node`); the API, the CLI and the tests all go through it. The
start-up chores of a node live here too: its authority, the first operator key, the demo.
""" 

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from suanli.adapters.clock import Clock, SystemClock
from suanli.adapters.platform_key import PlatformIdentity
from suanli.adapters.store import Database, create_database
from suanli.adapters.store.tables import PoolRow, ProviderRow, SiteRow, TenantRow
from suanli.catalog import Catalog, load_catalog, load_cities
from suanli.demo import demo_federation
from suanli.domain.errors import ValidationFailed
from suanli.domain.geo import Cities
from suanli.domain.ids import ComputeId
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.federation_settings import FederationSettings
from suanli.services import demo_access, tenants
from suanli.services.demo_access import DemoKeys
from suanli.services.dispatch.background import SchedulerLoop
from suanli.services.peering.runtime import FederationRuntime
from suanli.services.registry import inventory as registry
from suanli.services.registry.pool_index import PoolIndex
from suanli.settings import Settings


def parse_authority(text: str) -> ComputeId:
    """`CN` or `CN.GD`: the platform authority this node issues identifiers under."""
    try:
        return ComputeId.platform(*text.strip().upper().split("."))
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, field="authority") from None


@dataclass
class Node:
    """One platform node: what every request handler and background loop needs."""

    settings: Settings
    db: Database
    clock: Clock
    authority: ComputeId
    pool_index: PoolIndex | None = None  # None: pool search orders in SQL
    # The packaged reference data, read once per process and handed to whoever needs it.
    catalog: Catalog = field(default_factory=load_catalog)
    cities: Cities = field(default_factory=load_cities)
    # Federation: `suanli serve` sets these before start; tests set a transport of their own.
    federation_settings: FederationSettings | None = None
    federation_transport: httpx.BaseTransport | None = None
    federation: FederationRuntime | None = None
    _scheduler: SchedulerLoop | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def federation_runtime(self) -> FederationRuntime:
        """The node's federation runtime, built on first use (its loop runs only after
        `start`; a node that never started, e.g. in a test, answers peers all the same)."""
        if self.federation is None:
            with self._lock:
                if self.federation is None:
                    runtime = self.build_federation_runtime()
                    runtime.prepare()
                    self.federation = runtime
        return self.federation

    def build_federation_runtime(self) -> FederationRuntime:
        """Without a key file configured (`suanli serve` always sets one) the key lives in
        memory only: a node in a test never writes key files where it runs."""
        settings = self.federation_settings or FederationSettings()
        me = _ephemeral(self.authority.body) if settings.key_file is None else None
        public_url = settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
        return FederationRuntime(self.db, self.clock, self.authority,
                                 name=self.settings.platform_name, public_url=public_url,
                                 settings=settings, claim_timeout_s=self.settings.claim_timeout_s,
                                 me=me, transport=self.federation_transport)

    def start(self) -> None:
        """Start the background work: scheduler and failover, index warm-up, federation."""
        if self.settings.run_scheduler:
            self._scheduler = SchedulerLoop(self.db, self.clock, self.settings.scheduler_interval_s,
                                            heartbeat_ttl_s=self.settings.heartbeat_ttl_s,
                                            claim_timeout_s=self.settings.claim_timeout_s)
            self._scheduler.start()
        if self.pool_index is not None:
            self.pool_index.warm(self.db.engine)
        with self._lock:
            if self.federation is None:
                self.federation = self.build_federation_runtime()
        self.federation.start()

    def stop(self) -> None:
        if self.federation is not None:
            self.federation.stop()
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None


def _ephemeral(authority: str) -> PlatformIdentity:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return PlatformIdentity(authority, key, raw)


def build_node(settings: Settings | None = None, *, database: Database | None = None,
               clock: Clock | None = None) -> Node:
    """A node from its settings; `database` and `clock` are given by tests and the simulator."""
    settings = settings or Settings()
    if database is None:
        database = create_database(settings.database_url, schema=settings.database_schema)
        if settings.auto_migrate:
            database.migrate()
    return Node(settings=settings, db=database, clock=clock or SystemClock(),
                authority=parse_authority(settings.authority),
                pool_index=PoolIndex(background=True) if settings.search_index else None,
                catalog=load_catalog(), cities=load_cities())


def ensure_operator(db: Database, authority: ComputeId, clock: Clock) -> str | None:
    """On an empty database, create the first operator tenant and return its key (once)."""
    with db.unit_of_work() as session:
        if session.scalar(select(func.count()).select_from(TenantRow)):
            return None
        new = tenants.create_tenant(session, authority, "platform operator", Role.OPERATOR,
                                    TenantClass.PUBLIC, clock.now())
        return new.api_key


def _fields(demo_object: object, allowed: frozenset[str]) -> dict[str, Any]:
    return {name: getattr(demo_object, name) for name in allowed}


@dataclass(frozen=True)
class DemoSummary:
    providers: int
    sites: int
    pools: int
    keys: DemoKeys
    loaded_now: bool
    keys_reused: bool = False

    @property
    def consumer_key(self) -> str:
        return self.keys.consumer_key


def load_demo(db: Database, authority: ComputeId, clock: Clock, seed: int = 7,
              saved_keys: DemoKeys | None = None) -> DemoSummary:
    """Load the illustrative national federation once; the demo's keys are `saved_keys` where
    they still authenticate, else new ones (see services.demo_access)."""
    now = clock.now()
    with db.unit_of_work() as session:
        already = session.scalar(select(func.count()).select_from(ProviderRow)
                                 .where(ProviderRow.illustrative.is_(True)))
        loaded_now = not already
        if loaded_now:
            federation = demo_federation(seed)
            owner = tenants.create_tenant(session, authority, "demo providers (illustrative)",
                                          Role.PROVIDER, TenantClass.ENTERPRISE, now)
            principal = Principal(owner.tenant_id, Role.PROVIDER)
            provider_ids = [
                registry.create_provider(session, principal, authority, name=p.name,
                                         kind=p.kind, now=now, illustrative=True).id
                for p in federation.providers]
            site_ids = [
                registry.create_site(session, principal, provider_ids[s.provider_index],
                                     _fields(s, registry.SITE_FIELDS), now,
                                     illustrative=True).id
                for s in federation.sites]
            for pool in federation.pools:
                registry.create_pool(session, principal, site_ids[pool.site_index],
                                     accelerator=pool.accelerator,
                                     fields=_fields(pool, registry.POOL_FIELDS), now=now,
                                     illustrative=True)
        keys, reused = demo_access.demo_keys(session, authority, now, saved_keys)
        counts = [session.scalar(select(func.count()).select_from(table)
                                 .where(table.illustrative.is_(True)))
                  for table in (ProviderRow, SiteRow, PoolRow)]
    return DemoSummary(*counts, keys=keys, loaded_now=loaded_now, keys_reused=reused)
