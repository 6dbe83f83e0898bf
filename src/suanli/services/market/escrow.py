"""The exchange's money in the ledger: bid holds, trade postings, settlement, refunds.

A bid leg holds its worst case (limit price x what is left) from the buyer's wallet into the
buyer's escrow account (a pending transfer, no timeout: the market releases it). A fill posts
the trade's value from the hold and holds what is left again; a cancel or an expiry voids it.
Escrow pays the seller's receivable and the platform's fee as the block is delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.domain.accounts import FEES_ACCOUNT, receivable_account_id, wallet_account_id
from suanli.domain.ledger import Account, AccountKind, Transfer, TransferKind
from suanli.domain.market.settlement import escrow_account_id
from suanli.services.billing import wallets

HOLD, BUY, RELEASE = "market-hold", "market-buy", "market-release"
PAY, FEE, REFUND = "market-pay", "market-fee", "market-refund"


def ensure_accounts(session: Session, buyers: Iterable[str], sellers: Iterable[str],
                    now: datetime) -> None:
    """Open the accounts a command moves money on, if they are not open yet: a buyer's wallet
    and escrow, a seller's receivable, the platform's fees. One read when all exist."""
    buyers, sellers = sorted(set(buyers)), sorted(set(sellers))
    wanted = {FEES_ACCOUNT} if sellers else set()
    wanted |= {wallet_account_id(b) for b in buyers} | {escrow_account_id(b) for b in buyers}
    wanted |= {receivable_account_id(s) for s in sellers}
    if not wanted:
        return
    have = ledger_store.get_accounts(session, wanted)
    if FEES_ACCOUNT in wanted and FEES_ACCOUNT not in have:
        wallets.ensure_platform_accounts(session, now)
    for buyer in buyers:
        if wallet_account_id(buyer) not in have:
            wallets.ensure_wallet(session, buyer, now)
        if escrow_account_id(buyer) not in have:
            ledger_store.open_account(session, Account.open(escrow_account_id(buyer),
                                                            AccountKind.ESCROW), now,
                                      owner_tenant_id=buyer)
    for seller in sellers:
        if receivable_account_id(seller) not in have:
            wallets.ensure_receivable(session, seller, now)


def hold(transfer_id: str, tenant_id: str, amount_fen: int, reference: str) -> Transfer:
    return Transfer(transfer_id, wallet_account_id(tenant_id), escrow_account_id(tenant_id),
                    amount_fen, HOLD, TransferKind.PENDING, reference=reference)


def pay(transfer_id: str, buyer_tenant_id: str, seller_tenant_id: str, amount_fen: int,
        reference: str) -> Transfer:
    return Transfer(transfer_id, escrow_account_id(buyer_tenant_id),
                    receivable_account_id(seller_tenant_id), amount_fen, PAY,
                    reference=reference)


def fee(transfer_id: str, buyer_tenant_id: str, amount_fen: int, reference: str) -> Transfer:
    return Transfer(transfer_id, escrow_account_id(buyer_tenant_id), FEES_ACCOUNT, amount_fen,
                    FEE, reference=reference)


def refund(transfer_id: str, buyer_tenant_id: str, amount_fen: int, reference: str
           ) -> Transfer:
    return Transfer(transfer_id, escrow_account_id(buyer_tenant_id),
                    wallet_account_id(buyer_tenant_id), amount_fen, REFUND, reference=reference)


def apply(session: Session, transfers: Sequence[Transfer], accounts: Iterable[str],
          now: datetime) -> None:
    """Apply a command's transfers, all or nothing (the caller's transaction), after locking
    every account they touch at once, in id order: a command never holds some accounts while
    waiting for others."""
    if not transfers:
        return
    ledger_store.lock_accounts(session, accounts)
    for start in range(0, len(transfers), ledger_store.MAX_BATCH):
        ledger_store.apply_many(session, transfers[start:start + ledger_store.MAX_BATCH], now,
                                linked=True)
