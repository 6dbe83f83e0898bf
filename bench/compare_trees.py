"""Run one benchmark in two checkouts, alternately, and compare the rates it prints.

Usage: python bench/compare_trees.py --before ../before-checkout [--rounds 3] \
           -- bench/placement_online.py --jobs 5000

The machine this project runs on is shared and noisy, so a figure measured before a change
and another measured after it, minutes apart, compare the load as much as the code. This
runs the same command in both trees in turns (before, after, before, after, ...), each with
its own `src/` first on PYTHONPATH, collects every rate it prints (a number followed by a unit
ending in "/s", e.g. "14,972 decisions/s" or "54.2 jobs/s"), and prints, for each rate in the
order the benchmark prints them, the median over the rounds in each tree and their ratio.
The command's path is taken relative to each tree, so each tree runs its own benchmark.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

RATE = re.compile(r"(?P<value>\d[\d,]*(?:\.\d+)?)\s*(?P<unit>[A-Za-z]+/s)\b")
MAX_ROUNDS = 20
TIMEOUT_S = 1800  # one run of the benchmark


def rates(output: str) -> list[tuple[str, float]]:
    """Every "<number> <unit>/s" in a benchmark's output, with the words before it."""
    found = []
    for line in output.splitlines():
        for match in RATE.finditer(line):
            found.append((f"{line.strip()[:60]} [{match['unit']}]",
                          float(match["value"].replace(",", ""))))
    return found


def run(tree: Path, command: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    script, *args = command
    done = subprocess.run([sys.executable, str(tree / script), *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: exit {done.returncode}\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1],
                        help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=3, help=f"at most {MAX_ROUNDS}")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- the benchmark script (relative to each tree) and its options")
    options = parser.parse_args()
    command = [c for c in options.command if c != "--"]
    if not command or not 1 <= options.rounds <= MAX_ROUNDS:
        parser.error(f"give a benchmark after -- and 1..{MAX_ROUNDS} rounds")
    trees = {"before": options.before.resolve(), "after": options.after.resolve()}
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    print(f"command: {' '.join(command)}; rounds: {options.rounds}, alternating")
    for name, tree in trees.items():
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree,
                              capture_output=True, text=True).stdout.strip()
        print(f"{name}: {tree} at {head or '?'}")
    seen: dict[str, dict[int, list[tuple[str, float]]]] = {name: {} for name in trees}
    for round_ in range(options.rounds):
        for name, tree in trees.items():
            seen[name][round_] = rates(run(tree, command))
            print(f"  round {round_ + 1} {name}: {len(seen[name][round_])} rates", flush=True)
    count = min(len(r) for runs in seen.values() for r in runs.values())
    if count == 0:
        raise SystemExit("the benchmark printed no rate (a number with a unit ending in /s)")
    print(f"\n{'rate (as the after tree prints it)':72} {'before':>12} {'after':>12} "
          f"{'after/before':>12}")
    for i in range(count):
        medians = {name: statistics.median(runs[r][i][1] for r in runs)
                   for name, runs in seen.items()}
        label = seen["after"][0][i][0]
        ratio = medians["after"] / medians["before"] if medians["before"] else float("nan")
        print(f"{label:72} {medians['before']:12,.1f} {medians['after']:12,.1f} "
              f"{ratio:12.3f}")


if __name__ == "__main__":
    main()
