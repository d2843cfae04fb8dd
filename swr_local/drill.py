"""The local half of `swr drill` and `swr demo`: build the event a fault causes, match it against the deployed
rules and deliver it to the switcher in this process (the emulator delivers no events and runs no Lambda)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from switcher import contract, state
from switcher.reconcile import ALARM_RAISED

from swr_cli.aws import AwsTarget
from swr_cli.discovery import Switcher
from swr_cli.drill import (
    DrillError,
    FollowResult,
    InjectedFault,
    check_network_fence,
    follow,
    report_new_phases,
)
from swr_cli.render import Check
from swr_local import events, gaps
from swr_local.lambda_runtime import DeployedFunction, invoke


def event_of(injected: InjectedFault) -> dict[str, Any]:
    """The event AWS emits about an injected fault (EC2 state change `stopping`, or the alarm's change)."""
    if injected.alarm is None:
        return events.ec2_state_change(
            injected.instance_id, "stopping", account_id=injected.account_id, region=injected.region
        )
    return events.alarm_state_change(
        injected.alarm,
        previous_state=injected.previous_state,
        account_id=injected.account_id,
        region=injected.region,
    )


def matching_rule(target: AwsTarget, switcher: Switcher, event: dict[str, Any]) -> str:
    """The deployed EventBridge rule that targets the switcher and whose pattern matches the event."""
    ev = target.client("events")
    tried = []
    for page in ev.get_paginator("list_rule_names_by_target").paginate(TargetArn=switcher.function_arn):
        for name in page["RuleNames"]:
            rule = ev.describe_rule(Name=name)
            pattern = rule.get("EventPattern")
            if pattern and rule.get("State", "ENABLED") == "ENABLED":
                tried.append(name)
                if gaps.event_pattern_matches(ev, pattern, event):
                    return str(name)
    raise DrillError(
        f"no enabled rule targeting {switcher.function_name} matches the {event['detail-type']!r} event"
        + (f" (rules tried: {', '.join(tried)})" if tried else " (no rule targets it)")
    )


def deliver_and_follow(
    target: AwsTarget,
    switcher: Switcher,
    node_id: int,
    event: dict[str, Any],
    *,
    on_phase: Callable[[str, str], None],
    timeout: float = 60.0,
    poll: float = 0.05,
) -> FollowResult:
    """Run the deployed handler in-process on the event (moto delivers no events) while following the
    record; on_phase(phase, timestamp) is called for each phase as it is recorded."""
    function = DeployedFunction.describe(target, switcher.function_arn)
    ddb = target.client("dynamodb")
    before = {s.sk for s in state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id)}
    result = FollowResult(switch=None, node=None)

    def run() -> None:
        try:
            result.handler_result = invoke(function, target, event)
        except BaseException as err:  # noqa: BLE001 - reported to the operator below
            result.handler_error = err

    worker = threading.Thread(target=run, name="switcher-in-process", daemon=True)
    worker.start()
    result.switch = follow(
        target,
        switcher,
        node_id,
        before,
        on_phase=on_phase,
        timeout=timeout,
        poll=poll,
        alive=worker.is_alive,
        seen=result.seen_phases,
    )
    worker.join(timeout=max(0.0, timeout))
    if result.switch is not None and result.switch.outcome == state.IN_PROGRESS:
        result.switch = state.get_switch(
            ddb, switcher.table_name, switcher.vpc_name, node_id, result.switch.sk
        )
        if result.switch is not None:
            report_new_phases(result.switch, result.seen_phases, on_phase)
    result.node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    return result


def redeliver_is_ignored(
    target: AwsTarget, switcher: Switcher, node_id: int, event: dict[str, Any], *, what: str
) -> Check:
    """Deliver a late or duplicate event (through the deployed rule) and check that it changes nothing:
    no new switch, the node's record untouched, still exactly one live instance with the node's id."""
    ddb = target.client("dynamodb")
    switches = len(state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id))
    node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    matching_rule(target, switcher, event)  # raises if no deployed rule would deliver it
    result = invoke(DeployedFunction.describe(target, switcher.function_arn), target, event)
    after_switches = len(state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id))
    after = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    live = [
        inst["InstanceId"]
        for res in target.client("ec2").describe_instances(
            Filters=[
                {"Name": f"tag:{contract.TAG_NODE_ID}", "Values": [str(node_id)]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        for inst in res["Instances"]
    ]
    outcome = result.get("outcome") if isinstance(result, dict) else result
    reason = result.get("reason", "") if isinstance(result, dict) else ""
    ok = after_switches == switches and after == node and len(live) == 1
    return Check(
        f"{what} changes nothing",
        ok,
        f"{outcome}"
        + (f" ({reason})" if reason else "")
        + f"; switches {switches}→{after_switches}; live instances: {', '.join(live) or 'none'}",
    )


# --- `swr drill --fault az`: an Availability Zone lost -------------------------------------------------

#: The switcher run in-process by the az drill gets these short timings in its environment (that
#: invocation only: the deployed function's configuration and the product's defaults, 300 s each, stay as
#: they are), so that a drill takes seconds: the reconciler acts on a silence of 2 s, the fence waits 4 s
#: for the stop (two polls of the switcher's 2 s waiter) before it escalates to the network fence.
AZ_DRILL_ENVIRONMENT = {
    contract.ENV_SILENT_AFTER_SECONDS: "2",
    contract.ENV_FENCE_TIMEOUT_SECONDS: "4",
}
#: Seconds between two reconcile runs of the drill (the schedule's interval, compressed).
AZ_DRILL_RECONCILE_POLL_SECONDS = 1.0


def set_lost_zones(target: AwsTarget, azs: list[str]) -> dict[str, Any]:
    """Tell the emulator which AZs are lost (gap 8, `gaps.lost_availability_zones_control`, served by the
    process that runs moto); an AZ left out recovers. Returns the emulator's answer."""
    url = f"{target.endpoint_url}{gaps.LOST_AZ_CONTROL_PATH}"
    request = urllib.request.Request(  # noqa: S310 - a local endpoint (checked by the caller)
        url,
        data=json.dumps({"lost": azs}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - see above
            answer = json.loads(response.read())
    except (urllib.error.URLError, ValueError, OSError) as err:
        answer = {"error": str(err)}
    if not isinstance(answer, dict) or sorted(answer.get("lost", [None])) != sorted(azs):
        raise DrillError(
            f"the emulator at {target.endpoint_url} cannot lose an AZ (no lost-AZ control at "
            f"{gaps.LOST_AZ_CONTROL_PATH}: {answer.get('error') if isinstance(answer, dict) else answer}); "
            "run `swr drill --fault az` against `swr local up`'s sandbox, or a moto started by swr_local"
        )
    return answer


#: What the VPC's reconcile schedule sends the switcher every interval (its Input:
#: `swr_stacks.reconcile.reconcile_event`; moto's CloudFormation creates no `AWS::Scheduler::Schedule`, so
#: the drill cannot read it from the emulator).
RECONCILE_EVENT: dict[str, Any] = {
    "source": contract.RECONCILE_EVENT_SOURCE,
    "detail-type": contract.RECONCILE_DETAIL_TYPE,
    "detail": {},
}


def _describe_mount_target_interfaces(target: AwsTarget) -> int:
    """Gap 9 on the deployed file systems (the deploy leaves moto's interfaces undescribed): the network
    fence finds the mount targets by their interfaces' description. Returns the number of file systems."""
    efs, ec2 = target.client("efs"), target.client("ec2")
    file_systems = [
        fs["FileSystemId"]
        for page in efs.get_paginator("describe_file_systems").paginate()
        for fs in page["FileSystems"]
    ]
    for file_system_id in file_systems:
        gaps.describe_mount_target_interfaces(efs, ec2, file_system_id)
    return len(file_systems)


def _report_of(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else {}


def drill_az(
    target: AwsTarget,
    switcher: Switcher,
    node: state.NodeRecord,
    *,
    say: Callable[[str], None],
    on_phase: Callable[[str, str], None],
    timeout: float,
    poll: float = AZ_DRILL_RECONCILE_POLL_SECONDS,
) -> FollowResult:
    """`swr drill --fault az` on the emulator: the node's AZ is lost and its monitor metric silent; the
    reconciler (invoked every `poll` seconds with the schedule's event) sees the silence and raises the
    alarm, whose event is delivered through the deployed rule; the switch sends the stop, which never
    completes, escalates to the network fence at its deadline and launches in another AZ. The run goes on
    invoking the reconciler until the node is ACTIVE on a new instance (a switch parked while its fence
    waits is resumed by a reconcile run) or `timeout` passes. The network fence is checked while the source
    lives; then the AZ recovers (its pending termination completes) and a last reconcile run's sweep must
    remove the deny rules."""
    source_id = node.current_instance_id
    if source_id is None:
        raise DrillError(f"node {node.node_id} has no current instance to fail")
    ec2, cloudwatch, ddb = target.client("ec2"), target.client("cloudwatch"), target.client("dynamodb")
    found = ec2.describe_instances(InstanceIds=[source_id])["Reservations"]
    az = next((i["Placement"]["AvailabilityZone"] for r in found for i in r["Instances"]), None)
    if az is None:
        raise DrillError(f"instance {source_id} of node {node.node_id} is not described by EC2")
    deployed = DeployedFunction.describe(target, switcher.function_arn)
    function = replace(deployed, environment={**deployed.environment, **AZ_DRILL_ENVIRONMENT})
    result = FollowResult(switch=None, node=None, overrides=dict(AZ_DRILL_ENVIRONMENT))
    say(
        "drill timing: the switcher runs in this process with "
        + ", ".join(f"{k}={v}" for k, v in AZ_DRILL_ENVIRONMENT.items())
        + " (this drill's invocations only; the deployed function keeps "
        + ", ".join(f"{k}={deployed.environment.get(k, 'default')}" for k in AZ_DRILL_ENVIRONMENT)
        + "); the reconciler is invoked every "
        + f"{poll:g} s, as the schedule does every interval"
    )
    reconcile_event = RECONCILE_EVENT
    known = {s.sk for s in state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node.node_id)}
    alarm_name = contract.monitor_alarm_name(switcher.vpc_name, node.node_id)
    deadline = time.monotonic() + timeout
    previous_alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    if not previous_alarm:
        raise DrillError(f"alarm {alarm_name} does not exist")
    set_lost_zones(target, [az])  # first: an emulator without the control is refused with nothing changed
    try:
        _describe_mount_target_interfaces(target)
        in_az = [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=[{"Name": "availability-zone", "Values": [az]}])[
                "Reservations"
            ]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ]
        say(
            f"AZ {az} lost: a stop or termination of its {len(in_az)} instance(s) is accepted and never "
            "completes; no `stopping` event"
        )
        cloudwatch.set_alarm_state(
            AlarmName=alarm_name,
            StateValue=contract.ALARM_SILENT_STATE,
            StateReason=f"swr drill: monitor metric of {source_id} silent (AZ {az} lost)",
        )
        say(
            f"monitor metric of {source_id} silent: {alarm_name} → {contract.ALARM_SILENT_STATE} "
            "(no ALARM event)"
        )
        event = _await_raised_alarm(
            target, function, reconcile_event, node.node_id, alarm_name, say, deadline, poll
        )
        rule = matching_rule(target, switcher, event)
        say(f"delivering {event['detail-type']!r} via rule {rule} to {switcher.function_name}")
        _invoke_following(target, switcher, node.node_id, known, function, event, result, on_phase)
        # The alarm's invocation may end before the switch does (its fence waits for the deadline): an
        # attempt that ended early is the product's resumable path, said here and checked below.
        ended_early, result.handler_error = result.handler_error, None
        if ended_early is not None:
            say(
                f"the alarm's invocation ended early: {type(ended_early).__name__}: {ended_early}; the node "
                "stays SWITCHING and a reconcile run resumes the switch"
            )
        elif isinstance(result.handler_result, dict) and result.handler_result.get("outcome"):
            say(f"the alarm's invocation returned {result.handler_result['outcome']}")
        runs = 0
        while not _settled(ddb, switcher, node.node_id, source_id) and time.monotonic() < deadline:
            time.sleep(poll)
            runs += 1
            invoke(function, target, reconcile_event)
            _refresh(ddb, switcher, node.node_id, known, result, on_phase)
        if runs:
            say(f"the reconciler ran {runs} more time(s) until the switch ended")
        _refresh(ddb, switcher, node.node_id, known, result, on_phase)
        result.node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node.node_id)
        if ended_early is not None:
            result.checks.append(
                Check(
                    "a switch attempt that ended early was resumed to the end by the reconciler",
                    result.switch is not None and result.switch.outcome == state.SUCCEEDED,
                    f"{type(ended_early).__name__}: {ended_early}",
                )
            )
        if result.switch is not None and result.switch.outcome != state.IN_PROGRESS:
            result.checks.extend(check_network_fence(target, result.switch))
    finally:
        if not _switching_or_replaced(ddb, switcher, node.node_id, source_id):
            # No switch began (e.g. the timeout passed first): the metric reports again, as it would
            # once the AZ is back, so that no later reconcile run finds the node silent.
            cloudwatch.set_alarm_state(
                AlarmName=alarm_name,
                StateValue=previous_alarm[0].get("StateValue", "OK"),
                StateReason="swr drill: ended before a switch began; the metric reports again",
            )
        recovered = set_lost_zones(target, [])
        say(
            f"AZ {az} back (the drill ends the loss): what was requested there meanwhile completed: "
            f"{', '.join(recovered.get('completed', [])) or 'none'}"
        )
    if result.switch is not None and result.switch.fence == contract.FENCE_NETWORK:
        result.checks.append(_sweep_check(target, function, reconcile_event, result.switch, say))
    return result


def _await_raised_alarm(
    target: AwsTarget,
    function: DeployedFunction,
    reconcile_event: dict[str, Any],
    node_id: int,
    alarm_name: str,
    say: Callable[[str], None],
    deadline: float,
    poll: float,
) -> dict[str, Any]:
    """Invoke the reconciler every `poll` s until it raises the silent node's alarm; the alarm's state
    change, as CloudWatch sends it to EventBridge."""
    runs = 0
    while time.monotonic() < deadline:
        time.sleep(poll)
        runs += 1
        report = _report_of(invoke(function, target, reconcile_event))
        raised = [
            a
            for a in report.get("actions", [])
            if a.get("node_id") == node_id and a.get("outcome") == ALARM_RAISED
        ]
        if raised:
            say(f"reconcile run {runs}: {raised[0].get('reason')} → {alarm_name} set to ALARM")
            alarm = target.client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
            return events.alarm_state_change(
                alarm,
                previous_state=contract.ALARM_SILENT_STATE,
                account_id=function.arn.split(":")[4],
                region=target.region,
            )
    raise DrillError(f"the reconciler did not raise {alarm_name} within the timeout ({runs} run(s))")


def _invoke_following(
    target: AwsTarget,
    switcher: Switcher,
    node_id: int,
    known: set[str],
    function: DeployedFunction,
    event: dict[str, Any],
    result: FollowResult,
    on_phase: Callable[[str, str], None],
) -> None:
    """Run the switcher on the event in a worker thread and report each phase as it is recorded; the
    invocation may end before the switch does (its fence waits): the reconcile runs resume it."""

    def run() -> None:
        try:
            result.handler_result = invoke(function, target, event)
        except BaseException as err:  # noqa: BLE001 - an attempt that failed is resumed by the reconciler
            result.handler_error = err

    ddb = target.client("dynamodb")
    worker = threading.Thread(target=run, name="switcher-in-process", daemon=True)
    worker.start()
    while worker.is_alive():
        _refresh(ddb, switcher, node_id, known, result, on_phase)
        worker.join(timeout=0.05)
    _refresh(ddb, switcher, node_id, known, result, on_phase)


def _refresh(
    ddb: Any,
    switcher: Switcher,
    node_id: int,
    known: set[str],
    result: FollowResult,
    on_phase: Callable[[str, str], None],
) -> None:
    """The drill's switch (the node's first switch not in `known`) as recorded now; new phases reported."""
    fresh = [
        s
        for s in state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id, limit=5)
        if s.sk not in known
    ]
    if fresh:
        result.switch = fresh[0]
        report_new_phases(fresh[0], result.seen_phases, on_phase)


def _settled(ddb: Any, switcher: Switcher, node_id: int, source_id: str) -> bool:
    """The switch has ended one way or another: the node is no longer SWITCHING, nor ACTIVE on the source
    (then the alarm's event has not claimed it yet, and a reconcile run may)."""
    node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    return (
        node is not None
        and node.state != state.SWITCHING
        and not (node.state == state.ACTIVE and node.current_instance_id == source_id)
    )


def _switching_or_replaced(ddb: Any, switcher: Switcher, node_id: int, source_id: str) -> bool:
    node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    return node is None or node.state != state.ACTIVE or node.current_instance_id != source_id


def _sweep_check(
    target: AwsTarget,
    function: DeployedFunction,
    reconcile_event: dict[str, Any],
    switch: state.SwitchRecord,
    say: Callable[[str], None],
) -> Check:
    """Once the source is terminated, the next reconcile run's sweep removes the switch's deny rules."""
    report = _report_of(invoke(function, target, reconcile_event))
    removed = [
        str(r.get("what", "")) for r in report.get("repairs", []) if "network fence rule removed" in str(r)
    ]
    say(f"reconcile run after the AZ came back: {len(removed)} deny rule(s) removed by its sweep")
    recorded = {
        (str(rules["network_acl_id"]), egress, int(number))
        for rules in (switch.network_fence or {}).get("acls", [])
        for egress, number in ((False, rules["ingress_rule"]), (True, rules["egress_rule"]))
    }
    acl_ids = sorted({acl for acl, _, _ in recorded})
    entries = (
        target.client("ec2").describe_network_acls(NetworkAclIds=acl_ids)["NetworkAcls"] if acl_ids else []
    )
    left = sorted(
        f"{acl['NetworkAclId']} {'egress' if e.get('Egress') else 'ingress'} #{e['RuleNumber']}"
        for acl in entries
        for e in acl.get("Entries", [])
        if (acl["NetworkAclId"], bool(e.get("Egress")), int(e["RuleNumber"])) in recorded
    )
    return Check(
        "the reconciler's sweep removes the deny rules once the source is terminated",
        bool(recorded) and not left,
        f"removed: {'; '.join(removed) or 'none'}" + (f"; still there: {', '.join(left)}" if left else ""),
    )
