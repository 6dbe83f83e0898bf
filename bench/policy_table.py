"""Every placement policy on the same trace and federation: cost, JCT, energy, carbon.

Usage: .venv/bin/python bench/policy_table.py [--trace philly] [--limit N] [--policies a,b]

Runs the policies one after another (not in parallel: the machine is shared) on one
federation sized for the trace, and prints a table with ratios against `cheapest`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from suanli.domain.placement import POLICIES
from suanli.sim.replay import prepare, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default="philly")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--json", default=None, help="also write the summaries here")
    args = parser.parse_args()
    policies = args.policies.split(",")
    trace, federation = prepare(args.trace, limit=args.limit)
    print(f"trace {args.trace}: {len(trace.jobs):,} jobs; federation {len(federation.pools)} "
          f"pools, {federation.devices} devices, {federation.units_per_hour:,.0f} SCU/h")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    rows = []
    for name in policies:
        started = time.perf_counter()
        rows.append(replay(trace, federation, name).summary)
        print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)
    base = next((r for r in rows if r["policy"] == "cheapest"), rows[0])
    header = (f"{'policy':<17}{'paid CNY':>13}{'x cheap':>8}{'JCT mean h':>11}{'p95 h':>8}"
              f"{'queue h':>8}{'energy MWh':>11}{'elec CNY':>10}{'CO2 t':>8}{'west %':>7}"
              f"{'Jain':>6}{'missed':>7}{'defer':>7}{'preempt':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = r["cost_fen"] / base["cost_fen"]
        print(f"{r['policy']:<17}{r['cost_fen'] / 100:>13,.0f}{ratio:>8.3f}"
              f"{r['jct_mean_h']:>11.3f}{r['jct_p95_h']:>8.2f}{r['queue_mean_h']:>8.3f}"
              f"{r['energy_kwh'] / 1000:>11.2f}{r['electricity_fen'] / 100:>10,.0f}"
              f"{r['carbon_kg'] / 1000:>8.2f}{100 * r['west_batch_share']:>7.1f}"
              f"{r['fairness_jain']:>6.3f}{r['deadline_missed']:>7}{r['deferred']:>7}"
              f"{r['preemptions']:>8}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
