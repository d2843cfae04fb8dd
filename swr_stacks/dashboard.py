"""The CloudWatch dashboard of a VPC: switcher metrics and the state of the node alarms."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from switcher import contract

#: (metric name, statistic, widget title) of the switcher's Powertools metrics.
SWITCHER_METRICS = (
    (contract.METRIC_SWITCH_COUNT, "Sum", "Switches"),
    (contract.METRIC_SWITCH_FAILED, "Sum", "Failed switches"),
    (contract.METRIC_SWITCH_DURATION, "Maximum", "Switch duration (s)"),
    (contract.METRIC_NODES_HELD, "Sum", "Nodes put on hold"),
)


class SwrDashboard(Construct):
    """Switch count, failures, duration, holds, and an alarm-status widget for the VPC's nodes."""

    def __init__(self, scope: Construct, id_: str, *, vpc_name: str, node_ids: Sequence[int]) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        dimensions = {"service": contract.METRICS_SERVICE, contract.METRICS_VPC_DIMENSION: vpc_name}
        metric_widgets = [
            cloudwatch.GraphWidget(
                title=title,
                width=6,
                left=[
                    cloudwatch.Metric(
                        namespace=contract.METRICS_NAMESPACE,
                        metric_name=name,
                        dimensions_map=dimensions,
                        statistic=statistic,
                        period=Duration.minutes(5),
                    )
                ],
            )
            for name, statistic, title in SWITCHER_METRICS
        ]
        # The switcher creates these alarms; the dashboard refers to them by ARN (they are not in CFN).
        alarm_arns = [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for node_id in node_ids
            for name in (
                contract.monitor_alarm_name(vpc_name, node_id),
                contract.status_alarm_name(vpc_name, node_id),
            )
        ]
        status = cloudwatch.AlarmStatusWidget(
            title="Node alarms",
            width=24,
            alarms=[
                cloudwatch.Alarm.from_alarm_arn(self, f"Alarm{i}", arn) for i, arn in enumerate(alarm_arns)
            ],
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"swr-{vpc_name}-{stack.region}",
            widgets=[metric_widgets, [status]],
        )
