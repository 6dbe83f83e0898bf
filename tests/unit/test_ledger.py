"""Ledger rules: double entry, flags, two-phase holds, idempotency, linked batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from suanli.domain.errors import (
    Conflict,
    InsufficientFunds,
    NotFound,
    SuanliError,
    ValidationFailed,
)
from suanli.domain.ledger import (
    Account,
    AccountKind,
    Transfer,
    TransferKind,
    TransferState,
    apply_transfer,
    post_pending,
    void_pending,
)
from tests.ledger_model import LedgerState

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _ledger() -> LedgerState:
    state = LedgerState()
    state.open_account(Account.open("cash", AccountKind.EXTERNAL), T0)
    state.open_account(Account.open("wallet-a", AccountKind.TENANT_WALLET), T0)
    state.open_account(Account.open("prov-1", AccountKind.PROVIDER_RECEIVABLE), T0)
    state.open_account(Account.open("fees", AccountKind.PLATFORM_FEES), T0)
    return state


def _deposit(state: LedgerState, amount_fen: int, transfer_id: str = "dep-1") -> None:
    state.apply(Transfer(transfer_id, "cash", "wallet-a", amount_fen, "deposit"), T0)


def test_job_hold_is_posted_partly_and_the_rest_released() -> None:
    state = _ledger()
    _deposit(state, 10_000)
    state.apply(Transfer("hold-1", "wallet-a", "prov-1", 6_000, "job-hold",
                         TransferKind.PENDING, timeout_s=3600), T0)
    wallet = state.accounts["wallet-a"]
    assert (wallet.debits_pending_fen, wallet.available_fen) == (6_000, 4_000)
    record = state.apply(post_pending("post-1", "hold-1", 4_500, "job-charge"),
                         T0 + timedelta(minutes=30))
    assert record.amount_fen == 4_500 and record.debit_account_id == "wallet-a"
    assert state.transfers["hold-1"].state == TransferState.POSTED
    wallet, provider = state.accounts["wallet-a"], state.accounts["prov-1"]
    assert (wallet.balance_fen, wallet.debits_pending_fen) == (5_500, 0)
    assert (provider.balance_fen, provider.credits_pending_fen) == (4_500, 0)
    state.check_invariants()


def test_overdraft_is_refused_and_changes_nothing() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    before = dict(state.accounts)
    with pytest.raises(InsufficientFunds) as caught:
        state.apply(Transfer("t-1", "wallet-a", "prov-1", 1_001, "job-charge"), T0)
    assert caught.value.field == "debit_account_id"
    assert state.accounts == before and "t-1" not in state.transfers


def test_a_hold_counts_against_what_can_be_spent() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    state.apply(Transfer("hold-1", "wallet-a", "prov-1", 800, "job-hold", TransferKind.PENDING),
                T0)
    with pytest.raises(InsufficientFunds):
        state.apply(Transfer("t-1", "wallet-a", "fees", 201, "fee"), T0)
    state.apply(Transfer("t-2", "wallet-a", "fees", 200, "fee"), T0)
    state.check_invariants()


def test_credit_flag_refuses_credit_beyond_debits() -> None:
    state = LedgerState()
    state.open_account(Account("ent", AccountKind.ENTITLEMENT,
                               credits_must_not_exceed_debits=True), T0)
    state.open_account(Account.open("cash", AccountKind.EXTERNAL), T0)
    with pytest.raises(InsufficientFunds) as caught:
        state.apply(Transfer("t-1", "cash", "ent", 1, "deposit"), T0)
    assert caught.value.field == "credit_account_id"


def test_retry_with_the_same_id_returns_the_first_result() -> None:
    state = _ledger()
    transfer = Transfer("dep-1", "cash", "wallet-a", 500, "deposit")
    first = state.apply(transfer, T0)
    again = state.apply(transfer, T0 + timedelta(seconds=5))
    assert again == first and state.accounts["wallet-a"].balance_fen == 500
    assert len(state.journal) == 5  # four opens, one transfer: the retry is not journalled


def test_same_id_with_different_fields_is_a_conflict() -> None:
    state = _ledger()
    _deposit(state, 500)
    with pytest.raises(Conflict, match="exists with different fields"):
        state.apply(Transfer("dep-1", "cash", "wallet-a", 501, "deposit"), T0)


def test_void_releases_the_whole_hold_and_a_second_settlement_conflicts() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    state.apply(Transfer("hold-1", "wallet-a", "prov-1", 700, "job-hold",
                         TransferKind.PENDING), T0)
    record = state.apply(void_pending("void-1", "hold-1"), T0)
    assert record.state == TransferState.VOIDED and record.amount_fen == 700
    assert state.accounts["wallet-a"].available_fen == 1_000
    with pytest.raises(Conflict, match="already voided"):
        state.apply(post_pending("post-1", "hold-1", 100), T0)


def test_posting_more_than_the_hold_is_refused() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    state.apply(Transfer("hold-1", "wallet-a", "prov-1", 700, "job-hold",
                         TransferKind.PENDING), T0)
    with pytest.raises(ValidationFailed) as caught:
        state.apply(post_pending("post-1", "hold-1", 701), T0)
    assert caught.value.field == "amount_fen"


def test_expired_hold_is_released_and_can_no_longer_be_posted() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    state.apply(Transfer("hold-1", "wallet-a", "prov-1", 700, "job-hold",
                         TransferKind.PENDING, timeout_s=60), T0)
    late = T0 + timedelta(seconds=60)
    with pytest.raises(Conflict, match="expired"):
        state.apply(post_pending("post-1", "hold-1", 100), late)
    assert [r.id for r in state.expire(late)] == ["hold-1"]
    assert state.transfers["hold-1"].state == TransferState.EXPIRED
    assert state.accounts["wallet-a"].available_fen == 1_000
    state.check_invariants()


def test_linked_batch_is_all_or_nothing() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    before = dict(state.accounts)
    batch = [Transfer("c-1", "wallet-a", "prov-1", 900, "job-charge"),
             Transfer("c-2", "wallet-a", "fees", 200, "fee")]
    with pytest.raises(InsufficientFunds, match=r"linked transfer 1 \(c-2\)"):
        state.apply_linked(batch, T0)
    assert state.accounts == before and "c-1" not in state.transfers
    batch[1] = Transfer("c-2", "wallet-a", "fees", 100, "fee")
    records = state.apply_linked(batch, T0)
    assert [r.amount_fen for r in records] == [900, 100]
    assert state.accounts["wallet-a"].balance_fen == 0
    state.check_invariants()


def test_linked_batch_may_settle_a_hold_it_made() -> None:
    state = _ledger()
    _deposit(state, 1_000)
    state.apply_linked([
        Transfer("h", "wallet-a", "prov-1", 600, "job-hold", TransferKind.PENDING),
        post_pending("p", "h", 500, "job-charge"),
        Transfer("f", "prov-1", "fees", 50, "fee"),
    ], T0)
    assert state.accounts["prov-1"].balance_fen == 450
    assert state.accounts["fees"].balance_fen == 50
    state.check_invariants()


def test_pure_apply_transfer_reports_only_the_rows_to_write() -> None:
    accounts = {"w": Account("w", AccountKind.TENANT_WALLET, credits_posted_fen=100,
                             debits_must_not_exceed_credits=True),
                "p": Account.open("p", AccountKind.PROVIDER_RECEIVABLE),
                "x": Account.open("x", AccountKind.EXTERNAL)}
    applied = apply_transfer(accounts, Transfer("t", "w", "p", 40, "job-charge"), None, None, T0)
    assert set(applied.accounts) == {"w", "p"} and applied.created
    assert applied.accounts["w"].debits_posted_fen == 40
    assert accounts["w"].debits_posted_fen == 0  # the input is not mutated
    retry = apply_transfer(accounts, Transfer("t", "w", "p", 40, "job-charge"), applied.record,
                           None, T0)
    assert retry.accounts == {} and not retry.created and retry.record == applied.record


@pytest.mark.parametrize("kwargs, field", [
    ({"amount_fen": 0}, "amount_fen"),
    ({"amount_fen": -5}, "amount_fen"),
    ({"credit_account_id": "a"}, "credit_account_id"),
    ({"code": "Job Charge"}, "code"),
    ({"timeout_s": 30}, "timeout_s"),
    ({"ledger": "USD"}, "ledger"),
])
def test_transfer_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"id": "t", "debit_account_id": "a", "credit_account_id": "b",
                                 "amount_fen": 1, "code": "fee"}
    fields.update(kwargs)
    with pytest.raises(ValidationFailed) as caught:
        Transfer(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_account_and_time_going_backwards_are_refused() -> None:
    state = _ledger()
    with pytest.raises(NotFound):
        state.apply(Transfer("t", "nobody", "wallet-a", 1, "deposit"), T0)
    with pytest.raises(ValidationFailed) as caught:
        state.apply(Transfer("t", "cash", "wallet-a", 1, "deposit"), T0 - timedelta(seconds=1))
    assert caught.value.field == "now"


def test_reopening_an_account_differently_is_a_conflict() -> None:
    state = _ledger()
    assert state.open_account(Account.open("fees", AccountKind.PLATFORM_FEES), T0)
    with pytest.raises(Conflict):
        state.open_account(Account.open("fees", AccountKind.PEER_CLEARING), T0)


# --- the state machine --------------------------------------------------------------------

ACCOUNTS = ("cash", "wallet-a", "wallet-b", "prov-1", "fees", "fund", "peer", "ent")
amounts = st.integers(min_value=1, max_value=5_000)


class LedgerMachine(RuleBasedStateMachine):
    """Random deposits, charges, holds, posts, voids, retries and linked batches."""

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.state = LedgerState()
        self.now = T0
        self.serial = 0
        self.applied: list[Transfer] = []

    def _id(self) -> str:
        self.serial += 1
        return f"t-{self.serial}"

    def _try(self, action):  # type: ignore[no-untyped-def]
        """Run an action; a refused one must leave the books exactly as they were."""
        accounts, transfers = dict(self.state.accounts), dict(self.state.transfers)
        journal_length = len(self.state.journal)
        try:
            return action()
        except SuanliError:
            assert self.state.accounts == accounts and self.state.transfers == transfers
            assert len(self.state.journal) == journal_length
            return None

    @initialize()
    def open_accounts(self) -> None:
        kinds = [AccountKind.EXTERNAL, AccountKind.TENANT_WALLET, AccountKind.TENANT_WALLET,
                 AccountKind.PROVIDER_RECEIVABLE, AccountKind.PLATFORM_FEES,
                 AccountKind.PROGRAMME_FUND, AccountKind.PEER_CLEARING]
        for account_id, kind in zip(ACCOUNTS, kinds, strict=False):
            self.state.open_account(Account.open(account_id, kind), self.now)
        self.state.open_account(Account("ent", AccountKind.ENTITLEMENT,
                                        credits_must_not_exceed_debits=True), self.now)

    @rule(seconds=st.integers(min_value=0, max_value=900))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(wallet=st.sampled_from(["wallet-a", "wallet-b", "fund"]), amount=amounts)
    def deposit(self, wallet: str, amount: int) -> None:
        transfer = Transfer(self._id(), "cash", wallet, amount, "deposit")
        if self._try(lambda: self.state.apply(transfer, self.now)) is not None:
            self.applied.append(transfer)

    @rule(debit=st.sampled_from(ACCOUNTS), credit=st.sampled_from(ACCOUNTS), amount=amounts)
    def transfer(self, debit: str, credit: str, amount: int) -> None:
        if debit == credit:
            return
        transfer = Transfer(self._id(), debit, credit, amount, "move")
        if self._try(lambda: self.state.apply(transfer, self.now)) is not None:
            self.applied.append(transfer)

    @rule(target=holds, wallet=st.sampled_from(["wallet-a", "wallet-b"]), amount=amounts,
          timeout_s=st.sampled_from([0, 600, 3600]))
    def hold(self, wallet: str, amount: int, timeout_s: int) -> str:
        transfer = Transfer(self._id(), wallet, "prov-1", amount, "job-hold",
                            TransferKind.PENDING, timeout_s=timeout_s)
        if self._try(lambda: self.state.apply(transfer, self.now)) is not None:
            self.applied.append(transfer)
        return transfer.id

    @rule(hold_id=holds, share=st.floats(min_value=0.0, max_value=1.2))
    def post(self, hold_id: str, share: float) -> None:
        record = self.state.transfers.get(hold_id)
        held = record.amount_fen if record else 100
        amount = max(1, int(held * share))  # above the hold sometimes: must be refused
        transfer = post_pending(self._id(), hold_id, amount, "job-charge")
        result = self._try(lambda: self.state.apply(transfer, self.now))
        if result is not None:
            assert result.amount_fen == amount <= held
            self.applied.append(transfer)

    @rule(hold_id=consumes(holds))
    def void(self, hold_id: str) -> None:
        transfer = void_pending(self._id(), hold_id)
        if self._try(lambda: self.state.apply(transfer, self.now)) is not None:
            assert self.state.transfers[hold_id].state == TransferState.VOIDED
            self.applied.append(transfer)

    @rule()
    def expire(self) -> None:
        for record in self.state.expire(self.now):
            assert record.state == TransferState.EXPIRED and record.expires_at <= self.now

    @rule(data=st.data())
    def retry_same(self, data: st.DataObject) -> None:
        if not self.applied:
            return
        transfer = data.draw(st.sampled_from(self.applied))
        before = (dict(self.state.accounts), self.state.transfers[transfer.id])
        again = self.state.apply(transfer, self.now)
        assert again == before[1] and self.state.accounts == before[0]

    @rule(data=st.data(), extra=st.integers(min_value=1, max_value=50))
    def retry_conflicting(self, data: st.DataObject, extra: int) -> None:
        candidates = [t for t in self.applied if t.kind != TransferKind.VOID_PENDING]
        if not candidates:
            return
        transfer = data.draw(st.sampled_from(candidates))
        changed = Transfer(transfer.id, transfer.debit_account_id, transfer.credit_account_id,
                           transfer.amount_fen + extra, transfer.code, transfer.kind,
                           transfer.pending_id, transfer.timeout_s)
        assert self._try(lambda: self.state.apply(changed, self.now)) is None

    @rule(legs=st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS),
                                  amounts), min_size=1, max_size=4))
    def linked(self, legs: list[tuple[str, str, int]]) -> None:
        batch = [Transfer(self._id(), d, c, a, "move") for d, c, a in legs if d != c]
        if not batch:
            return
        result = self._try(lambda: self.state.apply_linked(batch, self.now))
        if result is None:
            assert not any(t.id in self.state.transfers for t in batch)
        else:
            assert all(self.state.transfers[t.id].state == TransferState.POSTED for t in batch)
            self.applied.extend(batch)

    @invariant()
    def books_balance(self) -> None:
        self.state.check_invariants()

    @invariant()
    def replay_gives_the_same_books(self) -> None:
        replayed = LedgerState.replay(self.state.journal)
        assert replayed.accounts == self.state.accounts
        assert replayed.transfers == self.state.transfers


LedgerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestLedgerMachine = LedgerMachine.TestCase
