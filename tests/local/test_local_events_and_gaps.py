"""Pure parts of swr_local: the one event factory against AWS's sample events (tests/events), the template
surgery of the emulator deploy (swr_local.gaps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from switcher import contract

from swr_local import events, gaps

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_ec2_event_has_the_shape_ec2_emits() -> None:
    real = json.loads((EVENTS / "ec2_state_stopping.json").read_text())
    built = events.ec2_state_change(
        "i-0123456789abcdef0", "stopping", account_id="123456789012", region="us-east-1"
    )
    assert _shape(built) == _shape(real)
    assert built["resources"] == real["resources"] and built["detail"] == real["detail"]


def test_alarm_event_has_the_shape_cloudwatch_emits() -> None:
    real = json.loads((EVENTS / "alarm_monitor_alarm.json").read_text())
    metric = real["detail"]["configuration"]["metrics"][0]["metricStat"]
    described = {  # what describe_alarms returns for that alarm
        "AlarmName": "swr-prod-1-monitor",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:swr-prod-1-monitor",
        "AlarmDescription": real["detail"]["configuration"]["description"],
        "StateValue": "ALARM",
        "StateReason": "Threshold Crossed",
        "StateReasonData": "{}",
        "StateUpdatedTimestamp": datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC),
        "Namespace": metric["metric"]["namespace"],
        "MetricName": metric["metric"]["name"],
        "Dimensions": [{"Name": k, "Value": v} for k, v in metric["metric"]["dimensions"].items()],
        "Period": metric["period"],
        "Statistic": metric["stat"],
    }
    built = events.alarm_state_change(described, account_id="123456789012", region="us-east-1")
    real_shape, built_shape = _shape(real), _shape(built)
    # the metric id is a uuid in AWS's events and "m1" here: both strings
    assert built_shape == real_shape
    assert built["detail"]["configuration"]["metrics"][0]["metricStat"] == metric
    assert built["detail"]["state"]["timestamp"] == "2026-11-25T10:00:30.000+0000"


def _template(**extra: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Lt": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {}},
            "Node": {
                "Type": contract.NODE_RESOURCE_TYPE,
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]},
                    "NodeId": "1",
                    "LaunchTemplateId": {"Ref": "Lt"},
                },
            },
            "After": {"Type": "AWS::SNS::Topic", "Properties": {}, "DependsOn": ["Node", "Lt"]},
            **extra,
        }
    }


def test_custom_resource_properties_travel_as_outputs_resolved_by_cloudformation() -> None:
    template, stripped = gaps.strip_custom_resources(_template())
    assert "Node" not in template["Resources"]
    assert template["Resources"]["After"]["DependsOn"] == ["Lt"]
    [node] = stripped
    keys = node.output_keys
    assert template["Outputs"][keys["LaunchTemplateId"]] == {"Value": {"Ref": "Lt"}}
    outputs = {keys["ServiceToken"]: "arn:fn", keys["NodeId"]: "1", keys["LaunchTemplateId"]: "lt-1"}
    assert node.resolve(outputs) == {"ServiceToken": "arn:fn", "NodeId": "1", "LaunchTemplateId": "lt-1"}
    with pytest.raises(KeyError, match="LaunchTemplateId of Node"):
        node.resolve({keys["ServiceToken"]: "arn:fn", keys["NodeId"]: "1"})


def test_a_reference_to_a_stripped_resource_is_refused_by_name() -> None:
    template = _template(
        Uses={"Type": "AWS::SSM::Parameter", "Properties": {"Value": {"Fn::GetAtt": ["Node", "X"]}}}
    )
    with pytest.raises(ValueError, match="resource Uses refers to custom resource Node"):
        gaps.strip_custom_resources(template)


def test_an_unknown_custom_resource_type_is_refused_by_name() -> None:
    template = _template(Other={"Type": "Custom::Mystery", "Properties": {"ServiceToken": "x"}})
    with pytest.raises(ValueError, match=r"Other \(Custom::Mystery\)"):
        gaps.strip_custom_resources(template)


@pytest.mark.parametrize(
    ("sample", "status_check"), [("alarm_monitor_alarm", False), ("alarm_status_alarm", True)]
)
def test_a_node_alarm_event_carries_the_metric_the_switcher_puts_on_the_alarm(
    sample: str, status_check: bool
) -> None:
    """The benchmarks build alarm events without asking the emulator: the metric must be the alarm's."""
    real = json.loads((EVENTS / f"{sample}.json").read_text())
    alarm = events.node_alarm(real["detail"]["alarmName"], "i-0123456789abcdef0", status_check=status_check)
    built = events.alarm_state_change(alarm, time=real["time"])
    assert built["detail"]["alarmName"] == real["detail"]["alarmName"]
    built_metric = built["detail"]["configuration"]["metrics"][0]["metricStat"]
    assert built_metric == real["detail"]["configuration"]["metrics"][0]["metricStat"]
    assert built["resources"] == real["resources"] and built["time"] == real["time"]
