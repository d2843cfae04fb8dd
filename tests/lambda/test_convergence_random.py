"""Randomized crashes under Lambda's real retry schedule: every node converges, none is left down.

Each trial: a node fails (the FaultScript stops it), EventBridge delivers `stopping` and `stopped`, and
1-3 faults hit random AWS calls of the switcher (kills that run no handler, and handled errors; before
the call reaches AWS or after it took effect), in either switch order and world mode:
- `normal`; `first_az_full` (the first candidate AZ refuses for want of capacity); `dies_pending` (the
  first replacement dies while pending);
- `capacity_outage`: no other AZ has capacity until a random time 1-40 min after the failure, then it has
  (transient: the switch FAILS, is told, and the reconciler retries it until it succeeds);
- `permanent`: every launch is refused for good (a deregistered AMI, or AccessDenied): FAILED with its
  notice is the right end, and it must not be retried.
The simulated Lambda runtime (tests/helpers/lambda_runtime.py) retries a failed event at +60 s and +120 s
after the previous attempt, then drops it; the reconciler runs every interval. The trial ends when the
node has converged and no event is pending, plus two reconcile runs.

Asserted, per trial: the node is never left SWITCHING, down, or FAILED without a notice; every trial but
a `permanent` one ends with exactly one running replacement (target group and alarms on it, no orphan
instance, one switch record); a `permanent` one ends FAILED with its notice, never retried. And the
bound: the node converges within lease + one reconcile interval of the LAST disturbance — the last
injected fault (a kill or an error, in an event's or a reconcile run's invocation) or capacity coming
back — plus `SLACK_SECONDS` of the model's own granularity (see there). The distribution of that time is
printed at the end of the module.

`SWR_CONVERGENCE_TRIALS=300` runs more trials (default 12); `SWR_CONVERGENCE_REPORT=<file>` appends
one JSON line per trial (for the numbers in docs/switcher.md).
"""

from __future__ import annotations

import json
import os
import random
import statistics
from collections import Counter
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
MODES = ("normal", "first_az_full", "capacity_outage", "dies_pending", "permanent")
#: How long capacity stays away in `capacity_outage` (seconds after the failure).
OUTAGE_SECONDS = (60.0, 2400.0)
#: The model's granularity on top of lease + interval: a lease ends on a whole second (`ceil`), and each
#: invocation takes INVOCATION_SECONDS of simulated time, so a reconcile run due at t starts once the
#: invocations queued just before it are done (one Lambda retry and one event at most in these trials),
#: and the converging run is counted as done INVOCATION_SECONDS after its start.
SLACK_SECONDS = 1 + 3 * INVOCATION_SECONDS
#: The trials of this session (the distribution printed at the end of the module).
RESULTS: list[Trial] = []
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
    #: The last disturbance (fault or capacity back), and convergence measured from it.
    last_disturbance_after: float = 0.0
    converged_after_last_disturbance: float | None = None
    #: lease + one reconcile interval (+ SLACK_SECONDS), the bound of the above.
    bound: float = 0.0
    capacity_back_after: float | None = None
    notes: list[str] = field(default_factory=list)


def _setup(world: World, faults: FaultInjector, mode: str, rng: random.Random) -> tuple[str, float | None]:
    """The node, failed, in a world of the given mode; returns the source and when capacity comes back."""
    source = world.provision(1)
    source_az = world.instance(source)["Placement"]["AvailabilityZone"]
    others = [az for az in AZS if az != source_az]
    capacity_back = None
    if mode == "first_az_full":
        faults.fail_in_subnets({world.subnets[others[0]]})
    elif mode == "capacity_outage":
        capacity_back = world.now() + rng.uniform(*OUTAGE_SECONDS)
        subnets = {world.subnets[az] for az in others}
        faults.fail(
            "ec2",
            "RunInstances",
            "InsufficientInstanceCapacity",
            times=10**6,
            when=lambda r: r._get_param("SubnetId") in subnets and world.now() < capacity_back,
        )
    elif mode == "permanent":
        faults.fail("ec2", "RunInstances", rng.choice(PERMANENT_CODES), times=10**6)
    elif mode == "dies_pending":
        faults.die_while_pending({world.subnets[others[0]]})
    world.clients.ec2.stop_instances(InstanceIds=[source])  # what the FaultScript does
    return source, capacity_back


#: RunInstances errors no retry fixes ("Error codes for the Amazon EC2 API": client errors).
PERMANENT_CODES = ("InvalidAMIID.NotFound", "UnauthorizedOperation")


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
    source, capacity_back = _setup(world, faults, mode, rng)
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
            return mode == "permanent"  # a FAILED node is down: only a permanent refusal may end there
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
    horizon = (capacity_back or t0) + 4 * (world.settings.lease_seconds + INTERVAL)

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
    trial.injected_in_reconcile = sum(kind == "reconcile" for _, kind in runtime.injected)
    # The bound: lease + one reconcile interval after the last disturbance (a fault, or capacity back).
    last = max([t0, *runtime.injected_at, *([capacity_back] if capacity_back is not None else [])])
    trial.last_disturbance_after = last - t0
    trial.capacity_back_after = None if capacity_back is None else capacity_back - t0
    if converged_at is not None:
        trial.converged_after_last_disturbance = max(0.0, converged_at - last)
    trial.bound = world.settings.lease_seconds + INTERVAL + SLACK_SECONDS
    bound = last + trial.bound
    RESULTS.append(trial)
    context = json.dumps(trial.__dict__, default=str)

    assert node.state != state.SWITCHING, f"left SWITCHING: {context}"
    assert converged_at is not None, f"never converged: {context}"
    assert converged_at <= bound, f"converged after lease + one interval of the last disturbance: {context}"
    switches = state.list_switches(observer.dynamodb, world.settings.table_name, "prod", 1)
    assert len(switches) == 1, f"one failure, one switch: {context}"
    (switch,) = switches
    everything = _every_instance(world, observer)
    failed = runtime.published(contract.SWITCH_FAILED_DETAIL_TYPE)
    if mode == "permanent":
        assert node.state == state.FAILED, context
        assert switch.outcome == state.SWITCH_FAILED, context
        assert switch.switch_id in {n.get("switch_id") for n in failed}, f"FAILED without notice: {context}"
        # Never retried (a kill between the notice and the FAILED record repeats the notice: told twice).
        assert switch.retries == 0, f"a permanent failure retried: {context}"
        assert set(everything) == {source}, f"no replacement may exist: {context}"
        return trial
    if mode == "capacity_outage" and failed:
        # Each failed try was told; the retries kept the one switch.
        assert len(failed) >= switch.retries >= 1, context
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


@pytest.fixture(scope="module", autouse=True)
def _distribution(request: pytest.FixtureRequest) -> Any:
    """Print the distribution of the time to convergence after the last disturbance (module end)."""
    RESULTS.clear()
    yield
    times = sorted(t.converged_after_last_disturbance or 0.0 for t in RESULTS)
    if not times:
        return
    states = Counter(t.final_state for t in RESULTS)
    modes = Counter(t.mode for t in RESULTS)

    def q(p: float) -> float:
        return times[min(len(times) - 1, int(p * len(times)))]

    line = (
        f"convergence after the last disturbance, {len(times)} trials: "
        f"median {statistics.median(times):.0f} s, "
        f"p90 {q(0.9):.0f} s, max {times[-1]:.0f} s (bound: lease + interval + slack = "
        f"{RESULTS[0].bound:.0f} s); final states {dict(states)}; modes {dict(modes)}"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_random_kills_and_errors_under_lambda_retries_converge(faults: FaultInjector, trial: int) -> None:
    result = run_trial(1000 + trial, faults)
    report = os.environ.get("SWR_CONVERGENCE_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps(result.__dict__, default=str) + "\n")
