"""P3 - mass stop: every node of one AZ stops at once; the switcher recovers them concurrently.

What this is and is not: each node of one AZ stops normally (EC2 reports `stopping`, its status
alarm follows). That is a burst of ordinary failures - the concurrency, the duplicate events and the
RunInstances token bucket are real. It is NOT an AZ loss: there the instances do not stop, they
become unreachable, the EC2 API of that AZ may fail and its capacity is gone; that case is separate
work and is not modeled here.

N nodes over 3 AZs; each stopped node yields two events (EC2 state change `stopping` and its status
alarm), delivered to a pool of handler invocations sized like the function's reserved concurrency
(cdk.json). RunInstances draws on a scaled-down token bucket that answers `RequestLimitExceeded`;
botocore retries (the switcher's retry mode), and an invocation that still fails is retried like
Lambda retries an asynchronous invocation. Afterwards the moto state is audited: every failed node
switched exactly once, no node without a live instance, survivors untouched.

Run alone: `.venv/bin/python -m bench.p3_mass_stop [--nodes 50 200]`.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from switcher import contract, state
from switcher.switch import SUCCEEDED

from bench.aws_model import ModeledAws, Transition
from bench.deployment_config import DeployedConfig, load_deployed
from bench.harness import (
    EPOCH_BASE,
    Deployment,
    alarm_event,
    deployment,
    ec2_state_event,
    invoke,
    iso_to_modeled,
    modeled_clients,
    settings_for,
)
from bench.latency_model import LatencyModel, Sampler
from bench.model_clock import ScaledClock
from bench.results_io import REPO_ROOT, run_metadata, write_result
from bench.token_bucket import TokenBucket
from swr_local.world import AZS

DEFAULT_NODES = (50, 200)
FAILED_AZ = AZS[0]
SEED = 60_000
TARGET_BOUND_RATIO = 1.2
LAMBDA_ASYNC_RETRIES = 2
#: The outcome of an invocation that ran past its modeled timeout (P6).
TIMED_OUT = "TIMED_OUT"


@dataclass
class Invocation:
    """One delivery of one event to the function (attempt 0) or a Lambda async retry of it."""

    due: float
    event: dict[str, Any]
    node_id: int
    kind: str
    attempt: int = 0


@dataclass
class InvocationOutcome:
    node_id: int
    kind: str
    attempt: int
    started: float
    ended: float
    outcome: str
    reason: str
    switch_id: str | None


class MassStopRun:
    """Dispatches the events of one mass stop into a bounded pool and records what each invocation did."""

    def __init__(self, deployed: Deployment, model: LatencyModel, concurrency: int, seed: int) -> None:
        self.deployed = deployed
        self.model = model
        self.concurrency = concurrency
        self.sampler = Sampler(model, seed)
        self.clock = ScaledClock(model["mass_stop.bench_time_scale"].low)
        self.bucket = TokenBucket(
            capacity=model["run_instances_token_bucket.bench_burst"].low,
            refill_per_second=model["run_instances_token_bucket.bench_refill_per_second"].low,
            now=self.clock.now,
        )
        self.modeled = ModeledAws(self.sampler, self.clock, self.bucket)
        self.settings = settings_for(deployed.world, "swr")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._queue: list[tuple[float, int, Invocation]] = []
        self._sequence = itertools.count()
        self.outcomes: list[InvocationOutcome] = []
        self.errors: list[str] = []
        self.cold_starts = 0
        #: The function's timeout in modeled seconds; None: invocations get no remaining time (P3).
        self.timeout_s: float | None = None
        self.left_queued = 0

    # --- the mass stop----------------------------------------------------------------------------
    def stop_zone(self, failed: list[int]) -> None:
        """Every node in the AZ stops: `stopping` now, status alarm within the minute."""
        ec2 = self.deployed.clients.ec2
        instance_ids = [self.deployed.nodes[n].instance_id for n in failed]
        for chunk in range(0, len(instance_ids), 50):
            ec2.stop_instances(InstanceIds=instance_ids[chunk : chunk + 50])
        world = self.deployed.world
        for node_id in failed:
            instance_id = self.deployed.nodes[node_id].instance_id
            shutdown = self.sampler.draw("instance_transition.os_shutdown_on_stop")
            self.modeled.set_transition(
                instance_id, Transition("stopping", self.clock.now() + shutdown, "stopped")
            )
            stop_seen = self.sampler.draw("delivery.eventbridge_delivery")
            alarm_seen = self.sampler.draw("mass_stop.status_alarm_after_stop") + self.sampler.draw(
                "detection.alarm_evaluation_delay"
            )
            self._push(
                Invocation(stop_seen, ec2_state_event(instance_id, "stopping", 0.0), node_id, "state-change")
            )
            alarm = contract.status_alarm_name(world.settings.vpc_name, node_id)
            self._push(
                Invocation(
                    alarm_seen,
                    alarm_event(alarm, instance_id, alarm_seen, status_check=True),
                    node_id,
                    "alarm",
                )
            )

    def _push(self, invocation: Invocation) -> None:
        with self._lock:
            heapq.heappush(self._queue, (invocation.due, next(self._sequence), invocation))

    # --- invocations ----------------------------------------------------------------------------
    def prepare_environments(self) -> None:
        """Build one set of clients per execution environment before the mass stop starts.

        Building boto3 clients is harness work (a real cold start is modeled by
        `delivery.lambda_cold_start`), so it must not run on the scaled clock. Clients are built under
        the patched sleeps so the adaptive retry mode's rate limiter starts on the modeled clock.
        """
        with self.modeled.patched_sleeps():
            self._environments = [
                modeled_clients(self.deployed.endpoint_url, self.modeled, self.settings)
                for _ in range(self.concurrency)
            ]

    def _clients(self) -> Any:
        """Each worker thread is one Lambda execution environment with its own clients."""
        clients = getattr(self._local, "clients", None)
        if clients is None:
            with self._lock:
                clients = self._environments.pop()
            self._local.clients = clients
            # A new execution environment pays the cold start before its first event.
            self.clock.sleep(self.sampler.draw("delivery.lambda_cold_start"))
            with self._lock:
                self.cold_starts += 1
        return clients

    def handle(
        self, invocation: Invocation, clients: Any, remaining_ms: Callable[[], int] | None
    ) -> tuple[str, str, str | None]:
        """Run one invocation's event through the switcher: (outcome, reason, switch id)."""
        result = invoke(
            invocation.event,
            clients=clients,
            settings=self.settings,
            now=lambda: EPOCH_BASE + self.clock.now(),
            remaining_ms=remaining_ms,
        )
        return result.outcome, result.reason, result.switch_id

    def _invoke(self, invocation: Invocation) -> None:
        clients = self._clients()
        started = self.clock.now()
        # With a modeled function timeout (P6), the invocation gets Lambda's remaining time and ends at its
        # deadline; without one (P3) it runs with neither, as before.
        deadline = started + self.timeout_s if self.timeout_s is not None else None
        remaining_ms = None
        if deadline is not None:
            remaining_ms = lambda: int(max(0.0, deadline - self.clock.now()) * 1000)  # noqa: E731
        self._local.deadline = deadline
        try:
            outcome, reason, switch_id = self.handle(invocation, clients, remaining_ms)
            failed = False
            if deadline is not None and self.clock.now() > deadline:
                # Lambda ends an invocation at its timeout: a function error, retried like any other.
                outcome, reason, failed = TIMED_OUT, f"ran past its {self.timeout_s:g} s timeout", True
        except Exception as err:
            outcome, reason, switch_id = "ERROR", f"{type(err).__name__}: {err}", None
            failed = True
        finally:
            self._local.deadline = None
        if failed:
            if invocation.attempt < LAMBDA_ASYNC_RETRIES:
                # Lambda retries a failed asynchronous invocation twice: after ~1 min, then ~2 min.
                delays = self.model["delivery.lambda_async_retry_delays"]
                delay = delays.low if invocation.attempt == 0 else delays.high
                self._push(
                    Invocation(
                        self.clock.now() + delay,
                        invocation.event,
                        invocation.node_id,
                        invocation.kind,
                        invocation.attempt + 1,
                    )
                )
            else:
                with self._lock:
                    self.errors.append(f"node {invocation.node_id} {invocation.kind}: {reason}")
        with self._lock:
            self.outcomes.append(
                InvocationOutcome(
                    invocation.node_id,
                    invocation.kind,
                    invocation.attempt,
                    started,
                    self.clock.now(),
                    outcome,
                    reason,
                    switch_id,
                )
            )

    def dispatch(
        self,
        *,
        done: Callable[[], bool] | None = None,
        check_every: float = 60.0,
        horizon: float | None = None,
    ) -> float:
        """Hand every due invocation to the pool; returns the end time (modeled).

        Without `done` (P3) the run ends when no invocation is queued or running. With it (P6), `done()` is
        asked every `check_every` modeled seconds and the run ends when it says so or at `horizon`;
        invocations still running then finish, queued ones are left (`left_queued`)."""
        in_flight: set[Future[None]] = set()
        next_check = self.clock.now() + check_every
        with (
            self.modeled.patched_sleeps(),
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="lambda") as pool,
        ):
            while True:
                in_flight = {f for f in in_flight if not f.done()}
                now = self.clock.now()
                if done is not None and (
                    (horizon is not None and now >= horizon) or (now >= next_check and done())
                ):
                    break
                if now >= next_check:
                    next_check = now + check_every
                with self._lock:
                    head = self._queue[0][0] if self._queue else None
                    ready = []
                    while self._queue and self._queue[0][0] <= self.clock.now():
                        ready.append(heapq.heappop(self._queue)[2])
                for invocation in ready:
                    in_flight.add(pool.submit(self._invoke, invocation))
                if done is None and head is None and not in_flight:
                    break
                wait = 0.5 if head is None else min(0.5, max(0.01, head - self.clock.now()))
                self.clock.sleep(wait)
            # Ended by `done` or the horizon: invocations handed to the pool but not started are not run.
            cancelled = sum(1 for future in in_flight if future.cancel())
            for future in in_flight:
                if not future.cancelled():
                    future.result()
            with self._lock:
                self.left_queued = len(self._queue) + cancelled
        return self.clock.now()


def audit(deployed: Deployment, failed: list[int]) -> dict[str, Any]:
    """Count what the mass stop left behind, from moto and the state table (no latency model)."""
    clients, world = deployed.clients, deployed.world
    live_by_node: dict[int, list[dict[str, Any]]] = defaultdict(list)
    launched_by_switch: Counter[int] = Counter()
    paginator = clients.ec2.get_paginator("describe_instances")
    for page in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [world.vpc_id]}]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                if contract.TAG_NODE_ID not in tags:
                    continue
                node_id = int(tags[contract.TAG_NODE_ID])
                if contract.TAG_SWITCH_ID in tags:
                    launched_by_switch[node_id] += 1
                if instance["State"]["Name"] not in ("terminated", "shutting-down"):
                    live_by_node[node_id].append(instance)
    records = {
        n.node_id: n
        for n in state.list_nodes(clients.dynamodb, world.settings.table_name, world.settings.vpc_name)
    }
    failed_set = set(failed)
    switched, double, lost, wrong = [], [], [], []
    for node_id, node in deployed.nodes.items():
        live = live_by_node.get(node_id, [])
        record = records.get(node_id)
        if not live:
            lost.append(node_id)
        if node_id in failed_set:
            if launched_by_switch[node_id] > 1 or len(live) > 1:
                double.append(node_id)
            ok = (
                record is not None
                and record.state == state.ACTIVE
                and record.current_instance_id != node.instance_id
                and record.current_az != FAILED_AZ
                and len(live) == 1
                and live[0]["InstanceId"] == record.current_instance_id
            )
            (switched if ok else wrong).append(node_id)
        elif launched_by_switch[node_id] or record is None or record.current_instance_id != node.instance_id:
            wrong.append(node_id)
    return {
        "failed_nodes": len(failed),
        "switched": len(switched),
        "all_switched": len(switched) == len(failed),
        "double_replacements": len(double),
        "double_replacement_nodes": double,
        "lost_nodes": len(lost),
        "lost_node_ids": lost,
        "nodes_in_wrong_state": wrong,
        "replacements_launched": sum(launched_by_switch.values()),
    }


def token_bucket_bounds(
    history: list[dict[str, Any]], *, head: float, drain_time: Callable[[int], float]
) -> dict[str, Any]:
    """Per switch, the earliest it could be done given the token bucket, compared with when it was
    done, with the SAME statistic on both sides (median with median, max with max).

    Switch k in launch order needs the k-th RunInstances token: the bucket cannot admit it before
    drain_time(k) (nor before the first launch was sent, `head`); after its launch it still needs its
    own measured tail (launch -> done). bound_k = max(head, drain_time(k)) + tail_k <= done_k, unless
    the switch was delayed by something other than the bucket (pool concurrency, retry backoff).
    """
    launched = sorted(
        (h for h in history if h.get("launched_call_end") is not None), key=lambda h: h["launched_call_end"]
    )
    done = [h["done"] for h in launched]
    bounds = [
        max(head, drain_time(rank)) + (h["done"] - h["launched_call_end"])
        for rank, h in enumerate(launched, start=1)
    ]
    if not bounds:
        return {"switches": 0}
    median_done, median_bound = statistics.median(done), statistics.median(bounds)
    return {
        "switches": len(bounds),
        "completion_median_s": median_done,
        "bound_median_s": median_bound,
        "ratio_median": median_done / median_bound if median_bound else None,
        "completion_max_s": max(done),
        "bound_max_s": max(bounds),
        "ratio_max": max(done) / max(bounds) if max(bounds) else None,
    }


def run_mass_stop(
    nodes: int, model: LatencyModel, concurrency: int, deployed_config: DeployedConfig
) -> dict[str, Any]:
    node_ids = list(range(1, nodes + 1))
    began = time.perf_counter()
    with deployment(node_ids, deployed_config.health("nlb")) as deployed:
        ready = time.perf_counter()
        failed = [n for n in node_ids if deployed.nodes[n].az == FAILED_AZ]
        mass_stop = MassStopRun(deployed, model, concurrency, seed=SEED + nodes)
        mass_stop.prepare_environments()
        mass_stop.clock.restart(0.0)
        mass_stop.stop_zone(failed)
        ended = mass_stop.dispatch()
        dispatch_real = time.perf_counter() - ready
        result = audit(deployed, failed)
        history = switch_history(deployed, failed)
    succeeded = [o for o in mass_stop.outcomes if o.outcome == SUCCEEDED]
    runs = [c for c in mass_stop.modeled.calls if c.operation == "RunInstances"]
    admitted_ends = [c.end for c in runs if not c.failed]
    head = min(c.start for c in runs) if runs else 0.0
    bounds = token_bucket_bounds(history, head=head, drain_time=mass_stop.bucket.drain_time)
    durations = [h["done"] - h["claimed"] for h in history]
    return {
        "nodes": nodes,
        "azs": len(AZS),
        "stopped_az": FAILED_AZ,
        "concurrency": concurrency,
        "events_delivered": len(failed) * 2,
        "invocations": len(mass_stop.outcomes),
        "invocation_outcomes": dict(Counter(o.outcome for o in mass_stop.outcomes)),
        "lambda_async_retries": sum(1 for o in mass_stop.outcomes if o.attempt > 0),
        "invocations_failed_after_all_retries": mass_stop.errors,
        "cold_starts": mass_stop.cold_starts,
        "audit": result,
        "switch_succeeded_invocations": len(succeeded),
        "run_instances_throttled": mass_stop.modeled.throttles.refused,
        "run_instances_admitted": mass_stop.modeled.throttles.admitted,
        "token_bucket": {
            "burst": mass_stop.bucket.capacity,
            "refill_per_second": mass_stop.bucket.refill_per_second,
        },
        "dispatch_end_modeled_s": ended,
        "first_run_instances_s": head,
        "token_drain_s": mass_stop.bucket.drain_time(len(failed)),
        "last_run_instances_admitted_s": max(admitted_ends) if admitted_ends else None,
        "run_instances_calls_throttled_at_least_once": sum(1 for c in runs if c.throttled),
        "run_instances_calls_failed_after_retries": sum(1 for c in runs if c.failed),
        "bound": bounds,
        "switch_duration_modeled_s": {
            "median": statistics.median(durations) if durations else None,
            "max": max(durations) if durations else None,
        },
        "real_s": {"setup": ready - began, "mass_stop": dispatch_real},
        "time_scale": mass_stop.clock.scale,
    }


def switch_history(deployed: Deployment, failed: list[int]) -> list[dict[str, Any]]:
    """Modeled phase times of every succeeded switch of the failed nodes, from the state table (P3, P6)."""
    clients, world = deployed.clients, deployed.world
    history = []
    for node_id in failed:
        for switch in state.list_switches(
            clients.dynamodb, world.settings.table_name, world.settings.vpc_name, node_id
        ):
            if switch.outcome != state.SUCCEEDED:
                continue
            timeline = {key: iso_to_modeled(value) for key, value in switch.timeline.items()}
            history.append(
                {
                    "node_id": node_id,
                    "claimed": timeline["claimed"],
                    "launched_call_end": timeline.get("launched"),
                    "done": timeline["done"],
                }
            )
    return history


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=list(DEFAULT_NODES))
    args = parser.parse_args(argv)
    model, deployed = LatencyModel.load(), load_deployed()
    began = time.perf_counter()
    mass_stops = [run_mass_stop(n, model, deployed.reserved_concurrency, deployed) for n in args.nodes]
    payload = {
        "benchmark": "p3_mass_stop",
        "run": run_metadata("python -m bench.p3_mass_stop --nodes " + " ".join(map(str, args.nodes))),
        "what": "mass stop on moto (every node of one AZ stops normally; not an AZ loss): concurrent "
        "invocations of the real switcher, duplicate events, scaled RunInstances token bucket; times in "
        "modeled seconds on one shared scaled clock",
        "wall_s": time.perf_counter() - began,
        "target_ratio_max": TARGET_BOUND_RATIO,
        "mass_stops": mass_stops,
    }
    path = write_result("p3_mass_stop", payload)
    print(f"P3 written to {path.relative_to(REPO_ROOT)} ({payload['wall_s']:.0f} s)")
    for o in mass_stops:
        a, b = o["audit"], o["bound"]
        print(
            f"  N={o['nodes']}: {a['switched']}/{a['failed_nodes']} switched, "
            f"{a['double_replacements']} double, {a['lost_nodes']} lost; last done "
            f"{b.get('completion_max_s', 0):.0f} s vs bound {b.get('bound_max_s', 0):.0f} s "
            f"(x{b.get('ratio_max') or 0:.2f}); {o['run_instances_throttled']} throttled, "
            f"{o['lambda_async_retries']} async retries"
        )
    return payload


if __name__ == "__main__":
    main()
