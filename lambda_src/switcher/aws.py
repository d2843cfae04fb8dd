"""Thin AWS adapters of the switcher: each takes its client as an argument and does one thing.

No retry loops here: the clients use botocore's retry mode (throttling) and the state transitions
use botocore waiters. Errors that a caller must handle are surfaced as `ClientError` with their code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from switcher import contract
from switcher.models import Snapshot

if TYPE_CHECKING:
    # boto3-stubs (dev extra): for the type checker only, the Lambda runtime has no stubs.
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef
    from mypy_boto3_cloudwatch.type_defs import TagTypeDef as AlarmTagTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import ResourceTypeType
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        TagSpecificationTypeDef,
        TagTypeDef,
        WaiterConfigTypeDef,
    )
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import TargetDescriptionTypeDef
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

#: Instance states that mean the instance is gone or going: nothing to fence, switch or terminate.
GONE_STATES = frozenset({"shutting-down", "terminated"})


def error_code(err: ClientError) -> str:
    """The AWS error code of a ClientError ('' if absent)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def waiter_config(delay: float, max_attempts: int) -> WaiterConfigTypeDef:
    """WaiterConfig for botocore waiters (delay scaled by the harness through Settings)."""
    # The stubs say Delay is an int; botocore's waiter only sleeps it, and the harness scales it below 1 s.
    return cast("WaiterConfigTypeDef", {"Delay": delay, "MaxAttempts": max_attempts})


# --- EC2 ---------------------------------------------------------------------------------------------


def describe_instance(ec2: EC2Client, instance_id: str) -> dict[str, Any] | None:
    """The instance's description, or None if EC2 does not know it."""
    try:
        resp = ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as err:
        if error_code(err) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            return None
        raise
    for reservation in resp.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            return dict(instance)
    return None


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    """A resource's tags as a dict."""
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a replacement inherits: all but AWS-reserved (`aws:*`) and the previous switch id."""
    return {
        k: v
        for k, v in tags.items()
        if not k.startswith(contract.RESERVED_TAG_PREFIX) and k != contract.TAG_SWITCH_ID
    }


def tagged_subnets(ec2: EC2Client, vpc_id: str) -> list[dict[str, str]]:
    """Subnets of the VPC carrying the subnet tag (may receive a node), as {subnet_id, az, cidr}."""
    paginator = ec2.get_paginator("describe_subnets")
    filters: list[FilterTypeDef] = [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "tag-key", "Values": [contract.TAG_SUBNET]},
    ]
    return [
        {"subnet_id": s["SubnetId"], "az": s["AvailabilityZone"], "cidr": s.get("CidrBlock", "")}
        for page in paginator.paginate(Filters=filters)
        for s in page["Subnets"]
    ]


#: Instance states of an instance that still exists as a node's instance.
LIVE_STATES = ("pending", "running", "stopping", "stopped")


def live_node_instances(
    ec2: EC2Client, vpc_id: str, node_id: int, *, states: Sequence[str] = LIVE_STATES
) -> list[dict[str, Any]]:
    """Instances of the VPC tagged with this node id in `states` (default: not gone)."""
    paginator = ec2.get_paginator("describe_instances")
    filters: list[FilterTypeDef] = [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": f"tag:{contract.TAG_NODE_ID}", "Values": [str(node_id)]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    return [
        dict(instance)
        for page in paginator.paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]


def is_fenced(instance: Mapping[str, Any], blackhole_sg_id: str) -> bool:
    """True if the instance carries the blackhole group (an earlier switch fenced it)."""
    return any(g["GroupId"] == blackhole_sg_id for g in instance.get("SecurityGroups", []))


def snapshot_instance(
    instance: Mapping[str, Any],
    blackhole_sg_id: str,
    *,
    groups_before_fence: list[str] | None = None,
) -> Snapshot:
    """What a replacement inherits from its source (spec: 'What the new instance inherits').

    A source fenced by an earlier switch (which FAILED, and the operator resumed the node) carries only
    the blackhole group: its own groups are then `groups_before_fence`, from that switch's snapshot.
    """
    groups = [g["GroupId"] for g in instance.get("SecurityGroups", []) if g["GroupId"] != blackhole_sg_id]
    if not groups and groups_before_fence:
        groups = list(groups_before_fence)
    if not groups:
        raise ValueError(
            f"instance {instance['InstanceId']} has no security group other than the blackhole group "
            f"{blackhole_sg_id} and no earlier switch recorded its groups: nothing to give its replacement"
        )
    profile = instance.get("IamInstanceProfile") or {}
    return Snapshot(
        instance_id=instance["InstanceId"],
        image_id=instance["ImageId"],
        instance_type=instance["InstanceType"],
        key_name=instance.get("KeyName"),
        security_group_ids=tuple(groups),
        tags=user_tags(tags_of(instance)),
        iam_instance_profile_arn=profile.get("Arn"),
        subnet_id=instance.get("SubnetId"),
        az=instance.get("Placement", {}).get("AvailabilityZone"),
    )


#: RunInstances TagSpecifications resource types: every resource a launch creates carries swr's tags, so
#: the tag-scoped IAM policy and cost reports see them. "RunInstances" (EC2 API Reference, TagSpecification.N)
#: and "Tag your Amazon EC2 resources": at launch only instance, volume, network-interface and
#: spot-instances-request can be tagged; a type the instance does not get fails the launch, so a node's
#: instance type must have an EBS volume (every Nitro type does). Tagging on creation is authorised as
#: ec2:CreateTags with `ec2:CreateAction=RunInstances` ("Grant permission to tag Amazon EC2 resources during
#: creation", EC2 User Guide).
LAUNCH_TAGGED_RESOURCE_TYPES: tuple[ResourceTypeType, ...] = ("instance", "volume", "network-interface")


def launch_tag_specifications(
    tags: Mapping[str, str], *, new_interface: bool = True
) -> list[TagSpecificationTypeDef]:
    """TagSpecifications giving every resource RunInstances creates the same tags (no network interface is
    created when the instance is launched on an existing one: that one keeps the stack's tags)."""
    kinds = [k for k in LAUNCH_TAGGED_RESOURCE_TYPES if new_interface or k != "network-interface"]
    return [{"ResourceType": kind, "Tags": _tag_list(tags)} for kind in kinds]


def _placement(
    params: dict[str, Any],
    *,
    subnet_id: str,
    network_interface_id: str | None,
    groups: Sequence[str] | None,
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """Where the instance goes: a subnet (and groups), or an existing interface as device 0.

    A request with NetworkInterfaces takes no SubnetId or SecurityGroupIds (EC2 API Reference,
    "RunInstances": InvalidParameterCombination); the interface brings its subnet and groups. An existing
    interface cannot be deleted on termination ("InstanceNetworkInterfaceSpecification": true only for a
    new interface): it is detached and reused by a later switch (switcher.standby).
    """
    if network_interface_id is None:
        params["SubnetId"] = subnet_id
        if groups is not None:
            params["SecurityGroupIds"] = list(groups)
    else:
        params["NetworkInterfaces"] = [
            {"DeviceIndex": 0, "NetworkInterfaceId": network_interface_id, "DeleteOnTermination": False}
        ]
    params["TagSpecifications"] = launch_tag_specifications(tags, new_interface=network_interface_id is None)
    return params


def launch_replacement(
    ec2: EC2Client,
    *,
    snapshot: Snapshot,
    launch_template_id: str,
    launch_template_version: str,
    subnet_id: str,
    tags: Mapping[str, str],
    client_token: str,
    network_interface_id: str | None = None,
) -> dict[str, Any]:
    """RunInstances from the node's launch template, overridden by the source's snapshot, in `subnet_id`
    (or on the standby interface `network_interface_id`, which is in that subnet).

    The launch template still supplies what the snapshot does not (user data, metadata options, and the
    IAM instance profile: always the node's own, never the source's, which may be a vendor-era profile that
    swr's role may not pass). `client_token` makes the call idempotent: a resumed switch gets the same
    instance back, provided every other parameter is the same (the caller records the template version).
    """
    params: dict[str, Any] = {
        "LaunchTemplate": {"LaunchTemplateId": launch_template_id, "Version": launch_template_version},
        "ImageId": snapshot.image_id,
        "InstanceType": snapshot.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token,
    }
    _placement(
        params,
        subnet_id=subnet_id,
        network_interface_id=network_interface_id,
        groups=snapshot.security_group_ids,
        tags=tags,
    )
    if snapshot.key_name:
        params["KeyName"] = snapshot.key_name
    return dict(ec2.run_instances(**params)["Instances"][0])


def launch_first(
    ec2: EC2Client,
    *,
    launch_template_id: str,
    launch_template_version: str,
    subnet_id: str,
    tags: Mapping[str, str],
    client_token: str,
    network_interface_id: str | None = None,
) -> dict[str, Any]:
    """RunInstances for a node's first instance: all from the launch template, placed in `subnet_id` (or on
    the standby interface `network_interface_id` in that subnet)."""
    params: dict[str, Any] = {
        "LaunchTemplate": {"LaunchTemplateId": launch_template_id, "Version": launch_template_version},
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token,
    }
    _placement(params, subnet_id=subnet_id, network_interface_id=network_interface_id, groups=None, tags=tags)
    return dict(ec2.run_instances(**params)["Instances"][0])


def tag_for_adoption(ec2: EC2Client, instance: Mapping[str, Any], vpc_name: str) -> bool:
    """Tag an adopted (e.g. vendor-era) instance `swr:vpc=<vpc>`, the one tag swr's IAM policy keys on.

    Nothing else may touch an instance before this: fence, stop, terminate are allowed only on instances
    tagged with the VPC. Only that key is written. Returns True if the tag was written.
    """
    if tags_of(instance).get(contract.TAG_VPC) == vpc_name:
        return False
    ec2.create_tags(Resources=[instance["InstanceId"]], Tags=[{"Key": contract.TAG_VPC, "Value": vpc_name}])
    return True


def live_switch_replacement(
    ec2: EC2Client, *, vpc_id: str, switch_id: str, subnet_id: str
) -> dict[str, Any] | None:
    """The live instance a switch launched into `subnet_id` (found by its swr:switch-id tag), if any."""
    filters: list[FilterTypeDef] = [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "subnet-id", "Values": [subnet_id]},
        {"Name": f"tag:{contract.TAG_SWITCH_ID}", "Values": [switch_id]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                return dict(instance)
    return None


def wait_running(ec2: EC2Client, instance_id: str, *, waiter: WaiterConfigTypeDef) -> None:
    """Block until the instance is running (botocore waiter)."""
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=waiter)


def terminate_once(ec2: EC2Client, instance_id: str, *, wait: bool, waiter: WaiterConfigTypeDef) -> bool:
    """Terminate the instance unless it is already going; optionally wait until terminated.

    Returns True if this call issued the TerminateInstances (a resumed switch does not repeat it).
    """
    instance = describe_instance(ec2, instance_id)
    issued = False
    if instance is not None and instance["State"]["Name"] not in GONE_STATES:
        ec2.terminate_instances(InstanceIds=[instance_id])
        issued = True
    if wait and instance is not None:
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=waiter)
    return issued


def _tag_list(tags: Mapping[str, str]) -> list[TagTypeDef]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


# --- Load balancer -----------------------------------------------------------------------------------


def point_target_group(elbv2: ElasticLoadBalancingv2Client, target_group_arn: str, *, ip: str) -> None:
    """Make `ip` the node's only target: register it, then deregister every other target.

    The target group serves one node, so anything else in it is stale: the source, a replacement that
    died while pending, a hand-registered target. Registering comes first, so the group is never empty.
    """
    elbv2.register_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": ip}])
    clear_target_group(elbv2, target_group_arn, keep=ip)


def clear_target_group(
    elbv2: ElasticLoadBalancingv2Client, target_group_arn: str, *, keep: str | None = None
) -> None:
    """Deregister every target of the group but `keep` (IP targets: any address deregisters cleanly)."""
    health = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    stale: list[TargetDescriptionTypeDef] = [
        {"Id": d["Target"]["Id"], "Port": d["Target"]["Port"]}
        for d in health
        if d["Target"]["Id"] != keep and d.get("TargetHealth", {}).get("State") != "draining"
    ]
    if stale:
        elbv2.deregister_targets(TargetGroupArn=target_group_arn, Targets=stale)


def private_ip(instance: Mapping[str, Any]) -> str:
    """The instance's primary private IPv4 address: its target in the node's target group."""
    address = instance.get("PrivateIpAddress")
    if not address:
        raise ValueError(f"instance {instance.get('InstanceId')} has no private IP address (yet)")
    return str(address)


# --- Alarms ------------------------------------------------------------------------------------------


def monitor_alarm_dimensions(instance_id: str, monitor_process: str) -> list[DimensionTypeDef]:
    """Dimensions of the CloudWatch agent's procstat pid-count metric (the one place they are built)."""
    return [
        {"Name": "InstanceId", "Value": instance_id},
        {"Name": contract.MONITOR_SELECTOR_KEY, "Value": contract.MONITOR_PROCESS_PATTERNS[monitor_process]},
        {"Name": "pid_finder", "Value": contract.MONITOR_PID_FINDER},
    ]


def put_node_alarms(
    cloudwatch: CloudWatchClient, *, vpc_name: str, node_id: int, instance_id: str, monitor_process: str
) -> list[str]:
    """Create or rewrite the node's two alarms for `instance_id`; returns their names.

    Missing data is `missing` (not breaching): a replacement still booting, or an instance the FaultScript
    stopped, publishes nothing and must not raise a second alarm; a live agent reporting 0 processes does.
    """
    vpc_tag: list[AlarmTagTypeDef] = [{"Key": contract.TAG_VPC, "Value": vpc_name}]
    monitor = contract.monitor_alarm_name(vpc_name, node_id)
    cloudwatch.put_metric_alarm(
        AlarmName=monitor,
        AlarmDescription=f"swr node {node_id}: monitor process ({monitor_process}) is not running",
        Namespace=contract.MONITOR_METRIC_NAMESPACE,
        MetricName=contract.MONITOR_METRIC_NAME,
        Dimensions=monitor_alarm_dimensions(instance_id, monitor_process),
        Statistic="Maximum",
        Period=contract.MONITOR_INTERVAL_SECONDS,
        EvaluationPeriods=3,
        DatapointsToAlarm=3,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="missing",
        Tags=vpc_tag,
    )
    status = contract.status_alarm_name(vpc_name, node_id)
    cloudwatch.put_metric_alarm(
        AlarmName=status,
        AlarmDescription=f"swr node {node_id}: EC2 status check failed",
        Namespace=contract.STATUS_METRIC_NAMESPACE,
        MetricName=contract.STATUS_METRIC_NAME,
        Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
        Tags=vpc_tag,
    )
    # PutMetricAlarm keeps an existing alarm's state: an alarm left in ALARM by the failed source would not
    # fire again for the replacement. Re-arm both; missing data from a booting replacement keeps them OK.
    for name in (monitor, status):
        cloudwatch.set_alarm_state(
            AlarmName=name, StateValue="OK", StateReason=f"swr: alarm now watches instance {instance_id}"
        )
    return [monitor, status]


def delete_node_alarms(cloudwatch: CloudWatchClient, *, vpc_name: str, node_id: int) -> None:
    """Delete the node's two alarms (deleting an absent alarm is not an error in CloudWatch)."""
    cloudwatch.delete_alarms(
        AlarmNames=[
            contract.monitor_alarm_name(vpc_name, node_id),
            contract.status_alarm_name(vpc_name, node_id),
        ]
    )


# --- Notices -----------------------------------------------------------------------------------------


def notify(
    sns: SNSClient, events: EventBridgeClient, *, topic_arn: str, detail_type: str, detail: Mapping[str, Any]
) -> None:
    """Publish a notice on the SNS topic and as an EventBridge event (`source: swr`)."""
    body = json.dumps(detail, sort_keys=True, default=str)
    sns.publish(TopicArn=topic_arn, Subject=detail_type[:100], Message=body)
    resp = events.put_events(
        Entries=[{"Source": contract.NOTICE_EVENT_SOURCE, "DetailType": detail_type, "Detail": body}]
    )
    if resp.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge rejected the {detail_type!r} notice: {resp.get('Entries')}")
