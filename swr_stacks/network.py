"""Network of a VPC: subnets the switcher may use, interface endpoints, flow logs, blackhole SG."""

from __future__ import annotations

from aws_cdk import Annotations, RemovalPolicy, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct
from switcher import contract

from swr_stacks.config import VpcConfig
from swr_stacks.nag import acknowledge

#: AWS APIs the node reaches without a NAT: CloudWatch agent (metrics, logs), EC2 (agent tags), EFS utils.
#: Keyed by the config's service names (swr_stacks.config.ENDPOINT_SERVICES): construct id, CDK service.
ENDPOINT_SERVICES = {
    "monitoring": ("Monitoring", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING),
    "logs": ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
    "ec2": ("Ec2", ec2.InterfaceVpcEndpointAwsService.EC2),
    "elasticfilesystem": ("Efs", ec2.InterfaceVpcEndpointAwsService.ELASTIC_FILESYSTEM),
}


class SwrNetwork(Construct):
    """The VPC (new or imported by ids), its tagged private subnets, endpoints and blackhole SG.

    ``storage_subnets`` is where the EFS mount targets go: subnets of their own (a new VPC's "Storage"
    group, an existing VPC's ``storage_subnet_ids``) or, with ``storage_subnets: private`` or an
    existing VPC without storage subnet ids, the private (node) subnets.
    """

    def __init__(
        self, scope: Construct, id_: str, *, vpc_config: VpcConfig, log_retention: logs.RetentionDays
    ) -> None:
        super().__init__(scope, id_)
        azs = list(vpc_config.availability_zones)
        if vpc_config.existing is None:
            subnets = [
                ec2.SubnetConfiguration(
                    name="Private",
                    subnet_type=(
                        ec2.SubnetType.PRIVATE_WITH_EGRESS
                        if vpc_config.nat_gateway
                        else ec2.SubnetType.PRIVATE_ISOLATED
                    ),
                    cidr_mask=24,
                )
            ]
            public = vpc_config.needs_public_subnets or vpc_config.nat_gateway
            if public or vpc_config.mount_targets_in_own_subnets:
                # The CDK allocates the groups' CIDRs in this order. Public stays second (reserved, no
                # resources, when unused) so that adding public subnets later does not move, and so
                # replace, the Storage subnets after it; Private and Public keep the CIDRs of stacks
                # deployed before Storage existed.
                subnets.append(
                    ec2.SubnetConfiguration(
                        name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, reserved=not public
                    )
                )
            if vpc_config.mount_targets_in_own_subnets:
                # The EFS mount targets only, not tagged for the switcher: no node is launched here, so
                # a failed node is never in a mount target's subnet and the network fence can be
                # claimed (docs/fencing.md). A mount target takes one address of its subnet per file
                # system ("Managing mount targets", Amazon EFS User Guide): /24 holds the monitor-log
                # EFS and up to 250 node EFS per zone, as many as the /24 node subnets.
                subnets.append(
                    ec2.SubnetConfiguration(
                        name="Storage", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                    )
                )
            vpc = ec2.Vpc(
                self,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(vpc_config.cidr),
                availability_zones=azs,
                subnet_configuration=subnets,
                # One NAT is enough for package installs; none by default (endpoints cover the AWS APIs).
                nat_gateways=1 if vpc_config.nat_gateway else 0,
                restrict_default_security_group=True,
            )
            self.vpc: ec2.IVpc = vpc
            self.private_subnets = ec2.SubnetSelection(subnet_group_name="Private")
            self.public_subnets = ec2.SubnetSelection(subnet_group_name="Public")
            self.storage_subnets = (
                ec2.SubnetSelection(subnet_group_name="Storage")
                if vpc_config.mount_targets_in_own_subnets
                else self.private_subnets
            )
            for subnet in vpc.select_subnets(subnet_group_name="Private").subnets:
                Tags.of(subnet).add(contract.TAG_SUBNET, contract.TAG_SUBNET_VALUE)
            if vpc_config.mount_targets_in_own_subnets:
                self._storage_network_acl(vpc)
        else:
            existing = vpc_config.existing
            # Imported by ids: synth needs no lookup. The user tags these subnets (docs/configuration.md).
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=existing.vpc_id,
                vpc_cidr_block=vpc_config.cidr,
                availability_zones=azs,
                isolated_subnet_ids=list(existing.private_subnet_ids),
                public_subnet_ids=list(existing.public_subnet_ids) or None,
            )
            self.private_subnets = ec2.SubnetSelection(
                subnets=[
                    ec2.Subnet.from_subnet_attributes(
                        self, f"Private{i}", subnet_id=sid, availability_zone=az
                    )
                    for i, (sid, az) in enumerate(zip(existing.private_subnet_ids, azs, strict=True))
                ]
            )
            self.public_subnets = ec2.SubnetSelection(
                subnets=[
                    ec2.Subnet.from_subnet_attributes(self, f"Public{i}", subnet_id=sid, availability_zone=az)
                    for i, (sid, az) in enumerate(
                        zip(existing.public_subnet_ids, azs[: len(existing.public_subnet_ids)], strict=True)
                    )
                ]
            )
            self.storage_subnets = (
                ec2.SubnetSelection(
                    subnets=[
                        ec2.Subnet.from_subnet_attributes(
                            self, f"Storage{i}", subnet_id=sid, availability_zone=az
                        )
                        for i, (sid, az) in enumerate(zip(existing.storage_subnet_ids, azs, strict=True))
                    ]
                )
                if vpc_config.mount_targets_in_own_subnets
                else self.private_subnets
            )
            # Subnets imported by id have no route table id; swr never reads one (no gateway
            # endpoints, no routes), so the CDK's warning about it does not apply.
            Annotations.of(self).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId",
                "imported subnets: swr adds no route and no gateway endpoint, it never reads a route table",
            )
        self.cidr = vpc_config.cidr

        flow_log_group = logs.LogGroup(
            self, "FlowLogGroup", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

        self.endpoints = self._interface_endpoints(vpc_config)

        # Fencing: the switcher puts this group (alone) on a failed instance. No ingress rule, and
        # allow_all_outbound=False makes the CDK emit only a dummy egress rule (255.255.255.255/32,
        # ICMP type 252 code 86) that matches no real traffic, replacing the default allow-all egress.
        self.blackhole_security_group = ec2.SecurityGroup(
            self,
            "BlackholeSg",
            vpc=self.vpc,
            description="swr blackhole: no ingress, no usable egress (fences a failed node)",
            allow_all_outbound=False,
        )

    def _storage_network_acl(self, vpc: ec2.Vpc) -> ec2.NetworkAcl:
        """The Storage subnets' own network ACL, allowing all traffic at rule 100 as a default ACL does
        (a custom ACL denies everything until told otherwise, "Control subnet traffic with network ACLs",
        Amazon VPC User Guide). Its own, so that the network fence's deny rules (1-99, docs/fencing.md)
        cut the source from the mount targets only, not from the other subnets of the VPC."""
        acl = ec2.NetworkAcl(
            self, "StorageAcl", vpc=vpc, subnet_selection=ec2.SubnetSelection(subnet_group_name="Storage")
        )
        for direction in (ec2.TrafficDirection.INGRESS, ec2.TrafficDirection.EGRESS):
            acl.add_entry(
                f"AllowAll{direction.name.title()}",
                cidr=ec2.AclCidr.any_ipv4(),
                rule_number=100,
                traffic=ec2.AclTraffic.all_traffic(),
                direction=direction,
                rule_action=ec2.Action.ALLOW,
            )
        acknowledge(
            acl,
            "AwsSolutions-VPC3",
            "the switcher's network fence needs the mount targets' subnets under an ACL of their own (its "
            "deny rules then cut a fenced node from those subnets only); rule 100 allows what the VPC's "
            "default ACL allows; "
            "security groups still decide what reaches the mount targets (NFS from nodes only)",
        )
        return acl

    def _interface_endpoints(self, vpc_config: VpcConfig) -> list[ec2.InterfaceVpcEndpoint]:
        """The endpoints the config asks swr to create, with private DNS and an HTTPS-only group.

        Private DNS makes the default service names resolve to the endpoint, so the node needs no
        configuration. A VPC can hold only one private-DNS endpoint per service: in an existing VPC that
        already has one (config `interface_endpoints.<service>: existing`), swr creates none and the
        node uses that one ("Access an AWS service using an interface VPC endpoint", AWS PrivateLink
        guide). `swr validate` checks for such conflicts and for the VPC's DNS attributes.
        """
        to_create = vpc_config.endpoints_to_create()
        if not to_create:
            return []
        endpoint_sg = ec2.SecurityGroup(
            self,
            "EndpointSg",
            vpc=self.vpc,
            description="swr interface endpoints: HTTPS from the VPC",
            allow_all_outbound=False,
        )
        endpoint_sg.add_ingress_rule(
            ec2.Peer.ipv4(vpc_config.cidr), ec2.Port.tcp(443), "HTTPS to AWS APIs from the VPC"
        )
        endpoints = []
        for service_name in to_create:
            construct_id, service = ENDPOINT_SERVICES[service_name]
            endpoints.append(
                self.vpc.add_interface_endpoint(
                    construct_id,
                    service=service,
                    subnets=self.private_subnets,
                    security_groups=[endpoint_sg],
                    private_dns_enabled=True,
                    # Not `open`: that adds a rule from the VPC CIDR token; ours above names the CIDR.
                    open=False,
                )
            )
        return endpoints
