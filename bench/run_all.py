"""Run every benchmark, then draw the chart and write bench/RESULTS.md (`make bench`).

Each benchmark runs in its own interpreter, as it would alone, so one's moto server, threads and
memory never colour another's figures (P4's memory figure in particular).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.results_io import REPO_ROOT

BENCHMARKS = (
    ("p1_recovery", []),
    ("p2_overhead", []),
    ("p3_az_outage", []),
    ("p4_cost", []),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full-tests",
        action="store_true",
        help="P4 also times one full test-suite run (about 10 minutes on 2 cores, so not by default: "
        "P4 then collects the tests and quotes the last recorded full-suite time)",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    for name, extra in BENCHMARKS:
        if name == "p4_cost" and args.full_tests:
            extra = [*extra, "--full-tests"]
        step = time.perf_counter()
        print(f"== {name} {' '.join(extra)}", flush=True)
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", *extra], cwd=REPO_ROOT, check=False)
        print(f"== {name}: {time.perf_counter() - step:.0f} s, exit {done.returncode}", flush=True)
        if done.returncode != 0:
            return done.returncode
    for name in ("gantt", "report"):
        done = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=REPO_ROOT, check=False)
        if done.returncode != 0:
            return done.returncode
    print(f"all benchmarks: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
