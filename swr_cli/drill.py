"""Inject a fault the way the real one happens, deliver the resulting event, follow the switch."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switcher import contract, state

from swr_cli import events, moto_gaps
from swr_cli.aws import AwsTarget
from swr_cli.discovery import Switcher
from swr_cli.inprocess import DeployedFunction, invoke
from swr_cli.render import Check

FAULTS = ("app", "monitor", "status")
_EFS_ID = re.compile(r"\bfs-[0-9a-f]{8,17}\b")


class DrillError(RuntimeError):
    """The drill could not be run (the message says which step and why)."""


@dataclass
class Delivery:
    """The event a fault produced and the deployed rule that matched it."""

    event: dict[str, Any]
    rule_name: str


def inject_fault(target: AwsTarget, switcher: Switcher, node: state.NodeRecord, fault: str) -> dict[str, Any]:
    """Cause the failure as it happens in production; return the event AWS emits for it.

    app: the FaultScript stops the instance (StopInstances on itself) → EC2 state change `stopping`.
    monitor / status: the alarm goes to ALARM → CloudWatch alarm state change.
    """
    if fault not in FAULTS:
        raise DrillError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
    if not node.current_instance_id:
        raise DrillError(f"node {node.node_id} has no current instance to fail")
    account = target.client("sts").get_caller_identity()["Account"]
    if fault == "app":
        target.client("ec2").stop_instances(InstanceIds=[node.current_instance_id])
        return events.ec2_state_change(
            node.current_instance_id, "stopping", account_id=account, region=target.region
        )
    name = (contract.monitor_alarm_name if fault == "monitor" else contract.status_alarm_name)(
        switcher.vpc_name, node.node_id
    )
    cloudwatch = target.client("cloudwatch")
    found = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    if not found:
        raise DrillError(f"alarm {name} does not exist")
    previous = found[0].get("StateValue", "OK")
    cloudwatch.set_alarm_state(
        AlarmName=name,
        StateValue=contract.ALARM_TRIGGER_STATE,
        StateReason=f"swr drill: {fault} fault injected",
        StateReasonData=json.dumps({"drill": fault}),
    )
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    return events.alarm_state_change(alarm, previous_state=previous, account_id=account, region=target.region)


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
                if moto_gaps.event_pattern_matches(ev, pattern, event):
                    return str(name)
    raise DrillError(
        f"no enabled rule targeting {switcher.function_name} matches the {event['detail-type']!r} event"
        + (f" (rules tried: {', '.join(tried)})" if tried else " (no rule targets it)")
    )


@dataclass
class FollowResult:
    switch: state.SwitchRecord | None
    node: state.NodeRecord | None
    handler_error: BaseException | None = None
    handler_result: Any = None
    seen_phases: list[str] = field(default_factory=list)


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
            _report_new_phases(result.switch, result.seen_phases, on_phase)
    result.node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    return result


def _report_new_phases(
    switch: state.SwitchRecord, seen: list[str], on_phase: Callable[[str, str], None]
) -> None:
    for phase, stamp in sorted(switch.timeline.items(), key=lambda kv: kv[1]):
        if phase not in seen:
            seen.append(phase)
            on_phase(phase, stamp)


def follow(
    target: AwsTarget,
    switcher: Switcher,
    node_id: int,
    known_switches: set[str],
    *,
    on_phase: Callable[[str, str], None],
    timeout: float,
    poll: float = 1.0,
    alive: Callable[[], bool] = lambda: True,
    seen: list[str] | None = None,
) -> state.SwitchRecord | None:
    """Poll the node's history for a new switch until it ends, the timeout passes, or `alive` turns false
    with no switch started. Returns the switch (possibly still IN_PROGRESS on timeout) or None."""
    ddb = target.client("dynamodb")
    seen = [] if seen is None else seen
    deadline = time.monotonic() + timeout
    current: state.SwitchRecord | None = None
    while time.monotonic() < deadline:
        if current is None:
            fresh = [
                s
                for s in state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id, limit=5)
                if s.sk not in known_switches
            ]
            current = fresh[0] if fresh else None
        else:
            current = (
                state.get_switch(ddb, switcher.table_name, switcher.vpc_name, node_id, current.sk) or current
            )
        if current is not None:
            _report_new_phases(current, seen, on_phase)
            if current.outcome != state.IN_PROGRESS:
                return current
        elif not alive():
            return None
        time.sleep(poll)
    return current


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


# --- invariants ----------------------------------------------------------------------------------------


def launch_template_efs_ids(
    target: AwsTarget, launch_template_id: str, version: str = "$Default"
) -> set[str]:
    """EFS file-system ids named in the launch template's user data (what a replacement mounts)."""
    versions = target.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=launch_template_id, Versions=[version]
    )["LaunchTemplateVersions"]
    if not versions:
        raise DrillError(f"launch template {launch_template_id} has no version {version}")
    raw = versions[0].get("LaunchTemplateData", {}).get("UserData", "")
    try:
        text = base64.b64decode(raw).decode("utf-8", "replace")
    except ValueError:
        text = raw
    return set(_EFS_ID.findall(text))


def check_switch(
    target: AwsTarget,
    switcher: Switcher,
    before: state.NodeRecord,
    efs_before: set[str],
    outcome: FollowResult,
) -> list[Check]:
    """The invariants of a finished switch, checked against the live resources."""
    checks: list[Check] = []
    switch, node = outcome.switch, outcome.node
    if outcome.handler_error is not None:
        checks.append(Check("switcher handler ran", False, repr(outcome.handler_error)))
    if switch is None:
        checks.append(Check("a switch was recorded", False, "no new switch item for the node"))
        return checks
    checks.append(
        Check(
            "switch succeeded",
            switch.outcome == state.SUCCEEDED,
            f"{switch.outcome}" + (f": {switch.error}" if switch.error else ""),
        )
    )
    new_id = switch.replacement_instance_id
    source_id = before.current_instance_id
    ec2 = target.client("ec2")
    ids = [i for i in (source_id, new_id) if i]
    described = (
        {
            inst["InstanceId"]: inst
            for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for inst in res["Instances"]
        }
        if ids
        else {}
    )
    src = described.get(source_id or "", {})
    new = described.get(new_id or "", {})
    src_az = src.get("Placement", {}).get("AvailabilityZone")
    new_az = new.get("Placement", {}).get("AvailabilityZone")
    checks.append(
        Check(
            "replacement in another AZ",
            bool(new_id)
            and bool(new_az)
            and new_az != src_az
            and new.get("State", {}).get("Name") == "running",
            f"{source_id} ({src_az}) → {new_id} ({new_az}, {new.get('State', {}).get('Name', 'missing')})",
        )
    )
    src_state = src.get("State", {}).get("Name", "missing")
    checks.append(
        Check("source terminated", src_state in ("terminated", "shutting-down"), f"{source_id}: {src_state}")
    )
    config = before.config
    if config is not None:
        health = target.client("elbv2").describe_target_health(TargetGroupArn=config.target_group_arn)
        # Targets are registered by private IP: name each by the instance that has it, where one does.
        addresses = [t["Target"]["Id"] for t in health["TargetHealthDescriptions"]]
        owners = _instances_by_private_ip(ec2, addresses)
        targets = sorted(owners.get(address, address) for address in addresses)
        checks.append(
            Check(
                "target group holds only the replacement",
                bool(new_id) and targets == [new_id],
                f"targets: {', '.join(targets) or 'none'}",
            )
        )
    names = [
        contract.monitor_alarm_name(switcher.vpc_name, before.node_id),
        contract.status_alarm_name(switcher.vpc_name, before.node_id),
    ]
    alarms = target.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
    on = {
        a["AlarmName"]: {d["Value"] for d in a.get("Dimensions", []) if d["Name"] == "InstanceId"}
        for a in alarms
    }
    checks.append(
        Check(
            "both alarms moved to the replacement",
            len(on) == 2 and all(v == {new_id} for v in on.values()),
            "; ".join(f"{n}: {', '.join(sorted(v)) or '-'}" for n, v in sorted(on.items()))
            or "alarms missing",
        )
    )
    if config is not None:
        efs_after = launch_template_efs_ids(target, config.launch_template_id)
        mount_azs = _mount_target_azs(target, efs_after)
        reachable = all(new_az in azs for azs in mount_azs.values())
        checks.append(
            Check(
                "EFS ids in the launch template unchanged, mounted in the new AZ",
                bool(efs_before) and efs_after == efs_before and reachable,
                f"{', '.join(sorted(efs_after)) or 'none'}"
                + ("" if efs_after == efs_before else f" (before: {', '.join(sorted(efs_before))})")
                + ("" if reachable else f"; mount targets: {mount_azs}"),
            )
        )
    if node is not None:
        checks.append(
            Check(
                "record ACTIVE on the replacement",
                node.state == state.ACTIVE
                and node.current_instance_id == new_id
                and node.current_az == new_az,
                f"{node.state}, {node.current_instance_id} in {node.current_az}",
            )
        )
    return checks


def _mount_target_azs(target: AwsTarget, fs_ids: set[str]) -> dict[str, set[str]]:
    efs = target.client("efs")
    ec2 = target.client("ec2")
    out: dict[str, set[str]] = {}
    for fs_id in sorted(fs_ids):
        subnets = [m["SubnetId"] for m in efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]]
        azs = (
            {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]}
            if subnets
            else set()
        )
        out[fs_id] = azs
    return out


def _instances_by_private_ip(ec2: Any, addresses: list[str]) -> dict[str, str]:
    """Private IP -> instance id, for the addresses some instance has."""
    if not addresses:
        return {}
    reservations = ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": addresses}])
    return {
        inst["PrivateIpAddress"]: inst["InstanceId"]
        for res in reservations["Reservations"]
        for inst in res["Instances"]
        if inst.get("PrivateIpAddress")
    }
