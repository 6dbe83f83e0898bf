"""Benchmark: job submissions/s through the HTTP API, and time from submit to running.

    python bench/job_submission.py                      # SQLite
    python bench/job_submission.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/job_submission.py --engines noop,local,slurm,ray

A real `suanli serve` process (uvicorn, one worker) and real `suanli agent` processes on
loopback. Submissions: N jobs from C client threads, each with its own Idempotency-Key, to a
pool served by an agent on the no-op engine (so the platform, not the engine, is measured).
Submit-to-running: jobs submitted one at a time to a pool served by each engine; the time is
taken from the job's recorded events (submitted -> running), so it includes placement, the
agent's poll interval (--poll-s), the engine's start-up and the agent's report.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

SITE = {"name": "bench DC", "province": "CN-GZ", "city": "Guiyang", "latitude": 26.6,
        "longitude": 106.7, "pue": "1.2", "electricity_fen_per_kwh": 35, "green_share": "0.6",
        "kind": "hub", "hub": "guizhou"}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUANLI_")}
    env.update(extra)
    return env


class Node:
    def __init__(self, workdir: Path, database_url: str, schema: str | None) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = _env(SUANLI_DATABASE_URL=database_url, SUANLI_SCHEDULER_INTERVAL_S="0.2",
                   SUANLI_HEARTBEAT_TTL_S="30")
        if schema:
            env["SUANLI_DATABASE_SCHEMA"] = schema
        self.log = workdir / "serve.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "suanli.cli.main", "serve", "--port", str(self.port)],
            cwd=workdir, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
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

    def tenant(self, role: str) -> str:
        response = httpx.post(self.url + "/v1/tenants", headers=self.operator,
                              json={"name": f"bench {role}", "role": role})
        response.raise_for_status()
        return response.json()["api_key"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def make_pool(node: Node, provider_key: str, engine: str, devices: int) -> str:
    headers = {"Authorization": f"Bearer {provider_key}"}
    provider = httpx.post(node.url + "/v1/providers", headers=headers,
                          json={"name": f"bench {engine}", "kind": "cloud"}).json()
    site = httpx.post(f"{node.url}/v1/providers/{provider['id']}/sites", headers=headers,
                      json=SITE).json()
    pool = httpx.post(f"{node.url}/v1/sites/{site['id']}/pools", headers=headers,
                      json={"name": f"{engine} pool", "accelerator": "intel-xeon-8480",
                            "device_count": devices, "engine": engine,
                            "price_fen_per_device_hour": 40})
    pool.raise_for_status()
    return pool.json()["id"]


def start_agent(node: Node, key: str, pool: str, engine: str, workdir: Path,
                poll_s: float, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "suanli.cli.main", "agent", "--platform", node.url,
         "--pool", pool, "--engine", engine, "--state-dir", str(workdir / f"agent-{engine}"),
         "--poll-s", str(poll_s), "--max-running", "16", *extra],
        env=_env(SUANLI_API_KEY=key), cwd=workdir,
        stdout=(workdir / f"agent-{engine}.log").open("w"), stderr=subprocess.STDOUT)


def submissions(node: Node, consumer_key: str, pool: str, jobs: int, clients: int) -> None:
    headers = {"Authorization": f"Bearer {consumer_key}"}
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = jobs // clients

    def client(index: int) -> None:
        with httpx.Client(base_url=node.url, headers=headers, timeout=30) as http:
            for n in range(per_client):
                started = time.perf_counter()
                response = http.post("/v1/jobs", headers={"Idempotency-Key": f"b{index}-{n}"},
                                     json={"name": "noop", "command": ["true"], "devices": 1,
                                           "pool_id": pool})
                response.raise_for_status()
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(f"  submissions: {len(latencies)} jobs from {clients} clients in {elapsed:.2f} s = "
          f"{len(latencies) / elapsed:,.0f} jobs/s; latency p50 "
          f"{statistics.median(latencies):.1f} ms, p99 "
          f"{latencies[int(0.99 * len(latencies)) - 1]:.1f} ms")


def submit_to_running(node: Node, consumer_key: str, pool: str, engine: str,
                      samples: int) -> None:
    headers = {"Authorization": f"Bearer {consumer_key}"}
    waits = []
    for n in range(samples):
        job = httpx.post(node.url + "/v1/jobs",
                         headers={**headers, "Idempotency-Key": f"{engine}-{n}-{secrets.token_hex(3)}"},
                         json={"name": "probe", "command": ["sleep", "1"], "devices": 1,
                               "pool_id": pool}).json()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = httpx.get(f"{node.url}/v1/jobs/{job['id']}", headers=headers).json()
            times = {e["to_state"]: e["at"] for e in state["events"]}
            if "running" in times or state["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        end = times.get("running") or times.get(state["state"])
        waits.append((datetime.fromisoformat(end) -
                       datetime.fromisoformat(times["pending"])).total_seconds())
    print(f"  submit->running on {engine:<5}: median {statistics.median(waits):.2f} s, "
          f"max {max(waits):.2f} s over {len(waits)} jobs")


def run(label: str, url: str, args: argparse.Namespace) -> None:
    schema = f"jobbench_{secrets.token_hex(3)}" if url.startswith("postgres") else None
    workdir = Path(tempfile.mkdtemp(prefix="suanli-jobbench-"))
    node = Node(workdir, url, schema)
    agents = []
    try:
        print(f"[{label}]")
        provider, consumer = node.tenant("provider"), node.tenant("consumer")
        noop_pool = make_pool(node, provider, "local", 100_000)
        agents.append(start_agent(node, provider, noop_pool, "noop", workdir, args.poll_s, []))
        submissions(node, consumer, noop_pool, args.jobs, args.clients)
        for engine in args.engines.split(","):
            extra = ["--engine-option", f"address={args.ray_address}"] if engine == "ray" else []
            pool = make_pool(node, provider, engine if engine != "noop" else "local", 64)
            agents.append(start_agent(node, provider, pool, engine, workdir, args.poll_s,
                                      extra))
            submit_to_running(node, consumer, pool, engine, args.samples)
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(timeout=20)
        node.stop()
        if schema:
            from sqlalchemy import create_engine, text
            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--poll-s", type=float, default=0.2)
    parser.add_argument("--engines", default="noop,local")
    parser.add_argument("--ray-address", default="http://127.0.0.1:8265")
    parser.add_argument("--postgres", default=os.environ.get("SUANLI_BENCH_POSTGRES"))
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}; agent poll {args.poll_s} s")
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/bench.db", args)
    if args.postgres:
        run("PostgreSQL", args.postgres, args)


if __name__ == "__main__":
    main()
