"""Never left down, never silent: the reconcile schedule of each VPC and the alarms that say when the
switcher, its dead-letter queue or the reconciler need an operator, delivered to the notice topic."""

from __future__ import annotations

import fnmatch
import json
import re

from switcher import contract

from swr_stacks.alarms import HEARTBEAT_MISSED_INTERVALS
from swr_stacks.app_builder import regional_stack_name, vpc_stack_name
from swr_stacks.reconcile import DELIVERY_RETRY_ATTEMPTS


def _vpc_stacks(app):
    for region in app.config.regions:
        for vpc in region.vpcs:
            yield region, vpc, app.raw[vpc_stack_name(region.name, vpc.name)]


def _resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _switcher_id(template: dict) -> str:
    (logical_id,) = [
        k
        for k, f in _resources(template, "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "switcher.handler.lambda_handler"
    ]
    return logical_id


def _dlq_id(template: dict) -> str:
    function = template["Resources"][_switcher_id(template)]
    return function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]


def _alarms(template: dict) -> dict[str, dict]:
    """Alarm name -> properties."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
    }


# --- the reconcile schedule -----------------------------------------------------------------------


def test_each_vpc_schedules_the_reconcile_event_for_its_own_switcher_at_its_interval(multi_app):
    intervals = set()
    for _region, vpc, template in _vpc_stacks(multi_app):
        (schedule,) = _resources(template, "AWS::Scheduler::Schedule").values()
        props = schedule["Properties"]
        minutes = vpc.reconcile.interval_seconds // 60
        intervals.add(minutes)
        assert props["ScheduleExpression"] == (
            f"rate({minutes} minutes)" if minutes > 1 else "rate(1 minute)"
        )
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert props["State"] == "ENABLED"
        target = props["Target"]
        assert target["Arn"] == {"Fn::GetAtt": [_switcher_id(template), "Arn"]}
        # The event the handler routes to the reconciler.
        assert json.loads(target["Input"]) == {
            "source": contract.RECONCILE_EVENT_SOURCE,
            "detail-type": contract.RECONCILE_DETAIL_TYPE,
            "detail": {},
        }
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": DELIVERY_RETRY_ATTEMPTS,
            "MaximumEventAgeInSeconds": vpc.reconcile.interval_seconds,
        }
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [_dlq_id(template), "Arn"]}}
    # The test config has the default (1 minute) and a per-VPC interval (5 minutes).
    assert intervals == {1, 5}


def test_the_schedule_role_may_only_invoke_this_switcher_and_send_to_its_dlq(multi_app):
    for _region, _vpc, template in _vpc_stacks(multi_app):
        (schedule,) = _resources(template, "AWS::Scheduler::Schedule").values()
        role_id = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
        role = template["Resources"][role_id]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
        conditions = trust["Condition"]["StringEquals"]
        assert conditions["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert json.dumps(conditions["aws:SourceArn"]).endswith(':schedule-group/default"]]}')
        assert "ManagedPolicyArns" not in role
        statements = [
            s
            for p in _resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert sorted((s["Action"], json.dumps(s["Resource"])) for s in statements) == [
            ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": [_switcher_id(template), "Arn"]})),
            ("sqs:SendMessage", json.dumps({"Fn::GetAtt": [_dlq_id(template), "Arn"]})),
        ]
        assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements)


# --- the stack alarms -----------------------------------------------------------------------------


def test_each_vpc_alarms_on_switcher_errors_dead_letters_heartbeat_and_node_gauges(multi_app):
    for region, vpc, template in _vpc_stacks(multi_app):
        alarms = _alarms(template)
        prefix = f"swr.{vpc.name}."
        assert set(alarms) == {
            prefix + what
            for what in (
                "switcher-errors",
                "dead-letters",
                "reconcile-heartbeat-missing",
                "nodes-failed",
                "nodes-held",
                "switching-overdue",
            )
        }
        # The region's notice topic, an output of the regional stack: read with Fn::GetStackOutput under
        # cdk.json's `@aws-cdk/core:defaultCrossStackReferences: weak`, else imported from its export.
        regional = regional_stack_name(region.name)
        topic = re.compile(rf"^{regional}:ExportsOutputRefNoticesTopic")
        for name, props in alarms.items():
            for key in ("AlarmActions", "OKActions"):
                (action,) = props[key]
                if "Fn::GetStackOutput" in action:
                    output = action["Fn::GetStackOutput"]
                    assert output["StackName"] == regional, (name, key, action)
                    assert "NoticesTopic" in output["OutputName"], (name, key, action)
                else:
                    assert topic.match(action["Fn::ImportValue"]), (name, key, action)
            assert props.get("ActionsEnabled", True) is True

        errors = alarms[prefix + "switcher-errors"]
        assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == (
            "AWS/Lambda",
            "Errors",
            "Sum",
        )
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": _switcher_id(template)}}]
        assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert errors["TreatMissingData"] == "notBreaching"

        dead = alarms[prefix + "dead-letters"]
        assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert dead["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [_dlq_id(template), "QueueName"]}}
        ]
        assert (dead["ComparisonOperator"], dead["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)

        heartbeat = alarms[prefix + "reconcile-heartbeat-missing"]
        assert (heartbeat["Namespace"], heartbeat["MetricName"]) == (
            contract.METRICS_NAMESPACE,
            contract.METRIC_RECONCILE_HEARTBEAT,
        )
        assert heartbeat["TreatMissingData"] == "breaching"
        assert (heartbeat["ComparisonOperator"], heartbeat["Threshold"]) == ("LessThanThreshold", 1)
        assert heartbeat["Period"] == vpc.reconcile.interval_seconds
        assert heartbeat["EvaluationPeriods"] == heartbeat["DatapointsToAlarm"] == HEARTBEAT_MISSED_INTERVALS

        for what, metric in (
            ("nodes-failed", contract.METRIC_RECONCILE_NODES_FAILED),
            ("nodes-held", contract.METRIC_RECONCILE_NODES_HELD),
            ("switching-overdue", contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE),
        ):
            gauge = alarms[prefix + what]
            assert (gauge["Namespace"], gauge["MetricName"]) == (contract.METRICS_NAMESPACE, metric)
            assert (gauge["Statistic"], gauge["Period"]) == ("Maximum", vpc.reconcile.interval_seconds)
            assert (gauge["ComparisonOperator"], gauge["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
            assert gauge["TreatMissingData"] == "ignore"


def test_no_stack_alarm_can_be_taken_for_a_node_alarm(multi_app):
    # The alarm rule invokes the switcher, and its IAM policy lets it change and delete, alarms named
    # swr-<vpc>-…; a VPC name can be any [a-z][a-z0-9-]*, so no stack alarm may start with "swr-<letter>".
    for _region, _vpc, template in _vpc_stacks(multi_app):
        for name in _alarms(template):
            assert not re.match(r"^swr-[a-z]", name), name
            for other in multi_app.config.regions:
                for vpc in other.vpcs:
                    assert not name.startswith(contract.alarm_prefix(vpc.name)), name


def _cloudwatch_statement(statements: list[dict]) -> dict:
    (statement,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    return statement


def _arn_pattern(value: dict, region: str) -> str:
    """A Fn::Join ARN as a glob with the account and partition as `*`."""
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else "*" for p in parts).replace("${AWS::Region}", region)


def test_the_notice_topic_and_its_key_let_cloudwatch_deliver_exactly_the_stack_alarms(multi_app):
    # Without both grants CloudWatch cannot publish to a KMS-encrypted topic: the alarm fires, the
    # notification is dropped ("Key management", Amazon SNS Developer Guide; aws/aws-cdk issue 11121).
    for region in multi_app.config.regions:
        regional = multi_app.raw[regional_stack_name(region.name)]
        (policy,) = _resources(regional, "AWS::SNS::TopicPolicy").values()
        publish = _cloudwatch_statement(policy["Properties"]["PolicyDocument"]["Statement"])
        (key,) = _resources(regional, "AWS::KMS::Key").values()
        use_key = _cloudwatch_statement(key["Properties"]["KeyPolicy"]["Statement"])
        assert publish["Action"] == "sns:Publish"
        assert sorted(use_key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
        alarm_names = [
            name
            for vpc in region.vpcs
            for name in _alarms(multi_app.raw[vpc_stack_name(region.name, vpc.name)])
        ]
        assert len(alarm_names) == 6 * len(region.vpcs)
        for statement in (publish, use_key):
            assert statement["Effect"] == "Allow"
            assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
            pattern = _arn_pattern(statement["Condition"]["ArnLike"]["aws:SourceArn"], region.name)
            # The partition is a token, or literal `aws` where a feature flag resolves it for the region.
            assert pattern in {
                f"arn:{partition}:cloudwatch:{region.name}:*:alarm:swr.*" for partition in ("*", "aws")
            }
            for name in alarm_names:
                assert fnmatch.fnmatchcase(
                    f"arn:aws:cloudwatch:{region.name}:123456789012:alarm:{name}", pattern
                )
            # The switcher's node alarms have no actions and stay outside the grant.
            node_alarm = contract.monitor_alarm_name(region.vpcs[0].name, region.vpcs[0].nodes[0].node_id)
            assert not fnmatch.fnmatchcase(
                f"arn:aws:cloudwatch:{region.name}:123456789012:alarm:{node_alarm}", pattern
            )


def test_the_dashboard_shows_the_state_of_every_stack_alarm(multi_app):
    for _region, _vpc, template in _vpc_stacks(multi_app):
        (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        for name in _alarms(template):
            assert f":alarm:{name}" in body, name
