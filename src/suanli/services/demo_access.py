"""The demo's keys: a consumer with an illustrative balance, and the demo providers' key that
the demo agent runs with. Kept across restarts, so a restarted demo is the same demo."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store.repositories import registry as registry_repo
from suanli.adapters.store.repositories import tenants as tenants_repo
from suanli.domain.errors import Unauthenticated
from suanli.domain.ids import ComputeId
from suanli.domain.tenants import Principal, Role, TenantClass, TenantRecord
from suanli.services import tenants
from suanli.services.billing import wallets as billing

DEMO_BALANCE_FEN = 1_000_000  # 10,000 CNY
DEMO_CONSUMER_NAME = "demo consumer"
MAX_DEMO_POOLS = 256  # what one agent may serve (services.agents.MAX_POOLS_PER_AGENT)


@dataclass(frozen=True)
class DemoKeys:
    """Secrets: written only to the demo key file (mode 0600) and printed by `serve --demo`."""

    consumer_tenant_id: str
    consumer_key: str
    provider_tenant_id: str
    provider_key: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> DemoKeys | None:
        """The keys from a saved document, or None when it is not one."""
        names = ("consumer_tenant_id", "consumer_key", "provider_tenant_id", "provider_key")
        if not isinstance(data, dict) or not all(isinstance(data.get(n), str) for n in names):
            return None
        return cls(*(data[n] for n in names))


def _key_works(session: Session, key: str, tenant_id: str, role: Role) -> bool:
    try:
        principal = tenants.authenticate(session, key)
    except Unauthenticated:
        return False
    return principal.tenant_id == tenant_id and principal.role == role


def _tenant(session: Session, tenant_id: str, role: Role) -> TenantRecord | None:
    row = tenants_repo.get_tenant(session, tenant_id)
    return row if row is not None and row.role == role.value and not row.disabled else None


def demo_provider_tenant(session: Session) -> str:
    """The tenant that owns the illustrative providers (the demo must be loaded)."""
    tenant_id = registry_repo.first_illustrative_provider_tenant(session)
    assert tenant_id is not None, "the demo federation is not loaded"
    return tenant_id


def _operator(session: Session, authority: ComputeId, now: datetime) -> str:
    operator_id = tenants_repo.first_tenant_id_with_role(session, Role.OPERATOR.value)
    if operator_id is None:
        operator_id = tenants.create_tenant(session, authority, "demo operator", Role.OPERATOR,
                                            TenantClass.PUBLIC, now).tenant_id
    return operator_id


def _consumer(session: Session, authority: ComputeId, now: datetime,
              saved: DemoKeys | None) -> tuple[str, str]:
    """(tenant id, key) of the demo consumer: the saved one if its key still works, else the
    existing demo consumer with a new key, else a new one with its illustrative balance."""
    if saved and _key_works(session, saved.consumer_key, saved.consumer_tenant_id,
                            Role.CONSUMER):
        return saved.consumer_tenant_id, saved.consumer_key
    existing = _tenant(session, saved.consumer_tenant_id, Role.CONSUMER) if saved else None
    if existing is None:
        existing = tenants_repo.first_enabled_tenant_named(session, DEMO_CONSUMER_NAME,
                                                           Role.CONSUMER.value)
    if existing is not None:
        return existing.id, tenants.issue_key(session, existing.id, now)
    consumer = tenants.create_tenant(session, authority, DEMO_CONSUMER_NAME, Role.CONSUMER,
                                     TenantClass.START_UP, now)
    # An illustrative prepaid balance, so the demo consumer's jobs pass the funds check.
    billing.deposit(session, Principal(_operator(session, authority, now), Role.OPERATOR),
                    consumer.tenant_id, DEMO_BALANCE_FEN, f"demo-balance-{consumer.tenant_id}",
                    now, reference="illustrative demo balance")
    return consumer.tenant_id, consumer.api_key


def demo_keys(session: Session, authority: ComputeId, now: datetime,
              saved: DemoKeys | None = None) -> tuple[DemoKeys, bool]:
    """The demo's keys, and whether they are the saved ones unchanged. A saved key that no
    longer authenticates (another database, a revoked key) is replaced, never trusted."""
    provider_id = demo_provider_tenant(session)
    if saved and saved.provider_tenant_id == provider_id and _key_works(
            session, saved.provider_key, provider_id, Role.PROVIDER):
        provider_key = saved.provider_key
    else:
        provider_key = tenants.issue_key(session, provider_id, now)
    consumer_id, consumer_key = _consumer(session, authority, now, saved)
    keys = DemoKeys(consumer_id, consumer_key, provider_id, provider_key)
    return keys, keys == saved


def demo_pool_ids(session: Session) -> list[str]:
    """The illustrative pools that can take work, for the demo agent to serve."""
    rows = registry_repo.illustrative_pool_ids(session, MAX_DEMO_POOLS + 1)
    assert len(rows) <= MAX_DEMO_POOLS, "more demo pools than one agent may serve"
    return rows
