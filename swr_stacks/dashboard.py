"""The CloudWatch dashboard of a VPC: switcher metrics, the reconciler, and the state of all its alarms."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from switcher import contract

from swr_stacks.metrics import switcher_metric

#: (metric name, statistic, widget title) of the switcher's per-switch metrics.
SWITCH_METRICS = (
    (contract.METRIC_SWITCH_COUNT, "Sum", "Switches"),
    (contract.METRIC_SWITCH_FAILED, "Sum", "Failed switches"),
    (contract.METRIC_SWITCH_DURATION, "Maximum", "Switch duration (s)"),
)
#: (metric name, line label) of the events counted as they happen: holds put by the flap guard, and
#: drift (target group, alarms, orphans) the reconciler repaired.
EVENT_COUNTS = (
    (contract.METRIC_NODES_HELD, "put on hold"),
    (contract.METRIC_DRIFT_REPAIRED, "drift repaired"),
)
#: (metric name, line label) of the gauges each reconcile run reports.
NODE_GAUGES = (
    (contract.METRIC_RECONCILE_NODES_FAILED, "FAILED"),
    (contract.METRIC_RECONCILE_NODES_HELD, "HOLD"),
    (contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE, "SWITCHING overdue"),
)


class SwrDashboard(Construct):
    """Switches, failures, duration, reconcile runs, node gauges, holds and repairs, and the alarms."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_name: str,
        node_ids: Sequence[int],
        reconcile_interval: Duration,
        stack_alarm_names: Sequence[str],
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        switch_widgets = [
            cloudwatch.GraphWidget(
                title=title,
                width=6,
                left=[
                    switcher_metric(name, vpc_name=vpc_name, statistic=statistic, period=Duration.minutes(5))
                ],
            )
            for name, statistic, title in SWITCH_METRICS
        ]
        reconcile_widget = cloudwatch.GraphWidget(
            title="Reconcile runs",
            width=6,
            left=[
                switcher_metric(
                    contract.METRIC_RECONCILE_HEARTBEAT,
                    vpc_name=vpc_name,
                    statistic="Sum",
                    period=reconcile_interval,
                )
            ],
        )
        gauges_widget = cloudwatch.GraphWidget(
            title="Nodes needing an operator",
            width=12,
            left=[
                switcher_metric(
                    name, vpc_name=vpc_name, statistic="Maximum", period=reconcile_interval, label=label
                )
                for name, label in NODE_GAUGES
            ],
        )
        events_widget = cloudwatch.GraphWidget(
            title="Holds and repairs",
            width=12,
            left=[
                switcher_metric(
                    name, vpc_name=vpc_name, statistic="Sum", period=Duration.minutes(5), label=label
                )
                for name, label in EVENT_COUNTS
            ],
        )
        # The switcher creates the node alarms; the dashboard refers to them by ARN (they are not in CFN).
        node_alarms = self._alarms_by_name(
            "Alarm",
            [
                name
                for node_id in node_ids
                for name in (
                    contract.monitor_alarm_name(vpc_name, node_id),
                    contract.status_alarm_name(vpc_name, node_id),
                )
            ],
        )
        # The stack alarms have fixed names too: referring to them by name keeps the dashboard free of
        # Fn::GetAtt on alarms (the local emulator's CloudFormation cannot resolve it).
        stack_alarms = self._alarms_by_name("StackAlarm", stack_alarm_names)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"swr-{vpc_name}-{stack.region}",
            widgets=[
                [*switch_widgets, reconcile_widget],
                [gauges_widget, events_widget],
                [cloudwatch.AlarmStatusWidget(title="swr alarms", width=24, alarms=stack_alarms)],
                [cloudwatch.AlarmStatusWidget(title="Node alarms", width=24, alarms=node_alarms)],
            ],
        )

    def _alarms_by_name(self, id_prefix: str, names: Sequence[str]) -> list[cloudwatch.IAlarm]:
        stack = Stack.of(self)
        return [
            cloudwatch.Alarm.from_alarm_arn(
                self,
                f"{id_prefix}{i}",
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                ),
            )
            for i, name in enumerate(names)
        ]
