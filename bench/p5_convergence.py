"""P5 - time to convergence after a lost event (modeled): how long a failed node stays down when the
events that should have switched it are lost, until the reconciler (or Lambda's retry) converges it.

The switcher's code runs in-process against moto, under the one model of the Lambda runtime that the
convergence tests use (tests/helpers/lambda_runtime.py: asynchronous retries ~1 and ~2 minutes after the
previous attempt ended, then the event is dropped; a killed invocation runs no handler; the reconciler's
schedule every `SWR_RECONCILE_INTERVAL_SECONDS`). AWS calls take no modeled time here: the figure is the
detection/retry schedule (lease, reconcile interval, Lambda's retries), not EC2's boot (P1 models that).
The failure happens at a uniformly random moment of the reconcile schedule. Cases, each on the
`stopping` and `stopped` events EventBridge sends for the failed node:

- `retries_exhausted`: every attempt of both events fails at once (an error before any AWS call), Lambda
  retries each twice and drops them: only the reconciler is left;
- `killed_once`: the `stopping` event's invocation is killed at a random AWS call after 1-900 s (out of
  memory, a crash, the timeout), still holding its lease; Lambda's retry of that request resumes;
- `killed_every_attempt`: every attempt of the `stopping` event is killed likewise, each leaving a lease,
  and the event is dropped after the third: the reconciler resumes once the last lease has expired (a
  Lambda retry that comes after that finds the node converged).

Measured per run: modeled seconds from the failure to the node ACTIVE on a running replacement; reported
as median with a 90 % bootstrap interval (bench.stats), and max. For `killed_every_attempt` also the time
from the last kill, against the bound lease + one reconcile interval.

Run alone: `.venv/bin/python -m bench.p5_convergence [--runs 25]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.results_io import REPO_ROOT, run_metadata, write_result
from bench.stats import median_interval

if str(REPO_ROOT) not in sys.path:  # tests/helpers: the one Lambda runtime model and moto world
    sys.path.insert(0, str(REPO_ROOT))

CASES = ("retries_exhausted", "killed_once", "killed_every_attempt")
CASE_TITLES = {
    "retries_exhausted": "every attempt of both events failed; Lambda dropped them",
    "killed_once": "the event's invocation killed mid-switch once; Lambda retries it",
    "killed_every_attempt": "every attempt of the event killed mid-switch; the event dropped",
}
DEFAULT_RUNS = 25
BASE_SEED = 50_000
#: A kill lands on one of these AWS calls of an invocation: after the claim's (3rd call) or around the
#: take-over's (4th) write, before the switch can close (a switch that drives makes 10 or more calls), so
#: the dead invocation leaves a lease that holds the node.
KILL_CALLS = (4, 10)
#: Kills each case must see in every run (checked: a case is what it says). A Lambda retry that comes
#: after the reconciler has converged the node (the lease expired first) finds nothing to do: not killed.
EXPECTED_KILLS = {"retries_exhausted": (0, 0), "killed_once": (1, 1), "killed_every_attempt": (1, 3)}


def _faults(case: str, rng: random.Random, first_request: list[str]) -> Callable[[str, str, int], list[Any]]:
    from tests.helpers.lambda_runtime import PlannedFault

    def plan(kind: str, request_id: str, attempt: int) -> list[PlannedFault]:
        if kind != "event":
            return []
        if case == "retries_exhausted":
            return [PlannedFault(call=1, kind="error", when="before")]
        if request_id != first_request[0] or (case == "killed_once" and attempt > 1):
            return []
        return [
            PlannedFault(
                call=rng.randint(*KILL_CALLS),
                kind="kill",
                when=rng.choice(("before", "after")),
                ran_for=rng.choice((rng.uniform(1, 899), 900.0)),
            )
        ]

    return plan


def one_run(case: str, seed: int) -> dict[str, Any]:
    """One failure under `case`; returns when the node converged (modeled seconds after the failure)."""
    from moto.core.base_backend import BackendDict
    from switcher import state

    from tests.helpers.lambda_runtime import INVOCATION_SECONDS, Attempt, LambdaRuntime
    from tests.helpers.world import build_world

    BackendDict.reset()
    rng = random.Random(seed)
    world = build_world()
    source = world.provision(1)
    interval = float(world.settings.reconcile_interval_seconds)
    t0 = world.now()
    world.clients.ec2.stop_instances(InstanceIds=[source])  # the FaultScript
    first_request: list[str] = []
    converged: list[float] = []

    def after(attempt: Attempt) -> None:
        if converged:
            return
        node = state.get_node(world.clients.dynamodb, world.settings.table_name, "prod", 1)
        if node is not None and node.state == state.ACTIVE and node.current_instance_id != source:
            assert node.current_instance_id is not None
            if world.state_of(node.current_instance_id) == "running":
                converged.append(attempt.started + INVOCATION_SECONDS)

    runtime = LambdaRuntime(
        clients=world.clients,
        settings=world.settings,
        clock=world.clock,
        reconcile_interval=interval,
        first_reconcile_at=t0 + rng.uniform(0, interval),
        after_attempt=after,
        attempt_faults=_faults(case, rng, first_request),
    )
    first_request.append(runtime.deliver(world.event("ec2_state_stopping", source)))
    runtime.deliver(world.event("ec2_state_stopped", source), at=t0 + rng.uniform(0, 20))
    horizon = t0 + 4 * (world.settings.lease_seconds + interval)
    runtime.run_until(horizon, stop=lambda: bool(converged))
    runtime.injecting = False
    if not converged:
        raise RuntimeError(f"{case} seed {seed}: the node did not converge by the horizon")
    kills = [
        at
        for (fault, _), at in zip(runtime.injected, runtime.injected_at, strict=True)
        if fault.kind == "kill"
    ]
    low, high = EXPECTED_KILLS[case]
    if not low <= len(kills) <= high:
        raise RuntimeError(f"{case} seed {seed}: {len(kills)} kills, expected {EXPECTED_KILLS[case]}")
    return {
        "seed": seed,
        "converged_after_s": round(converged[0] - t0, 3),
        "after_last_kill_s": round(converged[0] - max(kills), 3) if kills else None,
        "kills": len(kills),
        "dropped_events": len(runtime.dropped),
        "attempts": len(runtime.attempts),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per case")
    args = parser.parse_args(argv)
    from moto import mock_aws
    from switcher.settings import Settings

    from swr_local.emulator import REGION, fake_credentials
    from tests.helpers.aws_faults import aws_faults

    defaults = Settings(table_name="-", topic_arn="-", blackhole_sg_id="-", vpc_name="-", vpc_id="-")
    began = time.perf_counter()
    cases: dict[str, Any] = {}
    with fake_credentials(REGION), mock_aws(), aws_faults():
        for case in CASES:
            runs = [one_run(case, BASE_SEED + i) for i in range(args.runs)]
            times = [r["converged_after_s"] for r in runs]
            entry: dict[str, Any] = {
                "title": CASE_TITLES[case],
                "runs": args.runs,
                "converged_after_s": median_interval(times).as_dict(),
                "converged_after_max_s": max(times),
                "dropped_events_median": statistics.median(r["dropped_events"] for r in runs),
                "kills_median": statistics.median(r["kills"] for r in runs),
                "per_run": runs,
            }
            after_kill = [r["after_last_kill_s"] for r in runs if r["after_last_kill_s"] is not None]
            if after_kill:
                entry["after_last_kill_s"] = median_interval(after_kill).as_dict()
                entry["after_last_kill_max_s"] = max(after_kill)
            cases[case] = entry
            print(
                f"  {case:22s} median {entry['converged_after_s']['value']:.0f} s "
                f"[{entry['converged_after_s']['low']:.0f}-{entry['converged_after_s']['high']:.0f}], "
                f"max {entry['converged_after_max_s']:.0f} s",
                flush=True,
            )
    bound = defaults.lease_seconds + defaults.reconcile_interval_seconds
    worst = cases["killed_every_attempt"].get("after_last_kill_max_s")
    payload = {
        "benchmark": "p5_convergence",
        "run": run_metadata(f"python -m bench.p5_convergence --runs {args.runs}"),
        "what": "modeled seconds from a node's failure to one running replacement when the triggering "
        "events are lost (Lambda retries exhausted, invocations killed), under the Lambda runtime model",
        "wall_s": time.perf_counter() - began,
        "reconcile_interval_s": defaults.reconcile_interval_seconds,
        "lease_s": defaults.lease_seconds,
        "lambda_retry_delays_s": [60, 120],
        "cases": cases,
        "verdict": {
            "bound_after_last_kill_s": bound,
            "worst_after_last_kill_s": worst,
            "bound_met": worst is not None and worst <= bound,
        },
    }
    path = write_result("p5_convergence", payload)
    print(f"P5 written to {path.relative_to(REPO_ROOT)} ({payload['wall_s']:.0f} s)")
    return payload


if __name__ == "__main__":
    main()
