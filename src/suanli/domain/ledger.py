"""Double-entry ledger rules (账本), TigerBeetle-like: accounts, transfers, two-phase holds."""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import cast

from suanli.domain.errors import (
    Conflict,
    InsufficientFunds,
    NotFound,
    SuanliError,
    ValidationFailed,
)

CURRENCY = "CNY"
MAX_TRANSFER_FEN = 10**15  # ten trillion CNY: far above any real movement, far below int64
MAX_BALANCE_FEN = 2**63 - 1  # balances live in BIGINT columns
MAX_PENDING_TIMEOUT_S = 90 * 86_400
MAX_LINKED_BATCH = 8_190  # TigerBeetle's batch size
# '*' is allowed because ids embed ComputeIds, whose MOD 37-2 check character may be '*'.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/*-]{0,127}$")
_CODE_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_MAX_REFERENCE_CHARS = 128


class AccountKind(StrEnum):
    TENANT_WALLET = "tenant_wallet"
    PROVIDER_RECEIVABLE = "provider_receivable"
    PLATFORM_FEES = "platform_fees"
    PROGRAMME_FUND = "programme_fund"  # a voucher programme's budget
    PEER_CLEARING = "peer_clearing"  # what this platform and one peer owe each other
    ENTITLEMENT = "entitlement"  # prepaid compute a tenant holds
    ESCROW = "escrow"  # a member's money for bought, not yet delivered blocks (the exchange)
    EXTERNAL = "external"  # cash in and out of the system (bank, payment provider)


class TransferKind(StrEnum):
    POSTED = "posted"  # moves money now
    PENDING = "pending"  # reserves money (a hold) until posted, voided or expired
    POST_PENDING = "post_pending"  # settles a hold, fully or partly
    VOID_PENDING = "void_pending"  # releases a hold


class TransferState(StrEnum):
    POSTED = "posted"
    PENDING = "pending"
    VOIDED = "voided"
    EXPIRED = "expired"


# Built once: iterating an enum on every construction was a third of a batch's time.
_ACCOUNT_KINDS = frozenset(AccountKind)
_TRANSFER_KINDS = frozenset(TransferKind)

# Accounts that hold a credit balance for someone (a wallet, a receivable) must never be
# overdrawn; clearing positions swing both ways; the external account mirrors cash and so
# carries a debit balance of everything ever paid in.
_CREDIT_NORMAL = frozenset({
    AccountKind.TENANT_WALLET, AccountKind.PROVIDER_RECEIVABLE, AccountKind.PLATFORM_FEES,
    AccountKind.PROGRAMME_FUND, AccountKind.ENTITLEMENT, AccountKind.ESCROW,
})


def _check_id(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValidationFailed("must be 1-128 characters of A-Z a-z 0-9 . _ : / * -",
                               field=field_name)
    return value


def _check_aware(now: object) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValidationFailed("must be a timezone-aware datetime", field="now")
    return now


@dataclass(frozen=True, slots=True)
class Account:
    """An account and its four balances in fen; balances change only through transfers."""

    id: str
    kind: AccountKind
    ledger: str = CURRENCY
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    debits_posted_fen: int = 0
    credits_posted_fen: int = 0
    debits_pending_fen: int = 0
    credits_pending_fen: int = 0

    @classmethod
    def open(cls, account_id: str, kind: AccountKind, ledger: str = CURRENCY) -> Account:
        """A new account with the flags its kind calls for."""
        return cls(account_id, kind, ledger,
                   debits_must_not_exceed_credits=kind in _CREDIT_NORMAL)

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        if not isinstance(self.kind, str) or self.kind not in _ACCOUNT_KINDS:
            raise ValidationFailed(f"unknown account kind {self.kind!r}", field="kind")
        if self.ledger != CURRENCY:
            raise ValidationFailed(f"only the {CURRENCY} ledger exists", field="ledger")
        if self.debits_must_not_exceed_credits and self.credits_must_not_exceed_debits:
            raise ValidationFailed("an account takes at most one balance flag", field="flags")
        for name in ("debits_posted_fen", "credits_posted_fen", "debits_pending_fen",
                     "credits_pending_fen"):
            value = getattr(self, name)
            assert isinstance(value, int) and 0 <= value <= MAX_BALANCE_FEN, (name, value)

    @property
    def balance_fen(self) -> int:
        """Credits minus debits, posted only: what a credit-normal account holds."""
        return self.credits_posted_fen - self.debits_posted_fen

    @property
    def available_fen(self) -> int:
        """What a credit-normal account can still be debited: posted credit less all debits."""
        return self.credits_posted_fen - self.debits_posted_fen - self.debits_pending_fen

    def violates_flags(self) -> bool:
        if self.debits_must_not_exceed_credits:
            return self.debits_posted_fen + self.debits_pending_fen > self.credits_posted_fen
        if self.credits_must_not_exceed_debits:
            return self.credits_posted_fen + self.credits_pending_fen > self.debits_posted_fen
        return False

    def same_definition(self, other: Account) -> bool:
        return (self.id, self.kind, self.ledger, self.debits_must_not_exceed_credits,
                self.credits_must_not_exceed_debits) == (
            other.id, other.kind, other.ledger, other.debits_must_not_exceed_credits,
            other.credits_must_not_exceed_debits)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A request to move money; idempotent by id. For post/void, accounts may be "" (= the
    pending transfer's) and a void's amount must be 0 (it releases the whole hold)."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount_fen: int
    code: str  # the reason, e.g. "deposit", "job-hold", "job-charge", "voucher", "payout"
    kind: TransferKind = TransferKind.POSTED
    pending_id: str | None = None
    timeout_s: int = 0  # pending only; 0 = the hold never expires
    ledger: str = CURRENCY
    reference: str = ""  # what it is about, e.g. a job or usage record id

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        if not isinstance(self.kind, str) or self.kind not in _TRANSFER_KINDS:
            raise ValidationFailed(f"unknown transfer kind {self.kind!r}", field="kind")
        if not isinstance(self.code, str) or not _CODE_RE.match(self.code):
            raise ValidationFailed("must be 1-64 characters of a-z 0-9 -", field="code")
        if self.ledger != CURRENCY:
            raise ValidationFailed(f"only the {CURRENCY} ledger exists", field="ledger")
        if not isinstance(self.reference, str) or len(self.reference) > _MAX_REFERENCE_CHARS:
            raise ValidationFailed(f"at most {_MAX_REFERENCE_CHARS} characters",
                                   field="reference")
        amount = self.amount_fen
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValidationFailed("must be an int (fen)", field="amount_fen")
        timeout = self.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not (
                0 <= timeout <= MAX_PENDING_TIMEOUT_S):
            raise ValidationFailed(f"must be 0-{MAX_PENDING_TIMEOUT_S}", field="timeout_s")
        settles = self.kind in (TransferKind.POST_PENDING, TransferKind.VOID_PENDING)
        if settles:
            _check_id(self.pending_id, "pending_id")
            for name in ("debit_account_id", "credit_account_id"):
                if getattr(self, name):
                    _check_id(getattr(self, name), name)
        else:
            if self.pending_id is not None:
                raise ValidationFailed("only post/void name a pending transfer",
                                       field="pending_id")
            _check_id(self.debit_account_id, "debit_account_id")
            _check_id(self.credit_account_id, "credit_account_id")
            if self.debit_account_id == self.credit_account_id:
                raise ValidationFailed("debit and credit accounts must differ",
                                       field="credit_account_id")
        if self.kind == TransferKind.VOID_PENDING:
            if amount != 0:
                raise ValidationFailed("a void releases the whole hold: amount must be 0",
                                       field="amount_fen")
        elif not (0 < amount <= MAX_TRANSFER_FEN):
            raise ValidationFailed(f"must be between 1 and {MAX_TRANSFER_FEN}",
                                   field="amount_fen")
        if timeout and self.kind != TransferKind.PENDING:
            raise ValidationFailed("only a pending transfer has a timeout", field="timeout_s")


def post_pending(transfer_id: str, pending_id: str, amount_fen: int, code: str = "post",
                 reference: str = "") -> Transfer:
    """A transfer that settles `amount_fen` (<= the hold) of a pending transfer."""
    return Transfer(transfer_id, "", "", amount_fen, code, TransferKind.POST_PENDING,
                    pending_id=pending_id, reference=reference)


def void_pending(transfer_id: str, pending_id: str, code: str = "void",
                 reference: str = "") -> Transfer:
    """A transfer that releases a hold."""
    return Transfer(transfer_id, "", "", 0, code, TransferKind.VOID_PENDING,
                    pending_id=pending_id, reference=reference)


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A transfer as the ledger holds it: the request, resolved accounts, amount and state."""

    transfer: Transfer
    debit_account_id: str
    credit_account_id: str
    amount_fen: int  # moved (posted), reserved (pending), settled (post) or released (void)
    timestamp: datetime
    state: TransferState
    expires_at: datetime | None = None  # pending with a timeout only

    @property
    def id(self) -> str:
        return self.transfer.id


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a transfer changes; a store writes exactly these rows."""

    record: TransferRecord
    accounts: Mapping[str, Account]  # new versions of the accounts touched; empty on a retry
    pending: TransferRecord | None  # the hold with its new state, for post/void/expiry
    created: bool  # False when the id existed with the same fields (idempotent retry)


def apply_transfer(accounts_by_id: Mapping[str, Account], transfer: Transfer,
                   existing: TransferRecord | None, pending: TransferRecord | None,
                   now: datetime) -> Applied:
    """Apply one transfer to the accounts it names; pure, so a store can run it under row locks.

    `existing` is the stored transfer with the same id, `pending` the stored transfer that
    `transfer.pending_id` names (both None when absent).
    """
    _check_aware(now)
    if existing is not None:
        assert existing.id == transfer.id
        if existing.transfer != transfer:
            raise Conflict(f"transfer {transfer.id} exists with different fields", field="id")
        return Applied(existing, {}, None, created=False)
    if transfer.kind in (TransferKind.POSTED, TransferKind.PENDING):
        return _apply_new(accounts_by_id, transfer, now)
    return _apply_settlement(accounts_by_id, transfer, pending, now)


def _accounts(accounts_by_id: Mapping[str, Account], debit_id: str, credit_id: str
              ) -> tuple[Account, Account]:
    debit = accounts_by_id.get(debit_id)
    if debit is None:
        raise NotFound(f"account {debit_id} not found", field="debit_account_id")
    credit = accounts_by_id.get(credit_id)
    if credit is None:
        raise NotFound(f"account {credit_id} not found", field="credit_account_id")
    assert debit.id == debit_id and credit.id == credit_id
    if debit.ledger != credit.ledger:
        raise ValidationFailed("accounts are on different ledgers", field="ledger")
    return debit, credit


def _apply_new(accounts_by_id: Mapping[str, Account], transfer: Transfer,
               now: datetime) -> Applied:
    debit, credit = _accounts(accounts_by_id, transfer.debit_account_id,
                              transfer.credit_account_id)
    amount = transfer.amount_fen
    if transfer.kind == TransferKind.PENDING:
        new_debit = replace(debit, debits_pending_fen=debit.debits_pending_fen + amount)
        new_credit = replace(credit, credits_pending_fen=credit.credits_pending_fen + amount)
        state = TransferState.PENDING
    else:
        new_debit = replace(debit, debits_posted_fen=debit.debits_posted_fen + amount)
        new_credit = replace(credit, credits_posted_fen=credit.credits_posted_fen + amount)
        state = TransferState.POSTED
    if _overflows(new_debit) or _overflows(new_credit):
        raise Conflict("the transfer would overflow an account balance", field="amount_fen")
    if new_debit.violates_flags():
        raise InsufficientFunds(
            f"account {debit.id} has {debit.available_fen} fen available, "
            f"{amount} fen requested", field="debit_account_id")
    if new_credit.violates_flags():
        raise InsufficientFunds(f"account {credit.id} may not be credited beyond its debits",
                                field="credit_account_id")
    expires_at = None
    if transfer.kind == TransferKind.PENDING and transfer.timeout_s:
        expires_at = now + timedelta(seconds=transfer.timeout_s)
    record = TransferRecord(transfer, debit.id, credit.id, amount, now, state, expires_at)
    return Applied(record, {debit.id: new_debit, credit.id: new_credit}, None, created=True)


def _overflows(account: Account) -> bool:
    return max(account.debits_posted_fen + account.debits_pending_fen,
               account.credits_posted_fen + account.credits_pending_fen) > MAX_BALANCE_FEN


def _apply_settlement(accounts_by_id: Mapping[str, Account], transfer: Transfer,
                      pending: TransferRecord | None, now: datetime) -> Applied:
    if pending is None:
        raise NotFound(f"pending transfer {transfer.pending_id} not found", field="pending_id")
    assert pending.id == transfer.pending_id
    if pending.transfer.kind != TransferKind.PENDING:
        raise Conflict(f"transfer {pending.id} is not a pending transfer", field="pending_id")
    if pending.state != TransferState.PENDING:
        raise Conflict(f"pending transfer {pending.id} is already {pending.state}",
                       field="pending_id")
    if pending.expires_at is not None and now >= pending.expires_at:
        raise Conflict(f"pending transfer {pending.id} expired at "
                       f"{pending.expires_at.isoformat()}", field="pending_id")
    for name in ("debit_account_id", "credit_account_id"):
        named = getattr(transfer, name)
        if named and named != getattr(pending, name):
            raise ValidationFailed(f"must be the pending transfer's ({getattr(pending, name)})",
                                   field=name)
    debit, credit = _accounts(accounts_by_id, pending.debit_account_id, pending.credit_account_id)
    held = pending.amount_fen
    assert debit.debits_pending_fen >= held and credit.credits_pending_fen >= held
    if transfer.kind == TransferKind.POST_PENDING:
        if transfer.amount_fen > held:
            raise ValidationFailed(f"exceeds the pending amount of {held} fen",
                                   field="amount_fen")
        settled = transfer.amount_fen
        state = TransferState.POSTED
    else:
        settled = held
        state = TransferState.VOIDED
    posted = settled if state == TransferState.POSTED else 0
    new_debit = replace(debit, debits_pending_fen=debit.debits_pending_fen - held,
                        debits_posted_fen=debit.debits_posted_fen + posted)
    new_credit = replace(credit, credits_pending_fen=credit.credits_pending_fen - held,
                         credits_posted_fen=credit.credits_posted_fen + posted)
    # Posting at most the held amount keeps every flag that held with the hold in place.
    assert not new_debit.violates_flags() and not new_credit.violates_flags()
    record = TransferRecord(transfer, debit.id, credit.id, settled, now, state)
    closed = replace(pending, state=state)
    return Applied(record, {debit.id: new_debit, credit.id: new_credit}, closed, created=True)


def expire_pending(accounts_by_id: Mapping[str, Account], pending: TransferRecord,
                   now: datetime) -> Applied:
    """Release a hold whose timeout has passed (no new transfer id: the hold itself expires)."""
    _check_aware(now)
    assert pending.state == TransferState.PENDING and pending.expires_at is not None
    assert now >= pending.expires_at, (now, pending.expires_at)
    debit, credit = _accounts(accounts_by_id, pending.debit_account_id, pending.credit_account_id)
    held = pending.amount_fen
    new_debit = replace(debit, debits_pending_fen=debit.debits_pending_fen - held)
    new_credit = replace(credit, credits_pending_fen=credit.credits_pending_fen - held)
    assert new_debit.debits_pending_fen >= 0 and new_credit.credits_pending_fen >= 0
    expired = replace(pending, state=TransferState.EXPIRED)
    return Applied(expired, {debit.id: new_debit, credit.id: new_credit}, expired, created=True)


@dataclass(frozen=True, slots=True)
class LinkedApplied:
    results: tuple[Applied, ...]
    accounts: Mapping[str, Account]  # final versions of every account the batch touched
    transfers: Mapping[str, TransferRecord]  # final versions of every record it wrote


def apply_linked(accounts_by_id: Mapping[str, Account], transfers: Sequence[Transfer],
                 existing_by_id: Mapping[str, TransferRecord], now: datetime) -> LinkedApplied:
    """Apply transfers in order, all or nothing; `existing_by_id` holds every stored transfer
    the batch names (its own ids and the holds it settles). The first failure raises, naming
    its position, and nothing is applied."""
    if not (1 <= len(transfers) <= MAX_LINKED_BATCH):
        raise ValidationFailed(f"a linked batch holds 1-{MAX_LINKED_BATCH} transfers",
                               field="transfers")
    accounts: dict[str, Account] = {}
    records: dict[str, TransferRecord] = {}
    results: list[Applied] = []
    # The batch's changes over the base; ChainMap writes only to its first map, so the cast
    # of the read-only base is safe (and spares copying every account for each batch).
    view = ChainMap(accounts, cast("MutableMapping[str, Account]", accounts_by_id))
    for index, transfer in enumerate(transfers):
        existing = records.get(transfer.id, existing_by_id.get(transfer.id))
        pending = None
        if transfer.pending_id is not None:
            pending = records.get(transfer.pending_id, existing_by_id.get(transfer.pending_id))
        try:
            applied = apply_transfer(view, transfer, existing, pending, now)
        except SuanliError as exc:
            raise type(exc)(f"linked transfer {index} ({transfer.id}): {exc.detail}",
                            field=exc.field) from exc
        accounts.update(applied.accounts)
        records[applied.record.id] = applied.record
        if applied.pending is not None:
            records[applied.pending.id] = applied.pending
        results.append(applied)
    return LinkedApplied(tuple(results), accounts, records)
