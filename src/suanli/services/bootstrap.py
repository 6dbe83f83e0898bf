"""Start-up chores of a node: its authority, the first operator key, the demo federation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from suanli.adapters.clock import Clock
from suanli.adapters.store import Database
from suanli.adapters.store.tables import ProviderRow, TenantRow
from suanli.domain.errors import ValidationFailed
from suanli.domain.ids import ComputeId
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.services import demo_access, registry, tenants
from suanli.services.demo_access import DemoKeys


def parse_authority(text: str) -> ComputeId:
    """`CN` or `CN.GD`: the platform authority this node issues identifiers under."""
    try:
        return ComputeId.platform(*text.strip().upper().split("."))
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, field="authority") from None


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
    from suanli.demo import demo_federation

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
                  for table in (ProviderRow, registry.SiteRow, registry.PoolRow)]
    return DemoSummary(*counts, keys=keys, loaded_now=loaded_now, keys_reused=reused)
