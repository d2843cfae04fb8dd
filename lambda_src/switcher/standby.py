"""Pre-registered targets: a node's standby network interfaces, one per target AZ (docs/switcher.md).

The stacks create, per node and per tagged subnet, a network interface with the node's security groups,
tagged `swr:vpc` + `swr:standby-node`, and register its private address in the node's target group at
deploy time. The load balancer health-checks every such address long before a failure (a standby address
without an instance is simply unhealthy). A replacement is launched ON its AZ's interface (device 0), so it
answers on an address the load balancer already knows: nothing is registered or deregistered during a
switch, only health checks have to pass.

AWS behaviour this relies on:
- "InstanceNetworkInterfaceSpecification" (EC2 API Reference): `DeleteOnTermination` "You can specify true
  only if creating a new network interface when launching an instance": an existing interface given as
  `NetworkInterfaceId` is not deleted with the instance; it is detached when the instance terminates
  ("Network interface attachments", EC2 User Guide: a network interface that is not deleted on termination
  is detached and stays available), so the next switch back to that AZ launches on it again.
- "RunInstances" (EC2 API Reference) and the launch template's "NetworkInterfaces" ("If you specify a
  network interface, you must specify any security groups and subnets as part of the network
  interface"): a request with NetworkInterfaces takes no SubnetId and no SecurityGroupIds, and EC2
  refuses an instance-level security group next to network interfaces ("Network interfaces and an
  instance-level security groups may not be specified on the same request", InvalidParameterCombination,
  e.g. hashicorp/terraform-provider-aws#32614). The node's launch template therefore sets no security
  group in this mode; the interface carries them.
- "ModifyInstanceAttribute" (EC2 API Reference, `Groups`): on an instance in a VPC it replaces the groups
  of the instance's primary network interface. The fence gives the source's interface the blackhole group,
  and the interface keeps it after it is detached: before a launch on it, its groups are set back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from switcher import aws, contract

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import TargetDescriptionTypeDef


def standby_interfaces(ec2: EC2Client, vpc_id: str, node_id: int) -> list[dict[str, Any]]:
    """The node's standby interfaces in the VPC (found by their swr:standby-node tag)."""
    filters: list[FilterTypeDef] = [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": f"tag:{contract.TAG_STANDBY_NODE}", "Values": [str(node_id)]},
    ]
    paginator = ec2.get_paginator("describe_network_interfaces")
    return [dict(i) for page in paginator.paginate(Filters=filters) for i in page["NetworkInterfaces"]]


def addresses(interfaces: Iterable[Mapping[str, Any]]) -> set[str]:
    """The primary private addresses of the interfaces: the node's pre-registered targets."""
    return {str(i["PrivateIpAddress"]) for i in interfaces if i.get("PrivateIpAddress")}


def in_subnet(interfaces: Iterable[Mapping[str, Any]], subnet_id: str) -> dict[str, Any] | None:
    """The standby interface in `subnet_id` (the lowest id if several), or None."""
    found = sorted(
        (i for i in interfaces if i.get("SubnetId") == subnet_id), key=lambda i: i["NetworkInterfaceId"]
    )
    return dict(found[0]) if found else None


def why_unusable(ec2: EC2Client, interface: Mapping[str, Any], *, switch_id: str) -> str | None:
    """None if a replacement of `switch_id` may be launched on the interface, else the reason it may not.

    An interface attached to an instance of this very switch is usable: an earlier attempt launched on it
    and crashed before recording the launch; the same ClientToken returns that instance again.
    """
    if interface.get("Status") == "available":
        return None
    attached = (interface.get("Attachment") or {}).get("InstanceId")
    if attached:
        instance = aws.describe_instance(ec2, attached)
        if instance is not None and aws.tags_of(instance).get(contract.TAG_SWITCH_ID) == switch_id:
            return None
        state_name = (instance or {}).get("State", {}).get("Name", "unknown")
        return f"standby interface {interface['NetworkInterfaceId']} is attached to {attached} ({state_name})"
    return f"standby interface {interface['NetworkInterfaceId']} is {interface.get('Status')}"


def restore_groups(ec2: EC2Client, interface: Mapping[str, Any], groups: Sequence[str]) -> None:
    """Give the interface `groups` (the source's own groups) unless it already has exactly them.

    A fenced source's interface keeps the blackhole group after it is detached (see the module's notes).
    """
    current = sorted(g["GroupId"] for g in interface.get("Groups", []))
    if current != sorted(groups):
        ec2.modify_network_interface_attribute(
            NetworkInterfaceId=interface["NetworkInterfaceId"], Groups=list(groups)
        )


def settle_targets(
    elbv2: ElasticLoadBalancingv2Client, target_group_arn: str, *, keep: set[str]
) -> tuple[list[str], list[str]]:
    """Make the target group hold exactly `keep` (the standby addresses and the node's current address).

    In the steady state it already does: this costs one DescribeTargetHealth and changes nothing. Only a
    target group that drifted (a standby address removed by hand), an adopted instance's own address or a
    replacement launched without its standby interface (the fallback) is registered or deregistered.
    Returns (registered, deregistered) addresses.
    """
    health = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    present = {
        d["Target"]["Id"]: d["Target"].get("Port")
        for d in health
        if d.get("TargetHealth", {}).get("State") != "draining"
    }
    missing = sorted(keep - set(present))
    stale = sorted(set(present) - keep)
    if missing:
        elbv2.register_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": ip} for ip in missing])
    if stale:
        targets: list[TargetDescriptionTypeDef] = []
        for ip in stale:
            port = present[ip]
            targets.append({"Id": ip, "Port": port} if port else {"Id": ip})
        elbv2.deregister_targets(TargetGroupArn=target_group_arn, Targets=targets)
    return missing, stale
