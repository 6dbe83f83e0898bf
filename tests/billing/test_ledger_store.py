"""The ledger in the database: the same books as the in-memory model, after every operation."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.billing_tables import LedgerAccountRow, LedgerTransferRow
from suanli.domain.errors import Conflict, InsufficientFunds, SuanliError
from suanli.domain.ledger import (
    Account,
    AccountKind,
    Transfer,
    TransferKind,
    TransferRecord,
    TransferState,
    post_pending,
    void_pending,
)
from tests.ledger_model import LedgerState

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ACCOUNTS = ["cash", "wallet-a", "wallet-b", "prov-1", "fees", "fund"]
KINDS = [AccountKind.EXTERNAL, AccountKind.TENANT_WALLET, AccountKind.TENANT_WALLET,
         AccountKind.PROVIDER_RECEIVABLE, AccountKind.PLATFORM_FEES, AccountKind.PROGRAMME_FUND]
amounts = st.integers(min_value=1, max_value=5_000)
EXAMPLES = int(os.environ.get("SUANLI_LEDGER_EXAMPLES", "12"))


def _open(database, now=T0) -> None:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        for account_id, kind in zip(ACCOUNTS, KINDS, strict=True):
            ledger_store.open_account(session, Account.open(account_id, kind), now)


def _apply(database, transfer, now=T0):  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return ledger_store.apply(session, transfer, now)


def _books(database) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        accounts = ledger_store.get_accounts(session, ACCOUNTS + ["ent"])
        rows = session.scalars(select(LedgerTransferRow.id)).all()
        transfers = ledger_store.get_transfers(session, rows)
        report = ledger_store.check_invariants(session)
    assert report.ok, report.problems
    return accounts, transfers


def test_a_hold_posted_partly_moves_only_what_was_posted(database) -> None:
    _open(database)
    _apply(database, Transfer("dep-1", "cash", "wallet-a", 10_000, "deposit"))
    _apply(database, Transfer("hold-1", "wallet-a", "prov-1", 6_000, "job-hold",
                              TransferKind.PENDING, timeout_s=3600))
    record = _apply(database, post_pending("post-1", "hold-1", 4_500, "job-charge"),
                    T0 + timedelta(minutes=30))
    assert record.amount_fen == 4_500 and record.debit_account_id == "wallet-a"
    accounts, transfers = _books(database)
    assert accounts["wallet-a"].balance_fen == 5_500
    assert accounts["wallet-a"].debits_pending_fen == 0
    assert accounts["prov-1"].balance_fen == 4_500
    assert transfers["hold-1"].state == TransferState.POSTED


def test_a_retry_returns_the_stored_transfer_and_a_changed_one_conflicts(database) -> None:
    _open(database)
    first = _apply(database, Transfer("dep-1", "cash", "wallet-a", 500, "deposit"))
    again = _apply(database, Transfer("dep-1", "cash", "wallet-a", 500, "deposit"),
                   T0 + timedelta(hours=1))
    assert again == first
    with pytest.raises(Conflict):
        _apply(database, Transfer("dep-1", "cash", "wallet-a", 501, "deposit"))
    accounts, _ = _books(database)
    assert accounts["wallet-a"].balance_fen == 500


def test_an_overdraft_is_refused_by_the_rules_and_changes_nothing(database) -> None:
    _open(database)
    _apply(database, Transfer("dep-1", "cash", "wallet-a", 1_000, "deposit"))
    with pytest.raises(InsufficientFunds):
        _apply(database, Transfer("t-1", "wallet-a", "prov-1", 1_001, "charge"))
    accounts, transfers = _books(database)
    assert accounts["wallet-a"].balance_fen == 1_000 and "t-1" not in transfers


def test_a_linked_batch_is_all_or_nothing(database) -> None:
    _open(database)
    _apply(database, Transfer("dep-1", "cash", "wallet-a", 1_000, "deposit"))
    batch = [Transfer("h", "wallet-a", "prov-1", 800, "job-hold", TransferKind.PENDING),
             post_pending("p", "h", 600, "job-charge"),
             Transfer("f", "prov-1", "fees", 30, "platform-fee"),
             Transfer("x", "wallet-a", "prov-1", 401, "charge")]  # 400 left: refused
    with database.unit_of_work() as session, pytest.raises(InsufficientFunds,
                                                           match="linked transfer 3"):
        ledger_store.apply_many(session, batch, T0, linked=True)
    accounts, transfers = _books(database)
    assert set(transfers) == {"dep-1"} and accounts["prov-1"].balance_fen == 0
    with database.unit_of_work() as session:
        ledger_store.apply_many(session, batch[:3], T0, linked=True)
    accounts, transfers = _books(database)
    assert accounts["prov-1"].balance_fen == 570 and accounts["fees"].balance_fen == 30
    assert transfers["h"].state == TransferState.POSTED


def test_an_unlinked_batch_judges_each_transfer_on_its_own(database) -> None:
    _open(database)
    batch = [Transfer("d", "cash", "wallet-a", 100, "deposit"),
             Transfer("x", "wallet-a", "prov-1", 101, "charge"),
             Transfer("y", "wallet-a", "prov-1", 100, "charge"),
             Transfer("d", "cash", "wallet-a", 100, "deposit")]
    with database.unit_of_work() as session:
        results = ledger_store.apply_many(session, batch, T0, linked=False)
    assert isinstance(results[1], InsufficientFunds)
    assert results[0] == results[3] and results[2].amount_fen == 100  # type: ignore[union-attr]
    accounts, transfers = _books(database)
    assert set(transfers) == {"d", "y"} and accounts["prov-1"].balance_fen == 100


def test_expired_holds_are_released_by_the_sweeper(database) -> None:
    _open(database)
    _apply(database, Transfer("dep-1", "cash", "wallet-a", 1_000, "deposit"))
    _apply(database, Transfer("h", "wallet-a", "prov-1", 700, "job-hold",
                              TransferKind.PENDING, timeout_s=600))
    with database.unit_of_work() as session:
        assert ledger_store.expire_due(session, T0 + timedelta(seconds=599)) == []
        [expired] = ledger_store.expire_due(session, T0 + timedelta(seconds=600))
    assert expired.state == TransferState.EXPIRED
    with pytest.raises(Conflict, match="already expired"):
        _apply(database, post_pending("p", "h", 1), T0 + timedelta(seconds=601))
    accounts, _ = _books(database)
    assert accounts["wallet-a"].available_fen == 1_000


def test_the_database_refuses_a_balance_that_breaks_the_flag(database) -> None:
    """Belt and braces: a write that bypasses the rules still cannot overdraw a wallet."""
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    _open(database)
    with pytest.raises(IntegrityError), database.unit_of_work() as session:
        session.execute(update(LedgerAccountRow).where(LedgerAccountRow.id == "wallet-a")
                        .values(debits_posted_fen=1))


def test_the_check_finds_books_edited_behind_the_ledgers_back(database) -> None:
    from sqlalchemy import update

    _open(database)
    _apply(database, Transfer("dep-1", "cash", "wallet-a", 1_000, "deposit"))
    with database.unit_of_work() as session:
        session.execute(update(LedgerAccountRow).where(LedgerAccountRow.id == "cash")
                        .values(debits_posted_fen=999))
    with database.unit_of_work() as session:
        report = ledger_store.check_invariants(session)
    assert not report.ok
    assert any("posted debits" in p for p in report.problems)
    assert any("account cash balances differ" in p for p in report.problems)


class StoreMachine(RuleBasedStateMachine):
    """Random deposits, moves, holds, posts, voids, expiries, retries and batches, applied to
    the database and to the in-memory model alike: same outcome, same books, every step."""

    database = None  # set by the test
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.model = LedgerState()
        self.now = T0
        self.serial = 0
        self.done: list[Transfer] = []

    def _id(self) -> str:
        self.serial += 1
        return f"t-{self.serial}"

    def _both(self, transfer: Transfer) -> TransferRecord | None:
        """Apply to model and store; they must agree on success or the kind of error."""
        try:
            expected = self.model.apply(transfer, self.now)
        except SuanliError as exc:
            with pytest.raises(type(exc)):
                _apply(self.database, transfer, self.now)
            return None
        got = _apply(self.database, transfer, self.now)
        assert got == expected, (got, expected)
        self.done.append(transfer)
        return got

    @initialize()
    def fresh_books(self) -> None:
        with self.database.unit_of_work() as session:
            session.execute(delete(LedgerTransferRow))
            session.execute(delete(LedgerAccountRow))
        _open(self.database, self.now)
        for account_id, kind in zip(ACCOUNTS, KINDS, strict=True):
            self.model.open_account(Account.open(account_id, kind), self.now)

    @rule(seconds=st.integers(min_value=0, max_value=900))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(wallet=st.sampled_from(["wallet-a", "wallet-b", "fund"]), amount=amounts)
    def deposit(self, wallet: str, amount: int) -> None:
        self._both(Transfer(self._id(), "cash", wallet, amount, "deposit"))

    @rule(debit=st.sampled_from(ACCOUNTS), credit=st.sampled_from(ACCOUNTS), amount=amounts)
    def move(self, debit: str, credit: str, amount: int) -> None:
        if debit != credit:
            self._both(Transfer(self._id(), debit, credit, amount, "move"))

    @rule(target=holds, wallet=st.sampled_from(["wallet-a", "wallet-b"]), amount=amounts,
          timeout_s=st.sampled_from([0, 600, 3600]))
    def hold(self, wallet: str, amount: int, timeout_s: int) -> str:
        transfer_id = self._id()
        self._both(Transfer(transfer_id, wallet, "prov-1", amount, "job-hold",
                            TransferKind.PENDING, timeout_s=timeout_s))
        return transfer_id

    @rule(hold=holds, share=st.floats(min_value=0.0, max_value=1.2))
    def post(self, hold: str, share: float) -> None:
        held = self.model.transfers[hold].amount_fen if hold in self.model.transfers else 1
        self._both(post_pending(self._id(), hold, max(1, int(held * share)), "job-charge"))

    @rule(hold=holds)
    def void(self, hold: str) -> None:
        self._both(void_pending(self._id(), hold))

    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        if self.done:
            self._both(data.draw(st.sampled_from(self.done)))

    @rule(data=st.data(), extra=st.integers(min_value=1, max_value=50))
    def conflicting_retry(self, data: st.DataObject, extra: int) -> None:
        posted = [t for t in self.done if t.kind == TransferKind.POSTED]
        if posted:
            t = data.draw(st.sampled_from(posted))
            changed = Transfer(t.id, t.debit_account_id, t.credit_account_id,
                               t.amount_fen + extra, t.code)
            with pytest.raises(Conflict):
                self.model.apply(changed, self.now)
            with pytest.raises(Conflict):
                _apply(self.database, changed, self.now)

    @rule(wallet=st.sampled_from(["wallet-a", "wallet-b"]), amount=amounts,
          share=st.integers(min_value=1, max_value=120), fee=st.integers(1, 300),
          linked=st.booleans())
    def batch(self, wallet: str, amount: int, share: int, fee: int, linked: bool) -> None:
        hold_id, post_id, fee_id = self._id(), self._id(), self._id()
        batch = [Transfer(hold_id, wallet, "prov-1", amount, "job-hold", TransferKind.PENDING),
                 post_pending(post_id, hold_id, max(1, amount * share // 100), "job-charge"),
                 Transfer(fee_id, "prov-1", "fees", fee, "platform-fee")]
        if linked:
            try:
                expected = self.model.apply_linked(batch, self.now)
            except SuanliError as exc:
                with pytest.raises(type(exc)), self.database.unit_of_work() as session:
                    ledger_store.apply_many(session, batch, self.now, linked=True)
                return
            with self.database.unit_of_work() as session:
                got = ledger_store.apply_many(session, batch, self.now, linked=True)
            assert got == expected
            return
        model_results: list = []
        for transfer in batch:
            try:
                model_results.append(self.model.apply(transfer, self.now))
            except SuanliError as exc:
                model_results.append(exc)
        with self.database.unit_of_work() as session:
            got = ledger_store.apply_many(session, batch, self.now, linked=False)
        for mine, theirs in zip(got, model_results, strict=True):
            if isinstance(theirs, SuanliError):
                assert type(mine) is type(theirs), (mine, theirs)
            else:
                assert mine == theirs

    @rule()
    def sweep(self) -> None:
        expected = self.model.expire(self.now)
        with self.database.unit_of_work() as session:
            got = ledger_store.expire_due(session, self.now)
        assert sorted(r.id for r in got) == sorted(r.id for r in expected)

    @rule(hold=holds)
    def post_unknown_or_settled(self, hold: str) -> None:
        self._both(post_pending(self._id(), hold + "-nope", 1))

    @invariant()
    def same_books_and_balanced(self) -> None:
        accounts, transfers = _books(self.database)
        assert {a: accounts[a] for a in ACCOUNTS} == {a: self.model.accounts[a]
                                                      for a in ACCOUNTS}
        assert transfers == self.model.transfers
        self.model.check_invariants()


def test_the_stored_ledger_matches_the_model_after_every_step(database) -> None:
    StoreMachine.database = database
    run_state_machine_as_test(StoreMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=25, deadline=None,
        suppress_health_check=list(HealthCheck)))
