"""Live placement through the scheduling service on PostgreSQL, and its agreement with the
simulator's engine on a Philly slice.

Usage: .venv/bin/python bench/placement_live.py [--pools 10000] [--sites 500] [--jobs 1000]
       [--philly 300] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Data: pools and sites as bench/registry_query.py builds them (catalog accelerators with a unit
rating, random cities, prices, free devices), in a fresh schema dropped afterwards; jobs of
ten tenants with the full spec mix (devices 1-64, the four workload classes, a software
stack for 40%, realtime or interactive with a user city for 20% (a latency bound for a third
of those), data in a province with its size for 40%, a deadline for 30%, a budget for 20%,
priority, spot for 10%). Measured, wall clock, one process:
  - building the pass's PoolTable from the database (one query for pools and sites, one for
    tariffs, the snapshots, the table);
  - scheduling passes (`place_pending`): decisions/s including the table build, the leases and
    holds written, committed;
  - lone submissions (`jobs.submit` + `place`, as POST /v1/jobs does): submissions/s.
Agreement: the first N jobs of the Philly trace (shared/data/traces/philly.csv), mapped to
job specs as the simulator maps them to requests (devices, duration as the time limit, CUDA
unless portable, latency class and home city, data province and size, deadline, spot), are
submitted one by one through the service; an engine built as `suanli.sim.Simulator` builds
it, on a table of the same pool state, decides the same jobs in the same order and reserves
what it chose. The count of jobs placed differently is printed (goal 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from suanli.adapters.clock import SystemClock
from suanli.adapters.store import create_database
from suanli.bootstrap import parse_authority
from suanli.domain.errors import PlacementInfeasible
from suanli.domain.jobs import MAX_DEADLINE_S, MAX_DEVICES_PER_JOB, MAX_TIME_LIMIT_S, JobSpec
from suanli.domain.placement import (
    AcceleratorConstraint,
    JobRequest,
    LatencyClass,
    PlacementEngine,
    PoolTable,
    make_policy,
)
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.services import tenants
from suanli.services.jobs import lifecycle as jobs
from suanli.services.scheduling import placement as scheduling
from suanli.services.scheduling.live_table import LiveTables
from suanli.shared_data import shared_data_dir
from suanli.sim.traces import load_philly

sys.path.insert(0, str(Path(__file__).parent))
from registry_query import build  # noqa: E402 - the same pools as the registry bench

CITIES = ("Beijing", "Shanghai", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Wuhan")
PROVINCES = ("CN-BJ", "CN-SH", "CN-GD", "CN-ZJ", "CN-SC", "CN-NX", "CN-GZ", "CN-NM")
STACKS = ("CUDA", "CANN", "ROCm", "Neuware")


def spec_mix(i: int, rng: random.Random) -> JobSpec:
    """One job of the full spec mix."""
    fields: dict = {"name": f"job {i}", "command": ("true",),
                    "devices": rng.choice([1, 1, 2, 4, 8, 8, 16, 64]),
                    "workload_class": rng.choice(["general", "training", "inference", "hpc"]),
                    "time_limit_s": rng.choice([600, 3600, 4 * 3600, 24 * 3600]),
                    "priority": rng.randint(0, 9), "spot": rng.random() < 0.1}
    if rng.random() < 0.4:
        fields["software_stack"] = rng.choice(STACKS)
    if rng.random() < 0.2:
        fields["latency_class"] = rng.choice(["realtime", "interactive"])
        fields["user_city"] = rng.choice(CITIES)
        if rng.random() < 0.33:
            fields["max_rtt_ms"] = 30.0
    if rng.random() < 0.4:
        fields["data_province"] = rng.choice(PROVINCES)
        fields["data_gb"] = round(rng.uniform(1, 2000), 1)
    if rng.random() < 0.3:
        fields["deadline_s"] = fields["time_limit_s"] * rng.choice([1, 2, 4])
    if rng.random() < 0.2:
        fields["budget_fen"] = fields["devices"] * fields["time_limit_s"] // 3600 * 800
    return JobSpec(**fields)


def consumers(db, n: int, now):  # type: ignore[no-untyped-def]
    with db.unit_of_work() as session:
        return [Principal(tenants.create_tenant(session, parse_authority("CN"), f"c{i}",
                                                Role.CONSUMER, TenantClass.START_UP,
                                                now).tenant_id, Role.CONSUMER)
                for i in range(n)]


def measure_service(db, n_jobs: int, now) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    authority = parse_authority("CN")
    started = time.perf_counter()
    with db.unit_of_work() as session:
        live = LiveTables(session)
        for workload in ("general", "training"):
            live.of(workload)
    print(f"table: {time.perf_counter() - started:.2f} s to read and build two classes' "
          "PoolTables (one query for pools and sites, one for tariffs)")
    people = consumers(db, 10, now)
    with db.unit_of_work() as session:
        for i in range(n_jobs):
            jobs.submit(session, people[i % len(people)], authority, spec_mix(i, rng),
                        f"k{i}", now)
    attempted = placed = 0
    started = time.perf_counter()
    for _ in range(max(1, n_jobs // scheduling.MAX_JOBS_PER_PASS + 1)):
        with db.unit_of_work() as session:
            pending = len(session.execute(text(
                "SELECT id FROM jobs WHERE state = 'pending'")).all())
            got = scheduling.place_pending(session, now)
        attempted += min(pending, scheduling.MAX_JOBS_PER_PASS)
        placed += got
        if got == 0:
            break
    seconds = time.perf_counter() - started
    print(f"passes (place_pending, committed): {attempted:,} decisions in {seconds:.2f} s = "
          f"{attempted / seconds:,.0f} decisions/s ({placed:,} placed)")
    lone = 20
    started = time.perf_counter()
    for i in range(lone):
        with db.unit_of_work() as session:
            job, _ = jobs.submit(session, people[0], authority, spec_mix(10_000 + i, rng),
                                 f"lone{i}", now)
            scheduling.place(session, job, now)
    seconds = time.perf_counter() - started
    print(f"lone submissions (submit + place, a table each): {lone / seconds:,.1f} /s")


def philly_agreement(db, n: int, now) -> None:  # type: ignore[no-untyped-def]
    trace = load_philly(shared_data_dir(), limit=n)
    authority = parse_authority("CN")
    [person] = consumers(db, 1, now)
    with db.unit_of_work() as session:
        live = LiveTables(session).of("training")
    assert live is not None
    table = PoolTable(live.table.pools)
    engine = PlacementEngine(table, make_policy("balanced", table, np.random.default_rng(7)),
                             preemption=True)
    now_s = int(now.timestamp())
    different = placed = 0
    for k, job in enumerate(trace.jobs):
        devices = min(job.devices, MAX_DEVICES_PER_JOB)
        limit_s = min(job.duration_s, MAX_TIME_LIMIT_S)
        deadline = None if job.deadline_s is None else \
            min(max(1, job.deadline_s - job.submit_s), MAX_DEADLINE_S)
        spec = JobSpec(name=job.id, command=("true",), devices=devices,
                       workload_class="training", time_limit_s=limit_s,
                       software_stack=None if job.portable else "CUDA",
                       latency_class=job.latency_class.value, user_city=job.home_city,
                       data_province=job.data_province, data_gb=job.data_gb,
                       deadline_s=deadline, spot=job.spot_allowed)
        with db.unit_of_work() as session:
            stored, _ = jobs.submit(session, person, authority, spec, f"p{k}", now)
            scheduling.place(session, stored, now)
            got = stored.pool_id if stored.state == "placed" else None
        request = JobRequest(
            id=job.id, tenant_id="t", devices=devices,
            work_units=limit_s / 3600 * devices * live.reference_units,
            accelerator=AcceleratorConstraint(
                software_stacks=frozenset() if job.portable else frozenset({"CUDA"})),
            latency_class=LatencyClass(job.latency_class.value), user_city=job.home_city,
            data_province=job.data_province, data_gb=job.data_gb,
            deadline_s=None if deadline is None else now_s + deadline,
            spot_allowed=job.spot_allowed, workload_class="training", defer_allowed=False)
        try:
            choice = engine.choose(request, now_s, allow_defer=False)
        except PlacementInfeasible:
            expected = None
        else:
            expected = choice.allocations[0].pool_id
            for a in choice.allocations:
                table.reserve(a.pool_index, a.devices, spot=a.spot)
        placed += got is not None
        different += got != expected
    print(f"Philly slice: {len(trace.jobs)} jobs through the service, {placed} placed; "
          f"decisions different from the simulator's engine: {different}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--philly", type=int, default=100)
    parser.add_argument("--url", default=os.environ.get(
        "SUANLI_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    print(f"{args.pools:,} pools on {args.sites:,} sites, {args.jobs:,} jobs, Philly slice "
          f"{args.philly}; {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, NumPy {np.__version__}, "
          f"{args.url.split('://')[0]}")
    schema = f"bench_{secrets.token_hex(3)}" if args.url.startswith("postgres") else None
    db = create_database(args.url, schema=schema)
    try:
        db.migrate()
        started = time.perf_counter()
        build(db, args.pools, args.sites, 1)
        print(f"built {args.pools:,} pools in {time.perf_counter() - started:.1f} s")
        now = SystemClock().now()
        measure_service(db, args.jobs, now)
        philly_agreement(db, args.philly, now)
    finally:
        if schema:
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        db.dispose()


if __name__ == "__main__":
    main()
