"""The exchange's matching core, in process on one core: order events/s and the latency of
each event on a book of 100,000 resting orders, and a call-auction uncross of 100,000 orders.

Usage: .venv/bin/python bench/market_matching.py [--resting 100000] [--events 300000]
       [--auction 100000] [--seed 7]

Continuous: a book is filled with `--resting` orders (bids 9,000-9,999 fen, asks 10,001-11,000,
1-20 units, 1,000 owners), then `--events` pre-generated commands run against it: 45 % new
orders that rest, 35 % cancels of a resting order, 20 % orders that cross the spread and take
1-3 orders. The mix keeps the book near its starting size. An event is one command (a submit,
a cancel); the events it writes to the log (executions, submissions) are counted apart.
Throughput is timed over the whole run; p50/p99 per event in a second run of the same script
on a fresh book, each command timed with perf_counter_ns (which adds ~0.1 us to each).
Auction: `--auction` orders (half bids, half asks, prices overlapping 9,000-11,000) rest in a
call-auction book; one uncross is timed (indicative price, allocation, pairing, events).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time

from suanli.domain.market.book import BUY, SELL, OrderBook
from suanli.domain.market.products import MatchingRule


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, os.cpu_count()={os.cpu_count()}, {platform.platform()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()})")


def fill(book: OrderBook, count: int, rng: random.Random) -> list[str]:
    ids = []
    for i in range(count):
        order_id = f"r{i}"
        if i % 2:
            book.submit(order_id, BUY, rng.randint(9_000, 9_999), rng.randint(1, 20), 1,
                        owner=f"m{rng.randrange(1_000)}")
        else:
            book.submit(order_id, SELL, rng.randint(10_001, 11_000), rng.randint(1, 20), 1,
                        owner=f"m{rng.randrange(1_000)}")
        ids.append(order_id)
    return ids


def script(count: int, resting_ids: list[str], rng: random.Random) -> list[tuple]:
    """Commands; a cancel names an id that was placed earlier (it may have traded since)."""
    live = list(resting_ids)
    commands: list[tuple] = []
    for i in range(count):
        roll = rng.random()
        order_id = f"n{i}"
        owner = f"m{rng.randrange(1_000)}"
        if roll < 0.55:
            if rng.random() < 0.5:
                commands.append(("s", order_id, BUY, rng.randint(9_000, 9_999),
                                 rng.randint(1, 20), owner))
            else:
                commands.append(("s", order_id, SELL, rng.randint(10_001, 11_000),
                                 rng.randint(1, 20), owner))
            live.append(order_id)
        elif roll < 0.85:
            index = rng.randrange(len(live))
            live[index], live[-1] = live[-1], live[index]
            commands.append(("c", live.pop()))
        elif rng.random() < 0.5:
            commands.append(("s", order_id, BUY, 11_000, rng.randint(1, 30), owner))
        else:
            commands.append(("s", order_id, SELL, 9_000, rng.randint(1, 30), owner))
    return commands


def run(book: OrderBook, commands: list[tuple], timed: bool
        ) -> tuple[float, float, int, int, list[int]]:
    """Returns the wall and CPU time, the events run (a cancel of an order gone meanwhile is not one), the
    log events written and, when timed, each event's latency in ns."""
    submit, cancel, orders = book.submit, book.cancel, book.orders
    logged = 0
    skipped = 0
    latencies: list[int] = []
    clock = time.perf_counter_ns
    gc.disable()
    started = time.perf_counter()
    cpu_started = time.process_time()
    at_ms = 2
    for command in commands:
        t0 = clock() if timed else 0
        if command[0] == "s":
            events = submit(command[1], command[2], command[3], command[4], at_ms,
                            owner=command[5])
        elif command[1] in orders:
            events = cancel(command[1], at_ms)
        else:
            skipped += 1
            continue
        if timed:
            latencies.append(clock() - t0)
        logged += len(events)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    gc.enable()
    return elapsed, cpu, len(commands) - skipped, logged, latencies


def percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000


def continuous(resting: int, events: int, seed: int) -> None:
    rng = random.Random(seed)
    book = OrderBook("bench", MatchingRule.CONTINUOUS)
    ids = fill(book, resting, rng)
    commands = script(events, ids, rng)
    elapsed, cpu, ran, logged, _ = run(book, commands, timed=False)
    book.check_invariants()
    print(f"continuous: {ran:,} events on a book of {resting:,} resting orders "
          f"(ends with {len(book.orders):,}): {elapsed:.3f} s wall, {cpu:.3f} s CPU; "
          f"{ran / elapsed:,.0f} events/s wall, {ran / cpu:,.0f} events/s CPU; "
          f"{logged:,} log events written")
    rng = random.Random(seed)
    book = OrderBook("bench", MatchingRule.CONTINUOUS)
    ids = fill(book, resting, rng)
    commands = script(events, ids, rng)
    _, _, _, _, latencies = run(book, commands, timed=True)
    print(f"  per event (perf_counter_ns each): p50 {percentile(latencies, 0.50):.2f} us, "
          f"p99 {percentile(latencies, 0.99):.2f} us, p99.9 {percentile(latencies, 0.999):.2f}"
          f" us, max {max(latencies) / 1000:.0f} us")


def auction(orders: int, seed: int) -> None:
    rng = random.Random(seed)
    book = OrderBook("bench", MatchingRule.CALL_AUCTION)
    for i in range(orders):
        book.submit(f"a{i}", BUY if i % 2 else SELL, rng.randint(9_000, 11_000),
                    rng.randint(1, 20), 1, owner=f"m{rng.randrange(1_000)}")
    gc.disable()
    started = time.perf_counter()
    cpu_started = time.process_time()
    indicative = book.indicative()
    events = book.uncross(2)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    gc.enable()
    book.check_invariants()
    assert indicative is not None
    print(f"call auction: uncross of {orders:,} orders in {elapsed:.3f} s wall, {cpu:.3f} s "
          f"CPU: price "
          f"{indicative.price} fen, volume {indicative.volume:,}, imbalance "
          f"{indicative.imbalance:,}, {len(events):,} cross events, {len(book.orders):,} left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resting", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--auction", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    continuous(args.resting, args.events, args.seed)
    auction(args.auction, args.seed)


if __name__ == "__main__":
    main()
