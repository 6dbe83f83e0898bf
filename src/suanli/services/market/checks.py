"""The market's invariants, checked against the ledger's: what any operator can run.

1. the ledger balances (`adapters.store.ledger.check_invariants`);
2. each member's escrow account holds, pending, exactly what its open bid legs hold;
3. each escrow account's balance is exactly what its reservations have not paid out;
4. no pool has more devices held by asks in a block than it has (nothing sold twice);
5. every leg's fills are the trades on the tape;
6. no reservation is offered again (resold) beyond what it holds, and what it resold is what
   its resale asks sold (nothing resold twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.repositories import market as repo
from suanli.domain.market.products import block_label
from suanli.domain.market.settlement import escrow_account_id

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class MarketCheck:
    problems: list[str]
    ledger: ledger_store.InvariantReport
    members: int

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session) -> MarketCheck:
    ledger = ledger_store.check_invariants(session)
    problems = list(ledger.problems)
    holds = repo.open_hold_totals(session)
    in_escrow = repo.escrow_totals(session)
    members = sorted(holds.keys() | in_escrow.keys())
    accounts = ledger_store.get_accounts(session, [escrow_account_id(m) for m in members])
    for member in members:
        account = accounts.get(escrow_account_id(member))
        pending = account.credits_pending_fen if account else 0
        balance = account.balance_fen if account else 0
        if pending != holds.get(member, 0):
            problems.append(f"escrow of {member}: {pending} fen pending, its open bids hold "
                            f"{holds.get(member, 0)}")
        if balance != in_escrow.get(member, 0):
            problems.append(f"escrow of {member}: balance {balance} fen, its reservations keep "
                            f"{in_escrow.get(member, 0)}")
    for pool, block, held, devices in repo.oversold(session):
        problems.append(f"pool {pool} block {block_label(block)}: asks hold {held} of "
                        f"{devices} devices")
    problems += [f"leg {leg} fills differ from the tape" for leg in repo.fill_mismatches(session)]
    for reservation, offered, resold, quantity in repo.overresold(session):
        problems.append(f"reservation {reservation}: resale asks offer or sold {offered} of "
                        f"{quantity} units; {resold} recorded resold")
    return MarketCheck(problems[:MAX_PROBLEMS], ledger, len(members))
