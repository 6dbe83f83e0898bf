"""The money of roaming, in the billing ledger: the host pays its provider, the home platform
charges its tenant (entitlements first, then the wallet), and both books carry what one
platform owes the other until clearing.

Accounts (besides billing's wallets, receivables and fees):

- `peer:<authority>` (peer_clearing): this platform's position with one peer. At the host a
  debit balance (the home platform owes it), at home a credit balance (it owes the host).
- `entitlement:<tenant>` (entitlement): the money a tenant prepaid for compute units.
- `platform:roaming` (peer_clearing, swings both ways): what the home platform gains or
  fronts on roaming: entitlement value beyond the host's price, or a postpaid tenant's
  roaming usage it pays the host for before the tenant pays it.
- `clearing:<house>` (peer_clearing): the position with the clearing house after a
  settlement statement moved the peer positions it cleared onto it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import billing as billing_store
from suanli.adapters.store.repositories import roaming as store
from suanli.domain.accounts import (
    FEES_ACCOUNT,
    PREPAID,
    fund_account_id,
    receivable_account_id,
    wallet_account_id,
)
from suanli.domain.federation_records import UsageView
from suanli.domain.ledger import Account, AccountKind, Transfer
from suanli.domain.resources import Hub
from suanli.domain.roaming import EntitlementBalance, plan_home_charge
from suanli.domain.tenants import TenantClass
from suanli.domain.vouchers import (
    LineCategory,
    LineContext,
    ProgrammeBudget,
    Voucher,
    VoucherOutcome,
    apply_vouchers,
)
from suanli.services import tenants
from suanli.services.billing import wallets as billing
from suanli.services.billing.charging import PLATFORM_FEE_RATE
from suanli.services.roaming.entitlements import entitlement_account_id

ROAMING_ACCOUNT = "platform:roaming"
MAX_ENTITLEMENTS_DRAWN = 64
MAX_VOUCHERS = 64
MICRO = 10**6


def peer_account_id(authority: str) -> str:
    return f"peer:{authority}"


def clearing_account_id(house: str) -> str:
    return f"clearing:{house}"


def open_peer(session: Session, authority: str, now: datetime) -> str:
    account_id = peer_account_id(authority)
    ledger_store.open_account(session, Account.open(account_id, AccountKind.PEER_CLEARING), now)
    return account_id


def open_clearing(session: Session, house: str, now: datetime) -> str:
    account_id = clearing_account_id(house)
    ledger_store.open_account(session, Account.open(account_id, AccountKind.PEER_CLEARING), now)
    return account_id


# -- at the host -----------------------------------------------------------------------------

def host_price(session: Session, usage: UsageView) -> tuple[int, int, str]:
    """(amount_fen, compute-unit hours x 10^6, tariff) the host asks for one usage record:
    what its billing rated (the guest tenant is postpaid, so nothing was taken), or, without a
    charge, the pool's device-hour price."""
    charge = billing_store.get_charge(session, usage.id)
    if charge is not None:
        return charge.amount_fen, charge.compute_unit_hours_micro, charge.tariff_id
    hours = Decimal(repr(usage.device_seconds)) / 3600
    amount = int((hours * usage.price_fen_per_device_hour).to_integral_value(ROUND_DOWN))
    units = int((hours * Decimal(usage.units_per_device_hour) * MICRO)
                .to_integral_value(ROUND_DOWN))
    return amount, units, "pool-price"


def pay_host(session: Session, *, record_id: str, home: str, provider_tenant_id: str,
             amount_fen: int, job_id: str, now: datetime) -> dict[str, Any]:
    """The host credits its provider now; the home platform owes the host the same amount."""
    if amount_fen == 0:
        return {"provider_fen": 0, "fee_fen": 0, "transfers": []}
    peer = open_peer(session, home, now)
    billing.ensure_platform_accounts(session, now)
    billing.ensure_receivable(session, provider_tenant_id, now)
    receivable = receivable_account_id(provider_tenant_id)
    fee = int((Decimal(amount_fen) * PLATFORM_FEE_RATE).to_integral_value(ROUND_DOWN))
    transfers = [Transfer(_tid(record_id, "payout"), peer, receivable, amount_fen,
                          "roaming-payout", reference=job_id)]
    if fee:
        transfers.append(Transfer(_tid(record_id, "fee"), receivable, FEES_ACCOUNT, fee,
                                  "platform-fee", reference=job_id))
    ledger_store.apply_many(session, transfers, now, linked=True)
    return {"provider_fen": amount_fen - fee, "fee_fen": fee,
            "transfers": [t.id for t in transfers]}


def _tid(record_id: str, what: str) -> str:
    return f"roam:{record_id}:{what}"


# -- at home ---------------------------------------------------------------------------------

def charge_home(session: Session, *, tenant_id: str, host: str, record_id: str,
                amount_fen: int, units_micro: int, job_id: str, where: Where,
                now: datetime) -> dict[str, Any]:
    """Charge the home tenant for a roaming record: entitlements first, then the tenant's
    vouchers (judged on where the job ran), then the wallet; what a prepaid wallet cannot
    cover, and all of a postpaid tenant's, stays unpaid (billed later) while this platform
    owes the host the whole amount at once."""
    wallet = wallet_account_id(tenant_id)
    entitlement = entitlement_account_id(tenant_id)
    peer = open_peer(session, host, now)
    billing.ensure_wallet(session, tenant_id, now)
    ledger_store.open_account(session, Account.open(entitlement, AccountKind.ENTITLEMENT), now,
                              owner_tenant_id=tenant_id)
    ledger_store.open_account(session, Account.open(ROAMING_ACCOUNT, AccountKind.PEER_CLEARING),
                              now)
    programme_ids = sorted(billing_store.programmes_with_usable_vouchers(session, tenant_id))
    # Lock order as in billing: accounts (in id order), programme rows, voucher rows; then
    # our entitlement rows.
    accounts = ledger_store.lock_accounts(
        session, [wallet, entitlement, peer, ROAMING_ACCOUNT,
                  *(fund_account_id(p) for p in programme_ids)])
    budgets, vouchers = _voucher_state(session, tenant_id, programme_ids, accounts)
    rows = store.lock_drawable_entitlements(session, tenant_id, now, MAX_ENTITLEMENTS_DRAWN)
    tenant = tenants.get_tenant(session, tenant_id)
    context = LineContext(tenant_id, TenantClass(tenant.tenant_class), LineCategory.COMPUTE,
                          where.at, where.provider_id, where.province,
                          Hub(where.hub) if where.hub else None)
    outcome: list[VoucherOutcome] = []

    def vouchers_pay(rest: int) -> int:
        if not vouchers:
            return 0
        outcome.append(apply_vouchers(rest, context, vouchers, budgets))
        return outcome[0].discount_fen

    prepaid = billing.billing_mode(session, tenant_id) == PREPAID
    plan = plan_home_charge(amount_fen, units_micro,
                            [EntitlementBalance(r.id, r.remaining_units_micro, r.remaining_fen)
                             for r in rows], max(0, accounts[wallet].available_fen), prepaid,
                            vouchers_pay)
    by_id = {row.id: row for row in rows}
    for draw in plan.draws:
        row = by_id[draw.entitlement_id]
        assert draw.units_micro <= row.remaining_units_micro and draw.value_fen <= row.remaining_fen
        row = replace(row, remaining_units_micro=row.remaining_units_micro - draw.units_micro,
                      remaining_fen=row.remaining_fen - draw.value_fen)
        by_id[row.id] = row
        store.save_entitlement(session, row)
    value = plan.entitlement_value_fen
    moves = [(entitlement, peer, min(value, plan.covered_fen), "entitlement", "roaming-charge"),
             (entitlement, ROAMING_ACCOUNT, max(0, plan.margin_fen), "margin", "roaming-margin"),
             (ROAMING_ACCOUNT, peer, max(0, -plan.margin_fen), "shortfall", "roaming-margin"),
             (wallet, peer, plan.wallet_fen, "wallet", "roaming-charge"),
             (ROAMING_ACCOUNT, peer, plan.unpaid_fen, "fronted", "roaming-fronted")]
    per_programme: dict[str, int] = {}
    for allocation in outcome[0].allocations if outcome else ():
        per_programme[allocation.programme_id] = (per_programme.get(allocation.programme_id, 0)
                                                  + allocation.discount_fen)
    moves += [(fund_account_id(p), peer, fen, f"voucher:{p}", "voucher")
              for p, fen in sorted(per_programme.items())]
    transfers = [Transfer(_tid(record_id, what), debit, credit, amount, code, reference=job_id)
                 for debit, credit, amount, what, code in moves if amount > 0]
    if transfers:
        ledger_store.apply_many(session, transfers, now, linked=True)
    for voucher in (outcome[0].vouchers.values() if outcome else ()):
        billing_store.set_voucher_remaining(session, voucher.id, voucher.remaining_fen)
    return {"amount_fen": amount_fen, "units_micro": units_micro,
            "entitlement_units_micro": sum(d.units_micro for d in plan.draws),
            "entitlement_fen": value, "covered_fen": plan.covered_fen,
            "voucher_fen": plan.voucher_fen, "wallet_fen": plan.wallet_fen,
            "unpaid_fen": plan.unpaid_fen, "margin_fen": plan.margin_fen,
            "draws": [asdict(d) for d in plan.draws], "vouchers": per_programme,
            "transfers": [t.id for t in transfers]}


@dataclass(frozen=True)
class Where:
    """Where and when a roaming job ran, as voucher eligibility judges it."""

    at: datetime
    provider_id: str
    province: str
    hub: str | None


def _voucher_state(session: Session, tenant_id: str, programme_ids: list[str],
                   accounts: dict[str, Account]
                   ) -> tuple[dict[str, ProgrammeBudget], list[Voucher]]:
    """The tenant's usable vouchers and their programmes' budgets, rows locked in billing's
    order (programmes, then vouchers) after the accounts."""
    funded = [p for p in programme_ids if fund_account_id(p) in accounts]
    if not funded:
        return {}, []
    programmes = [billing_store.programme_from_row(row)
                  for row in billing_store.lock_programmes(session, funded)]
    vouchers = [billing_store.voucher_from_row(row) for row in
                billing_store.lock_usable_vouchers(session, tenant_id, funded, MAX_VOUCHERS)]
    used = billing_store.voucher_use_by_programme(session, tenant_id, funded)
    budgets = {programme.id: ProgrammeBudget(programme,
                                             min(accounts[fund_account_id(programme.id)]
                                                 .available_fen, programme.budget_fen),
                                             int(used.get(programme.id) or 0))
               for programme in programmes}
    return budgets, vouchers
