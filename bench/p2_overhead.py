"""P2 - the switcher's own overhead: sequential AWS calls on the critical path, and its wall time
excluding modeled waits, on moto server (app fault, both orders).

Run alone: `.venv/bin/python -m bench.p2_overhead [--runs 21]`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from collections import Counter
from typing import Any

from bench.deployment_config import load_deployed
from bench.harness import deployment
from bench.latency_model import LatencyModel
from bench.results_io import REPO_ROOT, run_metadata, write_result
from bench.single_switch import SwitchRun, SwitchRunner

ORDERS = ("swr", "vendor")
DEFAULT_RUNS = 21
BASE_SEED = 40_000
TARGET_CALLS = 12
TARGET_WALL_S = 1.5
#: The call that puts the replacement in service: calls after it do not delay recovery.
TRAFFIC_CALL = "elbv2.RegisterTargets"
POLLED_OPERATIONS = {"ec2.DescribeInstances", "ec2.DescribeInstanceStatus"}


def call_profile(run: SwitchRun) -> dict[str, Any]:
    """Count the calls of one switch: all, up to traffic moved, and without waiter re-polls."""
    operations = [call["operation"] for call in run.calls]
    cut = max(i for i, op in enumerate(operations) if op == TRAFFIC_CALL) + 1
    critical = operations[:cut]
    # A waiter repeats the same describe call until the state changes: the repeats are polls.
    repolls = sum(
        1
        for i in range(1, len(critical))
        if critical[i] in POLLED_OPERATIONS and critical[i] == critical[i - 1]
    )
    return {
        "total_calls": len(operations),
        "critical_path_calls": len(critical),
        "critical_path_waiter_repolls": repolls,
        "critical_path_calls_without_repolls": len(critical) - repolls,
        "critical_path_by_operation": dict(Counter(critical)),
        "after_traffic_moved": operations[cut:],
    }


def measure_switch_memory() -> dict[str, Any]:
    """Peak Python heap of one switch (tracemalloc) after a warm-up switch, and the process's max RSS."""
    model, config = LatencyModel.load(), load_deployed()
    with deployment([1, 2], config.health("nlb")) as deployed:
        runner = SwitchRunner(deployed, model, config)
        runner.run(node_id=1, case="app_fault", order="swr", seed=BASE_SEED)  # imports, clients, caches
        tracemalloc.start()
        try:
            runner.run(node_id=2, case="app_fault", order="swr", seed=BASE_SEED + 1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return {
        "tracemalloc_peak_mib": round(peak / 2**20, 2),
        "process_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "measured": "tracemalloc peak during one warm switch (app fault, swr order) in the benchmark "
        "process (moto runs in its own process); the process's max RSS includes the harness itself",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    model, config = LatencyModel.load(), load_deployed()
    began = time.perf_counter()
    runs: dict[str, list[SwitchRun]] = {order: [] for order in ORDERS}
    node_ids = list(range(1, args.runs * len(ORDERS) + 2))
    with deployment(node_ids, config.health("nlb")) as deployed:
        runner = SwitchRunner(deployed, model, config)
        nodes = iter(node_ids)
        # One unmeasured switch first: the first call of each client pays for its model loading.
        runner.run(node_id=next(nodes), case="app_fault", order="swr", seed=BASE_SEED - 1)
        for index in range(args.runs):
            for order in ORDERS:
                runs[order].append(
                    runner.run(node_id=next(nodes), case="app_fault", order=order, seed=BASE_SEED + index)
                )
    orders: dict[str, Any] = {}
    for order, group in runs.items():
        profiles = [call_profile(run) for run in group]
        busy = [run.switcher_real_busy_s for run in group]
        orders[order] = {
            "runs": len(group),
            "critical_path_calls_median": statistics.median(p["critical_path_calls"] for p in profiles),
            "critical_path_calls_without_repolls_median": statistics.median(
                p["critical_path_calls_without_repolls"] for p in profiles
            ),
            "total_calls_median": statistics.median(p["total_calls"] for p in profiles),
            "wall_s_excluding_modeled_waits_median": statistics.median(busy),
            "wall_s_excluding_modeled_waits_max": max(busy),
            "modeled_waits_s_median": statistics.median(run.switcher_modeled_waits_s for run in group),
            "example_profile": profiles[len(profiles) // 2],
        }
    swr = orders["swr"]
    payload = {
        "benchmark": "p2_overhead",
        "run": run_metadata(f"python -m bench.p2_overhead --runs {args.runs}"),
        "what": "AWS calls made one after another by one switch (app fault), counted by botocore hooks, "
        "and the real time the switcher + moto server spent outside the modeled sleeps",
        "wall_s": time.perf_counter() - began,
        "orders": orders,
        "verdict": {
            "target_calls": TARGET_CALLS,
            "calls_target_met": swr["critical_path_calls_without_repolls_median"] <= TARGET_CALLS,
            "target_wall_s": TARGET_WALL_S,
            "wall_target_met": swr["wall_s_excluding_modeled_waits_median"] <= TARGET_WALL_S,
        },
    }
    path = write_result("p2_overhead", payload)
    print(f"P2 written to {path.relative_to(REPO_ROOT)} ({payload['wall_s']:.0f} s)")
    for order, entry in orders.items():
        print(
            f"  {order:6s}: {entry['critical_path_calls_without_repolls_median']} calls to traffic moved "
            f"(+{entry['critical_path_calls_median'] - entry['critical_path_calls_without_repolls_median']} "
            f"waiter re-polls), {entry['total_calls_median']} in all; "
            f"{entry['wall_s_excluding_modeled_waits_median']:.2f} s real excluding modeled waits"
        )
    return payload


if __name__ == "__main__":
    main()
