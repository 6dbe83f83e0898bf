"""Benchmark: exchange orders/s through the HTTP API with escrow and persistence, and the time
from a crossing bid to its reservation.

    python bench/market_api.py                                        # PostgreSQL (default)
    python bench/market_api.py --database-url sqlite:////tmp/market.db
    python bench/market_api.py --orders 4000 --clients 8
    python bench/market_api.py --batch 100      # POST /v1/market/orders:batch, 100 a request

A real `suanli serve` process (uvicorn, one worker) on loopback, in a fresh PostgreSQL schema
(dropped afterwards). A provider sells from one pool of 100,000 A800s in Ningxia; `--clients`
buyers, each in a thread with its own keep-alive connection, and the provider's thread place
`--orders` orders in all: asks at 1,000-1,099 fen and bids at 950-1,149 fen for 1-4 devices,
over 24 hour blocks (continuous products), so about half the bids cross. Each order is one
request: validation, a product lock, the book rebuilt from its resting legs, matching, leg,
event, trade and reservation rows, and the ledger's holds and postings, in one transaction.
A trade's reservation is written in the transaction that prints it, so trade-to-reservation
is the bid's own request time (its p50/p99 are reported for the bids that traded). With
`--batch N` each request carries N orders in one transaction (latency is then the batch's).
The market and ledger invariants are checked at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

SITE = {"name": "bench DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}
ACCELERATOR = "nvidia-a800-sxm4-80gb"
BLOCKS = 24


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Node:
    def __init__(self, workdir: Path, database_url: str, schema: str | None) -> None:
        self.url = f"http://127.0.0.1:{_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUANLI_")}
        env.update(SUANLI_DATABASE_URL=database_url, SUANLI_RUN_SCHEDULER="false")
        if schema:
            env["SUANLI_DATABASE_SCHEMA"] = schema
        self.log = workdir / "serve.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "suanli.cli.main", "serve", "--port",
             self.url.rsplit(":", 1)[1]], cwd=workdir, env=env, stdout=self.log.open("w"),
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        key = re.search(r"operator API key \(shown once\):\s*(\S+)", self.log.read_text())
        assert key, self.log.read_text()
        self.operator = {"Authorization": f"Bearer {key.group(1)}"}

    def tenant(self, role: str, name: str) -> tuple[str, dict[str, str]]:
        response = httpx.post(self.url + "/v1/tenants", headers=self.operator,
                              json={"name": name, "role": role})
        response.raise_for_status()
        body = response.json()
        return body["id"], {"Authorization": f"Bearer {body['api_key']}"}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def setup(node: Node, buyers: int) -> tuple[dict[str, str], str, list[dict[str, str]]]:
    _, provider = node.tenant("provider", "bench provider")
    made = httpx.post(node.url + "/v1/providers", headers=provider,
                      json={"name": "bench provider", "kind": "cloud"}).json()
    site = httpx.post(f"{node.url}/v1/providers/{made['id']}/sites", headers=provider,
                      json=SITE).json()
    pool = httpx.post(f"{node.url}/v1/sites/{site['id']}/pools", headers=provider,
                      json={"name": "a800", "accelerator": ACCELERATOR,
                            "device_count": 100_000, "engine": "local",
                            "price_fen_per_device_hour": 1_000})
    pool.raise_for_status()
    keys = []
    for index in range(buyers):
        tenant_id, headers = node.tenant("consumer", f"bench buyer {index}")
        httpx.post(f"{node.url}/v1/tenants/{tenant_id}/deposits", json={"amount_fen": 10**10},
                   headers={**node.operator, "Idempotency-Key": f"bench-{index}"}
                   ).raise_for_status()
        keys.append(headers)
    return provider, pool.json()["id"], keys


def orders_for(side: str, count: int, seed: int, pool_id: str | None) -> list[dict]:
    rng = random.Random(seed)
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    out = []
    for n in range(count):
        start = first + timedelta(hours=rng.randrange(BLOCKS))
        price = rng.randint(1_000, 1_099) if side == "ask" else rng.randint(950, 1_149)
        body = {"client_order_id": f"{side}-{seed}-{n}", "side": side,
                "accelerator_class": ACCELERATOR, "location": "ningxia",
                "price_fen_per_unit_hour": price,
                "shape": {"intervals": [[start.isoformat(),
                                         (start + timedelta(hours=1)).isoformat()]],
                          "counts": [rng.randint(1, 4)]}}
        if pool_id:
            body["pool_id"] = pool_id
        out.append(body)
    return out


def run(node: Node, provider: dict[str, str], pool_id: str, buyers: list[dict[str, str]],
        total: int, batch: int = 0) -> None:
    per_thread = total // (len(buyers) + 1)
    work = [(provider, orders_for("ask", per_thread, 0, pool_id))]
    work += [(headers, orders_for("bid", per_thread, i + 1, None))
             for i, headers in enumerate(buyers)]
    latencies: list[float] = []
    crossing: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(headers: dict[str, str], bodies: list[dict]) -> None:
        with httpx.Client(base_url=node.url, headers=headers, timeout=60) as http:
            if batch:
                for start in range(0, len(bodies), batch):
                    part = bodies[start:start + batch]
                    started = time.perf_counter()
                    response = http.post("/v1/market/orders:batch", json={"orders": part})
                    elapsed = (time.perf_counter() - started) * 1000
                    with lock:
                        if response.status_code != 200:
                            errors.append(f"{response.status_code} {response.text[:200]}")
                            continue
                        for body, answer in zip(part, response.json()["answers"]):
                            if answer["status"] != 201:
                                errors.append(f"{answer['status']} {answer['error']}")
                                continue
                            latencies.append(elapsed)
                            if body["side"] == "bid" and answer["order"]["filled"]:
                                crossing.append(elapsed)
                return
            for body in bodies:
                started = time.perf_counter()
                response = http.post("/v1/market/orders", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status_code != 201:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                        continue
                    latencies.append(elapsed)
                    if body["side"] == "bid" and response.json()["filled"]:
                        crossing.append(elapsed)

    threads = [threading.Thread(target=client, args=item) for item in work]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    placed = len(latencies)
    print(f"orders: {placed:,} accepted by {len(threads)} client threads in {wall:.2f} s = "
          f"{placed / wall:,.0f} orders/s; latency p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {sorted(latencies)[int(0.99 * (placed - 1))]:.1f} ms; {len(errors)} errors")
    if errors:
        print(f"  first error: {errors[0]}")
    if crossing:
        print(f"trade to reservation (a crossing bid's request, trade and reservation in one "
              f"transaction): {len(crossing):,} bids, p50 {statistics.median(crossing):.1f} ms,"
              f" p99 {sorted(crossing)[int(0.99 * (len(crossing) - 1))]:.1f} ms")
    trades = httpx.get(node.url + "/v1/market/trades", params={"limit": 1000},
                       headers=node.operator).json()
    check = httpx.get(node.url + "/v1/market/check", headers=node.operator).json()
    print(f"tape (first 1,000 shown by the API): {len(trades):,} trades; market check ok: "
          f"{check['ok']} ({check['ledger']['transfers']:,} ledger transfers, "
          f"{len(check['problems'])} problems)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "SUANLI_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=4, help="buyer threads (+1 seller)")
    parser.add_argument("--batch", type=int, default=0,
                        help="orders per POST /v1/market/orders:batch (0: one order a request)")
    args = parser.parse_args()
    schema = f"bench_market_{secrets.token_hex(3)}" if args.database_url.startswith(
        "postgres") else None
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; database {args.database_url.split('://')[0]}; one "
          f"uvicorn worker; server and clients share the machine")
    with tempfile.TemporaryDirectory() as workdir:
        node = Node(Path(workdir), args.database_url, schema)
        try:
            provider, pool_id, buyers = setup(node, args.clients)
            mode = f"batches of {args.batch} orders" if args.batch else "one order a request"
            print(f"mode: {mode}")
            run(node, provider, pool_id, buyers, args.orders, args.batch)
        finally:
            node.stop()
            if schema:
                engine = create_engine(args.database_url)
                with engine.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                engine.dispose()


if __name__ == "__main__":
    main()
