"""One protected node, one construct per concern: data EFS, role, launch template, load balancer, and its
standby targets (pre-registered targets: one network interface per target AZ).

ProtectedNode composes them with the node's security group and the custom resource that asks the
switcher for the first instance. The node's instance and its two alarms are NOT created here: the
switcher owns them and launches the first instance when CloudFormation creates the custom resource.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnTag, CustomResource, Duration, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_targets as elbv2_targets
from aws_cdk import aws_iam as iam
from constructs import Construct
from switcher import contract
from swr_agent.userdata import render_user_data

from swr_stacks.config import NodeConfig
from swr_stacks.monitor_logs import MonitorLogs, SecureFileSystem
from swr_stacks.nag import acknowledge, acknowledge_wildcard_resources
from swr_stacks.network import SwrNetwork
from swr_stacks.switcher import SWITCHER_TIMEOUT

NFS_PORT = 2049
#: A replacement registers within seconds; long draining only delays the old target's removal.
DEREGISTRATION_DELAY = Duration.seconds(30)
#: AWS's default timeout of a TCP health check (seconds).
TCP_HEALTH_CHECK_DEFAULT_TIMEOUT_SECONDS = 10
#: Targets are registered by private IP, not instance id: ELBv2 accepts an instance id only once the
#: instance is running, an IP at once. The switcher registers the replacement as soon as RunInstances
#: returns, so the load balancer's registration delay runs while the instance boots.
TARGET_TYPE = elbv2.TargetType.IP
#: How long CloudFormation waits for the switcher's answer to a node request (ServiceTimeout; its
#: default is 3600 s, "AWS::CloudFormation::CustomResource" in the CloudFormation template reference).
#: The switcher answers within its invocation (every waiter is bounded below the 900 s Lambda timeout),
#: so no answer after the timeout plus a minute means the invocation was killed: fail the stack
#: operation then instead of hanging for an hour.
PROVISIONING_SERVICE_TIMEOUT = SWITCHER_TIMEOUT.plus(Duration.seconds(60))


class NodeStorage(SecureFileSystem):
    """The node's own data EFS (kept across switches) and its security group ``<id>Sg`` beside it.

    The group admits NFS from ``node_security_group`` only. It is created in ``scope`` (not below the
    file system) so that its construct path, hence its logical id, is the one deployed stacks have.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        node_id: int,
        network: SwrNetwork,
        node_security_group: ec2.ISecurityGroup,
    ) -> None:
        security_group = ec2.SecurityGroup(
            scope,
            f"{id_}Sg",
            vpc=network.vpc,
            description=f"swr node {node_id} data EFS: NFS from the node",
            allow_all_outbound=False,
        )
        security_group.add_ingress_rule(node_security_group, ec2.Port.tcp(NFS_PORT), "NFS from the node")
        super().__init__(
            scope,
            id_,
            network_vpc=network.vpc,
            subnets=network.storage_subnets,
            security_group=security_group,
        )
        self.security_group = security_group


class NodeRole(iam.Role):
    """The node's instance role: CloudWatch agent, monitor logs, its data EFS, stopping itself.

    Every grant is scoped to this node: its access point on the monitor-log EFS, its own data EFS,
    and only instances tagged with its VPC and node id.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        node_id: int,
        vpc_name: str,
        monitor_logs: MonitorLogs,
        access_point: efs.IAccessPoint,
        data_file_system: efs.IFileSystem | None,
    ) -> None:
        super().__init__(
            scope,
            id_,
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"swr node {node_id}: CloudWatch agent and EFS client",
        )
        stack = Stack.of(self)
        # The CloudWatch agent's needs, scoped (instead of the broad managed CloudWatchAgentServerPolicy).
        self.add_to_policy(
            iam.PolicyStatement(
                sid="AgentMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": contract.MONITOR_METRIC_NAMESPACE}},
            )
        )
        self.add_to_policy(
            iam.PolicyStatement(
                sid="AgentDescribe", actions=["ec2:DescribeTags", "ec2:DescribeVolumes"], resources=["*"]
            )
        )
        monitor_logs.log_group.grant_write(self)
        # The agent looks its log streams up before writing to them. DescribeLogStreams is authorized on the
        # log group (Service Authorization Reference, CloudWatch Logs: resource type log-group); the group's
        # Arn attribute ends in ":*", so the bare group ARN is granted too.
        self.add_to_policy(
            iam.PolicyStatement(
                sid="AgentLogStreams",
                actions=["logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=monitor_logs.log_group.log_group_name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    ),
                    monitor_logs.log_group.log_group_arn,
                ],
            )
        )
        # The FaultScript stops its own instance through the API (a stop request can never terminate).
        # Scoped by tag to this node's instances: a node cannot stop another node.
        any_instance = stack.format_arn(
            service="ec2", resource="instance", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )
        self.add_to_policy(
            iam.PolicyStatement(
                sid="FaultScriptStopSelf",
                actions=["ec2:StopInstances"],
                resources=[any_instance],
                conditions={
                    "StringEquals": {
                        f"ec2:ResourceTag/{contract.TAG_VPC}": vpc_name,
                        f"ec2:ResourceTag/{contract.TAG_NODE_ID}": str(node_id),
                    }
                },
            )
        )
        self.add_to_policy(
            iam.PolicyStatement(
                sid="MonitorLogEfs",
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=[monitor_logs.file_system.file_system_arn],
                conditions={
                    "StringEquals": {"elasticfilesystem:AccessPointArn": access_point.access_point_arn}
                },
            )
        )
        if data_file_system is not None:
            # The user data mounts the whole file system as root (`tls,iam`, no access point): a new
            # file system's root directory belongs to uid 0 with mode 755, and without ClientRootAccess
            # EFS squashes root to a non-root user, which could then write nothing. Root on the node's
            # own data file system is no more than root on the node; the application may then use any
            # users and ownership below it (an access point would force one user on all of them).
            # Amazon EFS user guide: "Using IAM to control file system data access" (an allow in the
            # identity policy suffices), "Network File System (NFS) level users, groups, and
            # permissions" (a new file system's root directory; root squashing).
            self.add_to_policy(
                iam.PolicyStatement(
                    sid="DataEfs",
                    actions=[
                        "elasticfilesystem:ClientMount",
                        "elasticfilesystem:ClientWrite",
                        "elasticfilesystem:ClientRootAccess",
                    ],
                    resources=[data_file_system.file_system_arn],
                    conditions={"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
                )
            )
        policy = self.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData (limited to the CWAgent namespace by condition), ec2:DescribeTags and "
            "ec2:DescribeVolumes have no resource-level permissions.",
        )
        acknowledge_wildcard_resources(
            policy,
            [any_instance],
            "Instance ids change at every switch; ec2:StopInstances is limited by condition to instances "
            "tagged with this node's swr:vpc and node id.",
        )


class NodeLaunchTemplate(ec2.LaunchTemplate):
    """What every instance of the node is launched from: AMI, type, encrypted root volume, IMDSv2,
    no public IP, stop on OS shutdown, the node's role and security group, and its user data.

    With pre-registered targets (``security_group`` None) the template names no security group: the
    instance is launched on a standby interface, which carries the groups, and EC2 refuses an
    instance-level security group next to network interfaces (EC2 API Reference, "RunInstances";
    CloudFormation "AWS::EC2::LaunchTemplate LaunchTemplateData": "If you specify a network interface, you
    must specify any security groups and subnets as part of the network interface").
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        node: NodeConfig,
        vpc_name: str,
        security_group: ec2.ISecurityGroup | None,
        role: iam.IRole,
        monitor_logs: MonitorLogs,
        access_point: efs.IAccessPoint,
        data_file_system: efs.IFileSystem | None,
    ) -> None:
        region = Stack.of(scope).region
        super().__init__(
            scope,
            id_,
            machine_image=ec2.MachineImage.generic_linux({region: node.ami}),
            instance_type=ec2.InstanceType(node.instance_type),
            # An import (no resource): the key pair must exist in the region.
            key_pair=ec2.KeyPair.from_key_pair_name(scope, f"{id_}KeyPair", node.key_pair)
            if node.key_pair
            else None,
            security_group=security_group,
            role=role,
            require_imdsv2=True,
            # The FaultScript's fallback is an OS shutdown: with `stop` it can never terminate the node.
            instance_initiated_shutdown_behavior=ec2.InstanceInitiatedShutdownBehavior.STOP,
            # 1 hop: only the instance itself (not a container on it) may read the role credentials.
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name=node.root_device_name,
                    volume=ec2.BlockDeviceVolume.ebs(
                        node.root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            # No public IP: the template sets no network interface (the switcher gives the subnet), and
            # the private subnets do not map public IPs on launch.
            user_data=ec2.UserData.custom(
                render_user_data(
                    node_id=node.node_id,
                    vpc_name=vpc_name,
                    region=region,
                    logs_file_system_id=monitor_logs.file_system.file_system_id,
                    logs_access_point_id=access_point.access_point_id,
                    data_file_system_id=data_file_system.file_system_id if data_file_system else None,
                    monitor_process=node.monitor_process,
                )
            ),
        )
        # The instance's Name (the launch template's tag specifications carry it, and swr:vpc).
        Tags.of(self).add("Name", f"swr-{vpc_name}-{node.node_id}")


class NodeLoadBalancer(Construct):
    """The node's NLB or ALB, its target group (IP targets) and listeners, and the security-group path
    clients → load balancer → node.

    The load balancer's group admits the node's clients (``client_cidrs``) to the listeners; the node's
    group admits the load balancer's group only, to the traffic and health-check ports.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        node: NodeConfig,
        network: SwrNetwork,
        node_security_group: ec2.SecurityGroup,
    ) -> None:
        super().__init__(scope, id_)
        kind = node.lb.upper()
        clients = self.client_cidrs(node, network)
        self.security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSg",
            vpc=network.vpc,
            description=f"swr node {node.node_id}: {kind} listeners",
            allow_all_outbound=False,
        )
        for cidr in clients:
            for port in node.listener_ports:
                self.security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), "listener")
        if "0.0.0.0/0" in clients:
            acknowledge(
                self.security_group,
                "AwsSolutions-EC23",
                "The node's load balancer is internet-facing by config: its listeners take any client.",
            )
        self.target_group: elbv2.ApplicationTargetGroup | elbv2.NetworkTargetGroup
        self.load_balancer: elbv2.BaseLoadBalancer
        if node.lb == "nlb":
            self.target_group, self.load_balancer = self._network(node, network)
        else:
            self.target_group, self.load_balancer = self._application(node, network)
        # The only path into the node from its load balancer: the LB's group, to the traffic port (and
        # the health-check port). Health checks obey the LB group's outbound rules.
        hc_port = node.health_check.port
        node_security_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(node.target_port), f"traffic and health checks from the {kind}"
        )
        self.security_group.add_egress_rule(
            node_security_group, ec2.Port.tcp(node.target_port), "to the node"
        )
        if hc_port and hc_port != node.target_port:
            node_security_group.add_ingress_rule(
                self.security_group, ec2.Port.tcp(hc_port), f"health checks from the {kind}"
            )
            self.security_group.add_egress_rule(node_security_group, ec2.Port.tcp(hc_port), "health checks")
        acknowledge(
            self.load_balancer,
            "AwsSolutions-ELB2",
            "Access logs need an S3 log bucket per region, outside swr's scope; the LB fronts one target.",
        )

    @staticmethod
    def client_cidrs(node: NodeConfig, network: SwrNetwork) -> tuple[str, ...]:
        """Who may reach the listeners: the config's ``client_cidrs``, else the VPC or any address."""
        if node.client_cidrs:
            return node.client_cidrs
        return ("0.0.0.0/0",) if node.internet_facing else (network.cidr,)

    @staticmethod
    def _health_check(node: NodeConfig, protocol: elbv2.Protocol, path: str | None) -> elbv2.HealthCheck:
        hc = node.health_check
        # A TCP check's default timeout is 10 s ("HealthCheckTimeoutSeconds", CreateTargetGroup, Elastic
        # Load Balancing API Reference) and the interval may not be shorter than the timeout (CDK checks the
        # same): a shorter TCP interval (the NLB default, 5 s) gets a timeout 1 s under it. A TCP handshake
        # inside the VPC that has not answered by then is a failure anyway.
        timeout = None
        if protocol == elbv2.Protocol.TCP and hc.interval_seconds < TCP_HEALTH_CHECK_DEFAULT_TIMEOUT_SECONDS:
            timeout = Duration.seconds(hc.interval_seconds - 1)
        return elbv2.HealthCheck(
            protocol=protocol,
            path=path,
            port=str(hc.port) if hc.port else "traffic-port",
            interval=Duration.seconds(hc.interval_seconds),
            timeout=timeout,
            healthy_threshold_count=hc.healthy_threshold,
            unhealthy_threshold_count=hc.unhealthy_threshold,
        )

    def _network(
        self, node: NodeConfig, network: SwrNetwork
    ) -> tuple[elbv2.NetworkTargetGroup, elbv2.NetworkLoadBalancer]:
        target_group = elbv2.NetworkTargetGroup(
            self,
            "TargetGroup",
            vpc=network.vpc,
            port=node.target_port,
            protocol=elbv2.Protocol.TCP,
            target_type=TARGET_TYPE,
            # IP targets keep the client's address only when asked (instance targets always do):
            # the application sees its real clients. The node's rule names the NLB's security
            # group, which admits client-preserved traffic ("Security groups for your Network Load
            # Balancer", ELB user guide). Hairpinning is not supported with it: the node cannot
            # reach its own service through its NLB (it is the only target), use localhost
            # ("Troubleshoot your Network Load Balancer": connections from a target to its load
            # balancer time out).
            preserve_client_ip=True,
            deregistration_delay=DEREGISTRATION_DELAY,
            health_check=self._health_check(node, elbv2.Protocol.TCP, None),
        )
        # An explicit group: an NLB created without one can never get one, and without it the
        # CDK's default depends on a feature flag (with it: a group with no rule, which would
        # drop every client and, since health checks obey its outbound rules, every check).
        load_balancer = elbv2.NetworkLoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            vpc_subnets=self._subnets(node, network),
            internet_facing=node.internet_facing,
            cross_zone_enabled=True,
            security_groups=[self.security_group],
        )
        for port in node.listener_ports:
            load_balancer.add_listener(
                f"Listener{port}",
                port=port,
                protocol=elbv2.Protocol.TCP,
                default_target_groups=[target_group],
            )
        return target_group, load_balancer

    def _application(
        self, node: NodeConfig, network: SwrNetwork
    ) -> tuple[elbv2.ApplicationTargetGroup, elbv2.ApplicationLoadBalancer]:
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "TargetGroup",
            vpc=network.vpc,
            port=node.target_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=TARGET_TYPE,
            deregistration_delay=DEREGISTRATION_DELAY,
            health_check=self._health_check(node, elbv2.Protocol.HTTP, node.health_check.path),
        )
        load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            vpc_subnets=self._subnets(node, network),
            internet_facing=node.internet_facing,
            security_group=self.security_group,
            drop_invalid_header_fields=True,
        )
        for port in node.listener_ports:
            load_balancer.add_listener(
                f"Listener{port}",
                port=port,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_target_groups=[target_group],
                # The group above admits the clients; `open` would add 0.0.0.0/0 to it.
                open=False,
            )
        return target_group, load_balancer

    @staticmethod
    def _subnets(node: NodeConfig, network: SwrNetwork) -> ec2.SubnetSelection:
        return network.public_subnets if node.internet_facing else network.private_subnets


class StandbyTargets(Construct):
    """Pre-registered targets: per target AZ (each tagged subnet) one network interface with the node's
    security group, tagged for the switcher, its primary private address a target of the node's group.

    The load balancer health-checks these addresses from deploy time on; the switcher launches each
    replacement on its AZ's interface (device 0), so no target is registered during a switch. An address
    without an instance is unhealthy: see docs/operations.md for what that means for the alarms and for
    the load balancer's fail-open routing. Network interfaces cost nothing (only public IPv4 addresses are
    charged, and these have none).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        node_id: int,
        vpc_name: str,
        network: SwrNetwork,
        security_group: ec2.ISecurityGroup,
        target_group: elbv2.ApplicationTargetGroup | elbv2.NetworkTargetGroup,
    ) -> None:
        super().__init__(scope, id_)
        subnets = network.vpc.select_subnets(
            subnet_group_name=network.private_subnets.subnet_group_name,
            subnets=network.private_subnets.subnets,
        ).subnets
        self.interfaces: list[ec2.CfnNetworkInterface] = []
        for index, subnet in enumerate(subnets):
            interface = ec2.CfnNetworkInterface(
                self,
                f"Interface{index}",
                subnet_id=subnet.subnet_id,
                group_set=[security_group.security_group_id],
                description=f"swr {vpc_name} node {node_id}: standby target",
                tags=[
                    CfnTag(key=contract.TAG_VPC, value=vpc_name),
                    CfnTag(key=contract.TAG_STANDBY_NODE, value=str(node_id)),
                ],
            )
            self.interfaces.append(interface)
            target_group.add_target(elbv2_targets.IpTarget(interface.attr_primary_private_ip_address))

    def interface_arns(self) -> list[str]:
        """ARNs of the standby interfaces (the switcher may launch only on these)."""
        stack = Stack.of(self)
        return [
            stack.format_arn(service="ec2", resource="network-interface", resource_name=i.ref)
            for i in self.interfaces
        ]


class ProtectedNode(Construct):
    """Every stable resource of a node; ``provisioning`` asks the switcher for its first instance.

    Composes the node's security group (application rules from the config), its access point on the
    VPC's monitor-log EFS, NodeStorage (if ``user_data_efs``), NodeRole, NodeLaunchTemplate and
    NodeLoadBalancer. The switcher needs ``role``, ``target_group`` and ``config`` (grant_nodes).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        node: NodeConfig,
        vpc_name: str,
        network: SwrNetwork,
        monitor_logs: MonitorLogs,
        switcher_function_arn: str,
    ) -> None:
        super().__init__(scope, id_)
        self.config = node

        self.security_group = ec2.SecurityGroup(
            self,
            "NodeSg",
            vpc=network.vpc,
            description=f"swr node {node.node_id}: application traffic",
            # The node talks to the endpoints, EFS and whatever its application needs.
            allow_all_outbound=True,
        )
        for rule in node.ingress:
            port = ec2.Port.tcp(rule.port) if rule.protocol == "tcp" else ec2.Port.udp(rule.port)
            self.security_group.add_ingress_rule(
                ec2.Peer.ipv4(rule.cidr), port, "application rule from config"
            )

        self.access_point = monitor_logs.add_node_access_point(node_id=node.node_id)
        monitor_logs.security_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(NFS_PORT), f"NFS from node {node.node_id}"
        )
        self.data_file_system: NodeStorage | None = (
            NodeStorage(
                self,
                "DataEfs",
                node_id=node.node_id,
                network=network,
                node_security_group=self.security_group,
            )
            if node.user_data_efs
            else None
        )
        self.role = NodeRole(
            self,
            "Role",
            node_id=node.node_id,
            vpc_name=vpc_name,
            monitor_logs=monitor_logs,
            access_point=self.access_point,
            data_file_system=self.data_file_system,
        )
        self.launch_template = NodeLaunchTemplate(
            self,
            "LaunchTemplate",
            node=node,
            vpc_name=vpc_name,
            security_group=None if node.preregistered else self.security_group,
            role=self.role,
            monitor_logs=monitor_logs,
            access_point=self.access_point,
            data_file_system=self.data_file_system,
        )
        # "Default" is left out of logical ids (and of the ids derived from them, such as the node
        # group's rule naming the LB's group): the load balancer's resources keep the logical ids they
        # had when they were this construct's own children, so a deployed node's load balancer, target
        # group and security group are not replaced. tests/infra/test_resource_ids.py checks it.
        self.load_balancing = NodeLoadBalancer(
            self, "Default", node=node, network=network, node_security_group=self.security_group
        )
        self.load_balancer = self.load_balancing.load_balancer
        self.target_group = self.load_balancing.target_group
        self.standby_targets: StandbyTargets | None = (
            StandbyTargets(
                self,
                "StandbyTargets",
                node_id=node.node_id,
                vpc_name=vpc_name,
                network=network,
                security_group=self.security_group,
                target_group=self.target_group,
            )
            if node.preregistered
            else None
        )

        # Create → the switcher launches the first instance and its alarms; update → it stores the new
        # configuration; delete → it terminates the instance and deletes the alarms. The switcher keeps
        # these properties in the node's record (they are not in its environment: 4 KB limit).
        self.provisioning = CustomResource(
            self,
            "Provisioning",
            service_token=switcher_function_arn,
            resource_type=contract.NODE_RESOURCE_TYPE,
            service_timeout=PROVISIONING_SERVICE_TIMEOUT,
            properties={
                contract.PROP_NODE_ID: str(node.node_id),
                contract.PROP_VPC_NAME: vpc_name,
                contract.PROP_LAUNCH_TEMPLATE_ID: self.launch_template.launch_template_id,
                contract.PROP_LAUNCH_TEMPLATE_VERSION: self.launch_template.latest_version_number,
                contract.PROP_TARGET_GROUP_ARN: self.target_group.target_group_arn,
                contract.PROP_MONITOR_PROCESS: node.monitor_process,
                contract.PROP_TARGETS: node.targets,
            },
        )
        # The first launch needs the mount targets, the endpoints and the listeners in place.
        self.provisioning.node.add_dependency(
            monitor_logs.file_system, self.load_balancer, *network.endpoints
        )
        if self.data_file_system is not None:
            self.provisioning.node.add_dependency(self.data_file_system)
        if self.standby_targets is not None:
            # The first instance is launched on a standby interface, registered in the group.
            self.provisioning.node.add_dependency(self.standby_targets)
