"""`swr validate`: passes on a good deployment, and each check catches the thing it claims to check."""

from __future__ import annotations

import base64
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
from tests.helpers.aws_faults import lambda_account_settings

from .cli_helpers import default_config


def _row(out: str, name: str) -> str:
    """The table row of a check (first line of it), which must exist."""
    for line in out.splitlines():
        if name in line:
            return line
    raise AssertionError(f"no row {name!r} in:\n{out}")


def _failed_rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if "✘" in line]


def _assert_only_failure(out: str, row: str, detail: str) -> None:
    """The check `row` is the one failed row, and its detail column names the broken thing."""
    failed = _failed_rows(out)
    assert len(failed) == 1 and row in failed[0], out
    # the detail column names the broken thing (rows may wrap: compare without table layout)
    flat = re.sub(r"\s*│\s*", " ", out.split(row, 1)[1]).replace("\n", " ")
    assert re.sub(r"\s+", " ", detail) in re.sub(r"\s+", " ", flat), out


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
        "switcher concurrency headroom",
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


@contextmanager
def launch_template_without_user_data_efs(target: Any) -> Iterator[str]:
    """Node 2's default launch template version no longer mounts its user-data EFS (only the logs one)."""
    ec2 = target.client("ec2")
    _, node = find_node(target, 2)
    template_id = node.config.launch_template_id
    [current] = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ]
    data = current["LaunchTemplateData"]
    user_data = base64.b64decode(data["UserData"]).decode()
    assert len(launch_template_efs_ids(target, template_id)) == 2
    stripped, count = re.subn(r"data_fs_id='fs-[0-9a-f]+'", "data_fs_id=''", user_data)
    assert count == 1, "the user data no longer names its data EFS as data_fs_id='fs-...'"
    version = ec2.create_launch_template_version(
        LaunchTemplateId=template_id,
        LaunchTemplateData={**data, "UserData": base64.b64encode(stripped.encode()).decode()},
    )["LaunchTemplateVersion"]["VersionNumber"]
    ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
    try:
        assert len(launch_template_efs_ids(target, template_id)) == 1
        yield "node 2: launch template mounts 1 EFS, expected 2"
    finally:
        # the default version is what a replacement launches (moto cannot delete the extra version)
        ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(current["VersionNumber"]))


@contextmanager
def switcher_without_blackhole(target: Any) -> Iterator[str]:
    """The switcher's environment lost the blackhole security group id (it could not fence a node)."""
    lambda_ = target.client("lambda")
    switcher = find_switchers(target)[0]
    env = dict(switcher.environment)
    del env[contract.ENV_BLACKHOLE_SG_ID]
    lambda_.update_function_configuration(FunctionName=switcher.function_name, Environment={"Variables": env})
    try:
        assert not find_switchers(target)[0].blackhole_sg_id
        yield f"the switcher has no {contract.ENV_BLACKHOLE_SG_ID}"
    finally:
        lambda_.update_function_configuration(
            FunctionName=switcher.function_name, Environment={"Variables": switcher.environment}
        )


@pytest.mark.parametrize(
    ("breakage", "row"),
    [
        (untagged_subnet, "every target AZ has a subnet tagged"),
        (missing_mount_target, "mount targets for both EFS"),
        (launch_template_without_user_data_efs, "mount targets for both EFS"),
        (duplicate_node_id, "node ids (fujitsu.pclswr.id) unique"),
        (deleted_alarm, "alarms exist with the contract names"),
        (alarm_on_another_instance, "alarms exist with the contract names"),
        (blackhole_with_ingress, "blackhole security group has no rules"),
        (blackhole_with_egress, "blackhole security group has no rules"),
        (switcher_without_blackhole, "blackhole security group has no rules"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_validate_catches_each_broken_live_check(
    deployment, swr, breakage: Callable[[Any], Any], row: str
) -> None:
    with breakage(deployment.target) as detail:
        result = swr("validate", *deployment.args)
    assert result.code == 1, result.out
    _assert_only_failure(result.out, row, detail)


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


def test_validate_warns_without_storage_subnets_and_checks_the_deployed_layout(
    deployment, swr, tmp_path: Path
) -> None:
    config = default_config()
    config["regions"][0]["vpcs"][0]["storage_subnets"] = "private"  # a stack deployed before Storage
    result = swr("validate", "--config", _write(tmp_path, config), *deployment.args)
    assert "network fence is unavailable" in _flat(result.out), result.out
    # ... and the deployed mount targets (in storage subnets) are not where this config puts them: a
    # deploy of it would have to move them, which CloudFormation cannot (docs/operations.md).
    assert result.code == 1, result.out
    _assert_only_failure(
        result.out, "EFS mount targets where the config puts them", "deployed in storage subnets"
    )
    default = swr("validate", "--config", _write(tmp_path, default_config()), *deployment.args)
    assert default.code == 0 and "warning" not in default.out, default.out
    assert "✔" in _row(default.out, "EFS mount targets where the config puts them")


def test_validate_reports_a_config_node_without_record(deployment, swr, tmp_path: Path) -> None:
    config = default_config()
    nodes = config["regions"][0]["vpcs"][0]["nodes"]
    nodes.append({**nodes[0], "id": 7})
    result = swr("validate", "--config", _write(tmp_path, config), *deployment.args)
    assert result.code == 1
    row = _row(result.out, "every node of the config has a record")
    assert "✘" in row and "no record for node(s) 7" in row, result.out


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


@pytest.mark.parametrize(
    ("cdk_json", "detail"),
    [
        ("{not json", "no --config given and cdk.json cannot be read:"),
        (
            json.dumps({"app": "python3 app.py", "context": {"other": 1}}),
            "no --config given and cdk.json has no swr:defaults context",
        ),
    ],
    ids=["cdk_json_unreadable", "cdk_json_without_defaults"],
)
def test_validate_without_config_reports_a_bad_cdk_json(
    deployment, swr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdk_json: str, detail: str
) -> None:
    # without --config, the cdk.json of the working directory is read (the project's only as a fallback)
    (tmp_path / "cdk.json").write_text(cdk_json)
    monkeypatch.chdir(tmp_path)
    result = swr("validate", *deployment.args)
    assert result.code == 1, result.out
    _assert_only_failure(result.out, "config is valid", detail)
    assert "subnet tagged" not in result.out, "no live check runs without a valid config"


# --- checks that matter before a deploy: Lambda concurrency, an existing VPC's endpoints and DNS ---


def _flat(out: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\s*│\s*", " ", out))


@pytest.mark.parametrize(
    ("quota", "ok", "detail"),
    [
        (10, False, "1 switcher(s) would leave 0 < 100: Lambda would refuse the deploy"),
        (1000, True, "quota 1000, unreserved 1000; 10 x 1 switcher(s) would leave 990"),
    ],
    ids=["new_account", "default_quota"],
)
def test_validate_checks_that_a_reservation_leaves_100_unreserved(
    deployment, swr, tmp_path: Path, quota: int, ok: bool, detail: str
) -> None:
    # Lambda refuses a reservation that leaves fewer than 100 unreserved executions (AWS Lambda
    # developer guide, "Managing Lambda reserved concurrency"); a new account's quota can be 10.
    config = default_config()
    config["switcher_reserved_concurrency"] = 10
    with lambda_account_settings(concurrent_executions=quota):
        result = swr("validate", "--config", _write(tmp_path, config), *deployment.args)
    row = "switcher concurrency headroom"
    assert ("✔" if ok else "✘") in _row(result.out, row), result.out
    assert detail in _flat(result.out), result.out


@contextmanager
def landing_zone_vpc(target: Any) -> Iterator[tuple[str, list[str], str]]:
    """An existing VPC as landing zones have it: DNS hostnames off, an ec2 endpoint with private DNS."""
    ec2 = target.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"{target.region}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("abc")
    ]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"com.amazonaws.{target.region}.ec2",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        yield vpc_id, subnets, endpoint
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc_id)


def test_validate_finds_endpoint_conflicts_and_dns_attributes_of_an_existing_vpc(
    deployment, swr, tmp_path: Path
) -> None:
    region = deployment.target.region
    with landing_zone_vpc(deployment.target) as (vpc_id, subnets, endpoint):
        config = default_config()
        vpc = config["regions"][0]["vpcs"][0]
        vpc.update(
            name="landing", cidr="10.77.0.0/16", existing={"vpc_id": vpc_id, "private_subnet_ids": subnets}
        )

        # swr would create all four endpoints: the ec2 one conflicts, and private DNS needs hostnames.
        out = _flat(swr("validate", "--config", _write(tmp_path, config), *deployment.args).out)
        assert "✘ landing: VPC DNS support and hostnames on" in out, out
        assert f"{vpc_id}: enableDnsHostnames is false" in out, out
        assert "✘ landing: interface endpoints fit the VPC" in out, out
        assert (
            f"{endpoint} already serves com.amazonaws.{region}.ec2 with private DNS: "
            "set interface_endpoints.ec2: existing"
        ) in out, out

        # Kept endpoints must exist; DNS hostnames turned on.
        deployment.target.client("ec2").modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        vpc["interface_endpoints"] = {"ec2": "existing", "logs": "existing"}
        out = _flat(swr("validate", "--config", _write(tmp_path, config), *deployment.args).out)
        assert "✔ landing: VPC DNS support and hostnames on" in out, out
        assert (
            f"no endpoint with private DNS for com.amazonaws.{region}.logs: "
            "set interface_endpoints.logs: create"
        ) in out, out

        vpc["interface_endpoints"] = {"ec2": "existing"}
        out = _flat(swr("validate", "--config", _write(tmp_path, config), *deployment.args).out)
        assert "✔ landing: interface endpoints fit the VPC" in out, out
