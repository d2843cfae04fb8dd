"""`swr validate`: the config checks of the stacks, then live checks of what is deployed in the account."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from switcher import contract, state

from swr_cli import PROJECT_ROOT
from swr_cli.aws import AwsTarget
from swr_cli.discovery import NotFound, Switcher, find_switchers
from swr_cli.drill import launch_template_efs_ids
from swr_cli.exitcodes import ExitCode
from swr_cli.render import Check, check_json, checks_table
from swr_stacks.config import (
    ENDPOINT_SERVICES,
    ConfigError,
    RegionConfig,
    SwrConfig,
    VpcConfig,
    config_warnings,
    load_config_file,
    parse_config,
    yaml_lines,
)

DEFAULTS_CONTEXT_KEY = "swr:defaults"
#: The only egress rule the CDK gives a group with allow_all_outbound=False: it matches no traffic.
_CDK_DISALLOW_ALL = ("icmp", 252, 86, "255.255.255.255/32")
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]
#: Lambda refuses a reservation that leaves the account fewer unreserved concurrent executions than this
#: (AWS Lambda developer guide, "Managing Lambda reserved concurrency",
#: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
MIN_UNRESERVED_CONCURRENCY = 100
#: Endpoint states that still hold the service's private DNS name in the VPC.
_ENDPOINT_GONE_STATES = {"deleted", "deleting", "rejected", "failed", "expired"}


def load_config(config_file: str | None) -> SwrConfig:
    """The user's file, or the default config kept in cdk.json (`swr:defaults`), validated; every error
    carries its file and line."""
    if config_file:
        return load_config_file(config_file)
    cdk_json = Path("cdk.json") if Path("cdk.json").is_file() else PROJECT_ROOT / "cdk.json"
    try:
        text = cdk_json.read_text(encoding="utf-8")
        context = json.loads(text).get("context", {})
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"no --config given and {cdk_json} cannot be read: {err}") from err
    if DEFAULTS_CONTEXT_KEY not in context:
        raise ConfigError(f"no --config given and {cdk_json} has no {DEFAULTS_CONTEXT_KEY} context")
    lines = yaml_lines(text, at=("context", DEFAULTS_CONTEXT_KEY), name=str(cdk_json))
    return parse_config(context[DEFAULTS_CONTEXT_KEY], source=str(cdk_json), lines=lines)


def check_tagged_subnets(target: AwsTarget, vpc: VpcConfig, switcher: Switcher) -> Check:
    subnets = target.client("ec2").describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [switcher.vpc_id]},
            {"Name": "tag-key", "Values": [contract.TAG_SUBNET]},
        ]
    )["Subnets"]
    found = {s["AvailabilityZone"] for s in subnets}
    missing = [az for az in vpc.availability_zones if az not in found]
    return Check(
        f"{vpc.name}: every target AZ has a subnet tagged {contract.TAG_SUBNET}",
        not missing,
        f"missing in {', '.join(missing)}" if missing else ", ".join(sorted(found)),
    )


def check_mount_targets(
    target: AwsTarget,
    vpc: VpcConfig,
    switcher: Switcher,
    nodes: dict[int, state.NodeRecord],
    mount_target_subnets: set[str] | None = None,
) -> Check:
    """Both EFS of every node (the ids its launch template mounts) reachable in every target AZ; the
    subnets of their mount targets are added to ``mount_target_subnets``."""
    efs = target.client("efs")
    ec2 = target.client("ec2")
    problems: list[str] = []
    checked: set[str] = set()
    found_subnets = mount_target_subnets if mount_target_subnets is not None else set()
    for node_cfg in vpc.nodes:
        record = nodes.get(node_cfg.node_id)
        if record is None or record.config is None:
            problems.append(f"node {node_cfg.node_id}: no record, launch template unknown")
            continue
        fs_ids = launch_template_efs_ids(target, record.config.launch_template_id)
        expected = 2 if node_cfg.user_data_efs else 1
        if len(fs_ids) < expected:
            problems.append(
                f"node {node_cfg.node_id}: launch template mounts {len(fs_ids)} EFS, expected {expected}"
            )
        for fs_id in sorted(fs_ids - checked):
            checked.add(fs_id)
            mounts = efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]
            subnet_ids = [m["SubnetId"] for m in mounts]
            found_subnets.update(subnet_ids)
            azs = (
                {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]}
                if subnet_ids
                else set()
            )
            missing = [az for az in vpc.availability_zones if az not in azs]
            if missing:
                problems.append(f"{fs_id} has no mount target in {', '.join(missing)}")
    return Check(
        f"{vpc.name}: every target AZ has mount targets for both EFS of each node",
        not problems,
        "; ".join(problems)
        if problems
        else f"{len(checked)} file system(s) in {len(vpc.availability_zones)} AZs",
    )


def check_mount_target_layout(target: AwsTarget, vpc: VpcConfig, mount_target_subnets: set[str]) -> Check:
    """The deployed mount targets are where the config puts them (`storage_subnets`).

    A deploy cannot move a mount target: its subnet is a replace-only property and a file system has one
    mount target per AZ, so CloudFormation's create-before-delete fails (docs/operations.md). A config
    that disagrees with the deployed layout (e.g. a stack from before storage subnets, deployed again
    without `storage_subnets: private`) is caught here, before the deploy fails.
    """
    name = f"{vpc.name}: EFS mount targets where the config puts them"
    if not mount_target_subnets:
        return Check(name, True, "no mount target deployed yet")
    subnets = target.client("ec2").describe_subnets(SubnetIds=sorted(mount_target_subnets))["Subnets"]
    in_node_subnets = sorted(
        s["SubnetId"] for s in subnets if any(t["Key"] == contract.TAG_SUBNET for t in s.get("Tags", []))
    )
    if vpc.mount_targets_in_own_subnets and in_node_subnets:
        return Check(
            name,
            False,
            f"deployed in node subnet(s) {', '.join(in_node_subnets)} but the config puts them in storage "
            "subnets: set `storage_subnets: private` on this VPC to keep the deployed layout",
        )
    if not vpc.mount_targets_in_own_subnets and len(in_node_subnets) < len(mount_target_subnets):
        return Check(
            name,
            False,
            "deployed in storage subnets but the config puts them in the node subnets (`storage_subnets: "
            "private`, or an existing VPC without `storage_subnet_ids`): drop that setting",
        )
    where = "storage subnets" if vpc.mount_targets_in_own_subnets else "the node subnets (no network fence)"
    return Check(name, True, f"in {where}")


def check_unique_node_ids(target: AwsTarget) -> Check:
    ec2 = target.client("ec2")
    by_id: dict[str, list[str]] = defaultdict(list)
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag-key", "Values": [contract.TAG_NODE_ID]},
            {"Name": "instance-state-name", "Values": _LIVE_STATES},
        ]
    ):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                by_id[tags[contract.TAG_NODE_ID]].append(inst["InstanceId"])
    duplicates = {k: v for k, v in by_id.items() if len(v) > 1}
    return Check(
        f"{target.region}: node ids ({contract.TAG_NODE_ID}) unique among live instances",
        not duplicates,
        "; ".join(f"id {k} on {', '.join(sorted(v))}" for k, v in sorted(duplicates.items()))
        if duplicates
        else f"{len(by_id)} node id(s) live",
    )


def check_alarms(
    target: AwsTarget, vpc: VpcConfig, switcher: Switcher, nodes: dict[int, state.NodeRecord]
) -> Check:
    names = {
        name: node.node_id
        for node in vpc.nodes
        for name in (
            contract.monitor_alarm_name(switcher.vpc_name, node.node_id),
            contract.status_alarm_name(switcher.vpc_name, node.node_id),
        )
    }
    alarms = target.client("cloudwatch").describe_alarms(AlarmNames=list(names))["MetricAlarms"]
    found = {a["AlarmName"]: a for a in alarms}
    problems = [f"{name} missing" for name in names if name not in found]
    for name, alarm in found.items():
        record = nodes.get(names[name])
        watched = {d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == "InstanceId"}
        if record is not None and record.current_instance_id and watched != {record.current_instance_id}:
            problems.append(
                f"{name} watches {', '.join(sorted(watched)) or 'no instance'}, "
                f"not {record.current_instance_id}"
            )
    return Check(
        f"{vpc.name}: alarms exist with the contract names and watch the current instance",
        not problems,
        "; ".join(problems) if problems else ", ".join(sorted(names)),
    )


def _rule_text(perm: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for r in perm.get("IpRanges", []):
        out.append((perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"), r["CidrIp"]))
    for r in perm.get("Ipv6Ranges", []):
        out.append((perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"), r["CidrIpv6"]))
    for r in perm.get("UserIdGroupPairs", []):
        out.append((perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"), r["GroupId"]))
    for r in perm.get("PrefixListIds", []):
        out.append((perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"), r["PrefixListId"]))
    return out


def check_blackhole(target: AwsTarget, switcher: Switcher) -> Check:
    name = f"{switcher.vpc_name}: blackhole security group has no rules"
    if not switcher.blackhole_sg_id:
        return Check(name, False, f"the switcher has no {contract.ENV_BLACKHOLE_SG_ID}")
    groups = target.client("ec2").describe_security_groups(GroupIds=[switcher.blackhole_sg_id])[
        "SecurityGroups"
    ]
    group = groups[0]
    ingress = [r for p in group.get("IpPermissions", []) for r in _rule_text(p)]
    egress = [
        r for p in group.get("IpPermissionsEgress", []) for r in _rule_text(p) if r != _CDK_DISALLOW_ALL
    ]
    problems = [f"ingress {r}" for r in ingress] + [f"egress {r}" for r in egress]
    return Check(name, not problems, "; ".join(problems) if problems else switcher.blackhole_sg_id)


def _switcher_reservations(target: AwsTarget) -> int:
    """Concurrency the swr switchers deployed in the region reserve now (already out of the unreserved)."""
    try:
        switchers = find_switchers(target)
    except NotFound:
        return 0
    lambda_ = target.client("lambda")
    return sum(
        int(
            lambda_.get_function_concurrency(FunctionName=s.function_name).get("ReservedConcurrentExecutions")
            or 0
        )
        for s in switchers
    )


def check_concurrency_headroom(target: AwsTarget, region: RegionConfig, config: SwrConfig) -> Check:
    """The switchers' reservations (config) leave the account at least 100 unreserved executions."""
    name = f"{region.name}: switcher concurrency headroom"
    each = config.switcher_reserved_concurrency
    wanted = each * len(region.vpcs)
    if wanted == 0:
        return Check(name, True, "no reservation (switcher_reserved_concurrency: 0)")
    try:
        limit = target.client("lambda").get_account_settings()["AccountLimit"]
        already = _switcher_reservations(target)
    except ClientError as err:
        return Check(name, False, f"cannot read the Lambda account settings: {err}")
    left = int(limit["UnreservedConcurrentExecutions"]) + already - wanted
    detail = (
        f"quota {limit['ConcurrentExecutions']}, unreserved {limit['UnreservedConcurrentExecutions']}"
        + (f" (swr holds {already})" if already else "")
        + f"; {each} x {len(region.vpcs)} switcher(s) would leave {left}"
    )
    if left < MIN_UNRESERVED_CONCURRENCY:
        detail += (
            f" < {MIN_UNRESERVED_CONCURRENCY}: Lambda would refuse the deploy; set "
            "switcher_reserved_concurrency to 0 (none) or ask for a higher Lambda concurrency quota"
        )
    return Check(name, left >= MIN_UNRESERVED_CONCURRENCY, detail)


def check_vpc_dns(target: AwsTarget, vpc: VpcConfig) -> Check:
    """An existing VPC resolves private-DNS endpoint names only with DNS support and hostnames on."""
    assert vpc.existing is not None
    ec2 = target.client("ec2")
    off = [
        attribute
        for attribute, key in (
            ("enableDnsSupport", "EnableDnsSupport"),
            ("enableDnsHostnames", "EnableDnsHostnames"),
        )
        if not ec2.describe_vpc_attribute(VpcId=vpc.existing.vpc_id, Attribute=attribute)[key]["Value"]
    ]
    return Check(
        f"{vpc.name}: VPC DNS support and hostnames on",
        not off,
        f"{vpc.existing.vpc_id}: {', '.join(off)} is false; turn it on (ModifyVpcAttribute)"
        if off
        else vpc.existing.vpc_id,
    )


def check_interface_endpoints(target: AwsTarget, vpc: VpcConfig) -> Check:
    """`create`: no other endpoint of the service owns its private DNS name; `existing`: one does.

    A VPC holds one private-DNS endpoint per service; creating a second fails ("private-dns-enabled
    cannot be set because there is already a conflicting DNS domain", as reported in
    hashicorp/terraform-provider-aws#17535; AWS PrivateLink guide, "Access an AWS service using an
    interface VPC endpoint").
    """
    assert vpc.existing is not None
    endpoints = [
        e
        for page in target.client("ec2")
        .get_paginator("describe_vpc_endpoints")
        .paginate(Filters=[{"Name": "vpc-id", "Values": [vpc.existing.vpc_id]}])
        for e in page["VpcEndpoints"]
        if e.get("PrivateDnsEnabled") and str(e.get("State", "")).lower() not in _ENDPOINT_GONE_STATES
    ]
    problems = []
    modes = dict(vpc.interface_endpoints)
    for service in ENDPOINT_SERVICES:
        service_name = f"com.amazonaws.{target.region}.{service}"
        serving = [e for e in endpoints if e["ServiceName"] == service_name]
        foreign = [
            e["VpcEndpointId"]
            for e in serving
            if {"Key": contract.TAG_VPC, "Value": vpc.name} not in e.get("Tags", [])
        ]
        if modes[service] == "create" and foreign:
            problems.append(
                f"{', '.join(foreign)} already serves {service_name} with private DNS: "
                f"set interface_endpoints.{service}: existing"
            )
        if modes[service] == "existing" and not serving:
            problems.append(
                f"no endpoint with private DNS for {service_name}: set interface_endpoints.{service}: create"
            )
    return Check(
        f"{vpc.name}: interface endpoints fit the VPC",
        not problems,
        "; ".join(problems) if problems else ", ".join(f"{s}: {m}" for s, m in vpc.interface_endpoints),
    )


def validate_region(target: AwsTarget, config: SwrConfig) -> list[Check]:
    region_cfg = next((r for r in config.regions if r.name == target.region), None)
    if region_cfg is None:
        return [
            Check(
                f"region {target.region} is in the config",
                False,
                f"the config has {', '.join(r.name for r in config.regions)}",
            )
        ]
    checks: list[Check] = [check_concurrency_headroom(target, region_cfg, config)]
    ddb = target.client("dynamodb")
    for vpc in region_cfg.vpcs:
        if vpc.existing is not None:  # checks that matter before the first deploy into that VPC
            checks.append(check_vpc_dns(target, vpc))
            checks.append(check_interface_endpoints(target, vpc))
        try:
            switcher = find_switchers(target, vpc.name)[0]
        except NotFound as err:
            checks.append(Check(f"{vpc.name}: switcher deployed", False, str(err)))
            continue
        nodes = {n.node_id: n for n in state.list_nodes(ddb, switcher.table_name, switcher.vpc_name)}
        missing = [str(n.node_id) for n in vpc.nodes if n.node_id not in nodes]
        checks.append(
            Check(
                f"{vpc.name}: every node of the config has a record",
                not missing,
                f"no record for node(s) {', '.join(missing)}" if missing else f"{len(vpc.nodes)} node(s)",
            )
        )
        checks.append(check_tagged_subnets(target, vpc, switcher))
        mount_target_subnets: set[str] = set()
        checks.append(check_mount_targets(target, vpc, switcher, nodes, mount_target_subnets))
        checks.append(check_mount_target_layout(target, vpc, mount_target_subnets))
        checks.append(check_alarms(target, vpc, switcher, nodes))
        checks.append(check_blackhole(target, switcher))
    checks.append(check_unique_node_ids(target))
    return checks


def _error_json(err: ConfigError) -> dict[str, Any]:
    return {"file": err.source, "line": err.line, "path": err.path, "message": err.message}


def run_validate(
    console: Console,
    *,
    config_file: str | None,
    region: str | None,
    endpoint_url: str | None,
    profile: str | None = None,
    show: bool = True,
) -> tuple[ExitCode, dict[str, Any]]:
    """The offline config checks (every error, with file and line), then the live checks per region.

    Returns the exit code and the JSON document of docs/cli.md; prints the tables when `show`."""

    def say(*renderables: Any) -> None:
        if show:
            console.print(*renderables)

    source = config_file or DEFAULTS_CONTEXT_KEY + " in cdk.json"
    try:
        config = load_config(config_file)
    except ConfigError as err:
        say(
            checks_table(
                "swr validate · offline: the config", [Check("config is valid", False, err.describe())]
            )
        )
        say(f"[red]{len(err.errors)} config error(s)[/]; live checks not run")
        return ExitCode.FAILED, {
            "ok": False,
            "config": {"source": source, "valid": False, "errors": [_error_json(e) for e in err.errors]},
            "live": {"status": "not_run", "reason": "the config is invalid", "checks": []},
        }
    say(checks_table("swr validate · offline: the config", [Check("config is valid", True, source)]))
    # Valid, but a protection is given up (e.g. no network fence): said, not failed.
    warnings = list(config_warnings(config))
    for warning in warnings:
        say(f"[yellow]warning:[/] {warning}")
    config_doc = {"source": source, "valid": True, "errors": [], "warnings": warnings}
    env_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    regions = [region] if region else [env_region] if env_region else [r.name for r in config.regions]
    targets = [AwsTarget.from_args(name, endpoint_url, profile) for name in regions]
    if not all(t.has_credentials() for t in targets):
        reason = "no AWS credentials found (pass --profile, set AWS_PROFILE, or export AWS credentials)"
        say(f"[green]offline checks passed[/]; [yellow]live checks skipped[/]: {reason}")
        return ExitCode.LIVE_SKIPPED, {
            "ok": False,
            "config": config_doc,
            "live": {"status": "skipped", "reason": reason, "checks": []},
        }
    checks: list[Check] = []
    try:
        for target in targets:
            checks += validate_region(target, config)
    except (ClientError, BotoCoreError) as err:
        say(f"[red]AWS error:[/] {err}")
        return ExitCode.AWS_ERROR, {
            "ok": False,
            "config": config_doc,
            "live": {"status": "error", "reason": str(err), "checks": [check_json(c) for c in checks]},
        }
    say(checks_table(f"swr validate · live: {', '.join(regions)}", checks))
    failed = sum(not c.ok for c in checks)
    say(f"[red]{failed} check(s) failed[/]" if failed else "[green]all checks passed[/]")
    return ExitCode.FAILED if failed else ExitCode.OK, {
        "ok": not failed,
        "config": config_doc,
        "live": {
            "status": "failed" if failed else "passed",
            "reason": None,
            "checks": [check_json(c) for c in checks],
        },
    }
