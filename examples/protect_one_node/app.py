#!/usr/bin/env python3
"""Protect one node inside your own CDK app, in an existing VPC imported by ids (no lookups).

A platform team's stack composes swr's constructs directly instead of running swr's config-driven
app: SwrRegion (the switchers' state table and notice topic) and SwrVpc (network pieces, monitor
logs, the switcher and one ProtectedNode), next to resources of its own. The node's settings go
through swr's config parser, so they are validated as a config file would be (README, Configuration).

    make setup && export PATH=$PWD/node_modules/.bin:$PWD/.venv/bin:$PATH
    cdk synth --app "python3 examples/protect_one_node/app.py"     # offline, runs cdk-nag

Before deploying: put your VPC's ids, CIDR, zones and your AMI below, and tag each private subnet
`fujitsu.pclswr.subnet=true` (CloudFormation cannot tag subnets it does not own).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Environment, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from swr_stacks import SwrRegion, SwrVpc, parse_config

REGION = "eu-west-1"
STACK_NAME = "orders-platform"
#: The existing VPC, imported by these ids (swr's network construct never looks anything up).
VPC_ID = "vpc-0a1b2c3d4e5f60718"
PRIVATE_SUBNET_IDS = ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60712"]
#: What swr protects: one node behind an internal NLB. Keys and defaults: README, Configuration.
SWR_SETTINGS: dict[str, Any] = {
    "regions": [
        {
            "name": REGION,
            "vpcs": [
                {
                    "name": "orders",
                    "cidr": "10.20.0.0/16",
                    "availability_zones": [f"{REGION}a", f"{REGION}b"],
                    "existing": {"vpc_id": VPC_ID, "private_subnet_ids": PRIVATE_SUBNET_IDS},
                    "nodes": [
                        {
                            "id": 1,
                            "ami": "ami-0123456789abcdef0",
                            "instance_type": "t3.small",
                            "lb": "nlb",
                            "listener_ports": [5432],
                        }
                    ],
                }
            ],
        }
    ]
}


class OrdersPlatformStack(Stack):
    """The platform team's stack: its own client security group, and swr protecting one node."""

    def __init__(self, scope: Construct, id_: str, *, swr_settings: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        config = parse_config(swr_settings)  # a bad value raises swr_stacks.config.ConfigError
        (region,) = config.regions
        (vpc_config,) = region.vpcs

        swr_region = SwrRegion(self, "SwrRegion")
        self.swr = SwrVpc(
            self,
            "Swr",
            vpc_config=vpc_config,
            config=config,
            table=swr_region.table,
            topic=swr_region.topic,
        )
        (self.orders_node,) = self.swr.resources.nodes

        # The team's own resources use the same imported VPC: here, the group of the node's clients.
        clients = ec2.SecurityGroup(
            self,
            "OrderServiceClients",
            vpc=self.swr.resources.network.vpc,
            description="orders service clients: egress to the orders node listeners",
            allow_all_outbound=False,
        )
        for port in vpc_config.nodes[0].listener_ports:
            clients.add_egress_rule(
                self.orders_node.load_balancing.security_group, ec2.Port.tcp(port), "to the orders node"
            )
        CfnOutput(self, "OrdersEndpoint", value=self.orders_node.load_balancer.load_balancer_dns_name)


def build(app: App) -> OrdersPlatformStack:
    """Add the example's stack to ``app`` and cdk-nag's AwsSolutions checks (a finding fails synth)."""
    stack = OrdersPlatformStack(
        app, STACK_NAME, swr_settings=SWR_SETTINGS, env=Environment(region=REGION), description="orders"
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
