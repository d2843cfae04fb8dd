"""Randomized crashes under Lambda's real retry schedule: every node converges, none is left down.

Each trial: a node fails (the FaultScript stops it), EventBridge delivers `stopping` and `stopped`, and
1-3 faults hit random AWS calls of the switcher (kills that run no handler, and handled errors; before
the call reaches AWS or after it took effect), in either switch order and capacity mode. The simulated
Lambda runtime (tests/helpers/lambda_runtime.py) retries a failed event at +60 s and +120 s after the
previous attempt, then drops it; the reconciler runs every interval. The trial ends when the node has
converged and no event is pending, plus two reconcile runs.

Asserted: the node is never left SWITCHING, down, or FAILED without a notice; it converges within
(the last lease granted) + one reconcile interval (+ one interval per fault that hit a reconcile run
itself) to exactly one running replacement (FAILED with a notice when no AZ has capacity), with its
target group and alarms on it and no orphan instance.

`SWR_CONVERGENCE_TRIALS=300` runs more trials (default 12); `SWR_CONVERGENCE_REPORT=<file>` appends
one JSON line per trial (for the numbers in docs/switcher.md).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.core.base_backend import BackendDict
from switcher import contract, state
from switcher.clients import make_clients, retry_config

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.lambda_runtime import INVOCATION_SECONDS, Attempt, LambdaRuntime, PlannedFault
from tests.helpers.world import AZS, REGION, World, build_world
from tests.helpers.world import session as _session

TRIALS = int(os.environ.get("SWR_CONVERGENCE_TRIALS", "12"))
INTERVAL = 60.0
MODES = ("normal", "first_az_full", "no_capacity", "dies_pending")
#: Faults land on one of the first calls of the run (a switch makes ~40-60 calls).
CALL_RANGE = 60


@dataclass
class Trial:
    """What one trial did (written to SWR_CONVERGENCE_REPORT)."""

    seed: int
    order: str
    mode: str
    faults: list[dict[str, Any]]
    injected: int = 0
    injected_in_reconcile: int = 0
    attempts: int = 0
    dropped: int = 0
    final_state: str = ""
    converged_after: float | None = None
    bound_after: float = 0.0
    notes: list[str] = field(default_factory=list)


def _setup(world: World, faults: FaultInjector, mode: str) -> str:
    source = world.provision(1)
    source_az = world.instance(source)["Placement"]["AvailabilityZone"]
    others = [az for az in AZS if az != source_az]
    if mode == "first_az_full":
        faults.fail_in_subnets({world.subnets[others[0]]})
    elif mode == "no_capacity":
        faults.fail_in_subnets({world.subnets[az] for az in others})
    elif mode == "dies_pending":
        faults.die_while_pending({world.subnets[others[0]]})
    world.clients.ec2.stop_instances(InstanceIds=[source])  # what the FaultScript does
    return source


def _every_instance(world: World, observer: Any) -> dict[str, dict[str, Any]]:
    resp = observer.ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{contract.TAG_NODE_ID}", "Values": ["1"]},
            {"Name": "vpc-id", "Values": [world.vpc_id]},
        ]
    )
    return {i["InstanceId"]: i for r in resp["Reservations"] for i in r["Instances"]}


def run_trial(seed: int, faults: FaultInjector) -> Trial:
    # A fresh moto per trial: hundreds of worlds in one backend make every describe slower and slower.
    BackendDict.reset()
    faults.tokens.clear()
    faults.dying_subnets.clear()
    rng = random.Random(seed)
    order, mode = rng.choice(("swr", "vendor")), rng.choice(MODES)
    world = build_world(order=order)
    # Observation goes through its own clients: the runtime's fault plan counts the switcher's calls only.
    observer = make_clients(session=_session(), region_name=REGION, config=retry_config("standard", 5))
    source = _setup(world, faults, mode)
    plan = [
        PlannedFault(
            call=call,
            kind=rng.choice(("kill", "error")),
            when=rng.choice(("before", "after")),
            ran_for=rng.choice((rng.uniform(1, 899), 900.0)),  # out of memory/crash, or the timeout
        )
        for call in sorted(rng.sample(range(1, CALL_RANGE), rng.randint(1, 3)))
    ]
    trial = Trial(seed, order, mode, [f.__dict__ for f in plan])
    t0 = world.now()
    watch: dict[str, float | None] = {"max_lease": t0, "converged": None}

    def node_now() -> state.NodeRecord:
        node = state.get_node(observer.dynamodb, world.settings.table_name, "prod", 1)
        assert node is not None
        return node

    def converged(node: state.NodeRecord) -> bool:
        if node.state == state.FAILED:
            return True
        if node.state != state.ACTIVE or node.current_instance_id in (None, source):
            return False
        described = observer.ec2.describe_instances(InstanceIds=[node.current_instance_id])
        return described["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"

    def after(attempt: Attempt) -> None:
        node = node_now()
        if node.state == state.SWITCHING:
            watch["max_lease"] = max(watch["max_lease"] or t0, float(node.lease_until))
        if watch["converged"] is None and converged(node):
            # An attempt's calls all happen as it starts (a killed one only ends later).
            watch["converged"] = attempt.started + INVOCATION_SECONDS

    runtime = LambdaRuntime(
        clients=world.clients,
        settings=world.settings,
        clock=world.clock,
        faults=plan,
        reconcile_interval=INTERVAL,
        after_attempt=after,
    )
    runtime.deliver(world.event("ec2_state_stopping", source))
    runtime.deliver(world.event("ec2_state_stopped", source), at=t0 + rng.uniform(0, 20))
    horizon = t0 + 4 * (world.settings.lease_seconds + INTERVAL)

    def quiet() -> bool:
        pending_events = any(q.kind == "event" for q in runtime._queue)
        return watch["converged"] is not None and not pending_events

    runtime.run_until(horizon, stop=quiet)
    runtime.run_until(world.now() + 2 * INTERVAL)  # nothing may change once converged
    runtime.injecting = False  # the checks below go through the same clients

    node = node_now()
    trial.injected, trial.attempts, trial.dropped = (
        len(runtime.injected),
        len(runtime.attempts),
        len(runtime.dropped),
    )
    trial.final_state = node.state
    converged_at = watch["converged"]
    trial.converged_after = None if converged_at is None else converged_at - t0
    # Lease + one reconcile interval; a fault that hit a reconcile run costs that run (one interval more).
    hit_reconcile = sum(kind == "reconcile" for _, kind in runtime.injected)
    bound = float(watch["max_lease"] or t0) + INTERVAL * (1 + hit_reconcile) + 2 * INVOCATION_SECONDS
    trial.bound_after = bound - t0
    trial.injected_in_reconcile = hit_reconcile
    context = json.dumps(trial.__dict__, default=str)

    assert node.state != state.SWITCHING, f"left SWITCHING: {context}"
    assert converged_at is not None, f"never converged: {context}"
    assert converged_at <= bound, f"converged after the bound: {context}"
    switches = state.list_switches(observer.dynamodb, world.settings.table_name, "prod", 1)
    assert len(switches) == 1, f"one failure, one switch: {context}"
    (switch,) = switches
    everything = _every_instance(world, observer)
    if mode == "no_capacity":
        assert node.state == state.FAILED, context
        assert switch.outcome == state.SWITCH_FAILED, context
        failed = runtime.published(contract.SWITCH_FAILED_DETAIL_TYPE)
        assert switch.switch_id in {n.get("switch_id") for n in failed}, f"FAILED without notice: {context}"
        assert set(everything) == {source}, f"no replacement may exist: {context}"
        return trial
    assert node.state == state.ACTIVE, context
    current = node.current_instance_id
    assert current is not None and current != source
    assert switch.outcome == state.SUCCEEDED and switch.replacement_instance_id == current, context
    live = {i for i, d in everything.items() if d["State"]["Name"] not in ("shutting-down", "terminated")}
    assert live == {current}, f"orphan or missing instance: {live} {context}"
    extra = set(everything) - {source, current}
    assert len(extra) == (1 if mode == "dies_pending" else 0), f"replacements launched: {extra} {context}"
    assert everything[source]["State"]["Name"] == "terminated", context
    assert world.targets() == {current}, context
    assert set(world.alarm_instances(1).values()) == {current}, context
    return trial


@pytest.mark.parametrize("trial", range(TRIALS))
def test_random_kills_and_errors_under_lambda_retries_converge(faults: FaultInjector, trial: int) -> None:
    result = run_trial(1000 + trial, faults)
    report = os.environ.get("SWR_CONVERGENCE_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps(result.__dict__, default=str) + "\n")
