"""Everything swr puts in one VPC, as a construct (SwrVpc) for one's own CDK app and for VpcStack."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct
from switcher import contract

from swr_stacks.alarms import StackAlarms
from swr_stacks.config import LOG_RETENTION_DAYS, SwrConfig, VpcConfig
from swr_stacks.dashboard import SwrDashboard
from swr_stacks.monitor_logs import MonitorLogs
from swr_stacks.network import SwrNetwork
from swr_stacks.node import ProtectedNode
from swr_stacks.reconcile import ReconcileSchedule
from swr_stacks.switcher import Switcher

#: Days → the CDK enum (its members list the same periods in the same order, INFINITE last).
_RETENTION = dict(zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[: len(LOG_RETENTION_DAYS)], strict=True))


@dataclass(frozen=True)
class SwrVpcResources:
    """The constructs of one VPC (see add_vpc_resources)."""

    network: SwrNetwork
    monitor_logs: MonitorLogs
    switcher: Switcher
    reconcile: ReconcileSchedule
    alarms: StackAlarms
    nodes: tuple[ProtectedNode, ...]
    dashboard: SwrDashboard


def add_vpc_resources(
    scope: Construct,
    *,
    vpc_config: VpcConfig,
    config: SwrConfig,
    table: dynamodb.ITable,
    topic: sns.ITopic,
) -> SwrVpcResources:
    """Add a VPC's network, monitor logs, switcher, reconcile schedule, stack alarms, protected nodes
    and dashboard to ``scope``, and tag all of them ``swr:vpc`` = the VPC's name.

    ``config`` gives the switcher's settings (flap guard, switch order, reserved concurrency, history
    TTL, log retention); its regions are not read. ``table`` and ``topic`` are the region's (SwrRegion).
    VpcStack adds them to itself, SwrVpc below itself: one composition, so both deploy the same.
    """
    retention = _RETENTION[config.log_retention_days]
    network = SwrNetwork(scope, "Network", vpc_config=vpc_config, log_retention=retention)
    monitor_logs = MonitorLogs(
        scope,
        "MonitorLogs",
        vpc_name=vpc_config.name,
        network_vpc=network.vpc,
        subnets=network.storage_subnets,
        log_retention=retention,
    )
    switcher = Switcher(
        scope,
        "Switcher",
        vpc_name=vpc_config.name,
        vpc_id=network.vpc.vpc_id,
        table=table,
        topic=topic,
        blackhole_security_group_id=network.blackhole_security_group.security_group_id,
        flap_guard=config.flap_guard,
        switch_order=config.switch_order,
        reserved_concurrency=config.switcher_reserved_concurrency,
        history_ttl_days=config.history_ttl_days,
        fence_timeout_seconds=config.fence_timeout_seconds,
        fence_inline_wait_seconds=config.fence_inline_wait_seconds,
        silent_after_seconds=config.silent_after_seconds,
        log_retention=retention,
        reconcile=vpc_config.reconcile,
    )
    reconcile = ReconcileSchedule(
        scope,
        "Reconcile",
        vpc_name=vpc_config.name,
        function=switcher.function,
        dead_letter_queue=switcher.dead_letter_queue,
        reconcile=vpc_config.reconcile,
    )
    alarms = StackAlarms(
        scope,
        "Alarms",
        vpc_name=vpc_config.name,
        function=switcher.function,
        dead_letter_queue=switcher.dead_letter_queue,
        topic=topic,
        reconcile=vpc_config.reconcile,
    )
    nodes = tuple(
        ProtectedNode(
            scope,
            f"Node{node.node_id}",
            node=node,
            vpc_name=vpc_config.name,
            network=network,
            monitor_logs=monitor_logs,
            switcher_function_arn=switcher.function.function_arn,
        )
        for node in vpc_config.nodes
    )
    switcher.grant_nodes(
        node_roles=[n.role for n in nodes],
        target_group_arns=[n.target_group.target_group_arn for n in nodes],
        amis=[n.config.ami for n in nodes],
        key_pairs=[n.config.key_pair for n in nodes if n.config.key_pair],
        standby_interface_arns=[
            arn for n in nodes if n.standby_targets for arn in n.standby_targets.interface_arns()
        ],
    )
    for node in nodes:
        # The switcher must be allowed to launch before CloudFormation asks it to.
        node.provisioning.node.add_dependency(switcher.role)
    dashboard = SwrDashboard(
        scope,
        "Dashboard",
        vpc_name=vpc_config.name,
        node_ids=[n.node_id for n in vpc_config.nodes],
        reconcile_interval=Duration.seconds(vpc_config.reconcile.interval_seconds),
        stack_alarm_names=alarms.alarm_names,
    )
    dashboard.node.add_dependency(alarms)
    # The switcher's IAM conditions and its launches rely on this tag (the launch template carries it).
    Tags.of(scope).add(contract.TAG_VPC, vpc_config.name)
    return SwrVpcResources(
        network=network,
        monitor_logs=monitor_logs,
        switcher=switcher,
        reconcile=reconcile,
        alarms=alarms,
        nodes=nodes,
        dashboard=dashboard,
    )


class SwrVpc(Construct):
    """swr in one VPC of one's own CDK app: the VPC's switcher and the nodes it protects.

    ``vpc_config`` (one VPC of a config parsed by ``parse_config``) names the VPC, its availability
    zones and nodes; with ``existing`` set the VPC and its subnets are imported by ids (no lookup) and
    must carry the tags docs/configuration.md lists. ``table`` and ``topic`` come from the region's
    SwrRegion. The constructs are in ``resources`` (network, switcher, nodes, ...).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_config: VpcConfig,
        config: SwrConfig,
        table: dynamodb.ITable,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id_)
        self.resources = add_vpc_resources(
            self, vpc_config=vpc_config, config=config, table=table, topic=topic
        )
