"""Many transactions at once: nothing lost, budgets never overspent, books balanced.

On PostgreSQL writers queue on row locks; on SQLite each transaction that may write begins
IMMEDIATE and so queues on the database's one write lock (docs/decisions.md).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from sqlalchemy import func, select

from suanli.adapters.store import ledger as ledger_store
from suanli.adapters.store.billing_tables import UsageChargeRow, VoucherRow
from suanli.domain.accounts import fund_account_id
from suanli.domain.errors import Conflict, InsufficientFunds
from suanli.domain.jobs import JobState
from suanli.domain.ledger import Account, AccountKind, Transfer, TransferKind, post_pending
from suanli.domain.tenants import Principal, Role
from suanli.services.billing import vouchers as vouchers_store
from suanli.services.dispatch import agents
from tests.billing.conftest import PROGRAMME, SITE

THREADS = 8
WALLETS = [f"wallet-{i}" for i in range(6)]
FUNDS_FEN = 100_000


def _run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors


def test_parallel_transfers_holds_and_retries_lose_nothing(database, clock) -> None:
    now = clock.now()
    with database.unit_of_work() as session:
        ledger_store.open_account(session, Account.open("cash", AccountKind.EXTERNAL), now)
        for wallet in WALLETS:
            ledger_store.open_account(session, Account.open(wallet, AccountKind.TENANT_WALLET),
                                      now)
            ledger_store.apply(session, Transfer(f"fund-{wallet}", "cash", wallet, FUNDS_FEN,
                                                 "deposit"), now)
    applied: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        rng = random.Random(index)
        for step in range(60):
            debit, credit = rng.sample(WALLETS, 2)
            amount = rng.randint(1, 4_000)
            # Every other step repeats a transfer id another thread also sends: applied once.
            shared = step % 2 == 0
            transfer_id = f"shared-{step}" if shared else f"t-{index}-{step}"
            if shared:
                debit, credit, amount = WALLETS[step % 6], WALLETS[(step + 1) % 6], 10 + step
            batch = [Transfer(transfer_id, debit, credit, amount, "move")]
            if step % 3 == 0 and not shared:
                hold = f"h-{index}-{step}"
                batch = [Transfer(hold, debit, credit, amount, "job-hold", TransferKind.PENDING),
                         post_pending(f"p-{index}-{step}", hold, amount // 2 + 1, "job-charge")]
            try:
                with database.unit_of_work() as session:
                    records = ledger_store.apply_many(session, batch, now, linked=True)
            except InsufficientFunds:
                continue
            with lock:
                applied.extend(r.id for r in records)

    _run_threads(work)
    with database.unit_of_work() as session:
        report = ledger_store.check_invariants(session)
        wallets = ledger_store.get_accounts(session, WALLETS)
    assert report.ok, report.problems
    assert sum(w.balance_fen for w in wallets.values()) == FUNDS_FEN * len(WALLETS)
    assert all(w.debits_pending_fen == 0 and w.balance_fen >= 0 for w in wallets.values())
    # every transfer a thread saw succeed is stored, shared ids exactly once
    assert report.transfers == len(WALLETS) + len(set(applied))


def test_voucher_budget_is_never_overspent_under_concurrency(client, operator, provider,
                                                             make_tenant, database,
                                                             clock) -> None:
    """Eight grants of 1,000 fen against a budget of 5,000 at once: five are granted, none
    promises money the programme does not hold (issue 12); then eight charges at once pay
    out exactly the budget."""
    budget = 5_000
    programme = {**PROGRAMME, "budget_fen": budget, "coverage": "1",
                 "western_extra_coverage": "0", "cap_fen_per_tenant": 2_000}
    assert client.post("/v1/programmes", json=programme,
                       headers=operator.headers).status_code == 201
    p = client.post("/v1/providers", json={"name": "West", "kind": "cloud"},
                    headers=provider.headers).json()
    site = client.post(f"/v1/providers/{p['id']}/sites", json=SITE,
                       headers=provider.headers).json()
    work_items, consumers = [], []
    for index in range(THREADS):
        tenant = make_tenant("consumer", f"start-up {index}", "start-up")
        consumers.append(tenant)
        client.post(f"/v1/tenants/{tenant.id}/deposits", json={"amount_fen": 10_000},
                    headers={**operator.headers, "Idempotency-Key": f"d{index}"})
        pool = client.post(f"/v1/sites/{site['id']}/pools",
                           json={"name": f"a800 {index}", "accelerator": "nvidia-a800",
                                 "device_count": 2, "engine": "local",
                                 "price_fen_per_device_hour": 900},
                           headers=provider.headers).json()["id"]
        agent = client.post("/v1/agents", json={"name": f"a{index}", "pools": [pool]},
                            headers=provider.headers).json()["id"]
        job = client.post("/v1/jobs", json={"name": "j", "command": ["x"], "devices": 2,
                                            "pool_id": pool, "time_limit_s": 3600},
                          headers={**tenant.headers, "Idempotency-Key": "j"}).json()
        assert job["state"] == "placed", job
        [assignment] = client.post(f"/v1/agents/{agent}/claim", json={},
                                   headers=provider.headers).json()["assignments"]
        work_items.append((agent, assignment))
    grants: list[int] = []

    def grant(index: int) -> None:
        with database.unit_of_work() as session:
            try:
                row, _ = vouchers_store.grant(
                    session, Principal(operator.id, Role.OPERATOR), programme["id"],
                    tenant_id=consumers[index].id, granted_fen=1_000,
                    idempotency_key=f"g{index}", now=clock.now())
                grants.append(row.granted_fen)
            except Conflict:
                pass  # the budget is promised: refused, never over-granted

    _run_threads(grant)
    assert sum(grants) == budget and len(grants) == 5
    clock.advance(3600)
    owner = Principal(provider.id, Role.PROVIDER)

    def work(index: int) -> None:
        agent, assignment = work_items[index]
        with database.unit_of_work() as session:
            agents.report(session, owner, agent, assignment["lease_id"], assignment["fence"],
                          JobState.SUCCEEDED, clock.now(), usage={"wall_s": 3600.0})

    _run_threads(work)
    with database.unit_of_work() as session:
        charges = session.scalars(select(UsageChargeRow)).all()
        used = session.scalar(select(func.sum(VoucherRow.granted_fen - VoucherRow.remaining_fen)))
        fund = ledger_store.get_account(session, fund_account_id(programme["id"]))
        report = ledger_store.check_invariants(session)
    assert report.ok, report.problems
    assert len(charges) == THREADS  # every job charged once
    assert all(c.amount_fen == 1_800 and c.unpaid_fen == 0 for c in charges)
    discounts = sum(c.discount_fen for c in charges)
    # 1,800 fen a job, 1,000 of it covered for five tenants: exactly the budget, never more.
    assert discounts == budget == used == fund.debits_posted_fen
    assert fund is not None and fund.balance_fen == 0
    assert sum(c.collected_fen for c in charges) == THREADS * 1_800 - budget
