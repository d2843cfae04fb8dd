"""Inject a fault the way the real one happens, follow the switch, check its invariants.

Against AWS, EventBridge delivers the event the fault causes; on the local emulator `swr_local.drill`
delivers it (the emulator delivers no events). The `az` fault (an Availability Zone lost) exists only on
the local emulator (`LOCAL_ONLY_FAULTS`): no API call can lose an AZ of a real account safely."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from switcher import contract, phases, state

from swr_cli.aws import AwsTarget
from swr_cli.discovery import Switcher
from swr_cli.render import Check

FAULTS = ("app", "monitor", "status", "az")
#: Faults only the local emulator can cause: `swr drill` refuses them against a real account.
LOCAL_ONLY_FAULTS = ("az",)
#: Why an AZ loss is not drilled against a real account, and what to use there instead: the FIS scenario
#: library's "AZ Availability: Power Interruption" (named so in the Route 53 ARC Developer Guide, "Testing
#: zonal autoshift with AWS FIS").
AZ_REAL_ACCOUNT_REFUSAL = (
    "`--fault az` runs only against the local emulator (`swr local up`, or an --endpoint-url on "
    "127.0.0.1): losing an Availability Zone means instances that never stop and metrics that go silent, "
    "which no API call can cause safely in a real account. To rehearse it in {region}, run AWS Fault "
    'Injection Service\'s scenario "AZ Availability: Power Interruption" on a test deployment and follow '
    "the switch with `swr history`. Nothing was changed."
)
_EFS_ID = re.compile(r"\bfs-[0-9a-f]{8,17}\b")


class DrillError(RuntimeError):
    """The drill could not be run (the message says which step and why)."""


@dataclass(frozen=True)
class InjectedFault:
    """What a drill did to a node: what AWS emits an event about."""

    fault: str
    account_id: str
    region: str
    instance_id: str
    #: the alarm as `describe_alarms` returns it after it went to ALARM (monitor and status faults)
    alarm: dict[str, Any] | None = None
    previous_state: str = "OK"


def inject_fault(target: AwsTarget, switcher: Switcher, node: state.NodeRecord, fault: str) -> InjectedFault:
    """Cause the failure as it happens in production.

    app: the FaultScript stops the instance (StopInstances on itself) → EC2 state change `stopping`.
    monitor / status: the alarm goes to ALARM → CloudWatch alarm state change.
    """
    if fault not in FAULTS:
        raise DrillError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
    if fault in LOCAL_ONLY_FAULTS:
        raise DrillError(f"fault {fault!r} is injected by the local emulator (swr_local.drill), not here")
    if not node.current_instance_id:
        raise DrillError(f"node {node.node_id} has no current instance to fail")
    account = target.client("sts").get_caller_identity()["Account"]
    injected = InjectedFault(fault, account, target.region, node.current_instance_id)
    if fault == "app":
        target.client("ec2").stop_instances(InstanceIds=[node.current_instance_id])
        return injected
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
    return replace(injected, alarm=alarm, previous_state=previous)


@dataclass
class FollowResult:
    switch: state.SwitchRecord | None
    node: state.NodeRecord | None
    handler_error: BaseException | None = None
    handler_result: Any = None
    seen_phases: list[str] = field(default_factory=list)
    #: Invariants the run checked itself while they could be seen (e.g. the network fence while its
    #: source lived), printed after those of `check_switch`.
    checks: list[Check] = field(default_factory=list)
    #: Environment variables given to the in-process switcher only (the local az drill's short timings).
    overrides: dict[str, str] = field(default_factory=dict)


def report_new_phases(
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
            report_new_phases(current, seen, on_phase)
            if current.outcome != state.IN_PROGRESS:
                return current
        elif not alive():
            return None
        time.sleep(poll)
    return current


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
        if config.preregistered:
            checks.append(_preregistered_check(ec2, switcher, before.node_id, addresses, new))
        else:
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


def _stamp(switch: state.SwitchRecord, phase: str) -> datetime | None:
    raw = switch.timeline.get(phase)
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


def check_network_fence(target: AwsTarget, switch: state.SwitchRecord) -> list[Check]:
    """The invariants of a switch whose source never stopped (a lost AZ), checked while the source still
    lives: the network fence held and is on record, nothing was launched before it was confirmed, the
    source's termination was requested, and the deny rules stand in the network ACLs of the EFS
    mount-target subnets (docs/fencing.md)."""
    ec2 = target.client("ec2")
    found = ec2.describe_instances(InstanceIds=[switch.source_instance_id])["Reservations"]
    source: dict[str, Any] = next((i for r in found for i in r["Instances"]), {})
    source_state = source.get("State", {}).get("Name", "missing")
    checks = [
        Check(
            "fence: network-fenced (the source never stopped)",
            switch.fence == contract.FENCE_NETWORK and source_state not in ("stopped", "missing"),
            f"fence {switch.fence or 'none'}; source {switch.source_instance_id} {source_state}",
        )
    ]
    order = [phases.Phase.STOP_SENT.value, phases.Phase.FENCE.value, phases.Phase.LAUNCH.value]
    stamps = [stamp for stamp in (_stamp(switch, phase) for phase in order) if stamp is not None]
    checks.append(
        Check(
            "nothing launched before the fence was confirmed",
            len(stamps) == len(order) and stamps == sorted(stamps),
            " ≤ ".join(f"{phase} {switch.timeline.get(phase, '-')}" for phase in order),
        )
    )
    checks.append(
        Check(
            "source termination requested (it never completes while its AZ is lost)",
            source_state in ("shutting-down", "terminated"),
            f"{switch.source_instance_id}: {source_state}",
        )
    )
    checks.append(_deny_rules_check(ec2, switch, source))
    return checks


def _deny_rules_check(ec2: Any, switch: state.SwitchRecord, source: dict[str, Any]) -> Check:
    """The recorded deny rules are in place, in the network ACL of every subnet holding an EFS mount
    target (and only there: not the source's own subnet), both directions, for the source's address."""
    name = "deny rules on the mount-target subnets' network ACLs while the source lives"
    fence_record = switch.network_fence or {}
    recorded = list(fence_record.get("acls", []))
    subnets = [str(s) for s in fence_record.get("mount_target_subnets", [])]
    if not recorded or not subnets:
        return Check(name, False, "no network fence recorded on the switch")
    address = source.get("PrivateIpAddress")
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])
    entries = {a["NetworkAclId"]: a.get("Entries", []) for a in acls["NetworkAcls"]}
    missing: list[str] = []
    held: list[str] = []
    for rules in recorded:
        acl_id = str(rules["network_acl_id"])
        for egress, number in ((False, rules["ingress_rule"]), (True, rules["egress_rule"])):
            entry = next(
                (
                    e
                    for e in entries.get(acl_id, [])
                    if bool(e.get("Egress")) is egress and int(e["RuleNumber"]) == int(number)
                ),
                None,
            )
            direction = "egress" if egress else "ingress"
            covers = (
                entry is not None
                and entry.get("RuleAction") == "deny"
                and str(entry.get("Protocol")) == "-1"
                and bool(address)
                and ipaddress.ip_address(str(address)) in ipaddress.ip_network(str(entry.get("CidrBlock")))
            )
            (held if covers else missing).append(
                f"{acl_id} {direction} #{number} {entry.get('CidrBlock') if entry else 'absent'}"
            )
    unfenced = sorted(set(entries) - {str(r["network_acl_id"]) for r in recorded})
    own_subnet = source.get("SubnetId") in subnets
    ok = not missing and not unfenced and not own_subnet
    detail = f"source {address}; mount-target subnets {', '.join(subnets)}; held: {', '.join(held) or 'none'}"
    if missing:
        detail += f"; missing: {', '.join(missing)}"
    if unfenced:
        detail += f"; ACLs without a rule: {', '.join(unfenced)}"
    if own_subnet:
        detail += f"; the source's own subnet {source.get('SubnetId')} holds a mount target"
    return Check(name, ok, detail)


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


def _preregistered_check(
    ec2: Any, switcher: Switcher, node_id: int, addresses: list[str], new: dict[str, Any]
) -> Check:
    """Pre-registered targets: the group holds exactly the node's standby addresses, and the replacement
    runs on one of them (nothing was registered for it)."""
    interfaces = ec2.describe_network_interfaces(
        Filters=[
            {"Name": f"tag:{contract.TAG_VPC}", "Values": [switcher.vpc_name]},
            {"Name": f"tag:{contract.TAG_STANDBY_NODE}", "Values": [str(node_id)]},
        ]
    )["NetworkInterfaces"]
    standby = {i["PrivateIpAddress"] for i in interfaces}
    address = new.get("PrivateIpAddress")
    return Check(
        "replacement serves on a pre-registered address",
        bool(standby) and address in standby and set(addresses) == standby,
        f"replacement {address}; targets {', '.join(sorted(addresses)) or 'none'}; "
        f"standby addresses {', '.join(sorted(standby)) or 'none'}",
    )


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
