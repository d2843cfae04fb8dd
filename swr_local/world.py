"""The one world builder: the AWS side of an swr deployment, built with plain boto3 calls on the emulator.

What the stacks create and the switcher relies on: a VPC with one tagged subnet per AZ (plus an untagged
subnet and a second VPC, which the switcher must never use), the blackhole security group (no rule at
all), an application security group, an instance profile, a launch template, the state table, the notice
topic and target groups, and for nodes with pre-registered targets (`standby_nodes`) one standby network
interface per tagged subnet, registered in the node's target group, and a launch template without security
groups (the interface carries them), as the stacks create them. Built without a CDK deploy so that
hundreds of nodes are ready in seconds; the switcher tests and the benchmarks share it
(`tests/helpers/world.py` adds the tests' shortcuts).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import boto3
from switcher import contract
from switcher.clients import Clients, make_clients, retry_config
from switcher.settings import Settings

from swr_local import gaps
from swr_local.emulator import REGION

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import RequestLaunchTemplateDataTypeDef, TagTypeDef

AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
USER_DATA = "IyEvYmluL2Jhc2gKZWNobyBzd3I="  # base64 of a tiny script
IMAGE_ID = "ami-12c6146b"  # one of moto's stock AMIs
_ids = itertools.count(1)


@functools.cache
def session() -> boto3.session.Session:
    """One session for every world: botocore loads its service models once, not once per world."""
    return boto3.session.Session(region_name=REGION)


def each_client(clients: Clients) -> list[Any]:
    """Every client of the bundle (to attach botocore event handlers to all of them)."""
    return [getattr(clients, f.name) for f in fields(clients)]


@dataclass(kw_only=True)
class World:
    """Identifiers of what was built, the switcher's settings for it and clients that reach it."""

    clients: Clients
    settings: Settings
    vpc_id: str
    other_vpc_id: str
    subnets: dict[str, str]
    app_sg: str
    blackhole_sg: str
    launch_template_id: str
    #: the target group every node without one of its own uses
    target_group_arn: str
    profile_arn: str
    key_name: str
    target_group_by_node: dict[int, str] = field(default_factory=dict)
    #: The launch template of nodes with pre-registered targets: no security group (the interface has them).
    standby_launch_template_id: str = ""
    #: node id -> AZ -> its standby interface (nodes with pre-registered targets only)
    standby_interfaces: dict[int, dict[str, str]] = field(default_factory=dict)
    #: AZ -> the subnet of the EFS mount target there (`efs_subnets` worlds only)
    mount_target_subnets: dict[str, str] = field(default_factory=dict)

    def target_group_for(self, node_id: int) -> str:
        """The node's own target group if it was built with one, else the shared one."""
        return self.target_group_by_node.get(node_id, self.target_group_arn)

    def new_target_group(self, **options: Any) -> str:
        """Another target group in the world's VPC (as CloudFormation creates when one is replaced)."""
        return _target_group(
            self.clients, self.vpc_id, f"swr-{self.settings.vpc_name}-tg{next(_ids)}", options
        )

    def launch_by_hand(
        self,
        *,
        node_tag: str | None = None,
        tags: Mapping[str, str] | None = None,
        subnet_id: str | None = None,
        security_group_ids: list[str] | None = None,
        instance_profile_arn: str | None = None,
    ) -> str:
        """An instance launched outside the switcher (a stray, a vendor-era node, a foreign instance):
        `node_tag` as its node id tag, in `subnet_id` (default: the first AZ's tagged subnet)."""
        all_tags = {**({contract.TAG_NODE_ID: node_tag} if node_tag is not None else {}), **(tags or {})}
        extra: dict[str, Any] = {"SecurityGroupIds": security_group_ids} if security_group_ids else {}
        if instance_profile_arn:
            extra["IamInstanceProfile"] = {"Arn": instance_profile_arn}
        if all_tags:
            extra["TagSpecifications"] = [{"ResourceType": "instance", "Tags": _tags(all_tags)}]
        return str(
            self.clients.ec2.run_instances(
                ImageId=IMAGE_ID,
                InstanceType="t3.small",
                MinCount=1,
                MaxCount=1,
                SubnetId=subnet_id or self.subnets[AZS[0]],
                **extra,
            )["Instances"][0]["InstanceId"]
        )

    def node_props(self, node_id: int, **overrides: str) -> dict[str, str]:
        """`Custom::SwrNode` properties of a node in this world, as the stacks set them."""
        preregistered = node_id in self.standby_interfaces
        props = {
            contract.PROP_NODE_ID: str(node_id),
            contract.PROP_VPC_NAME: self.settings.vpc_name,
            contract.PROP_LAUNCH_TEMPLATE_ID: self.standby_launch_template_id
            if preregistered
            else self.launch_template_id,
            contract.PROP_LAUNCH_TEMPLATE_VERSION: "1",
            contract.PROP_TARGET_GROUP_ARN: self.target_group_for(node_id),
            contract.PROP_MONITOR_PROCESS: "swr-monitor",
            contract.PROP_TARGETS: contract.TARGETS_PREREGISTERED
            if preregistered
            else contract.TARGETS_ON_SWITCH,
        }
        props.update(overrides)
        return props

    def function_environment(self) -> dict[str, str]:
        """The switcher function's environment as the stacks set it for this world."""
        s = self.settings
        return {
            contract.ENV_TABLE_NAME: s.table_name,
            contract.ENV_TOPIC_ARN: s.topic_arn,
            contract.ENV_BLACKHOLE_SG_ID: s.blackhole_sg_id,
            contract.ENV_VPC_NAME: s.vpc_name,
            contract.ENV_VPC_ID: s.vpc_id,
        }


def _tags(pairs: Mapping[str, str]) -> list[TagTypeDef]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


def _target_group(clients: Clients, vpc_id: str, name: str, options: Mapping[str, Any]) -> str:
    return str(
        clients.elbv2.create_target_group(
            Name=name, Protocol="TCP", Port=80, VpcId=vpc_id, TargetType="ip", **options
        )["TargetGroups"][0]["TargetGroupArn"]
    )


def _create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
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


def build_world(
    *,
    endpoint_url: str | None = None,
    clients: Clients | None = None,
    vpc_name: str = "prod",
    node_ids: Iterable[int] = (),
    target_group_options: Mapping[str, Any] | None = None,
    standby_nodes: Iterable[int] = (),
    efs_subnets: bool = False,
    **settings: Any,
) -> World:
    """Create the world's resources on the emulator at `endpoint_url` (None: moto in this process).

    clients: the clients to build with and to hand out (default: standard retries, 5 attempts);
    node_ids: nodes that get a target group of their own, created with `target_group_options` (e.g. the
    synthesized health check); standby_nodes: nodes (among `node_ids`, or given one) with pre-registered
    targets: a standby interface per tagged subnet, its address registered in the node's group;
    efs_subnets: an EFS file system with its mount targets in subnets of their own, one per AZ, under a
    network ACL of their own (the layout the network fence needs, docs/fencing.md);
    settings: the switcher's settings beyond the world's identifiers.
    """
    clients = clients or make_clients(
        session=session(), region_name=REGION, endpoint_url=endpoint_url, config=retry_config("standard", 5)
    )
    ec2 = clients.ec2
    vpc_tag = {contract.TAG_VPC: vpc_name}
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=_tags({"Name": vpc_name, **vpc_tag}))
    other_vpc_id = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets: dict[str, str] = {}
    for i, az in enumerate(AZS):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"]
        ec2.create_tags(
            Resources=[subnet["SubnetId"]],
            Tags=_tags({contract.TAG_SUBNET: contract.TAG_SUBNET_VALUE, **vpc_tag}),
        )
        subnets[az] = subnet["SubnetId"]
    # An untagged subnet: the switcher must never place a node there.
    ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.9.0/24", AvailabilityZone=AZS[1])
    suffix = next(_ids)
    app_sg = ec2.create_security_group(GroupName=f"app-{suffix}", Description="app", VpcId=vpc_id)["GroupId"]
    blackhole_sg = ec2.create_security_group(GroupName=f"bh-{suffix}", Description="blackhole", VpcId=vpc_id)[
        "GroupId"
    ]
    # A new security group allows all egress; the blackhole group must allow nothing at all.
    ec2.revoke_security_group_egress(
        GroupId=blackhole_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    # moto does not validate key names by default; creating one costs an RSA key generation per world.
    key_name = f"swr-key-{suffix}"
    iam = session().client("iam", endpoint_url=endpoint_url)
    profile_arn = iam.create_instance_profile(InstanceProfileName=f"swr-node-{suffix}")["InstanceProfile"][
        "Arn"
    ]
    image_id = ec2.describe_images(ImageIds=[IMAGE_ID])["Images"][0]["ImageId"]
    template_data: RequestLaunchTemplateDataTypeDef = {
        "ImageId": image_id,
        "InstanceType": "t3.small",
        "KeyName": key_name,
        "SecurityGroupIds": [app_sg],
        "IamInstanceProfile": {"Arn": profile_arn},
        "UserData": USER_DATA,
    }
    launch_template_id = ec2.create_launch_template(
        LaunchTemplateName=f"swr-{vpc_name}-{suffix}", LaunchTemplateData=template_data
    )["LaunchTemplate"]["LaunchTemplateId"]
    standby_nodes = tuple(standby_nodes)
    standby_template_id = ""
    if standby_nodes:
        # EC2 refuses an instance-level security group next to network interfaces (switcher.standby).
        standby_data: RequestLaunchTemplateDataTypeDef = {**template_data}
        del standby_data["SecurityGroupIds"]
        standby_template_id = ec2.create_launch_template(
            LaunchTemplateName=f"swr-{vpc_name}-{suffix}-standby",
            LaunchTemplateData=standby_data,
        )["LaunchTemplate"]["LaunchTemplateId"]

    groups = {
        node_id: _target_group(
            clients, vpc_id, f"swr-{vpc_name}-{suffix}-{node_id}", target_group_options or {}
        )
        for node_id in dict.fromkeys((*node_ids, *standby_nodes))
    }
    standby = {
        node_id: _standby_interfaces(
            clients, vpc_name, node_id, subnets=subnets, groups=[app_sg], target_group_arn=groups[node_id]
        )
        for node_id in standby_nodes
    }
    mount_target_subnets = (
        _efs_subnets(clients, vpc_id, endpoint_url=endpoint_url, token=f"swr-{vpc_name}-{suffix}")
        if efs_subnets
        else {}
    )
    table = f"swr-state-{suffix}"
    _create_table(clients.dynamodb, table)
    topic_arn = clients.sns.create_topic(Name=f"swr-{vpc_name}-{suffix}")["TopicArn"]
    return World(
        clients=clients,
        settings=Settings(
            table_name=table,
            topic_arn=topic_arn,
            blackhole_sg_id=blackhole_sg,
            vpc_name=vpc_name,
            vpc_id=vpc_id,
            **settings,
        ),
        vpc_id=vpc_id,
        other_vpc_id=other_vpc_id,
        subnets=subnets,
        app_sg=app_sg,
        blackhole_sg=blackhole_sg,
        launch_template_id=launch_template_id,
        target_group_arn=_target_group(clients, vpc_id, f"swr-{vpc_name}-{suffix}", {}),
        profile_arn=profile_arn,
        key_name=key_name,
        target_group_by_node=groups,
        standby_launch_template_id=standby_template_id,
        standby_interfaces=standby,
        mount_target_subnets=mount_target_subnets,
    )


def allow_all_acl(ec2: EC2Client, vpc_id: str) -> str:
    """A custom network ACL that allows everything in both directions at rule 100 (a new custom ACL denies
    everything until told otherwise); returns its id."""
    acl_id = ec2.create_network_acl(VpcId=vpc_id)["NetworkAcl"]["NetworkAclId"]
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl_id,
            RuleNumber=100,
            Protocol="-1",
            RuleAction="allow",
            Egress=egress,
            CidrBlock="0.0.0.0/0",
        )
    return acl_id


def _efs_subnets(clients: Clients, vpc_id: str, *, endpoint_url: str | None, token: str) -> dict[str, str]:
    """An EFS file system with a mount target in a subnet of its own per AZ (untagged: no node goes there),
    those subnets under a custom network ACL that allows everything (as a custom ACL must be told to);
    returns AZ -> mount-target subnet."""
    ec2 = clients.ec2
    acl_id = allow_all_acl(ec2, vpc_id)
    efs = session().client("efs", endpoint_url=endpoint_url)
    file_system_id = efs.create_file_system(CreationToken=token, Encrypted=True)["FileSystemId"]
    subnets: dict[str, str] = {}
    for i, az in enumerate(AZS):
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{20 + i}.0/24", AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
        association = ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
        )["NetworkAcls"][0]["Associations"]
        association_id = next(a["NetworkAclAssociationId"] for a in association if a["SubnetId"] == subnet_id)
        ec2.replace_network_acl_association(AssociationId=association_id, NetworkAclId=acl_id)
        efs.create_mount_target(FileSystemId=file_system_id, SubnetId=subnet_id)
        subnets[az] = subnet_id
    gaps.describe_mount_target_interfaces(efs, ec2, file_system_id)
    return subnets


def _standby_interfaces(
    clients: Clients,
    vpc_name: str,
    node_id: int,
    *,
    subnets: Mapping[str, str],
    groups: list[str],
    target_group_arn: str,
) -> dict[str, str]:
    """A node's standby interfaces, one per tagged subnet, registered in its target group (as the stacks
    do: swr_stacks.node.StandbyTargets); returns AZ -> interface id."""
    tags = {contract.TAG_VPC: vpc_name, contract.TAG_STANDBY_NODE: str(node_id)}
    interfaces: dict[str, str] = {}
    addresses = []
    for az, subnet_id in subnets.items():
        interface = clients.ec2.create_network_interface(
            SubnetId=subnet_id,
            Groups=groups,
            Description=f"swr {vpc_name} node {node_id} standby target in {az}",
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": _tags(tags)}],
        )["NetworkInterface"]
        interfaces[az] = interface["NetworkInterfaceId"]
        addresses.append(interface["PrivateIpAddress"])
    clients.elbv2.register_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": ip} for ip in addresses])
    return interfaces
