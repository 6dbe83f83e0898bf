"""The in-memory ledger the tests check the rules and the store against.

It runs `suanli.domain.ledger`'s pure functions over dicts, keeps a journal it can replay and
checks the books' invariants; `tests/billing/test_ledger_store.py` drives it side by side with
the database store. Only tests use it, so it lives here and not in the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from suanli.domain.errors import Conflict, ValidationFailed
from suanli.domain.ledger import (
    Account,
    Transfer,
    TransferKind,
    TransferRecord,
    TransferState,
    apply_linked,
    apply_transfer,
    expire_pending,
)
from suanli.domain.metering import require_aware

MAX_ACCOUNTS = 1_000_000
MAX_TRANSFERS = 10_000_000


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One successful operation on a LedgerState, enough to replay it."""

    op: str  # "open" | "transfer" | "linked" | "expire"
    at: datetime
    account: Account | None = None
    transfers: tuple[Transfer, ...] = ()


class LedgerState:
    """An in-memory ledger running the domain's rules: the model the tests check."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.transfers: dict[str, TransferRecord] = {}
        self.journal: list[JournalEntry] = []
        self._open_pending: set[str] = set()
        self._last_at: datetime | None = None

    def open_account(self, account: Account, now: datetime) -> Account:
        """Open an account; the same definition again returns the existing one."""
        self._check_time(now)
        existing = self.accounts.get(account.id)
        if existing is not None:
            if existing.same_definition(account):
                return existing
            raise Conflict(f"account {account.id} exists with different fields", field="id")
        if account.debits_posted_fen or account.credits_posted_fen or (
            account.debits_pending_fen or account.credits_pending_fen
        ):
            raise ValidationFailed("a new account starts with zero balances", field="balances")
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise Conflict(f"at most {MAX_ACCOUNTS} accounts in memory", field="id")
        self.accounts[account.id] = account
        self._done(JournalEntry("open", now, account=account))
        return account

    def apply(self, transfer: Transfer, now: datetime) -> TransferRecord:
        self._check_time(now)
        pending = self.transfers.get(transfer.pending_id) if transfer.pending_id else None
        applied = apply_transfer(self.accounts, transfer, self.transfers.get(transfer.id),
                                 pending, now)
        if applied.created:
            self._room_for(1)
            self._write(applied.accounts, [applied.record] + _maybe(applied.pending))
            self._done(JournalEntry("transfer", now, transfers=(transfer,)))
        return applied.record

    def apply_linked(self, transfers: Sequence[Transfer], now: datetime
                     ) -> list[TransferRecord]:
        self._check_time(now)
        named = {t.id for t in transfers} | {t.pending_id for t in transfers if t.pending_id}
        existing = {i: self.transfers[i] for i in named if i in self.transfers}
        linked = apply_linked(self.accounts, transfers, existing, now)
        if any(result.created for result in linked.results):
            self._room_for(len(transfers))
            self._write(linked.accounts, list(linked.transfers.values()))
            self._done(JournalEntry("linked", now, transfers=tuple(transfers)))
        return [result.record for result in linked.results]

    def expire(self, now: datetime) -> list[TransferRecord]:
        """Release every hold whose timeout has passed, oldest deadline first."""
        self._check_time(now)
        due = sorted((self.transfers[i] for i in self._open_pending
                      if (deadline := self.transfers[i].expires_at) is not None
                      and deadline <= now), key=lambda r: (r.expires_at, r.id))
        for pending in due:
            applied = expire_pending(self.accounts, pending, now)
            self._write(applied.accounts, [applied.record])
        if due:
            self._done(JournalEntry("expire", now))
        return [self.transfers[pending.id] for pending in due]

    @classmethod
    def replay(cls, journal: Sequence[JournalEntry]) -> LedgerState:
        """Rebuild a state from its journal; the result equals the state that wrote it."""
        state = cls()
        for entry in journal:
            if entry.op == "open":
                assert entry.account is not None
                state.open_account(entry.account, entry.at)
            elif entry.op == "transfer":
                state.apply(entry.transfers[0], entry.at)
            elif entry.op == "linked":
                state.apply_linked(entry.transfers, entry.at)
            else:
                assert entry.op == "expire", entry.op
                state.expire(entry.at)
        return state

    def check_invariants(self) -> None:
        """Raise AssertionError if the books do not balance; O(accounts + transfers)."""
        accounts = self.accounts.values()
        _require(sum(a.debits_posted_fen for a in accounts)
                 == sum(a.credits_posted_fen for a in accounts), "posted debits != credits")
        _require(sum(a.debits_pending_fen for a in accounts)
                 == sum(a.credits_pending_fen for a in accounts), "pending debits != credits")
        for account in accounts:
            _require(not account.violates_flags(), f"account {account.id} breaks its flag")
        open_ids = {r.id for r in self.transfers.values() if r.state == TransferState.PENDING
                    and r.transfer.kind == TransferKind.PENDING}
        _require(open_ids == self._open_pending, "open pending set out of step")
        totals = {a.id: [0, 0, 0, 0] for a in accounts}  # debits/credits posted, pending
        for record in self.transfers.values():
            kind = record.transfer.kind
            if kind in (TransferKind.POSTED, TransferKind.POST_PENDING):
                totals[record.debit_account_id][0] += record.amount_fen
                totals[record.credit_account_id][1] += record.amount_fen
            elif record.id in open_ids:
                totals[record.debit_account_id][2] += record.amount_fen
                totals[record.credit_account_id][3] += record.amount_fen
        for account in accounts:
            _require(totals[account.id] == [
                account.debits_posted_fen, account.credits_posted_fen,
                account.debits_pending_fen, account.credits_pending_fen,
            ], f"account {account.id} balances differ from its transfers")

    def _check_time(self, now: datetime) -> None:
        require_aware(now, "now")
        if self._last_at is not None and now < self._last_at:
            raise ValidationFailed("time must not go backwards", field="now")

    def _room_for(self, count: int) -> None:
        if len(self.transfers) + count > MAX_TRANSFERS:
            raise Conflict(f"at most {MAX_TRANSFERS} transfers in memory", field="id")

    def _write(self, accounts: Mapping[str, Account], records: list[TransferRecord]) -> None:
        self.accounts.update(accounts)
        for record in records:
            self.transfers[record.id] = record
            if record.transfer.kind == TransferKind.PENDING:
                if record.state == TransferState.PENDING:
                    self._open_pending.add(record.id)
                else:
                    self._open_pending.discard(record.id)

    def _done(self, entry: JournalEntry) -> None:
        self.journal.append(entry)
        self._last_at = entry.at


def _maybe(record: TransferRecord | None) -> list[TransferRecord]:
    return [] if record is None else [record]


def _require(condition: bool, message: str) -> None:
    # Not `assert`: ledger invariants must hold under `python -O` too.
    if not condition:
        raise AssertionError(message)
