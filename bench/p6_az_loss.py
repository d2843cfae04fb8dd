"""P6 - AZ loss: one Availability Zone loses power or network; its nodes go silent and cannot be stopped.

Unlike P3 (every node of one AZ stops normally, with events), nothing announces the loss: no `stopping`
event, no status alarm, and a stop or termination of an instance there is accepted by the regional API
but never completes (`ModeledAws.lost`). Each lost node's monitor metric stops; its alarm goes
INSUFFICIENT_DATA after 3 periods of 10 s.

Detection is the reconciler's own, on the modeled clock. The switcher's scheduled reconcile invocation
(the event the stack's schedule sends, `reconcile_event`) runs every `RECONCILE_INTERVAL_S` from a
uniformly drawn phase, in the same pool as the events (it is the same function, same concurrency), with
the function's timeout from the synthesized template as its remaining time. It reads the alarms through
DescribeAlarms; moto keeps every alarm OK and stamps its state changes with the wall clock, so the bench
shows the reconciler what CloudWatch would (`ModeledAlarms`, a hook on the invocations' CloudWatch
clients; the product is untouched): a lost node's monitor alarm is INSUFFICIENT_DATA since modeled
second 30 for as long as it watches the lost instance; every other alarm shows moto's state (never
INSUFFICIENT_DATA: their metrics flow), so the reconciler cannot see a healthy node as silent. When the
reconciler raises a silent alarm (SetAlarmState ALARM), CloudWatch's state change reaches the switcher
as an alarm event (EventBridge delivery later) that starts the switch in an invocation of its own; the
alarm returns to INSUFFICIENT_DATA, stamped anew, at its next evaluation (`ALARM_RETURN_S`).

Everything else is the real switcher on moto: the fence waits `fence_timeout_seconds` for the forced
stop, then fences by network ACL (one rule for the whole lost subnet once every instance of it is being
fenced; the rule quota enforced); RunInstances in a surviving AZ is refused for capacity at a fixed rate
(the switcher moves to the next AZ). Every invocation gets Lambda's remaining time and ends at its
timeout: past its deadline it makes no further AWS call (`InvocationTimedOut` from a hook), like a killed
invocation, and counts as a function error. A failed invocation is retried like an asynchronous
Lambda invocation (twice); an invocation that returns normally (a switch done, skipped, or `WAITING` for
its fence deadline) is not retried. The run ends when every lost node is ACTIVE on a live replacement
outside the lost AZ (audited), or at `HORIZON_S` (then reported as not finished).

Also a single silent node (its AZ healthy: its forced stop completes): the time from the silence to the
switch done.

Run alone: `.venv/bin/python -m bench.p6_az_loss [--nodes 50 200]`.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from switcher import contract, decide, state
from switcher.observability import logger, metrics
from switcher.reconcile import ALARM_RAISED, ReconcileReport, reconcile
from switcher.switch import SUCCEEDED

from bench.deployment_config import UNRESERVED_POOL_FLOOR, DeployedConfig, load_deployed
from bench.harness import EPOCH_BASE, alarm_event, deployment, iso_to_modeled
from bench.latency_model import LatencyModel
from bench.model_clock import ScaledClock
from bench.p3_mass_stop import (
    FAILED_AZ,
    TIMED_OUT,
    Invocation,
    MassStopRun,
    audit,
    switch_history,
    token_bucket_bounds,
)
from bench.results_io import REPO_ROOT, run_metadata, write_result
from bench.token_bucket import TokenBucket
from swr_local.gaps import DEFAULT_NACL_RULES_PER_DIRECTION
from swr_local.world import AZS, each_client

DEFAULT_NODES = (50, 200)
SEED = 70_000
#: The monitor alarm: 3 periods of 10 s without a datapoint before INSUFFICIENT_DATA.
ALARM_TO_SILENT_S = 3 * contract.MONITOR_INTERVAL_SECONDS
#: A metric alarm set by SetAlarmState "returns to its actual state quickly, often within seconds"
#: (CloudWatch API Reference, SetAlarmState): modeled at its next evaluation, one period later.
ALARM_RETURN_S = contract.MONITOR_INTERVAL_SECONDS
#: The stacks' defaults (swr_stacks.config).
SILENT_AFTER_S = 300
FENCE_TIMEOUT_S = 300
RECONCILE_INTERVAL_S = 60
#: The run ends here (modeled seconds since the loss) if not every lost node is recovered by then.
HORIZON_S = 7200.0
#: How often (modeled) the run looks whether every lost node is recovered.
RECOVERY_CHECK_S = 60.0
#: A surviving AZ short of capacity: this share of its RunInstances is refused (seeded).
CAPACITY_AZ = AZS[1]
CAPACITY_REFUSAL_RATE = 0.3
#: P6 waits minutes of modeled time per switch (the fence deadline): its clock runs 4 times faster
#: than P3's (real compute then counts 20 times in modeled seconds; the figures say so).
TIME_SCALE = 0.05
#: Modeled time at which the harness provisioned the nodes (bench.harness.deployment).
PROVISIONED_AT = -3600.0
#: Invocation kinds.
RECONCILE_KIND = "reconcile"
ALARM_KIND = "silent-alarm"
#: The outcome of a reconcile invocation that returned its report.
RECONCILED = "RECONCILED"
#: An alarm whose metric is within its threshold (CloudWatch API Reference, MetricAlarm StateValue).
ALARM_OK = "OK"


def reconcile_event() -> dict[str, Any]:
    """The input of every scheduled reconcile invocation, as the stack's schedule sends it
    (swr_stacks.reconcile.reconcile_event; tests/bench check they are the same)."""
    return {
        "source": contract.RECONCILE_EVENT_SOURCE,
        "detail-type": contract.RECONCILE_DETAIL_TYPE,
        "detail": {},
    }


class InvocationTimedOut(Exception):
    """An AWS call of an invocation past its modeled timeout: Lambda would have ended it already."""


@dataclass
class SilentAlarm:
    """A lost node's monitor alarm: INSUFFICIENT_DATA from `since` while it watches `instance_id`."""

    node_id: int
    instance_id: str
    since: float
    #: When the reconciler last set it to ALARM (modeled), if it did.
    raised: float | None = None


def modeled_alarm_state(
    silent: SilentAlarm | None, watched_instance: str | None, moto_state: str, now: float
) -> tuple[str, float]:
    """The state CloudWatch would show now for an alarm, and since when (modeled seconds).

    An alarm of a node whose metric flows, or one the switch moved to a replacement, shows moto's state
    but never INSUFFICIENT_DATA (moto sets that only if asked, and stamps it with the wall clock, which the
    reconciler would read as days of silence); `since` is not read for OK or ALARM. A silent alarm is OK
    until its metric has been missing for 3 periods, then INSUFFICIENT_DATA; raised by the reconciler it
    is ALARM until its next evaluation, then INSUFFICIENT_DATA again, stamped with that evaluation."""
    if silent is None or watched_instance != silent.instance_id:
        return (ALARM_OK if moto_state == contract.ALARM_SILENT_STATE else moto_state), now
    if now < silent.since:
        return ALARM_OK, PROVISIONED_AT
    raised = silent.raised
    if raised is not None and now < raised + ALARM_RETURN_S:
        return contract.ALARM_TRIGGER_STATE, raised
    if raised is not None:
        return contract.ALARM_SILENT_STATE, raised + ALARM_RETURN_S
    return contract.ALARM_SILENT_STATE, silent.since


def _watched_instance(alarm: dict[str, Any]) -> str | None:
    for dim in alarm.get("Dimensions", []):
        if dim.get("Name") == "InstanceId":
            return str(dim.get("Value"))
    return None


class ModeledAlarms:
    """CloudWatch's view of the node alarms on the modeled clock, put into the invocations' responses.

    `attach` hooks a CloudWatch client: DescribeAlarms answers show `modeled_alarm_state`; a SetAlarmState
    to ALARM of a silent alarm that changes its (modeled) state calls `on_raised(alarm, name, at)`, where
    the run turns it into the alarm event CloudWatch would send."""

    def __init__(
        self, now: Callable[[], float], on_raised: Callable[[SilentAlarm, str, float], None]
    ) -> None:
        self._now = now
        self._on_raised = on_raised
        self._lock = threading.Lock()
        self._local = threading.local()
        self.silent: dict[str, SilentAlarm] = {}
        self.raised = 0

    def go_silent(self, name: str, node_id: int, instance_id: str, since: float) -> None:
        """The alarm `name` of `node_id` watches `instance_id`, whose metric is missing from now."""
        with self._lock:
            self.silent[name] = SilentAlarm(node_id, instance_id, since)

    def attach(self, cloudwatch: Any) -> None:
        """Hook one CloudWatch client (see the class docstring)."""
        events = cloudwatch.meta.events
        events.register("after-call.cloudwatch.DescribeAlarms", self._describe)
        events.register("provide-client-params.cloudwatch.SetAlarmState", self._params)
        events.register("after-call.cloudwatch.SetAlarmState", self._set)

    def _describe(self, parsed: dict[str, Any], **_: Any) -> None:
        now = self._now()
        with self._lock:
            for alarm in parsed.get("MetricAlarms", []):
                value, since = modeled_alarm_state(
                    self.silent.get(alarm.get("AlarmName", "")),
                    _watched_instance(alarm),
                    alarm.get("StateValue", ""),
                    now,
                )
                alarm["StateValue"] = value
                alarm["StateUpdatedTimestamp"] = datetime.fromtimestamp(EPOCH_BASE + since, tz=UTC)

    def _params(self, params: dict[str, Any], **_: Any) -> None:
        self._local.params = dict(params)

    def _set(self, parsed: dict[str, Any], **_: Any) -> None:
        params = getattr(self._local, "params", {})
        self._local.params = {}
        name = params.get("AlarmName", "")
        if "Error" in parsed or params.get("StateValue") != contract.ALARM_TRIGGER_STATE:
            return
        now = self._now()
        with self._lock:
            silent = self.silent.get(name)
            if silent is None:
                return
            before, _since = modeled_alarm_state(silent, silent.instance_id, ALARM_OK, now)
            if before == contract.ALARM_TRIGGER_STATE:
                return  # no state change: CloudWatch sends no event
            silent.raised = now
            self.raised += 1
        self._on_raised(silent, name, now)


@dataclass
class ReconcileRun:
    """One reconcile invocation: when it ran and what its report says."""

    started: float
    ended: float
    report: ReconcileReport


class AzLossRun(MassStopRun):
    """The AZ loss on P3's pool, clock, token bucket and Lambda retries, with the reconciler."""

    def __init__(self, *args: Any, lost: bool, timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = ScaledClock(TIME_SCALE)
        self.bucket = TokenBucket(
            capacity=self.bucket.capacity, refill_per_second=self.bucket.refill_per_second, now=self.clock.now
        )
        self.modeled.start_run(self.sampler, self.clock, self.bucket)
        self.settings = replace(
            self.settings,
            fence_timeout_seconds=FENCE_TIMEOUT_S,
            silent_after_seconds=SILENT_AFTER_S,
            reconcile_interval_seconds=RECONCILE_INTERVAL_S,
        )
        self.timeout_s = timeout_s
        self.lost = lost
        self.rng = random.Random(SEED)
        capacity_subnet = self.deployed.world.subnets[CAPACITY_AZ]
        self.modeled.refuse_capacity = lambda body: (
            f"SubnetId={capacity_subnet}" in body and self.rng.random() < CAPACITY_REFUSAL_RATE
        )
        self.alarms = ModeledAlarms(self.clock.now, self._alarm_raised)
        self.reconcile_runs: list[ReconcileRun] = []

    def prepare_environments(self) -> None:
        """P3's execution environments, each client also hooked for the timeout and the alarm view."""
        super().prepare_environments()
        for clients in self._environments:
            for client in each_client(clients):
                client.meta.events.register("before-call.*.*", self._deadline_guard)
            self.alarms.attach(clients.cloudwatch)

    def _deadline_guard(self, **_: Any) -> None:
        deadline = getattr(self._local, "deadline", None)
        if deadline is not None and self.clock.now() > deadline:
            raise InvocationTimedOut(f"invocation past its {self.timeout_s:g} s timeout")

    def go_silent(self, failed: list[int]) -> None:
        """The nodes go silent now: lost instances (if the AZ is lost), monitor alarms without data."""
        world = self.deployed.world
        for node_id in failed:
            instance_id = self.deployed.nodes[node_id].instance_id
            if self.lost:
                self.modeled.lost.add(instance_id)
            alarm = contract.monitor_alarm_name(world.settings.vpc_name, node_id)
            self.alarms.go_silent(alarm, node_id, instance_id, ALARM_TO_SILENT_S)

    def schedule_reconciles(self, horizon: float) -> None:
        """The reconcile schedule: every interval from a uniformly drawn phase, up to the horizon."""
        at = self.rng.uniform(0, RECONCILE_INTERVAL_S)
        while at < horizon:
            self._push(Invocation(at, reconcile_event(), 0, RECONCILE_KIND))
            at += RECONCILE_INTERVAL_S

    def _alarm_raised(self, silent: SilentAlarm, name: str, at: float) -> None:
        """CloudWatch sends the alarm's state change; EventBridge delivers it to the switcher."""
        due = at + self.sampler.draw("delivery.eventbridge_delivery")
        event = alarm_event(name, silent.instance_id, at, status_check=False)
        self._push(Invocation(due, event, silent.node_id, ALARM_KIND))

    def handle(
        self, invocation: Invocation, clients: Any, remaining_ms: Callable[[], int] | None
    ) -> tuple[str, str, str | None]:
        """The handler's dispatch: the reconciler for the schedule's event, else the switch path."""
        if invocation.event.get("source") != contract.RECONCILE_EVENT_SOURCE:
            return super().handle(invocation, clients, remaining_ms)
        started = self.clock.now()
        try:
            report = reconcile(
                clients=clients,
                settings=self.settings,
                now=lambda: EPOCH_BASE + self.clock.now(),
                remaining_ms=remaining_ms,
            )
        finally:
            metrics.clear_metrics()
        with self._lock:
            self.reconcile_runs.append(ReconcileRun(started, self.clock.now(), report))
        return RECONCILED, f"{len(report.actions)} actions, {len(report.deferred)} deferred", None

    def recovered(self, failed: list[int]) -> bool:
        """Every failed node ACTIVE on another instance outside the lost AZ (the state table; cheap)."""
        clients, world = self.deployed.clients, self.deployed.world
        records = {
            n.node_id: n
            for n in state.list_nodes(clients.dynamodb, world.settings.table_name, world.settings.vpc_name)
        }
        return all(
            (record := records.get(node_id)) is not None
            and record.state == state.ACTIVE
            and record.current_instance_id != self.deployed.nodes[node_id].instance_id
            and record.current_az != FAILED_AZ
            for node_id in failed
        )


def _fences(deployed: Any, failed: list[int]) -> dict[str, Any]:
    clients, world = deployed.clients, deployed.world
    kinds: Counter[str] = Counter()
    done: list[float] = []
    for node_id in failed:
        for switch in state.list_switches(
            clients.dynamodb, world.settings.table_name, world.settings.vpc_name, node_id
        ):
            if switch.outcome == state.SUCCEEDED:
                kinds[switch.fence or "none"] += 1
                done.append(iso_to_modeled(switch.timeline["done"]))
    acls = clients.ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [world.vpc_id]}])
    rules = [
        e
        for a in acls["NetworkAcls"]
        for e in a["Entries"]
        if contract.NACL_RULE_FIRST <= e["RuleNumber"] <= contract.NACL_RULE_LAST
    ]
    return {
        "fence_kinds": dict(kinds),
        "nacl_rules_in_place": len(rules),
        "nacl_rule_cidrs": sorted({e["CidrBlock"] for e in rules}),
        "done": done,
    }


def _reconcile_summary(run: AzLossRun) -> dict[str, Any]:
    """What the reconcile runs did: raised alarms, switch actions by outcome, nodes deferred, errors."""
    runs = run.reconcile_runs
    actions = [a for r in runs for a in r.report.actions]
    timed_out = sum(1 for o in run.outcomes if o.kind == RECONCILE_KIND and o.outcome == TIMED_OUT)
    durations = sorted(r.ended - r.started for r in runs)
    errors = [str(e["error"]) for r in runs for e in r.report.errors]
    return {
        "runs": len(runs),
        "runs_timed_out": timed_out,
        "alarms_raised": sum(1 for a in actions if a["outcome"] == ALARM_RAISED),
        "switch_actions": dict(
            Counter(f"{a['action']} {a['outcome']}" for a in actions if a["outcome"] != ALARM_RAISED)
        ),
        "resumes": sum(1 for a in actions if a["action"] == decide.RESUME),
        "node_deferrals": sum(len(r.report.deferred) for r in runs),
        # A run past its timeout fails every node it still visits (InvocationTimedOut): counted apart.
        "node_errors": sum(1 for e in errors if not e.startswith(InvocationTimedOut.__name__)),
        "nodes_visited_after_timeout": sum(1 for e in errors if e.startswith(InvocationTimedOut.__name__)),
        "run_duration_max_s": durations[-1] if durations else None,
        "run_duration_median_s": durations[len(durations) // 2] if durations else None,
    }


def _closed_by(run: AzLossRun, failed: list[int]) -> dict[str, int]:
    """Which invocation closed each lost node's switch: an alarm event's or a reconcile run's."""
    failed_set = set(failed)
    by_event = {o.node_id for o in run.outcomes if o.kind == ALARM_KIND and o.outcome == SUCCEEDED}
    by_reconciler = {
        a["node_id"] for r in run.reconcile_runs for a in r.report.actions if a["outcome"] == SUCCEEDED
    }
    return {"event": len(by_event & failed_set), "reconciler": len(by_reconciler & failed_set)}


def run_az_loss(
    nodes: int,
    model: LatencyModel,
    concurrency: int,
    deployed_config: DeployedConfig,
    *,
    lost: bool = True,
    horizon: float = HORIZON_S,
) -> dict[str, Any]:
    node_ids = list(range(1, nodes + 1))
    timeout = deployed_config.function_timeout_seconds
    if timeout is None:
        raise ValueError("the synthesized template holds no switcher function: no timeout to model")
    began = time.perf_counter()
    # The mount targets in subnets of their own: the layout under which the network fence is claimed.
    with deployment(node_ids, deployed_config.health("nlb"), efs_subnets=True) as deployed:
        # Every failed invocation is recorded by the run; the switcher's error logs would only repeat it.
        logger.setLevel(logging.CRITICAL)
        ready = time.perf_counter()
        in_az = [n for n in node_ids if deployed.nodes[n].az == FAILED_AZ]
        failed = in_az if lost else in_az[:1]
        run = AzLossRun(deployed, model, concurrency, seed=SEED + nodes, lost=lost, timeout_s=timeout)
        run.prepare_environments()
        run.clock.restart(0.0)
        run.go_silent(failed)
        run.schedule_reconciles(horizon)
        ended = run.dispatch(
            done=lambda: run.recovered(failed), check_every=RECOVERY_CHECK_S, horizon=horizon
        )
        dispatch_real = time.perf_counter() - ready
        result = audit(deployed, failed)
        fences = _fences(deployed, failed)
        history = switch_history(deployed, failed)
    runs = [c for c in run.modeled.calls if c.operation == "RunInstances"]
    head = min(c.start for c in runs) if runs else 0.0
    bounds = token_bucket_bounds(history, head=head, drain_time=run.bucket.drain_time)
    done = fences.pop("done")
    events = [o for o in run.outcomes if o.kind != RECONCILE_KIND]
    return {
        "nodes": nodes,
        "azs": len(AZS),
        "lost_az": FAILED_AZ if lost else None,
        "silent_nodes": len(failed),
        "concurrency": concurrency,
        "function_timeout_s": timeout,
        # How long one invocation waits for the stop before it parks the switch (None: a switcher that
        # holds the invocation up to the fence deadline).
        "fence_inline_wait_s": getattr(run.settings, "fence_inline_wait_seconds", None),
        "audit": result,
        **fences,
        "finished": result["all_switched"] and ended < horizon,
        "horizon_s": horizon,
        "closed_by": _closed_by(run, failed),
        "reconcile": _reconcile_summary(run),
        "alarms_raised": run.alarms.raised,
        "invocations": len(events),
        "invocation_outcomes": dict(Counter(o.outcome for o in events)),
        "lambda_async_retries": sum(1 for o in run.outcomes if o.attempt > 0),
        "invocations_timed_out": sum(1 for o in run.outcomes if o.outcome == TIMED_OUT),
        "invocations_failed_after_all_retries": run.errors,
        # Why invocations failed, by exception type (each attempt).
        "invocation_errors": dict(
            Counter(o.reason.split(":", 1)[0] for o in run.outcomes if o.outcome in ("ERROR", TIMED_OUT))
        ),
        "invocations_left_queued": run.left_queued,
        "capacity_refusals": run.modeled.capacity_refused,
        "run_instances_throttled": run.modeled.throttles.refused,
        "detection_s": ALARM_TO_SILENT_S + SILENT_AFTER_S,
        "first_switch_done_s": min(done) if done else None,
        "all_recovered_s": max(done) if done and result["all_switched"] else None,
        "last_switch_done_s": max(done) if done else None,
        "bound": bounds,
        "dispatch_end_modeled_s": ended,
        "real_s": {"setup": ready - began, "run": dispatch_real},
        "time_scale": run.clock.scale,
        "succeeded_invocations": sum(1 for o in events if o.outcome == SUCCEEDED),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=list(DEFAULT_NODES))
    args = parser.parse_args(argv)
    # The stacks reserve no concurrency by default: Lambda then draws on the account's unreserved pool,
    # which a new account may have as low as 10 ("Lambda quotas"): P6 sizes its pool at that floor.
    model, deployed = LatencyModel.load(), load_deployed(default_concurrency=UNRESERVED_POOL_FLOOR)
    began = time.perf_counter()
    losses = [run_az_loss(n, model, deployed.reserved_concurrency, deployed) for n in args.nodes]
    single = run_az_loss(3, model, deployed.reserved_concurrency, deployed, lost=False)
    payload = {
        "benchmark": "p6_az_loss",
        "run": run_metadata("python -m bench.p6_az_loss --nodes " + " ".join(map(str, args.nodes))),
        "what": "AZ loss on moto: no event, the lost AZ's stops never complete, its nodes silent; the "
        "reconciler runs on its schedule in the switcher's pool, detects the silence and raises each "
        "alarm, and resumes what the events left; fence deadline then network fence; capacity refusals "
        f"in {CAPACITY_AZ}; times in modeled seconds since the loss",
        "settings": {
            "silent_after_seconds": SILENT_AFTER_S,
            "fence_timeout_seconds": FENCE_TIMEOUT_S,
            "reconcile_interval_seconds": RECONCILE_INTERVAL_S,
            "capacity_refusal_rate": CAPACITY_REFUSAL_RATE,
            # Enforced in moto's own process (swr_local.moto_server applies gaps.nacl_rule_quota).
            "nacl_rules_per_direction": DEFAULT_NACL_RULES_PER_DIRECTION,
            "function_timeout_seconds": deployed.function_timeout_seconds,
            "horizon_seconds": HORIZON_S,
            "reconciler_in_run": True,
            "fence_inline_wait_seconds": losses[0]["fence_inline_wait_s"] if losses else None,
        },
        "wall_s": time.perf_counter() - began,
        "az_losses": losses,
        "single_silent_node": single,
    }
    path = write_result("p6_az_loss", payload)
    print(f"P6 written to {path.relative_to(REPO_ROOT)} ({payload['wall_s']:.0f} s)")
    for o in [*losses, single]:
        a, r = o["audit"], o["reconcile"]
        print(
            f"  N={o['nodes']} silent={o['silent_nodes']}: {a['switched']}/{a['failed_nodes']} switched "
            f"({o['closed_by']['event']} by events, {o['closed_by']['reconciler']} by the reconciler), "
            f"{a['double_replacements']} double, {a['lost_nodes']} lost; {r['runs']} reconcile runs, "
            f"{r['alarms_raised']} alarms raised; fences {o['fence_kinds']}; "
            + (
                f"all recovered at {o['all_recovered_s']:.0f} s"
                if o["finished"]
                else f"NOT finished by {o['dispatch_end_modeled_s']:.0f} s"
            )
        )
    return payload


if __name__ == "__main__":
    main()
