"""Thin stacks: one per region (state table, notice topic) and one per VPC (everything else)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct
from switcher import contract

from swr_stacks.alarms import StackAlarms
from swr_stacks.config import LOG_RETENTION_DAYS, SwrConfig, VpcConfig
from swr_stacks.dashboard import SwrDashboard
from swr_stacks.monitor_logs import MonitorLogs
from swr_stacks.network import SwrNetwork
from swr_stacks.node import ProtectedNode
from swr_stacks.reconcile import ReconcileSchedule
from swr_stacks.state import NoticeTopic, StateTable
from swr_stacks.switcher import Switcher

#: Days → the CDK enum (its members list the same periods in the same order, INFINITE last).
_RETENTION = dict(zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[: len(LOG_RETENTION_DAYS)], strict=True))


class RegionalStack(Stack):
    """The switchers' shared state table and notice topic of one region."""

    def __init__(self, scope: Construct, id_: str, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.state = StateTable(self, "State")
        self.notices = NoticeTopic(self, "Notices")


class VpcStack(Stack):
    """A VPC's network, monitor logs, switcher, reconcile schedule, alarms, nodes and dashboard; tagged
    `swr:vpc` = its name."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_config: VpcConfig,
        config: SwrConfig,
        regional: RegionalStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        retention = _RETENTION[config.log_retention_days]
        self.network = SwrNetwork(self, "Network", vpc_config=vpc_config, log_retention=retention)
        self.monitor_logs = MonitorLogs(
            self,
            "MonitorLogs",
            vpc_name=vpc_config.name,
            network_vpc=self.network.vpc,
            subnets=self.network.private_subnets,
            log_retention=retention,
        )
        self.switcher = Switcher(
            self,
            "Switcher",
            vpc_name=vpc_config.name,
            vpc_id=self.network.vpc.vpc_id,
            table=regional.state.table,
            topic=regional.notices.topic,
            blackhole_security_group_id=self.network.blackhole_security_group.security_group_id,
            flap_guard=config.flap_guard,
            switch_order=config.switch_order,
            reserved_concurrency=config.switcher_reserved_concurrency,
            history_ttl_days=config.history_ttl_days,
            log_retention=retention,
            reconcile=vpc_config.reconcile,
        )
        self.reconcile = ReconcileSchedule(
            self,
            "Reconcile",
            vpc_name=vpc_config.name,
            function=self.switcher.function,
            dead_letter_queue=self.switcher.dead_letter_queue,
            reconcile=vpc_config.reconcile,
        )
        self.alarms = StackAlarms(
            self,
            "Alarms",
            vpc_name=vpc_config.name,
            function=self.switcher.function,
            dead_letter_queue=self.switcher.dead_letter_queue,
            topic=regional.notices.topic,
            reconcile=vpc_config.reconcile,
        )
        self.nodes = [
            ProtectedNode(
                self,
                f"Node{node.node_id}",
                node=node,
                vpc_name=vpc_config.name,
                network=self.network,
                monitor_logs=self.monitor_logs,
                switcher_function_arn=self.switcher.function.function_arn,
            )
            for node in vpc_config.nodes
        ]
        self.switcher.grant_nodes(
            node_roles=[n.role for n in self.nodes],
            target_group_arns=[n.target_group.target_group_arn for n in self.nodes],
            amis=[n.config.ami for n in self.nodes],
            key_pairs=[n.config.key_pair for n in self.nodes if n.config.key_pair],
        )
        for node in self.nodes:
            # The switcher must be allowed to launch before CloudFormation asks it to.
            node.provisioning.node.add_dependency(self.switcher.role)
        self.dashboard = SwrDashboard(
            self,
            "Dashboard",
            vpc_name=vpc_config.name,
            node_ids=[n.node_id for n in vpc_config.nodes],
            reconcile_interval=Duration.seconds(vpc_config.reconcile.interval_seconds),
            stack_alarm_names=self.alarms.alarm_names,
        )
        self.dashboard.node.add_dependency(self.alarms)
        Tags.of(self).add(contract.TAG_VPC, vpc_config.name)
