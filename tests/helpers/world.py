"""A small AWS world for switcher tests: VPC, tagged subnets in 3 AZs, SGs, launch template, target group,
table, topic — built through boto3, so it works in-process (`mock_aws`) and against a ThreadedMotoServer."""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from switcher import aws, contract, provision, state
from switcher.clients import Clients, make_clients, retry_config
from switcher.settings import Settings
from switcher.switch import SwitchResult, run_event

from tests.helpers.aws_faults import CallLog, record_calls
from tests.helpers.events import load_event

REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
USER_DATA = "IyEvYmluL2Jhc2gKZWNobyBzd3I="  # base64 of a tiny script
IMAGE_ID = "ami-12c6146b"
#: Fake credentials and an explicit region for moto, so nothing can reach a real account.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
_ids = itertools.count(1)


@functools.cache
def _session() -> boto3.session.Session:
    # One session for all worlds: botocore loads its service models once instead of per test.
    return boto3.session.Session(region_name=REGION)


@dataclass
class World:
    """Handles on everything a switch touches, plus shortcuts the tests share."""

    clients: Clients
    settings: Settings
    calls: CallLog
    vpc_id: str
    subnets: dict[str, str]
    app_sg: str
    blackhole_sg: str
    launch_template_id: str
    target_group_arn: str
    profile_arn: str
    key_name: str
    other_vpc_id: str
    clock: list[float] = field(default_factory=lambda: [time.time()])

    def now(self) -> float:
        """The tests' clock (advance it with `advance`)."""
        return self.clock[0]

    def advance(self, seconds: float) -> None:
        """Move the tests' clock forward."""
        self.clock[0] += seconds

    def node_props(self, node_id: int, **overrides: str) -> dict[str, str]:
        """Custom-resource properties of a node in this world."""
        props = {
            contract.PROP_NODE_ID: str(node_id),
            contract.PROP_VPC_NAME: self.settings.vpc_name,
            contract.PROP_LAUNCH_TEMPLATE_ID: self.launch_template_id,
            contract.PROP_LAUNCH_TEMPLATE_VERSION: "1",
            contract.PROP_TARGET_GROUP_ARN: self.target_group_arn,
            contract.PROP_MONITOR_PROCESS: "swr-monitor",
        }
        props.update(overrides)
        return props

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


def build_world(*, endpoint_url: str | None = None, vpc_name: str = "prod", order: str = "swr") -> World:
    """Create the world's AWS resources and return handles on them."""
    session = _session()
    clients = make_clients(
        session=session, region_name=REGION, endpoint_url=endpoint_url, config=retry_config("standard", 5)
    )
    ec2 = clients.ec2
    iam = session.client("iam", endpoint_url=endpoint_url)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other_vpc_id = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets: dict[str, str] = {}
    for i, az in enumerate(AZS):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"]
        ec2.create_tags(
            Resources=[subnet["SubnetId"]],
            Tags=[{"Key": contract.TAG_SUBNET, "Value": contract.TAG_SUBNET_VALUE}],
        )
        subnets[az] = subnet["SubnetId"]
    # An untagged subnet: the switcher must never place a node there.
    ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.9.0/24", AvailabilityZone=AZS[1])
    suffix = next(_ids)
    app_sg = ec2.create_security_group(GroupName=f"app-{suffix}", Description="app", VpcId=vpc_id)["GroupId"]
    blackhole_sg = ec2.create_security_group(GroupName=f"bh-{suffix}", Description="blackhole", VpcId=vpc_id)[
        "GroupId"
    ]
    # moto does not validate key names by default; creating one costs an RSA key generation per test.
    key_name = f"swr-key-{suffix}"
    profile_arn = iam.create_instance_profile(InstanceProfileName=f"swr-node-{suffix}")["InstanceProfile"][
        "Arn"
    ]
    image_id = ec2.describe_images(ImageIds=[IMAGE_ID])["Images"][0]["ImageId"]  # one of moto's stock AMIs
    launch_template_id = ec2.create_launch_template(
        LaunchTemplateName=f"swr-{vpc_name}-{suffix}",
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.small",
            "KeyName": key_name,
            "SecurityGroupIds": [app_sg],
            "IamInstanceProfile": {"Arn": profile_arn},
            "UserData": USER_DATA,
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    target_group_arn = clients.elbv2.create_target_group(
        Name=f"swr-{vpc_name}-{suffix}", Protocol="TCP", Port=80, VpcId=vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    table = f"swr-state-{suffix}"
    clients.dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": contract.TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contract.TABLE_SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": contract.TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contract.TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = clients.sns.create_topic(Name=f"swr-{vpc_name}-{suffix}")["TopicArn"]
    settings = Settings(
        table_name=table,
        topic_arn=topic_arn,
        blackhole_sg_id=blackhole_sg,
        vpc_name=vpc_name,
        vpc_id=vpc_id,
        switch_order=order,
        waiter_delay_seconds=0.01,
        waiter_max_attempts=5,
    )
    calls = record_calls(
        clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb, clients.sns, clients.events
    )
    return World(
        clients=clients,
        settings=settings,
        calls=calls,
        vpc_id=vpc_id,
        subnets=subnets,
        app_sg=app_sg,
        blackhole_sg=blackhole_sg,
        launch_template_id=launch_template_id,
        target_group_arn=target_group_arn,
        profile_arn=profile_arn,
        key_name=key_name,
        other_vpc_id=other_vpc_id,
    )
