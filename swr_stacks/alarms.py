"""The stack alarms of a VPC: nothing that leaves a node down may stay silent.

Each alarm notifies the region's notice topic when it goes to ALARM and when it is OK again. What an
operator does when one fires: docs/operations.md.

Their names start with `swr.<vpc>.`, never with a VPC's node-alarm prefix `swr-<vpc>-`: the VPC's
alarm rule invokes the switcher for alarms with that prefix, and the switcher may change or delete them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from switcher import contract

from swr_stacks.config import Reconcile
from swr_stacks.metrics import switcher_metric

#: Prefix of every stack alarm; the notice topic lets CloudWatch publish for alarms with this prefix.
STACK_ALARM_PREFIX = "swr."
#: The heartbeat alarm fires when this many reconcile intervals in a row had no run. One late interval
#: (EMF metrics arrive through CloudWatch Logs, up to a minute late) must not be enough.
HEARTBEAT_MISSED_INTERVALS = 3


def stack_alarm_name(vpc_name: str, what: str) -> str:
    """Name of a VPC's stack alarm, e.g. ``swr.prod.switcher-errors``."""
    return f"{STACK_ALARM_PREFIX}{vpc_name}.{what}"


@dataclass(frozen=True)
class _GaugeAlarm:
    key: str
    metric: str
    what: str
    description: str


def _gauges() -> tuple[_GaugeAlarm, ...]:
    return (
        _GaugeAlarm(
            "NodesFailed",
            contract.METRIC_RECONCILE_NODES_FAILED,
            "nodes-failed",
            "A node is FAILED: its switch found no AZ that could launch the replacement; the source is "
            "fenced and stopped. `swr status` names it; once capacity is back, `swr resume NODE`.",
        ),
        _GaugeAlarm(
            "NodesHeld",
            contract.METRIC_RECONCILE_NODES_HELD,
            "nodes-held",
            "A node is on HOLD (flap guard or an operator): events about it are ignored. Find why it "
            "kept failing, then `swr resume NODE`.",
        ),
        _GaugeAlarm(
            "NodesSwitchingOverdue",
            contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE,
            "switching-overdue",
            "A node has been SWITCHING longer than the configured bound and the reconciler could not "
            "finish it. Read the switcher's log for the switch id.",
        ),
    )


class StackAlarms(Construct):
    """Switcher errors, dead letters, a missing reconcile heartbeat, and FAILED/HOLD/overdue nodes."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_name: str,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        topic: sns.ITopic,
        reconcile: Reconcile,
    ) -> None:
        super().__init__(scope, id_)
        self._vpc_name = vpc_name
        interval = Duration.seconds(reconcile.interval_seconds)
        guide = " What to do: docs/operations.md."
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        #: The alarms' names as plain strings (`Alarm.alarm_name` is a CloudFormation reference).
        self.alarm_names: list[str] = []
        self._add(
            "SwitcherErrors",
            "switcher-errors",
            function.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            description="The switcher Lambda failed (an exception or a timeout); Lambda retries an "
            "asynchronous event twice, then puts it in the DLQ." + guide,
            threshold=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # Amazon SQS publishes queue metrics only while the queue is active ("Available CloudWatch
        # metrics for Amazon SQS", SQS Developer Guide); a queue holding a message is active.
        self._add(
            "DeadLetters",
            "dead-letters",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            description="An event for the switcher was dropped (after Lambda's, EventBridge's or "
            "Scheduler's retries) into its dead-letter queue: a switch or a reconcile run never "
            "happened." + guide,
            threshold=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # Missing data is the failure itself: no run, no heartbeat ("Configuring how CloudWatch alarms
        # treat missing data", CloudWatch User Guide).
        self._add(
            "ReconcileHeartbeatMissing",
            "reconcile-heartbeat-missing",
            switcher_metric(
                contract.METRIC_RECONCILE_HEARTBEAT, vpc_name=vpc_name, statistic="Sum", period=interval
            ),
            description=f"No reconcile run for {HEARTBEAT_MISSED_INTERVALS} intervals: the schedule, the "
            "switcher or its permissions are broken, and a stuck switch would wait for no one." + guide,
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            periods=HEARTBEAT_MISSED_INTERVALS,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        for gauge in _gauges():
            # A gauge keeps its last state while the reconciler is silent (that silence has its own
            # alarm): a FAILED node must not turn OK because nobody counted it.
            self._add(
                gauge.key,
                gauge.what,
                switcher_metric(gauge.metric, vpc_name=vpc_name, statistic="Maximum", period=interval),
                description=gauge.description + guide,
                threshold=1,
                missing=cloudwatch.TreatMissingData.IGNORE,
            )
        action = cw_actions.SnsAction(topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _add(
        self,
        key: str,
        what: str,
        metric: cloudwatch.IMetric,
        *,
        description: str,
        threshold: float,
        missing: cloudwatch.TreatMissingData,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        periods: int = 1,
    ) -> None:
        name = stack_alarm_name(self._vpc_name, what)
        self.alarm_names.append(name)
        self.alarms[key] = cloudwatch.Alarm(
            self,
            key,
            alarm_name=name,
            alarm_description=f"swr {self._vpc_name}: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
        )
