"""The reconcile schedule of a VPC: EventBridge Scheduler invokes the switcher every interval.

A switch that no event restarts (an invocation killed mid-switch, an EventBridge event dropped after its
retries, a node left FAILED or on hold) would otherwise wait for an operator. The reconcile run finds
such nodes and resumes or reports them; the stack side only has to run it on time and loudly notice
when it stops running (see swr_stacks/alarms.py).

Why EventBridge Scheduler and not a third (scheduled) EventBridge rule: scheduled rules are a legacy
feature and AWS recommends Scheduler for invoking targets on a schedule ("Creating a scheduled rule
(legacy) in Amazon EventBridge", EventBridge User Guide); Scheduler has its own retry policy and
dead-letter queue per schedule, and it keeps the VPC's event rules to the two trigger rules.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from switcher import contract

from swr_stacks.config import Reconcile

#: Scheduler retries a failed delivery this often within the event age, then puts it in the DLQ.
DELIVERY_RETRY_ATTEMPTS = 2


def reconcile_event() -> dict[str, object]:
    """The input of every reconcile invocation: the shape of an EventBridge event from swr's reconciler."""
    return {
        "source": contract.RECONCILE_EVENT_SOURCE,
        "detail-type": contract.RECONCILE_DETAIL_TYPE,
        "detail": {},
    }


class _InvokeThisFunction(scheduler_targets.ScheduleTargetBase):
    """Scheduler's Lambda target, granting `lambda:InvokeFunction` on the function's own ARN only.

    The library's `LambdaInvoke` grants through `grant_invoke`, which also allows every version and
    alias (`<arn>:*`); Scheduler's templated Lambda target invokes the unqualified ARN it is given.
    """

    def __init__(
        self, function: lambda_.IFunction, *, props: scheduler_targets.ScheduleTargetBaseProps
    ) -> None:
        super().__init__(props, function.function_arn)
        self._function = function

    def _add_target_action_to_role(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self._function.function_arn])
        )


class ReconcileSchedule(Construct):
    """One schedule per VPC invoking the VPC's switcher with the reconcile event every interval."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_name: str,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        reconcile: Reconcile,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        interval = Duration.seconds(reconcile.interval_seconds)
        # "Confused deputy prevention in EventBridge Scheduler" (EventBridge Scheduler User Guide): trust
        # only this account's schedules, scoped by aws:SourceArn to the schedule group (never a schedule).
        self.role = iam.Role(
            self,
            "Role",
            description=f"swr reconcile schedule of VPC {vpc_name}",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": stack.format_arn(
                            service="scheduler", resource="schedule-group", resource_name="default"
                        ),
                    }
                },
            ),
        )
        target = _InvokeThisFunction(
            function,
            props=scheduler_targets.ScheduleTargetBaseProps(
                input=scheduler.ScheduleTargetInput.from_object(reconcile_event()),
                role=self.role,
                # Scheduler invokes Lambda asynchronously ("Using Lambda with Amazon EventBridge
                # Scheduler", Lambda Developer Guide): these retries cover only a refused Invoke
                # (throttled, not permitted); a failed run is retried by Lambda and lands in the same
                # DLQ. A tick older than one interval is superseded by the next tick.
                retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                max_event_age=interval,
                # The switcher's DLQ: one queue, one depth alarm, whichever path dropped the event.
                dead_letter_queue=dead_letter_queue,
            ),
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"swr {vpc_name}: reconcile the VPC's nodes",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(reconcile.interval_seconds // 60)),
            target=target,
        )
