"""The AWS side of an swr deployment, built directly on moto for the benchmarks.

What the stacks would create and the switcher relies on: a VPC with one tagged subnet per AZ, the
blackhole security group, an application security group, a launch template, the state table, the
notice topic, and one target group per node. Built with plain boto3 calls (not a CDK deploy) so
that 200 nodes are ready in seconds; no latency model is attached while building.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switcher import contract

from bench.deployment_config import TargetGroupHealth

AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
VPC_NAME = "bench"


@dataclass
class World:
    """Identifiers of what was built, for the switcher's settings and the benchmark's events."""

    vpc_id: str
    vpc_name: str
    subnet_by_az: dict[str, str]
    blackhole_sg_id: str
    app_sg_id: str
    launch_template_id: str
    table_name: str
    topic_arn: str
    target_group_by_node: dict[int, str] = field(default_factory=dict)


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


def build_world(
    *,
    ec2: Any,
    elbv2: Any,
    dynamodb: Any,
    sns: Any,
    node_ids: list[int],
    health: TargetGroupHealth,
    table_name: str = "swr-bench-state",
) -> World:
    """Create the stable resources (what CloudFormation owns in a deploy) for `node_ids`; the target
    groups get the health check of the synthesized template (`health`)."""
    vpc_tag = {contract.TAG_VPC: VPC_NAME}
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=_tags({"Name": VPC_NAME, **vpc_tag}))
    subnet_by_az: dict[str, str] = {}
    for index, az in enumerate(AZS):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.40.{index}.0/24", AvailabilityZone=az)
        subnet_id = subnet["Subnet"]["SubnetId"]
        ec2.create_tags(
            Resources=[subnet_id], Tags=_tags({contract.TAG_SUBNET: contract.TAG_SUBNET_VALUE, **vpc_tag})
        )
        subnet_by_az[az] = subnet_id
    blackhole = ec2.create_security_group(
        GroupName="swr-bench-blackhole", Description="blocks all traffic", VpcId=vpc_id
    )["GroupId"]
    # A new security group allows all egress; the blackhole group must allow nothing at all.
    ec2.revoke_security_group_egress(
        GroupId=blackhole, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    app_sg = ec2.create_security_group(GroupName="swr-bench-app", Description="application", VpcId=vpc_id)[
        "GroupId"
    ]
    image_id = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    template_id = ec2.create_launch_template(
        LaunchTemplateName="swr-bench-node",
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro", "SecurityGroupIds": [app_sg]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": contract.TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contract.TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": contract.TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contract.TABLE_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = sns.create_topic(Name="swr-bench-notices")["TopicArn"]
    world = World(
        vpc_id=vpc_id,
        vpc_name=VPC_NAME,
        subnet_by_az=subnet_by_az,
        blackhole_sg_id=blackhole,
        app_sg_id=app_sg,
        launch_template_id=template_id,
        table_name=table_name,
        topic_arn=topic_arn,
    )
    for node_id in node_ids:
        world.target_group_by_node[node_id] = elbv2.create_target_group(
            Name=f"swr-bench-{node_id}",
            Protocol="TCP",
            Port=80,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckIntervalSeconds=health.interval_seconds,
            HealthyThresholdCount=health.healthy_threshold,
            UnhealthyThresholdCount=health.unhealthy_threshold,
        )["TargetGroups"][0]["TargetGroupArn"]
    return world
