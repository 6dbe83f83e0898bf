"""Billing (计费): wallets, deposits, the money held for a lease, and the job lifecycle's hooks.

The hooks the scheduler and the agents call (charging a usage record is
`services.billing.charging.charge`):

- `hold_shortfall` / `on_lease_opened`: before a lease holds devices, a two-phase hold takes
  the job's worst-case price from the tenant's wallet (see `hold_estimate_fen`);
- `on_lease_ended_without_usage` and `sweep`: the hold goes back to the wallet.

Account ids and hold states are named in `domain.accounts`. See docs/billing.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import billing as billing_repo
from suanli.domain.accounts import (
    BILLING_MODES,
    EXTERNAL_ACCOUNT,
    FEES_ACCOUNT,
    HOLD_GRACE_S,
    POSTPAID,
    PREPAID,
    HoldState,
    receivable_account_id,
    wallet_account_id,
)
from suanli.domain.billing_records import HeldJob, HoldRecord, Identified, PricedPool
from suanli.domain.errors import Conflict, Forbidden, ValidationFailed
from suanli.domain.holds import hold_estimate_fen
from suanli.domain.jobs import JobSpec, LeaseState, check_idempotency_key
from suanli.domain.ledger import (
    Account,
    AccountKind,
    Transfer,
    TransferKind,
    TransferRecord,
    TransferState,
    void_pending,
)
from suanli.domain.tariffs import Tariff
from suanli.domain.tenants import Principal, Role
from suanli.services import tenants
from suanli.services.billing import tariffs as tariff_store

MAX_DEPOSIT_FEN = 10**12  # ten billion CNY in one deposit: a sanity bound
MAX_SWEEP = 500
_REFERENCE_CHARS = 128


def ensure_platform_accounts(session: Session, now: datetime) -> None:
    ledger_store.open_account(session, Account.open(EXTERNAL_ACCOUNT, AccountKind.EXTERNAL), now)
    ledger_store.open_account(session, Account.open(FEES_ACCOUNT, AccountKind.PLATFORM_FEES), now)


def ensure_wallet(session: Session, tenant_id: str, now: datetime) -> Account:
    return ledger_store.open_account(
        session, Account.open(wallet_account_id(tenant_id), AccountKind.TENANT_WALLET), now,
        owner_tenant_id=tenant_id)


def ensure_receivable(session: Session, provider_tenant_id: str, now: datetime) -> Account:
    return ledger_store.open_account(
        session, Account.open(receivable_account_id(provider_tenant_id),
                              AccountKind.PROVIDER_RECEIVABLE), now,
        owner_tenant_id=provider_tenant_id)


def check_reference(value: str, field: str = "reference") -> str:
    if len(value) > _REFERENCE_CHARS or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationFailed(f"at most {_REFERENCE_CHARS} printable characters", field=field)
    return value


# -- billing modes ---------------------------------------------------------------------------

def billing_mode(session: Session, tenant_id: str) -> str:
    """prepaid: jobs need a hold from the wallet, charges are taken from it. postpaid: no hold,
    usage is due on the monthly bill. A tenant nobody has deposited for is postpaid; the first
    deposit makes it prepaid (unless an operator chose a mode)."""
    mode = billing_repo.billing_mode(session, tenant_id)
    return POSTPAID if mode is None else mode


def set_billing_mode(session: Session, principal: Principal, tenant_id: str, mode: str,
                     now: datetime) -> str:
    if not principal.is_operator:
        raise Forbidden("only an operator sets a tenant's billing mode")
    if mode not in BILLING_MODES:
        raise ValidationFailed(f"one of {', '.join(BILLING_MODES)}", field="mode")
    tenant = tenants.get_tenant(session, tenant_id)
    billing_repo.save_billing_mode(session, tenant.id, mode, principal.tenant_id, now)
    return mode


# -- wallets and deposits --------------------------------------------------------------------

@dataclass(frozen=True)
class WalletView:
    tenant_id: str
    mode: str
    wallet: Account
    receivable: Account | None  # for a provider: what the platform owes it


def wallet(session: Session, principal: Principal, tenant_id: str | None = None) -> WalletView:
    """A tenant's wallet as it stands (zero balances before its first deposit)."""
    tenant = tenants.get_tenant(session, tenants.scoped_tenant(principal, tenant_id))
    account = (ledger_store.get_account(session, wallet_account_id(tenant.id))
               or Account.open(wallet_account_id(tenant.id), AccountKind.TENANT_WALLET))
    receivable = None
    if tenant.role == Role.PROVIDER.value:
        receivable = (ledger_store.get_account(session, receivable_account_id(tenant.id))
                      or Account.open(receivable_account_id(tenant.id),
                                      AccountKind.PROVIDER_RECEIVABLE))
    return WalletView(tenant.id, billing_mode(session, tenant.id), account, receivable)


def deposit(session: Session, principal: Principal, tenant_id: str, amount_fen: int,
            idempotency_key: str, now: datetime, reference: str = ""
            ) -> tuple[TransferRecord, bool]:
    """An operator records money paid in for a tenant; the same key again is the same
    deposit (returns created=False), a different amount under it is a 409."""
    if not principal.is_operator:
        raise Forbidden("only an operator records deposits")
    key = check_idempotency_key(idempotency_key)
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or not (
            1 <= amount_fen <= MAX_DEPOSIT_FEN):
        raise ValidationFailed(f"must be an int fen between 1 and {MAX_DEPOSIT_FEN}",
                               field="amount_fen")
    tenant = tenants.get_tenant(session, tenant_id)
    check_reference(reference)
    ensure_platform_accounts(session, now)
    ensure_wallet(session, tenant.id, now)
    billing_repo.ensure_billing_mode(session, tenant.id, PREPAID, principal.tenant_id, now)
    digest = hashlib.sha256(f"{tenant.id}\n{key}".encode()).hexdigest()[:40]
    transfer = Transfer(f"deposit:{digest}", EXTERNAL_ACCOUNT, wallet_account_id(tenant.id),
                        amount_fen, "deposit", reference=reference)
    existing = ledger_store.get_transfer(session, transfer.id)
    try:
        record = ledger_store.apply(session, transfer, now)
    except Conflict:
        raise Conflict("this Idempotency-Key was used for a different deposit",
                       field="Idempotency-Key") from None
    return record, existing is None


# -- the hold for a lease --------------------------------------------------------------------

@dataclass(frozen=True)
class HoldPlan:
    tariff: Tariff
    amount_fen: int
    spec: JobSpec


def plan_hold(session: Session, job: HeldJob, pool: PricedPool) -> HoldPlan:
    spec = JobSpec.from_json(job.spec)
    tariff = tariff_store.current_tariff(session, pool).tariff
    units = tariff_store.units_rating(pool, spec.workload_class)
    return HoldPlan(tariff, hold_estimate_fen(tariff, spec, units), spec)


def hold_shortfall(session: Session, job: HeldJob, pool: PricedPool) -> str | None:
    """Why the tenant's wallet cannot cover the hold for this job on this pool, or None."""
    if billing_mode(session, job.tenant_id) == POSTPAID:
        return None
    account = ledger_store.get_account(session, wallet_account_id(job.tenant_id))
    available = 0 if account is None else account.available_fen
    plan = plan_hold(session, job, pool)
    if plan.amount_fen <= available:
        return None
    return (f"insufficient funds: a hold of {plan.amount_fen} fen is needed on pool {pool.id} "
            f"({plan.spec.devices} devices x {plan.spec.time_limit_s} s under tariff "
            f"{plan.tariff.id}); wallet {wallet_account_id(job.tenant_id)} has {available} "
            f"fen available")


def on_lease_opened(session: Session, job: HeldJob, lease: Identified, pool: PricedPool,
                    now: datetime) -> HoldRecord:
    """Hold the job's worst-case price for the lease (InsufficientFunds if the wallet cannot)."""
    plan = plan_hold(session, job, pool)
    transfer_id = None
    if plan.amount_fen > 0 and billing_mode(session, job.tenant_id) == PREPAID:
        ensure_wallet(session, job.tenant_id, now)
        ensure_receivable(session, pool.tenant_id, now)
        transfer_id = f"{lease.id}:hold"
        ledger_store.apply(session, Transfer(
            transfer_id, wallet_account_id(job.tenant_id), receivable_account_id(pool.tenant_id),
            plan.amount_fen, "job-hold", TransferKind.PENDING,
            timeout_s=plan.spec.time_limit_s + HOLD_GRACE_S, reference=job.id), now)
    return billing_repo.add_hold(session, HoldRecord(
        lease_id=lease.id, job_id=job.id, tenant_id=job.tenant_id, pool_id=pool.id,
        transfer_id=transfer_id, amount_fen=plan.amount_fen if transfer_id else 0,
        tariff=tariff_store.to_document(plan.tariff),
        state=(HoldState.OPEN if transfer_id else HoldState.FREE).value, created_at=now))


def release_hold(session: Session, hold: HoldRecord, now: datetime) -> None:
    """Give an open hold back to the wallet: void it, or mark it expired if it already is."""
    if hold.state != HoldState.OPEN:
        return
    assert hold.transfer_id is not None
    record = ledger_store.get_transfer(session, hold.transfer_id)
    assert record is not None, hold.transfer_id
    if record.state == TransferState.PENDING and record.expires_at is not None and (
            now >= record.expires_at):
        record = ledger_store.expire(session, hold.transfer_id, now) or record
    if record.state == TransferState.PENDING:
        ledger_store.apply(session, void_pending(f"{hold.lease_id}:void", hold.transfer_id,
                                                 "job-release", reference=hold.job_id), now)
        state = HoldState.VOIDED.value
    else:
        # settled elsewhere meanwhile: the hold takes the ledger's word (posted, voided, expired)
        state = HoldState(record.state.value).value
    billing_repo.set_hold_state(session, hold.lease_id, state, now)


def on_lease_ended_without_usage(session: Session, lease: Identified, now: datetime) -> None:
    """The lease ended and nothing was used (expired, cancelled before claim, no usage)."""
    hold = billing_repo.get_hold(session, lease.id)
    if hold is not None:
        release_hold(session, hold, now)


def sweep(session: Session, now: datetime) -> int:
    """The background loop's billing step: holds of leases that ended without usage go back
    to the wallet (e.g. a job cancelled before an agent claimed it), and ledger holds past
    their timeout expire. Returns how many holds were released."""
    stale = billing_repo.stale_open_holds(session, HoldState.OPEN.value,
                                          LeaseState.ACTIVE.value, MAX_SWEEP)
    for hold in stale:
        release_hold(session, hold, now)
    expired = ledger_store.expire_due(session, now, MAX_SWEEP)
    if expired:
        billing_repo.set_holds_state_by_transfer(session, [r.id for r in expired],
                                                 HoldState.EXPIRED.value, now)
    return len(stale) + len(expired)
