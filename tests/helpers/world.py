"""The switcher tests' world: `swr_local.world` (the one world builder) plus the tests' shortcuts —
a clock, fixture events retargeted at the world, provisioning and delivery in-process, a record of calls."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, fields
from typing import Any

import pytest
from switcher import aws, contract, handler, provision, state
from switcher.clients import Clients
from switcher.switch import SwitchResult, run_event

from swr_local import world as local_world
from swr_local.emulator import REGION
from swr_local.world import AZS, IMAGE_ID, each_client, session
from tests.helpers.aws_faults import CallLog, record_calls
from tests.helpers.events import load_event

__all__ = ["AZS", "IMAGE_ID", "REGION", "World", "build_world", "session"]

_ids = itertools.count(1)


@dataclass(kw_only=True)
class World(local_world.World):
    """Handles on everything a switch touches, plus shortcuts the tests share."""

    calls: CallLog
    clock: list[float] = field(default_factory=lambda: [time.time()])

    def now(self) -> float:
        """The tests' clock (advance it with `advance`)."""
        return self.clock[0]

    def advance(self, seconds: float) -> None:
        """Move the tests' clock forward."""
        self.clock[0] += seconds

    def as_function(self, monkeypatch: pytest.MonkeyPatch, *, clients: Clients | None = None) -> None:
        """Give this process the switcher function's environment for this world (until the test ends) and
        the handler `clients` (None: built at its first invocation, as at a cold start)."""
        for var, value in self.function_environment().items():
            monkeypatch.setenv(var, value)
        handler.reset_clients(clients)

    def cfn_request(self, request_type: str, node_id: int, **extra: Any) -> dict[str, Any]:
        """A CloudFormation custom-resource request for a node (ResponseURL to be set by the caller)."""
        request = load_event("cfn_node_create")
        request.update(
            RequestType=request_type,
            RequestId=f"req-{next(_ids)}",
            ResourceProperties={"ServiceToken": request["ServiceToken"], **self.node_props(node_id)},
        )
        if request_type != "Create":
            request["PhysicalResourceId"] = provision.physical_id(self.settings.vpc_name, node_id)
        request.update(extra)
        return request

    def provision(self, node_id: int, *, user_tags: dict[str, str] | None = None) -> str:
        """Provision a node through the custom-resource path; returns its first instance id."""
        _, data = provision.handle(
            self.cfn_request("Create", node_id), clients=self.clients, settings=self.settings, now=self.now
        )
        instance_id = data["InstanceId"]
        if user_tags:
            self.clients.ec2.create_tags(
                Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in user_tags.items()]
            )
        return instance_id

    def instance(self, instance_id: str) -> dict[str, Any]:
        """describe_instances of one instance."""
        found = aws.describe_instance(self.clients.ec2, instance_id)
        assert found is not None, instance_id
        return found

    def state_of(self, instance_id: str) -> str:
        """The instance's state name."""
        return str(self.instance(instance_id)["State"]["Name"])

    def node_instances(self, node_id: int) -> list[dict[str, Any]]:
        """Live (not terminated) instances carrying the node's tag."""
        return aws.live_node_instances(self.clients.ec2, self.vpc_id, node_id)

    def every_instance_id_of(self, node_id: int) -> set[str]:
        """Every instance carrying the node's tag in the world's VPC, terminated ones included."""
        resp = self.clients.ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{contract.TAG_NODE_ID}", "Values": [str(node_id)]},
                {"Name": "vpc-id", "Values": [self.vpc_id]},
            ]
        )
        return {i["InstanceId"] for r in resp["Reservations"] for i in r["Instances"]}

    def node(self, node_id: int) -> state.NodeRecord:
        """The node's record."""
        record = state.get_node(
            self.clients.dynamodb, self.settings.table_name, self.settings.vpc_name, node_id
        )
        assert record is not None, node_id
        return record

    def switches(self, node_id: int) -> list[state.SwitchRecord]:
        """The node's switch records, newest first."""
        return state.list_switches(
            self.clients.dynamodb, self.settings.table_name, self.settings.vpc_name, node_id
        )

    def targets(self, target_group_arn: str | None = None) -> set[str]:
        """The instances behind the targets of the node's target group (registered by private IP).

        An address no instance of the VPC has is returned as is, so a stray target still shows."""
        health = self.clients.elbv2.describe_target_health(
            TargetGroupArn=target_group_arn or self.target_group_arn
        )
        by_ip = {
            i["PrivateIpAddress"]: i["InstanceId"]
            for r in self.clients.ec2.describe_instances(
                Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}]
            )["Reservations"]
            for i in r["Instances"]
            if i.get("PrivateIpAddress")
        }
        return {by_ip.get(d["Target"]["Id"], d["Target"]["Id"]) for d in health["TargetHealthDescriptions"]}

    def alarm_instances(self, node_id: int) -> dict[str, str]:
        """Alarm name -> the InstanceId dimension, for the node's two alarms."""
        names = [
            contract.monitor_alarm_name(self.settings.vpc_name, node_id),
            contract.status_alarm_name(self.settings.vpc_name, node_id),
        ]
        alarms = self.clients.cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
        return {
            a["AlarmName"]: next(d["Value"] for d in a["Dimensions"] if d["Name"] == "InstanceId")
            for a in alarms
        }

    def event(self, name: str, instance_id: str, node_id: int = 1) -> dict[str, Any]:
        """A fixture event retargeted at this world's instance and node."""
        event = load_event(name, instance_id=instance_id, vpc=self.settings.vpc_name, node_id=node_id)
        event["time"] = state.iso(self.now()).replace("+00:00", "Z")
        return event

    def run(self, event: dict[str, Any], **kwargs: Any) -> SwitchResult:
        """Deliver one event to the switcher in-process."""
        settings = kwargs.pop("settings", self.settings)
        return run_event(event, clients=self.clients, settings=settings, now=self.now, **kwargs)


def build_world(
    *,
    endpoint_url: str | None = None,
    vpc_name: str = "prod",
    order: str = "swr",
    standby_nodes: tuple[int, ...] = (),
    efs_subnets: bool = False,
) -> World:
    """Create the world's AWS resources (`swr_local.world`) and record every call the switcher makes.

    standby_nodes: nodes with pre-registered targets (their own target group and standby interfaces);
    efs_subnets: EFS mount targets in subnets of their own, under their own network ACL."""
    base = local_world.build_world(
        endpoint_url=endpoint_url,
        vpc_name=vpc_name,
        standby_nodes=standby_nodes,
        efs_subnets=efs_subnets,
        switch_order=order,
        waiter_delay_seconds=0.01,
        waiter_max_attempts=5,
    )
    calls = record_calls(*each_client(base.clients))
    return World(**{f.name: getattr(base, f.name) for f in fields(base)}, calls=calls)


def fill_with_per_address_denies(ec2: Any, acl_id: str, subnet_cidr: str, *, rules: int = 19) -> None:
    """swr deny rules 1..`rules` for addresses of `subnet_cidr` (as earlier switches of a lost subnet would
    have written them), both directions: 19 and the ACL's own allow rule take the default quota of 20."""
    base = subnet_cidr.split("/")[0].rsplit(".", 1)[0]
    for number in range(1, rules + 1):
        for egress in (False, True):
            ec2.create_network_acl_entry(
                NetworkAclId=acl_id,
                RuleNumber=number,
                Protocol="-1",
                RuleAction="deny",
                Egress=egress,
                CidrBlock=f"{base}.{200 + number}/32",
            )
