"""Full trace replay wall time: Philly (82k jobs) and Alibaba through the simulator.

Usage: .venv/bin/python bench/simulate_replay.py [--policy balanced] [--traces philly,alibaba]

Loads each trace from shared/data, builds the federation for it, replays every job under the
policy and prints the wall time of each step and of the whole, with events per second. The
baseline is the same replay under `first-fit`, the policy with the least work per decision,
in the same process. Goal: the full Philly replay in under 60 s on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from suanli.sim.replay import prepare, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="balanced")
    parser.add_argument("--traces", default="philly,alibaba")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    for name in args.traces.split(","):
        started = time.perf_counter()
        trace, federation = prepare(name)
        prepared = time.perf_counter() - started
        print(f"{name}: {len(trace.jobs):,} jobs, {len(federation.pools)} pools / "
              f"{federation.devices} devices; load + federation {prepared:.1f} s")
        for policy in dict.fromkeys([args.policy, "first-fit"]):
            result = replay(trace, federation, policy)
            s = result.summary
            print(f"  {policy:<12} replay {s['wall_s']:6.1f} s "
                  f"({len(trace.jobs) / s['wall_s']:,.0f} jobs/s), total with loading "
                  f"{prepared + s['wall_s']:.1f} s; JCT mean {s['jct_mean_h']:.2f} h, "
                  f"paid {s['cost_fen'] / 100:,.0f} CNY, {s['preemptions']:,} preemptions")


if __name__ == "__main__":
    main()
