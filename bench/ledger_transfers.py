"""Benchmark: ledger transfers/s through the store service (services.ledger_store).

    python bench/ledger_transfers.py                                   # SQLite, a temp file
    python bench/ledger_transfers.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Data: 1,000 tenant wallets funded from one external account, then random wallet-to-wallet
transfers of 1-100 fen (uniform; seeded), so almost none is refused. Three ways:

- single:  one transfer per transaction (lock 2 accounts, read, write, commit), one client,
           and on PostgreSQL also 4 clients at once (threads, a connection each);
- batched: `apply_many(linked=False)`, 1,000 independent transfers per transaction;
- linked:  `apply_many(linked=True)`, 1,000 transfers per all-or-nothing transaction.

Every way runs through the same pure rules (domain.ledger) under `SELECT ... FOR UPDATE` row
locks (PostgreSQL) or SQLite's single writer. The invariant check (ledger_store.check_invariants)
runs at the end and must pass. On PostgreSQL the tables live in a schema of their own, dropped
afterwards, and the script runs ANALYZE after loading and between phases, as autovacuum would
(the development server runs with autovacuum off; without statistics the planner scans).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from suanli.adapters.store import create_database
from suanli.adapters.store import ledger as ledger_store
from suanli.domain.ledger import Account, AccountKind, Transfer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FUNDS_FEN = 10**12


def machine(db) -> str:  # type: ignore[no-untyped-def]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if "model name" in line]
            cpu = names[0] if names else cpu
    except OSError:
        pass
    with db.engine.connect() as connection:
        version = connection.execute(text(
            "select version()" if db.dialect == "postgresql" else "select sqlite_version()"
        )).scalar_one()
    return (f"{cpu}, os.cpu_count()={os.cpu_count()}, Python {platform.python_version()}, "
            f"{db.dialect} {str(version).split(' on ')[0]}")


def setup(db, accounts: int) -> list[str]:  # type: ignore[no-untyped-def]
    wallets = [f"wallet:{i:06d}" for i in range(accounts)]
    with db.unit_of_work() as session:
        ledger_store.open_account(session, Account.open("external:cash", AccountKind.EXTERNAL),
                                  T0)
        for wallet in wallets:
            ledger_store.open_account(session, Account.open(wallet, AccountKind.TENANT_WALLET),
                                      T0)
    for start in range(0, accounts, 1000):
        deposits = [Transfer(f"fund:{w}", "external:cash", w, FUNDS_FEN, "deposit")
                    for w in wallets[start:start + 1000]]
        with db.unit_of_work() as session:
            ledger_store.apply_many(session, deposits, T0, linked=True)
    return wallets


def transfers(rng: random.Random, wallets: list[str], prefix: str, count: int) -> list[Transfer]:
    out = []
    for i in range(count):
        debit, credit = rng.sample(wallets, 2)
        out.append(Transfer(f"{prefix}:{i}", debit, credit, rng.randint(1, 100), "move"))
    return out


def run_single(db, batch: list[Transfer], now: datetime) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for transfer in batch:
        with db.unit_of_work() as session:
            ledger_store.apply(session, transfer, now)
    return time.perf_counter() - started


def run_threads(db, batch: list[Transfer], now: datetime,  # type: ignore[no-untyped-def]
                threads: int) -> float:
    share = [batch[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=run_single, args=(db, part, now)) for part in share]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def analyze(db) -> None:  # type: ignore[no-untyped-def]
    if db.dialect == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE ledger_accounts, ledger_transfers"))


def run_batched(db, batch: list[Transfer], size: int, now: datetime,  # type: ignore[no-untyped-def]
                linked: bool) -> float:
    started = time.perf_counter()
    for start in range(0, len(batch), size):
        with db.unit_of_work() as session:
            ledger_store.apply_many(session, batch[start:start + size], now, linked=linked)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--batched", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    assert 2 <= args.accounts <= 1_000_000 and 1 <= args.batch_size <= 8_190

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='suanli-bench-')}/ledger.db"
    schema = f"bench_{secrets.token_hex(3)}" if url.startswith("postgresql") else None
    db = create_database(url, schema=schema)
    try:
        db.migrate()
        print(f"machine: {machine(db)}")
        rng = random.Random(args.seed)
        wallets = setup(db, args.accounts)
        print(f"data: {args.accounts:,} wallets, random moves of 1-100 fen (seed {args.seed})")
        now = T0 + timedelta(hours=1)
        results = []
        analyze(db)
        single = transfers(rng, wallets, "single", args.single)
        results.append(("single (1 per transaction)", len(single),
                        run_single(db, single, now)))
        if db.dialect == "postgresql":
            analyze(db)
            parallel = transfers(rng, wallets, "parallel", args.single)
            results.append(("single, 4 clients at once", len(parallel),
                            run_threads(db, parallel, now, 4)))
        for linked in (False, True):
            analyze(db)
            name = "linked" if linked else "batched"
            batch = transfers(rng, wallets, name, args.batched)
            seconds = run_batched(db, batch, args.batch_size, now, linked)
            results.append((f"{name} ({args.batch_size:,} per transaction)", len(batch),
                            seconds))
        for label, count, seconds in results:
            print(f"{label:<36} {count:>9,} transfers in {seconds:7.2f} s = "
                  f"{count / seconds:>9,.0f} transfers/s")
        started = time.perf_counter()
        with db.unit_of_work() as session:
            report = ledger_store.check_invariants(session)
        check_s = time.perf_counter() - started
        assert report.ok, report.problems
        assert report.debits_posted_fen == report.credits_posted_fen
        print(f"invariant check: ok over {report.accounts:,} accounts and "
              f"{report.transfers:,} transfers in {check_s:.2f} s")
    finally:
        if schema:
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        db.dispose()


if __name__ == "__main__":
    main()
