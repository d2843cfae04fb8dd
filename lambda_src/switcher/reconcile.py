"""The reconciler: a periodic sweep of the VPC's nodes, so that no node is ever left down.

Events alone are not enough: Lambda retries a failed asynchronous event twice (about 1 and 3 minutes
later) and then drops it, a killed invocation keeps its lease, and a fenced (stopped) source emits no
further event. Every `SWR_RECONCILE_INTERVAL_SECONDS` the VPC's schedule invokes the switcher with
`{"source": contract.RECONCILE_EVENT_SOURCE}`, and for every node of the VPC this module:

- resumes a SWITCHING node whose lease expired; a switch parked at its fence (no lease owner) is resumed
  once its fence deadline has passed or when this run's DescribeInstances shows its source `stopped` or
  `terminated`, and skipped before that with no further AWS call (decide.decide): the fence wait holds
  no invocation, and the run costs nothing extra per parked switch;
- switches an ACTIVE node whose instance is stopping/stopped/gone, or whose alarm is in ALARM for it;
- raises the monitor alarm of a node whose alarm has been INSUFFICIENT_DATA (the metric silent) for
  `silent_after_seconds`, so that its alarm event starts the switch in an invocation of its own
  (docs/detection.md);
- applies a config an Update stored during a switch (if the switch's invocation ended first);
- repairs drift of a healthy node (its target group is not exactly {its instance}; an alarm missing or
  watching another instance) and reports it (log, `DriftRepaired` metric, `SWR Drift Repaired` notice);
- terminates live instances of a DELETED node (what a switch created after its Delete looked);
- retries a FAILED switch that failed for want of capacity, with a back-off (decide.retry_at) from one
  interval doubling up to the lease; leaves alone HOLD nodes and FAILED ones no retry fixes (`swr resume`
  makes them ACTIVE: they are then switched).
- removes the network fence's deny rules whose sources are gone (`switcher.fence.sweep_network_fences`:
  1 DescribeNetworkAcls per run, plus 1 DescribeInstances of the VPC when swr has a rule in place).

Every switch goes through `switch.act_on_node`, the path of the events, with the same decision and the
same conditional claim: the reconciler and an event can never both switch a node.

Cost per run: 1 DynamoDB Query (the VPC's nodes), 1 DescribeInstances (every instance of the VPC
carrying the node tag, paginated by 1000), 1 DescribeAlarms (prefix `swr-<vpc>-`, paginated by 100),
and 1 DescribeTargetHealth per healthy ACTIVE node; a GetItem per FAILED node (its switch) and before
each repair or switch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from switcher import aws, contract, decide, fence, provision, standby, state, switch
from switcher.clients import Clients
from switcher.observability import logger, metrics
from switcher.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef

#: A switch is started or resumed only with at least this much invocation time left; a node not reached
#: is taken by the next run (runs overlap: each is its own invocation).
MIN_SECONDS_TO_SWITCH = 60


@dataclass
class ReconcileReport:
    """What one reconcile run saw and did."""

    vpc: str
    nodes: int = 0
    failed: int = 0
    held: int = 0
    switching_overdue: int = 0
    #: Switch decisions acted on: node id, action, reason, outcome of the switch.
    actions: list[dict[str, Any]] = field(default_factory=list)
    #: Drift repaired: node id and what.
    repairs: list[dict[str, Any]] = field(default_factory=list)
    #: Nodes left for the next run (not enough invocation time left).
    deferred: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def reconcile(
    *,
    clients: Clients,
    settings: Settings,
    now: Callable[[], float] = time.time,
    remaining_ms: Callable[[], int] | None = None,
    request_id: str | None = None,
    hook: switch.PhaseHook | None = None,
) -> ReconcileReport:
    """One sweep of the VPC's nodes (see the module docstring); returns what it did."""
    switch.set_metric_dimensions(settings)
    metrics.add_metric(name=contract.METRIC_RECONCILE_HEARTBEAT, unit=MetricUnit.Count, value=1)
    run = switch.make_run(
        clients=clients,
        settings=settings,
        now=now,
        hook=hook,
        remaining_ms=remaining_ms,
        request_id=request_id,
    )
    report = ReconcileReport(vpc=settings.vpc_name)
    nodes = state.list_nodes(clients.dynamodb, settings.table_name, settings.vpc_name)
    instances = _node_instances(clients.ec2, settings.vpc_id)
    alarms = _node_alarms(clients.cloudwatch, settings.vpc_name)
    report.nodes = len(nodes)
    report.failed = sum(n.state == state.FAILED for n in nodes)
    report.held = sum(n.state == state.HOLD for n in nodes)
    report.switching_overdue = sum(_overdue(n, now(), settings.switch_overdue_seconds) for n in nodes)
    for name, value in (
        (contract.METRIC_RECONCILE_NODES_FAILED, report.failed),
        (contract.METRIC_RECONCILE_NODES_HELD, report.held),
        (contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE, report.switching_overdue),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for node in nodes:
        try:
            _reconcile_node(run, node, instances, alarms, report)
        except Exception as err:  # noqa: BLE001 - one node's trouble must not stop the sweep of the others
            # A switch attempt has sent its own notice and released its lease; the next run retries.
            logger.exception("reconcile of a node failed", extra={"node_id": node.node_id})
            report.errors.append({"node_id": node.node_id, "error": f"{type(err).__name__}: {err}"})
    _sweep_network_fences(run, nodes, report)
    logger.info("reconcile done", extra={"report": report.__dict__})
    return report


#: The outcome in the run's report of a silent node whose monitor alarm the reconciler set to ALARM.
ALARM_RAISED = "ALARM_RAISED"


def _raise_silent_alarm(
    run: switch.Run, node: state.NodeRecord, silent_for: float, reason: str, report: ReconcileReport
) -> None:
    """Set the silent node's monitor alarm to ALARM: CloudWatch sends its state change to EventBridge as
    for any alarm, and the switcher's alarm rule starts the switch in an invocation of its own. Driving
    it here instead would switch one node at a time (each fence may wait `fence_inline_wait_seconds`
    before it parks), serialising the switches of an AZ loss in this one invocation. The alarm returns
    to INSUFFICIENT_DATA at its next evaluation; if the event is lost, the silence is seen again and the
    alarm raised again."""
    name = contract.monitor_alarm_name(run.settings.vpc_name, node.node_id)
    run.clients.cloudwatch.set_alarm_state(
        AlarmName=name,
        StateValue=contract.ALARM_TRIGGER_STATE,
        StateReason=(
            f"swr reconciler: monitor metric of {node.current_instance_id} silent for {int(silent_for)} s"
        ),
    )
    logger.warning("silent node: alarm raised", extra={"node_id": node.node_id, "silent_for": silent_for})
    report.actions.append(
        {
            "node_id": node.node_id,
            "action": decide.CLAIM,
            "reason": reason,
            "outcome": ALARM_RAISED,
            "switch_id": None,
        }
    )


def _sweep_network_fences(run: switch.Run, nodes: list[state.NodeRecord], report: ReconcileReport) -> None:
    """Remove the network fence's deny rules whose sources are gone (switcher.fence)."""
    serving = {n.current_instance_id for n in nodes if n.state == state.ACTIVE and n.current_instance_id}
    try:
        removed = fence.sweep_network_fences(run.clients.ec2, run.settings.vpc_id, serving=serving)
    except Exception as err:  # noqa: BLE001 - a rule left in place fences a gone address: retried next run
        logger.exception("network fence sweep failed")
        report.errors.append({"node_id": None, "error": f"network fence sweep: {type(err).__name__}: {err}"})
        return
    for what in removed:
        logger.info("network fence removed", extra={"rule": what})
        report.repairs.append({"node_id": None, "what": f"network fence rule removed: {what}"})


def _reconcile_node(
    run: switch.Run,
    node: state.NodeRecord,
    instances: dict[str, dict[str, Any]],
    alarms: dict[str, dict[str, Any]],
    report: ReconcileReport,
) -> None:
    s = run.settings
    if node.state == state.DELETED:
        _sweep_deleted(run, node, instances, report)
        return
    if node.state == state.HOLD or node.current_instance_id is None:
        return
    current = instances.get(node.current_instance_id)
    instance = current or {"InstanceId": node.current_instance_id}
    alarm_firing = any(
        alarm.get("StateValue") == contract.ALARM_TRIGGER_STATE
        and aws.alarm_instance(alarm) == node.current_instance_id
        for alarm in (alarms.get(name) for name in _alarm_names(s.vpc_name, node.node_id))
        if alarm is not None
    )
    state_name = (instance.get("State") or {}).get("Name")
    silent_for = aws.silent_for(
        alarms.get(_alarm_names(s.vpc_name, node.node_id)[0]), node.current_instance_id, run.now()
    )
    description = f"reconcile: instance {node.current_instance_id} {state_name or 'unknown to EC2'}"
    seen = decide.Seen(
        cause=decide.RECONCILE,
        description=description,
        node_id=node.node_id,
        instance_id=node.current_instance_id,
        instance_state=state_name,
        alarm_firing=alarm_firing,
        request_id=run.request_id,
        failed_switch=_failed_switch(run, node),
        silent_for=silent_for,
    )
    decision = decide.decide(node, seen, now=run.now(), policy=run.policy())
    if decision.action == decide.SKIP:
        if node.state == state.ACTIVE and state_name == "running" and decision.reason.endswith("is healthy"):
            _repair_drift(run, node, instance, alarms, report)
        elif decision.notice is not None:
            logger.error("node needs an operator", extra={"node_id": node.node_id, "reason": decision.reason})
            report.errors.append({"node_id": node.node_id, "error": decision.reason})
        return
    if decision.action == decide.CLAIM and silent_for is not None and not alarm_firing:
        # The run read the nodes when it began; an event may have switched this one since, and the alarm
        # (set by name) would then watch the replacement: raise it only for the node as it was read.
        if not _unchanged(run, node):
            logger.info(
                "silent node changed since the run read it: alarm left", extra={"node_id": node.node_id}
            )
            return
        _raise_silent_alarm(run, node, silent_for, decision.reason, report)
        return
    if run.remaining_ms is not None and run.remaining_ms() / 1000 < MIN_SECONDS_TO_SWITCH:
        report.deferred.append(node.node_id)
        return
    result = switch.act_on_node(
        run,
        node.node_id,
        instance,
        cause=decide.RECONCILE,
        description=description,
        alarm_firing=alarm_firing,
        silent_for=silent_for,
    )
    report.actions.append(
        {
            "node_id": node.node_id,
            "action": decision.action,
            "reason": decision.reason,
            "outcome": result.outcome,
            "switch_id": result.switch_id,
        }
    )


def _failed_switch(run: switch.Run, node: state.NodeRecord) -> state.SwitchRecord | None:
    """A FAILED node's switch (whether and when it is retried depends on it)."""
    if node.state != state.FAILED or node.switch_sk is None:
        return None
    s = run.settings
    return state.get_switch(run.clients.dynamodb, s.table_name, s.vpc_name, node.node_id, node.switch_sk)


def _repair_drift(
    run: switch.Run,
    node: state.NodeRecord,
    instance: dict[str, Any],
    alarms: dict[str, dict[str, Any]],
    report: ReconcileReport,
) -> None:
    """Target group must be exactly {the current instance's IP}; both alarms must watch it."""
    c, s = run.clients, run.settings
    assert node.config is not None and node.current_instance_id is not None
    ip = instance.get("PrivateIpAddress")
    found: list[str] = []
    health = c.elbv2.describe_target_health(TargetGroupArn=node.config.target_group_arn)
    targets = {
        d["Target"]["Id"]
        for d in health["TargetHealthDescriptions"]
        if d.get("TargetHealth", {}).get("State") != "draining"
    }
    # Pre-registered targets: the standby addresses stay registered beside the live one (a standby address
    # missing from the group, e.g. deregistered by hand, is re-registered).
    wanted = {ip} if ip else set()
    if node.config.preregistered:
        wanted |= standby.addresses(standby.standby_interfaces(c.ec2, s.vpc_id, node.node_id))
    if ip and targets != wanted:
        found.append(f"target group holds {sorted(targets)}, not {sorted(wanted)}")
    watched = {
        name: aws.alarm_instance(alarms[name]) if name in alarms else None
        for name in _alarm_names(s.vpc_name, node.node_id)
    }
    wrong_alarms = {name: got for name, got in watched.items() if got != node.current_instance_id}
    if wrong_alarms:
        found.append(f"alarms {wrong_alarms} do not watch {node.current_instance_id}")
    if not found:
        return
    # Check just before mutating: a switch or an update that started since the sweep read the node owns it.
    fresh = state.get_node(c.dynamodb, s.table_name, s.vpc_name, node.node_id)
    if fresh is None or fresh.version != node.version:
        return
    if ip and targets != wanted:
        provision.point_node_targets(c, s, node.node_id, node.config, ip=ip)
    if wrong_alarms:
        aws.put_node_alarms(
            c.cloudwatch,
            vpc_name=s.vpc_name,
            node_id=node.node_id,
            instance_id=node.current_instance_id,
            monitor_process=node.config.monitor_process,
        )
    _report_repair(run, report, node.node_id, "; ".join(found))


def _sweep_deleted(
    run: switch.Run, node: state.NodeRecord, instances: dict[str, dict[str, Any]], report: ReconcileReport
) -> None:
    """A deleted node has no instance: terminate any live one carrying its id (created by a switch after
    its Delete looked; the Delete itself terminated the others)."""
    c, s = run.clients, run.settings
    live = [
        i["InstanceId"]
        for i in instances.values()
        if aws.tags_of(i).get(contract.TAG_NODE_ID) == str(node.node_id)
        and i["State"]["Name"] not in aws.GONE_STATES
    ]
    if not live:
        return
    fresh = state.get_node(c.dynamodb, s.table_name, s.vpc_name, node.node_id)
    if fresh is None or fresh.state != state.DELETED:
        return  # created again since the sweep read it
    for instance_id in sorted(live):
        aws.terminate_once(c.ec2, instance_id, wait=False, waiter={})
    _report_repair(run, report, node.node_id, f"terminated {sorted(live)} of the deleted node")


def _report_repair(run: switch.Run, report: ReconcileReport, node_id: int, what: str) -> None:
    s = run.settings
    report.repairs.append({"node_id": node_id, "what": what})
    logger.warning("drift repaired", extra={"node_id": node_id, "drift": what})
    metrics.add_metric(name=contract.METRIC_DRIFT_REPAIRED, unit=MetricUnit.Count, value=1)
    run.notify(contract.DRIFT_REPAIRED_DETAIL_TYPE, {"vpc": s.vpc_name, "node_id": node_id, "repaired": what})


def _node_instances(ec2: EC2Client, vpc_id: str) -> dict[str, dict[str, Any]]:
    """Every instance of the VPC carrying the node tag (terminated ones stay visible for about an hour)."""
    paginator = ec2.get_paginator("describe_instances")
    filters: list[FilterTypeDef] = [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "tag-key", "Values": [contract.TAG_NODE_ID]},
    ]
    return {
        instance["InstanceId"]: dict(instance)
        for page in paginator.paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    }


def _node_alarms(cloudwatch: CloudWatchClient, vpc_name: str) -> dict[str, dict[str, Any]]:
    """The VPC's metric alarms by name. Metric alarms only: CloudWatch API Reference, DescribeAlarms —
    composite alarms need `cloudwatch:DescribeAlarms` scoped to `*`; the switcher's is scoped to its own
    alarms' ARNs (`swr-<vpc>-*`)."""
    paginator = cloudwatch.get_paginator("describe_alarms")
    return {
        alarm["AlarmName"]: dict(alarm)
        for page in paginator.paginate(
            AlarmNamePrefix=contract.alarm_prefix(vpc_name), AlarmTypes=["MetricAlarm"]
        )
        for alarm in page.get("MetricAlarms", [])
    }


def _alarm_names(vpc_name: str, node_id: int) -> tuple[str, str]:
    return contract.monitor_alarm_name(vpc_name, node_id), contract.status_alarm_name(vpc_name, node_id)


def _unchanged(run: switch.Run, node: state.NodeRecord) -> bool:
    """True if the node's record is still the version this run read (one GetItem)."""
    fresh = state.get_node(run.clients.dynamodb, run.settings.table_name, node.vpc_name, node.node_id)
    return fresh is not None and fresh.version == node.version


def _overdue(node: state.NodeRecord, now: float, overdue_seconds: int) -> bool:
    """A SWITCHING node whose switch started more than `overdue_seconds` ago (start = its sort key)."""
    if node.state != state.SWITCHING or not node.switch_sk:
        return False
    try:
        started = datetime.fromisoformat(node.switch_sk.split("#", 1)[0]).timestamp()
    except ValueError:
        return False
    return now - started > overdue_seconds
