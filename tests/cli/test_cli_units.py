"""Pure parts of the CLI: events as AWS emits them, the template surgery of moto_gaps, timelines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from switcher import contract, state

from swr_cli import events, moto_gaps
from swr_cli.aws import is_local_endpoint
from swr_cli.render import rto_seconds, timeline_rows

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
    template, stripped = moto_gaps.strip_custom_resources(_template())
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
        moto_gaps.strip_custom_resources(template)


def test_an_unknown_custom_resource_type_is_refused_by_name() -> None:
    template = _template(Other={"Type": "Custom::Mystery", "Properties": {"ServiceToken": "x"}})
    with pytest.raises(ValueError, match=r"Other \(Custom::Mystery\)"):
        moto_gaps.strip_custom_resources(template)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:4566", True),
        ("https://ec2.eu-west-1.amazonaws.com", False),
        ("http://127.0.0.2.example.com", False),
        (None, False),
    ],
)
def test_only_this_machine_counts_as_local(url: str | None, local: bool) -> None:
    assert is_local_endpoint(url) is local


def test_timeline_follows_the_plan_and_rto_runs_from_detection() -> None:
    switch = state.SwitchRecord(
        switch_id="swr-1",
        vpc_name="demo",
        node_id=1,
        sk="x",
        reason="r",
        order="swr",
        source_instance_id="i-1",
        timeline={
            "done": "2026-11-25T10:00:09.500+00:00",
            "detected": "2026-11-25T10:00:00.000+00:00",
            "fenced": "2026-11-25T10:00:02.000+00:00",
            "claimed": "2026-11-25T10:00:01.000+00:00",
        },
    )
    assert [row[0] for row in timeline_rows(switch)] == ["detected", "claimed", "fenced", "done"]
    assert rto_seconds(switch) == pytest.approx(9.5)
