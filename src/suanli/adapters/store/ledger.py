"""The ledger in the database: the pure rules of domain.ledger run against rows under row locks.

Each call does, in the caller's transaction:

1. read the holds the transfers settle (their accounts are fixed once written);
2. lock every account involved with one `SELECT ... ORDER BY id FOR UPDATE` — always in id
   order, so two transactions never wait on each other's accounts in a cycle;
3. read the stored transfers the batch names (after the locks: whoever wrote them held the
   same locks, so what we read is current);
4. run `apply_transfer` / `apply_linked` (pure) and write exactly the rows they return.

SQLite has no row locks; its single writer serialises transactions instead. The tables also
carry CHECK constraints for the balance flags, so a row that breaks them never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, overload

from sqlalchemy import (
    ColumnElement,
    Subquery,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from suanli.adapters.store.billing_tables import LedgerAccountRow, LedgerTransferRow
from suanli.adapters.store.tables import Base
from suanli.domain.errors import Conflict, SuanliError, ValidationFailed
from suanli.domain.ledger import (
    MAX_LINKED_BATCH,
    Account,
    AccountKind,
    Applied,
    Transfer,
    TransferKind,
    TransferRecord,
    TransferState,
    apply_linked,
    apply_transfer,
    expire_pending,
)
from suanli.domain.time import aware


def _table(row: type[Base]) -> Table:
    """A mapped class's table (typed by SQLAlchemy as any FROM clause: a Table here)."""
    table = row.__table__
    assert isinstance(table, Table), row
    return table


ACCOUNTS = _table(LedgerAccountRow)
TRANSFERS = _table(LedgerTransferRow)
MAX_BATCH = MAX_LINKED_BATCH  # transfers in one call, linked or not
MAX_EXPIRE_PER_CALL = 1_000
MAX_STATEMENT_ROWS = 500  # ids in one IN (...) list
MAX_PROBLEMS_REPORTED = 20


# -- rows <-> domain -------------------------------------------------------------------------

def _account(row: Mapping) -> Account:
    return Account(row["id"], AccountKind(row["kind"]), row["ledger"],
                   bool(row["debits_must_not_exceed_credits"]),
                   bool(row["credits_must_not_exceed_debits"]),
                   row["debits_posted_fen"], row["credits_posted_fen"],
                   row["debits_pending_fen"], row["credits_pending_fen"])


def _record(row: Mapping) -> TransferRecord:
    transfer = Transfer(row["id"], row["request_debit_account_id"],
                        row["request_credit_account_id"], row["request_amount_fen"], row["code"],
                        TransferKind(row["kind"]), row["pending_id"], row["timeout_s"],
                        row["ledger"], row["reference"])
    expires = row["expires_at"]
    return TransferRecord(transfer, row["debit_account_id"], row["credit_account_id"],
                          row["amount_fen"], aware(row["timestamp"]),
                          TransferState(row["state"]), aware(expires) if expires else None)


def _record_values(record: TransferRecord) -> dict:
    t = record.transfer
    return {"id": t.id, "kind": t.kind.value, "code": t.code, "ledger": t.ledger,
            "request_debit_account_id": t.debit_account_id,
            "request_credit_account_id": t.credit_account_id,
            "request_amount_fen": t.amount_fen, "pending_id": t.pending_id,
            "timeout_s": t.timeout_s, "reference": t.reference,
            "debit_account_id": record.debit_account_id,
            "credit_account_id": record.credit_account_id, "amount_fen": record.amount_fen,
            "timestamp": record.timestamp, "state": record.state.value,
            "expires_at": record.expires_at}


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), MAX_STATEMENT_ROWS):
        yield ids[start:start + MAX_STATEMENT_ROWS]


# -- accounts --------------------------------------------------------------------------------

def open_account(session: Session, account: Account, now: datetime, *,
                 owner_tenant_id: str | None = None) -> Account:
    """Open an account if it does not exist; the same definition again returns the stored one,
    a different one is Conflict. Safe against a concurrent open of the same id."""
    if account.debits_posted_fen or account.credits_posted_fen or (
            account.debits_pending_fen or account.credits_pending_fen):
        raise ValidationFailed("a new account starts with zero balances", field="balances")
    values = {"id": account.id, "kind": account.kind.value, "ledger": account.ledger,
              "debits_must_not_exceed_credits": account.debits_must_not_exceed_credits,
              "credits_must_not_exceed_debits": account.credits_must_not_exceed_debits,
              "debits_posted_fen": 0, "credits_posted_fen": 0, "debits_pending_fen": 0,
              "credits_pending_fen": 0, "owner_tenant_id": owner_tenant_id, "created_at": now}
    insert_if_absent(session, ACCOUNTS, values)
    stored = get_account(session, account.id)
    assert stored is not None
    if not stored.same_definition(account):
        raise Conflict(f"account {account.id} exists with different fields", field="id")
    return stored


def insert_if_absent(session: Session, table: Table | type[Base],
                     values: Mapping[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent insert of the same key is no error."""
    if not isinstance(table, Table):
        table = _table(table)
    dialect = session.get_bind().dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported databases are above
        raise NotImplementedError(dialect)
    session.execute(statement)


def get_account(session: Session, account_id: str) -> Account | None:
    row = session.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == account_id)).mappings().first()
    return None if row is None else _account(row)


def get_accounts(session: Session, account_ids: Iterable[str]) -> dict[str, Account]:
    ids = sorted(set(account_ids))
    found: dict[str, Account] = {}
    for chunk in _chunks(ids):
        for row in session.execute(select(ACCOUNTS).where(ACCOUNTS.c.id.in_(chunk))).mappings():
            found[row["id"]] = _account(row)
    return found


def lock_accounts(session: Session, account_ids: Iterable[str]) -> dict[str, Account]:
    """Lock accounts (FOR UPDATE, in id order) and return them as they are now.

    Callers that lock rows of other tables too take the accounts first (see docs/ledger.md).
    """
    ids = sorted(set(account_ids))
    locked: dict[str, Account] = {}
    for chunk in _chunks(ids):
        statement = (select(ACCOUNTS).where(ACCOUNTS.c.id.in_(chunk)).order_by(ACCOUNTS.c.id)
                     .with_for_update())
        for row in session.execute(statement).mappings():
            locked[row["id"]] = _account(row)
    return locked


# -- transfers -------------------------------------------------------------------------------

def get_transfer(session: Session, transfer_id: str) -> TransferRecord | None:
    row = session.execute(select(TRANSFERS).where(TRANSFERS.c.id == transfer_id)
                          ).mappings().first()
    return None if row is None else _record(row)


def get_transfers(session: Session, transfer_ids: Iterable[str]) -> dict[str, TransferRecord]:
    ids = sorted(set(transfer_ids))
    found: dict[str, TransferRecord] = {}
    for chunk in _chunks(ids):
        for row in session.execute(select(TRANSFERS).where(TRANSFERS.c.id.in_(chunk))
                                   ).mappings():
            found[row["id"]] = _record(row)
    return found


def account_transfers(session: Session, account_id: str, *, limit: int = 50,
                      since: datetime | None = None, until: datetime | None = None
                      ) -> list[TransferRecord]:
    """Transfers that moved or held money on an account, newest first."""
    assert 1 <= limit <= 10_000
    touches = or_(TRANSFERS.c.debit_account_id == account_id,
                  TRANSFERS.c.credit_account_id == account_id)
    statement = select(TRANSFERS).where(touches)
    if since is not None:
        statement = statement.where(TRANSFERS.c.timestamp >= since)
    if until is not None:
        statement = statement.where(TRANSFERS.c.timestamp < until)
    statement = statement.order_by(TRANSFERS.c.timestamp.desc(), TRANSFERS.c.id.desc())
    return [_record(row) for row in session.execute(statement.limit(limit)).mappings()]


def apply(session: Session, transfer: Transfer, now: datetime) -> TransferRecord:
    """Apply one transfer; an idempotent retry returns the stored record and writes nothing."""
    return apply_many(session, [transfer], now, linked=True)[0]


@overload
def apply_many(session: Session, transfers: Sequence[Transfer], now: datetime, *,
               linked: Literal[True]) -> list[TransferRecord]: ...


@overload
def apply_many(session: Session, transfers: Sequence[Transfer], now: datetime, *,
               linked: bool) -> list[TransferRecord | SuanliError]: ...


def apply_many(session: Session, transfers: Sequence[Transfer], now: datetime, *,
               linked: bool) -> list[TransferRecord] | list[TransferRecord | SuanliError]:
    """Apply up to MAX_BATCH transfers in one transaction.

    linked=True: all or nothing (domain.ledger.apply_linked); the first failure raises.
    linked=False: each transfer succeeds or fails on its own, in order, like TigerBeetle's
    create_transfers; the result holds the record or the error for each position.
    """
    if not (1 <= len(transfers) <= MAX_BATCH):
        raise ValidationFailed(f"a batch holds 1-{MAX_BATCH} transfers", field="transfers")
    named = {t.id for t in transfers} | {t.pending_id for t in transfers if t.pending_id}
    stored = _lock_for(session, transfers, named)
    accounts = stored.accounts
    if linked:
        result = apply_linked(accounts, transfers, stored.transfers, now)
        created = {r.record.id for r in result.results if r.created}
        _write(session, result.accounts, result.transfers, stored.transfers, created)
        return [r.record for r in result.results]
    return _apply_each(session, transfers, stored, now)


@dataclass
class _Locked:
    accounts: dict[str, Account]
    transfers: dict[str, TransferRecord] = field(default_factory=dict)


def _lock_for(session: Session, transfers: Sequence[Transfer], named: set[str]) -> _Locked:
    batch_ids = {t.id for t in transfers}
    outside_holds = {t.pending_id for t in transfers if t.pending_id} - batch_ids
    wanted = {account_id for t in transfers
              for account_id in (t.debit_account_id, t.credit_account_id) if account_id}
    wanted |= _hold_accounts(get_transfers(session, outside_holds) if outside_holds else {})
    accounts = lock_accounts(session, wanted)
    current = get_transfers(session, named)
    # A hold written by a concurrent transaction after our first read may name accounts we
    # have not locked: lock those too, and read again, before judging anything.
    late = _hold_accounts({i: r for i, r in current.items() if i in outside_holds}) - set(accounts)
    if late:
        accounts.update(lock_accounts(session, late))
        current = get_transfers(session, named)
    return _Locked(accounts, current)


def _hold_accounts(holds: Mapping[str, TransferRecord]) -> set[str]:
    return {a for hold in holds.values() for a in (hold.debit_account_id, hold.credit_account_id)}


def _apply_each(session: Session, transfers: Sequence[Transfer], stored: _Locked,
                now: datetime) -> list[TransferRecord | SuanliError]:
    accounts: dict[str, Account] = dict(stored.accounts)
    records: dict[str, TransferRecord] = dict(stored.transfers)
    changed_accounts: dict[str, Account] = {}
    written: dict[str, TransferRecord] = {}
    created: set[str] = set()
    results: list[TransferRecord | SuanliError] = []
    for transfer in transfers:
        pending = records.get(transfer.pending_id) if transfer.pending_id else None
        try:
            applied: Applied = apply_transfer(accounts, transfer, records.get(transfer.id),
                                              pending, now)
        except SuanliError as exc:
            results.append(exc)
            continue
        if applied.created:
            accounts.update(applied.accounts)
            changed_accounts.update(applied.accounts)
            for record in (applied.record, applied.pending):
                if record is not None:
                    records[record.id] = record
                    written[record.id] = record
            created.add(applied.record.id)
        results.append(applied.record)
    _write(session, changed_accounts, written, stored.transfers, created)
    return results


def _write(session: Session, accounts: Mapping[str, Account],
           records: Mapping[str, TransferRecord], before: Mapping[str, TransferRecord],
           created: set[str]) -> None:
    """Write new balances, insert new transfers, update the state of settled holds."""
    balances = [(a.id, a.debits_posted_fen, a.credits_posted_fen, a.debits_pending_fen,
                 a.credits_pending_fen) for a in sorted(accounts.values(), key=lambda a: a.id)]
    new = [_record_values(r) for i, r in records.items() if i in created and i not in before]
    changed = [(r.id, r.state.value) for i, r in records.items()
               if i in before and before[i].state != r.state]
    if session.get_bind().dialect.name == "postgresql" and len(balances) + len(new) > 8:
        _write_arrays(session, balances, new, changed)
        return
    if balances:
        session.execute(
            update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("b_id"))
            .values(debits_posted_fen=bindparam("b_dp"), credits_posted_fen=bindparam("b_cp"),
                    debits_pending_fen=bindparam("b_dpen"),
                    credits_pending_fen=bindparam("b_cpen")),
            [dict(zip(("b_id", "b_dp", "b_cp", "b_dpen", "b_cpen"), row, strict=True))
             for row in balances])
    if new:
        session.execute(insert(TRANSFERS), new)
    if changed:
        session.execute(update(TRANSFERS).where(TRANSFERS.c.id == bindparam("b_id"))
                        .values(state=bindparam("b_state")),
                        [{"b_id": i, "b_state": state} for i, state in changed])


# One statement per table, whatever the batch's size: arrays in, unnest on the server.
_PG_UPDATE_BALANCES = text(
    "UPDATE ledger_accounts AS a SET debits_posted_fen = v.dp, credits_posted_fen = v.cp, "
    "debits_pending_fen = v.dpen, credits_pending_fen = v.cpen "
    "FROM unnest(CAST(:ids AS text[]), CAST(:dp AS bigint[]), CAST(:cp AS bigint[]), "
    "CAST(:dpen AS bigint[]), CAST(:cpen AS bigint[])) AS v(id, dp, cp, dpen, cpen) "
    "WHERE a.id = v.id")
_TRANSFER_COLUMNS = (
    ("id", "text"), ("kind", "text"), ("code", "text"), ("ledger", "text"),
    ("request_debit_account_id", "text"), ("request_credit_account_id", "text"),
    ("request_amount_fen", "bigint"), ("pending_id", "text"), ("timeout_s", "integer"),
    ("reference", "text"), ("debit_account_id", "text"), ("credit_account_id", "text"),
    ("amount_fen", "bigint"), ("timestamp", "timestamptz"), ("state", "text"),
    ("expires_at", "timestamptz"))
_PG_INSERT_TRANSFERS = text(
    "INSERT INTO ledger_transfers (" + ", ".join(f'"{c}"' for c, _ in _TRANSFER_COLUMNS)
    + ") SELECT * FROM unnest(" + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _TRANSFER_COLUMNS)
    + ")")
_PG_UPDATE_STATES = text(
    "UPDATE ledger_transfers AS t SET state = v.state FROM unnest(CAST(:ids AS text[]), "
    "CAST(:states AS text[])) AS v(id, state) WHERE t.id = v.id")


def _write_arrays(session: Session, balances: list[tuple], new: list[dict],
                  changed: list[tuple[str, str]]) -> None:
    if balances:
        ids, dp, cp, dpen, cpen = (list(column) for column in zip(*balances, strict=True))
        session.execute(_PG_UPDATE_BALANCES, {"ids": ids, "dp": dp, "cp": cp, "dpen": dpen,
                                              "cpen": cpen})
    if new:
        session.execute(_PG_INSERT_TRANSFERS,
                        {column: [row[column] for row in new] for column, _ in _TRANSFER_COLUMNS})
    if changed:
        session.execute(_PG_UPDATE_STATES, {"ids": [i for i, _ in changed],
                                            "states": [state for _, state in changed]})


# -- expiry ----------------------------------------------------------------------------------

def expire(session: Session, pending_id: str, now: datetime) -> TransferRecord | None:
    """Expire one hold if it is open and past its timeout; returns it, or None if not due."""
    hold = get_transfer(session, pending_id)
    if hold is None or hold.state != TransferState.PENDING or hold.expires_at is None:
        return None
    accounts = lock_accounts(session, (hold.debit_account_id, hold.credit_account_id))
    hold = get_transfer(session, pending_id)  # again, under the locks
    assert hold is not None
    if hold.state != TransferState.PENDING or hold.expires_at is None or now < hold.expires_at:
        return None
    applied = expire_pending(accounts, hold, now)
    _write(session, applied.accounts, {hold.id: applied.record}, {hold.id: hold}, set())
    return applied.record


def expire_due(session: Session, now: datetime, limit: int = MAX_EXPIRE_PER_CALL
               ) -> list[TransferRecord]:
    """The sweeper's step: release holds whose timeout has passed, oldest deadline first."""
    assert 1 <= limit <= MAX_EXPIRE_PER_CALL
    due = session.execute(
        # a literal state, so that the partial index of open holds serves the query
        select(TRANSFERS.c.id).where(text("ledger_transfers.state = 'pending'"),
                                     TRANSFERS.c.kind == TransferKind.PENDING.value,
                                     TRANSFERS.c.expires_at.is_not(None),
                                     TRANSFERS.c.expires_at <= now)
        .order_by(TRANSFERS.c.expires_at, TRANSFERS.c.id).limit(limit)).scalars().all()
    expired = []
    for pending_id in due:
        record = expire(session, pending_id, now)
        if record is not None:
            expired.append(record)
    return expired


# -- the invariant check ---------------------------------------------------------------------

@dataclass
class InvariantReport:
    """What `check_invariants` found; `ok` when the books balance."""

    accounts: int
    transfers: int
    debits_posted_fen: int
    credits_posted_fen: int
    debits_pending_fen: int
    credits_pending_fen: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_invariants(session: Session) -> InvariantReport:
    """The ledger's invariants (docs/ledger.md), checked by aggregate queries.

    O(accounts + transfers); meant for an operator's check and for tests, not every request.
    """
    a = ACCOUNTS.c
    totals = session.execute(select(
        func.count(), func.coalesce(func.sum(a.debits_posted_fen), 0),
        func.coalesce(func.sum(a.credits_posted_fen), 0),
        func.coalesce(func.sum(a.debits_pending_fen), 0),
        func.coalesce(func.sum(a.credits_pending_fen), 0))).one()
    count, dp, cp, dpen, cpen = (int(x) for x in totals)
    transfers = int(session.execute(select(func.count()).select_from(TRANSFERS)).scalar_one())
    problems: list[str] = []
    if dp != cp:
        problems.append(f"posted debits {dp} != posted credits {cp}")
    if dpen != cpen:
        problems.append(f"pending debits {dpen} != pending credits {cpen}")
    flags = session.execute(select(a.id).where(or_(
        and_(a.debits_must_not_exceed_credits,
             a.debits_posted_fen + a.debits_pending_fen > a.credits_posted_fen),
        and_(a.credits_must_not_exceed_debits,
             a.credits_posted_fen + a.credits_pending_fen > a.debits_posted_fen)))
        .limit(MAX_PROBLEMS_REPORTED)).scalars().all()
    problems += [f"account {i} breaks its flag" for i in flags]
    problems += _balances_against_transfers(session)
    problems += _settlements_against_holds(session)
    return InvariantReport(count, transfers, dp, cp, dpen, cpen, problems[:MAX_PROBLEMS_REPORTED])


def _balances_against_transfers(session: Session) -> list[str]:
    """Each account's four balances equal the sums of its transfers."""
    a, t = ACCOUNTS.c, TRANSFERS.c
    moves = t.kind.in_((TransferKind.POSTED.value, TransferKind.POST_PENDING.value))
    holds = and_(t.kind == TransferKind.PENDING.value, t.state == TransferState.PENDING.value)

    def summed(side: ColumnElement[Any], condition: ColumnElement[bool],
               label: str) -> Subquery:
        return (select(side.label("account_id"), func.sum(t.amount_fen).label(label))
                .where(condition).group_by(side).subquery())

    sums = [summed(t.debit_account_id, moves, "s"), summed(t.credit_account_id, moves, "s"),
            summed(t.debit_account_id, holds, "s"), summed(t.credit_account_id, holds, "s")]
    columns = (a.debits_posted_fen, a.credits_posted_fen, a.debits_pending_fen,
               a.credits_pending_fen)
    statement = select(a.id)
    for sub in sums:
        statement = statement.outerjoin(sub, sub.c.account_id == a.id)
    statement = statement.where(or_(*(column != func.coalesce(sub.c.s, 0)
                                      for column, sub in zip(columns, sums, strict=True))))
    bad = session.execute(statement.limit(MAX_PROBLEMS_REPORTED)).scalars().all()
    return [f"account {i} balances differ from its transfers" for i in bad]


def _settlements_against_holds(session: Session) -> list[str]:
    """A posted hold has one post, a voided one one void, an open or expired one none."""
    t = TRANSFERS.c
    settle = TRANSFERS.alias("settle")
    statement = (
        select(t.id, t.state, func.count(settle.c.id), func.min(settle.c.kind))
        .select_from(TRANSFERS.outerjoin(settle, settle.c.pending_id == t.id))
        .where(t.kind == TransferKind.PENDING.value)
        .group_by(t.id, t.state)
        .having(or_(
            and_(t.state.in_((TransferState.PENDING.value, TransferState.EXPIRED.value)),
                 func.count(settle.c.id) != 0),
            and_(t.state == TransferState.POSTED.value,
                 or_(func.count(settle.c.id) != 1,
                     func.min(settle.c.kind) != TransferKind.POST_PENDING.value)),
            and_(t.state == TransferState.VOIDED.value,
                 or_(func.count(settle.c.id) != 1,
                     func.min(settle.c.kind) != TransferKind.VOID_PENDING.value))))
        .limit(MAX_PROBLEMS_REPORTED))
    return [f"hold {row[0]} is {row[1]} but has {row[2]} settlements"
            for row in session.execute(statement)]
