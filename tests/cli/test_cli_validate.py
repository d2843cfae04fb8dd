"""`swr validate`: passes on a good deployment, and each check catches the thing it claims to check."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from switcher import aws as switcher_aws
from switcher import contract

from swr_cli.discovery import find_node, find_switchers
from swr_cli.drill import launch_template_efs_ids

from .cli_helpers import default_config


def _row(out: str, name: str) -> str:
    """The table row of a check (first line of it), which must exist."""
    for line in out.splitlines():
        if name in line:
            return line
    raise AssertionError(f"no row {name!r} in:\n{out}")


def _failed_rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if "✘" in line]


def test_validate_passes_on_the_default_deployment(deployment, swr) -> None:
    result = swr("validate", *deployment.args)
    assert result.code == 0, result.out
    assert not _failed_rows(result.out)
    for name in (
        "config is valid",
        "subnet tagged",
        "mount targets for both EFS",
        "node ids",
        "alarms exist",
        "blackhole security group has no rules",
        "has a record",
    ):
        assert "✔" in _row(result.out, name)


# --- each live check, broken once in moto (and repaired afterwards) --------------------------------


@contextmanager
def untagged_subnet(target: Any) -> Iterator[str]:
    ec2 = target.client("ec2")
    switcher = find_switchers(target)[0]
    subnet = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [switcher.vpc_id]},
            {"Name": "tag-key", "Values": [contract.TAG_SUBNET]},
            {"Name": "availability-zone", "Values": [f"{target.region}b"]},
        ]
    )["Subnets"][0]
    value = next(t["Value"] for t in subnet["Tags"] if t["Key"] == contract.TAG_SUBNET)
    ec2.delete_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": contract.TAG_SUBNET}])
    try:
        yield f"missing in {target.region}b"
    finally:
        ec2.create_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": contract.TAG_SUBNET, "Value": value}])


@contextmanager
def missing_mount_target(target: Any) -> Iterator[str]:
    efs, ec2 = target.client("efs"), target.client("ec2")
    _, node = find_node(target, 2)
    fs_id = sorted(launch_template_efs_ids(target, node.config.launch_template_id))[0]
    mounts = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]
    subnets = {
        s["SubnetId"]: s["AvailabilityZone"]
        for s in ec2.describe_subnets(SubnetIds=[m["SubnetId"] for m in mounts])["Subnets"]
    }
    mount = next(m for m in mounts if subnets[m["SubnetId"]] == f"{target.region}c")
    groups = efs.describe_mount_target_security_groups(MountTargetId=mount["MountTargetId"])["SecurityGroups"]
    efs.delete_mount_target(MountTargetId=mount["MountTargetId"])
    try:
        yield f"{fs_id} has no mount target in {target.region}c"
    finally:
        efs.create_mount_target(FileSystemId=fs_id, SubnetId=mount["SubnetId"], SecurityGroups=groups)


@contextmanager
def duplicate_node_id(target: Any) -> Iterator[str]:
    ec2 = target.client("ec2")
    _, node = find_node(target, 1)
    intruder = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": contract.TAG_NODE_ID, "Value": "1"}]}
        ],
    )["Instances"][0]["InstanceId"]
    try:
        yield f"id 1 on {', '.join(sorted([intruder, node.current_instance_id]))}"
    finally:
        ec2.terminate_instances(InstanceIds=[intruder])


@contextmanager
def deleted_alarm(target: Any) -> Iterator[str]:
    switcher, node = find_node(target, 2)
    name = contract.monitor_alarm_name(switcher.vpc_name, 2)
    cloudwatch = target.client("cloudwatch")
    cloudwatch.delete_alarms(AlarmNames=[name])
    try:
        yield f"{name} missing"
    finally:
        switcher_aws.put_node_alarms(
            cloudwatch,
            vpc_name=switcher.vpc_name,
            node_id=2,
            instance_id=node.current_instance_id,
            monitor_process=node.config.monitor_process,
        )


@contextmanager
def alarm_on_another_instance(target: Any) -> Iterator[str]:
    switcher, node = find_node(target, 2)
    cloudwatch = target.client("cloudwatch")
    switcher_aws.put_node_alarms(
        cloudwatch,
        vpc_name=switcher.vpc_name,
        node_id=2,
        instance_id="i-0123456789abcdef0",
        monitor_process=node.config.monitor_process,
    )
    try:
        yield f"watches i-0123456789abcdef0, not {node.current_instance_id}"
    finally:
        switcher_aws.put_node_alarms(
            cloudwatch,
            vpc_name=switcher.vpc_name,
            node_id=2,
            instance_id=node.current_instance_id,
            monitor_process=node.config.monitor_process,
        )


@contextmanager
def blackhole_with_ingress(target: Any) -> Iterator[str]:
    ec2 = target.client("ec2")
    group_id = find_switchers(target)[0].blackhole_sg_id
    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=rule)
    try:
        yield "ingress ('tcp', 22, 22, '0.0.0.0/0')"
    finally:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=rule)


@contextmanager
def blackhole_with_egress(target: Any) -> Iterator[str]:
    ec2 = target.client("ec2")
    group_id = find_switchers(target)[0].blackhole_sg_id
    rule = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=rule)
    try:
        yield "egress ('-1', None, None, '0.0.0.0/0')"
    finally:
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=rule)


@pytest.mark.parametrize(
    ("breakage", "row"),
    [
        (untagged_subnet, "every target AZ has a subnet tagged"),
        (missing_mount_target, "mount targets for both EFS"),
        (duplicate_node_id, "node ids (fujitsu.pclswr.id) unique"),
        (deleted_alarm, "alarms exist with the contract names"),
        (alarm_on_another_instance, "alarms exist with the contract names"),
        (blackhole_with_ingress, "blackhole security group has no rules"),
        (blackhole_with_egress, "blackhole security group has no rules"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_validate_catches_each_broken_live_check(
    deployment, swr, breakage: Callable[[Any], Any], row: str
) -> None:
    with breakage(deployment.target) as detail:
        result = swr("validate", *deployment.args)
    assert result.code == 1, result.out
    failed = _failed_rows(result.out)
    assert len(failed) == 1 and row in failed[0], result.out
    # the detail column names the broken thing (rows may wrap: compare without table layout)
    flat = re.sub(r"\s*│\s*", " ", result.out.split(row, 1)[1]).replace("\n", " ")
    assert re.sub(r"\s+", " ", detail) in re.sub(r"\s+", " ", flat), result.out


# --- the config checks and the deployment checks that need a config --------------------------------


def _write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "swr.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_validate_reports_a_bad_config_by_name(deployment, swr, tmp_path: Path) -> None:
    config = default_config()
    nodes = config["regions"][0]["vpcs"][0]["nodes"]
    nodes[1]["id"] = nodes[0]["id"]
    result = swr("validate", "--config", _write(tmp_path, config), *deployment.args)
    assert result.code == 1
    assert "✘" in _row(result.out, "config is valid")
    assert "duplicate" in result.out.lower() or "twice" in result.out.lower(), result.out


def test_validate_reports_a_config_node_without_record(deployment, swr, tmp_path: Path) -> None:
    config = default_config()
    nodes = config["regions"][0]["vpcs"][0]["nodes"]
    nodes.append({**nodes[0], "id": 7})
    result = swr("validate", "--config", _write(tmp_path, config), *deployment.args)
    assert result.code == 1
    assert "no record for node(s) 7" in _row(result.out, "every node of the config has a record")


def test_validate_reports_a_vpc_without_switcher(deployment, swr, tmp_path: Path) -> None:
    config = default_config()
    config["regions"][0]["vpcs"][0]["name"] = "elsewhere"
    result = swr("validate", "--config", _write(tmp_path, config), *deployment.args)
    assert result.code == 1
    assert "✘" in _row(result.out, "elsewhere: switcher deployed")


def test_validate_reports_a_region_outside_the_config(deployment, swr) -> None:
    assert deployment.target.endpoint_url
    result = swr("validate", "--region", "us-west-2", "--endpoint-url", deployment.target.endpoint_url)
    assert result.code == 1
    assert "✘" in _row(result.out, "region us-west-2 is in the config")
