"""One protected node: launch template, load balancer + target group, user-data EFS, role, SGs.

The node's instance and its two alarms are NOT created here (DESIGN §4): the switcher owns them and
launches the first instance when CloudFormation creates the node's custom resource.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CustomResource, Duration, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from constructs import Construct
from switcher import contract
from swr_agent.userdata import render_user_data

from swr_stacks.config import NodeConfig
from swr_stacks.monitor_logs import MonitorLogs, secure_file_system
from swr_stacks.nag import acknowledge, acknowledge_wildcard_resources
from swr_stacks.network import SwrNetwork
from swr_stacks.switcher import SWITCHER_TIMEOUT

NFS_PORT = 2049
#: A replacement registers within seconds; long draining only delays the old target's removal.
DEREGISTRATION_DELAY = Duration.seconds(30)
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


class ProtectedNode(Construct):
    """Every stable resource of a node; ``provisioning`` asks the switcher for its first instance."""

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
        region = Stack.of(self).region

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
        self.data_file_system: efs.FileSystem | None = None
        if node.user_data_efs:
            data_sg = ec2.SecurityGroup(
                self,
                "DataEfsSg",
                vpc=network.vpc,
                description=f"swr node {node.node_id} data EFS: NFS from the node",
                allow_all_outbound=False,
            )
            data_sg.add_ingress_rule(self.security_group, ec2.Port.tcp(NFS_PORT), "NFS from the node")
            self.data_file_system = secure_file_system(
                self,
                "DataEfs",
                network_vpc=network.vpc,
                subnets=network.private_subnets,
                security_group=data_sg,
            )

        self.role = self._node_role(node, monitor_logs, vpc_name=vpc_name)
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=ec2.MachineImage.generic_linux({region: node.ami}),
            instance_type=ec2.InstanceType(node.instance_type),
            key_pair=ec2.KeyPair.from_key_pair_name(self, "KeyPair", node.key_pair)
            if node.key_pair
            else None,
            security_group=self.security_group,
            role=self.role,
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
                    logs_access_point_id=self.access_point.access_point_id,
                    data_file_system_id=(
                        self.data_file_system.file_system_id if self.data_file_system else None
                    ),
                    monitor_process=node.monitor_process,
                )
            ),
        )

        # The instance's Name (the launch template's tag specifications carry it, and swr:vpc).
        Tags.of(self.launch_template).add("Name", f"swr-{vpc_name}-{node.node_id}")

        self.load_balancer, self.target_group = self._load_balancer(node, network)

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
            },
        )
        # The first launch needs the mount targets, the endpoints and the listeners in place.
        self.provisioning.node.add_dependency(
            monitor_logs.file_system, self.load_balancer, *network.endpoints
        )
        if self.data_file_system is not None:
            self.provisioning.node.add_dependency(self.data_file_system)

    def _node_role(self, node: NodeConfig, monitor_logs: MonitorLogs, *, vpc_name: str) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"swr node {node.node_id}: CloudWatch agent and EFS client",
        )
        # The CloudWatch agent's needs, scoped (instead of the broad managed CloudWatchAgentServerPolicy).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AgentMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": contract.MONITOR_METRIC_NAMESPACE}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AgentDescribe", actions=["ec2:DescribeTags", "ec2:DescribeVolumes"], resources=["*"]
            )
        )
        monitor_logs.log_group.grant_write(role)
        # The agent looks its log streams up before writing to them. DescribeLogStreams is authorized on the
        # log group (Service Authorization Reference, CloudWatch Logs: resource type log-group); the group's
        # Arn attribute ends in ":*", so the bare group ARN is granted too.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AgentLogStreams",
                actions=["logs:DescribeLogStreams"],
                resources=[
                    Stack.of(self).format_arn(
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
        any_instance = Stack.of(self).format_arn(
            service="ec2", resource="instance", resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FaultScriptStopSelf",
                actions=["ec2:StopInstances"],
                resources=[any_instance],
                conditions={
                    "StringEquals": {
                        f"ec2:ResourceTag/{contract.TAG_VPC}": vpc_name,
                        f"ec2:ResourceTag/{contract.TAG_NODE_ID}": str(node.node_id),
                    }
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MonitorLogEfs",
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=[monitor_logs.file_system.file_system_arn],
                conditions={
                    "StringEquals": {"elasticfilesystem:AccessPointArn": self.access_point.access_point_arn}
                },
            )
        )
        if self.data_file_system is not None:
            # The user data mounts the whole file system as root (`tls,iam`, no access point): a new
            # file system's root directory belongs to uid 0 with mode 755, and without ClientRootAccess
            # EFS squashes root to a non-root user, which could then write nothing. Root on the node's
            # own data file system is no more than root on the node; the application may then use any
            # users and ownership below it (an access point would force one user on all of them).
            # Amazon EFS user guide: "Using IAM to control file system data access" (an allow in the
            # identity policy suffices), "Network File System (NFS) level users, groups, and
            # permissions" (a new file system's root directory; root squashing).
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="DataEfs",
                    actions=[
                        "elasticfilesystem:ClientMount",
                        "elasticfilesystem:ClientWrite",
                        "elasticfilesystem:ClientRootAccess",
                    ],
                    resources=[self.data_file_system.file_system_arn],
                    conditions={"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
                )
            )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData (limited to the CWAgent namespace by condition), ec2:DescribeTags and "
            "ec2:DescribeVolumes have no resource-level permissions.",
        )
        acknowledge_wildcard_resources(
            role.node.find_child("DefaultPolicy"),
            [any_instance],
            "Instance ids change at every switch; ec2:StopInstances is limited by condition to instances "
            "tagged with this node's swr:vpc and node id.",
        )
        return role

    @staticmethod
    def client_cidrs(node: NodeConfig, network: SwrNetwork) -> tuple[str, ...]:
        """Who may reach the listeners: the config's ``client_cidrs``, else the VPC or any address."""
        if node.client_cidrs:
            return node.client_cidrs
        return ("0.0.0.0/0",) if node.internet_facing else (network.cidr,)

    def _load_balancer(
        self, node: NodeConfig, network: SwrNetwork
    ) -> tuple[elbv2.BaseLoadBalancer, elbv2.ApplicationTargetGroup | elbv2.NetworkTargetGroup]:
        subnets = network.public_subnets if node.internet_facing else network.private_subnets
        hc = node.health_check
        hc_port = str(hc.port) if hc.port else "traffic-port"
        tg: elbv2.ApplicationTargetGroup | elbv2.NetworkTargetGroup
        # Both kinds get their own security group: it admits the configured clients to the listeners,
        # and the node admits the load balancer's group only (never the clients' addresses directly).
        lb_sg = ec2.SecurityGroup(
            self,
            "LoadBalancerSg",
            vpc=network.vpc,
            description=f"swr node {node.node_id}: {node.lb.upper()} listeners",
            allow_all_outbound=False,
        )
        for cidr in self.client_cidrs(node, network):
            for port in node.listener_ports:
                lb_sg.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), "listener")
        if "0.0.0.0/0" in self.client_cidrs(node, network):
            acknowledge(
                lb_sg,
                "AwsSolutions-EC23",
                "The node's load balancer is internet-facing by config: its listeners take any client.",
            )
        if node.lb == "nlb":
            tg = elbv2.NetworkTargetGroup(
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
                health_check=elbv2.HealthCheck(
                    protocol=elbv2.Protocol.TCP,
                    port=hc_port,
                    interval=Duration.seconds(hc.interval_seconds),
                    healthy_threshold_count=hc.healthy_threshold,
                    unhealthy_threshold_count=hc.unhealthy_threshold,
                ),
            )
            # An explicit group: an NLB created without one can never get one, and without it the
            # CDK's default depends on a feature flag (with it: a group with no rule, which would
            # drop every client and, since health checks obey its outbound rules, every check).
            nlb = elbv2.NetworkLoadBalancer(
                self,
                "LoadBalancer",
                vpc=network.vpc,
                vpc_subnets=subnets,
                internet_facing=node.internet_facing,
                cross_zone_enabled=True,
                security_groups=[lb_sg],
            )
            for port in node.listener_ports:
                nlb.add_listener(
                    f"Listener{port}", port=port, protocol=elbv2.Protocol.TCP, default_target_groups=[tg]
                )
            lb: elbv2.BaseLoadBalancer = nlb
        else:
            tg = elbv2.ApplicationTargetGroup(
                self,
                "TargetGroup",
                vpc=network.vpc,
                port=node.target_port,
                protocol=elbv2.ApplicationProtocol.HTTP,
                target_type=TARGET_TYPE,
                deregistration_delay=DEREGISTRATION_DELAY,
                health_check=elbv2.HealthCheck(
                    protocol=elbv2.Protocol.HTTP,
                    path=hc.path,
                    port=hc_port,
                    interval=Duration.seconds(hc.interval_seconds),
                    healthy_threshold_count=hc.healthy_threshold,
                    unhealthy_threshold_count=hc.unhealthy_threshold,
                ),
            )
            alb = elbv2.ApplicationLoadBalancer(
                self,
                "LoadBalancer",
                vpc=network.vpc,
                vpc_subnets=subnets,
                internet_facing=node.internet_facing,
                security_group=lb_sg,
                drop_invalid_header_fields=True,
            )
            for port in node.listener_ports:
                alb.add_listener(
                    f"Listener{port}",
                    port=port,
                    protocol=elbv2.ApplicationProtocol.HTTP,
                    default_target_groups=[tg],
                    open=False,
                )
            lb = alb
        # The only path into the node from its load balancer: the LB's group, to the traffic port (and
        # the health-check port). Health checks obey the LB group's outbound rules.
        kind = node.lb.upper()
        self.security_group.add_ingress_rule(
            lb_sg, ec2.Port.tcp(node.target_port), f"traffic and health checks from the {kind}"
        )
        lb_sg.add_egress_rule(self.security_group, ec2.Port.tcp(node.target_port), "to the node")
        if hc.port and hc.port != node.target_port:
            self.security_group.add_ingress_rule(
                lb_sg, ec2.Port.tcp(hc.port), f"health checks from the {kind}"
            )
            lb_sg.add_egress_rule(self.security_group, ec2.Port.tcp(hc.port), "health checks")
        acknowledge(
            lb,
            "AwsSolutions-ELB2",
            "Access logs need an S3 log bucket per region, outside swr's scope; the LB fronts one target.",
        )
        return lb, tg
