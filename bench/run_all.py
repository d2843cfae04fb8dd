"""Run every benchmark, then draw the chart and write bench/RESULTS.md (`make bench`).

The CDK app is synthesized once; every benchmark reads the deployed health checks and reserved
concurrency from that template (SWR_BENCH_CDK_OUT). Each benchmark runs in its own interpreter, as it
would alone, so one's moto server, threads and memory never colour another's figures (P4's memory
figure in particular).

Repetitions are sized for about 6 minutes on 2 otherwise idle cores: P1 15 runs per case and order
(the bootstrap interval in the results says what that buys), P3 50 and 150 nodes; P5 25 runs per case
(about 3 more minutes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.deployment_config import CDK_OUT_ENV, synthesize
from bench.results_io import REPO_ROOT

BENCHMARKS: tuple[tuple[str, list[str]], ...] = (
    ("p1_recovery", ["--runs", "15"]),
    ("p2_overhead", ["--runs", "15"]),
    ("p3_mass_stop", ["--nodes", "50", "150"]),
    ("p4_cost", []),
    ("p5_convergence", ["--runs", "25"]),
    ("p6_az_loss", ["--nodes", "50", "200"]),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full-tests",
        action="store_true",
        help="P4 also times one full test-suite run (minutes on 2 cores, so not by default: "
        "P4 then collects the tests and quotes the last recorded full-suite time)",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="swr-bench-cdk-out-") as outdir:
        print("== synth (python app.py, default config)", flush=True)
        synthesize(Path(outdir))
        env = {**os.environ, CDK_OUT_ENV: outdir}
        for name, extra in BENCHMARKS:
            if name == "p4_cost" and args.full_tests:
                extra = [*extra, "--full-tests"]
            step = time.perf_counter()
            print(f"== {name} {' '.join(extra)}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", f"bench.{name}", *extra], cwd=REPO_ROOT, env=env, check=False
            )
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
