"""An event that is not a trigger is one logged skip decided from the event alone: no AWS call at all.

No moto: the clients handed to the switcher fail the test at the first attribute any code reads from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from switcher import switch
from switcher.clients import Clients
from switcher.settings import Settings

from tests.helpers.events import load_event, skip_records

INSTANCE = "i-0123456789abcdef0"
SETTINGS = Settings(
    table_name="swr-state", topic_arn="arn:aws:sns:us-east-1:1:t", blackhole_sg_id="sg-1", vpc_name="prod",
    vpc_id="vpc-1",
)  # fmt: skip


class _NoAws:
    """A client of a service that must not be used: any method lookup fails the test, naming it."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{self.service}.{name} called for an event that is not a trigger")


NO_AWS = Clients(*(_NoAws(s) for s in ("ec2", "elbv2", "cloudwatch", "dynamodb", "sns", "events")))


def _detail(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda e: e["detail"].update(changes)


def _without_instance_dimension(event: dict[str, Any]) -> dict[str, Any]:
    """An alarm event whose metric names no instance: only the alarm's name can point at a node."""
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"].pop("InstanceId")
    return event


#: Malformed in a field that decides whether the event is a trigger, or well formed but not a trigger.
NOT_TRIGGERS: list[tuple[str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("ec2_state_stopping", _detail(state="running"), "not a trigger"),
    ("ec2_state_stopping", lambda e: e.update(source="aws.s3"), "not a trigger"),
    ("alarm_monitor_alarm", lambda e: e["detail"]["state"].update(value="OK"), "not in ALARM"),
    ("alarm_monitor_alarm", _detail(alarmName="swr-other-1-monitor"), "VPC"),
    ("ec2_state_stopping", lambda e: e.pop("detail"), None),
    ("ec2_state_stopping", lambda e: e.update(detail=["stopping"]), None),
    ("ec2_state_stopping", lambda e: e.update(detail="stopping"), None),
    ("ec2_state_stopping", lambda e: e["detail"].pop("instance-id"), None),
    ("ec2_state_stopping", _detail(**{"instance-id": 12345}), None),
    ("ec2_state_stopping", _detail(**{"instance-id": [INSTANCE]}), None),
    ("ec2_state_stopping", _detail(**{"instance-id": "i-0123456789ABCDEF0"}), None),
    ("ec2_state_stopping", _detail(**{"instance-id": f"{INSTANCE}; DROP"}), None),
    ("ec2_state_stopping", _detail(state=["stopping"]), None),
    ("ec2_state_stopping", _detail(state={"name": "stopping"}), None),
    ("ec2_state_stopping", lambda e: e.update(source=None), None),
    ("alarm_monitor_alarm", _detail(state="ALARM"), None),
    ("alarm_monitor_alarm", lambda e: e["detail"].pop("state"), None),
    ("alarm_monitor_alarm", _detail(alarmName=42), None),
    ("alarm_monitor_alarm", _detail(alarmName=None), None),
    ("alarm_monitor_alarm", _detail(alarmName="swr-prod-01-monitor"), None),
    ("alarm_monitor_alarm", _detail(alarmName="swr-prod-\u0661-monitor"), None),
    ("alarm_monitor_alarm", _detail(alarmName="swr-prod-\u00b2-monitor"), None),
    ("alarm_monitor_alarm", _detail(alarmName="swr-prod-1-monitor-copy"), None),
]


@pytest.mark.parametrize(("name", "mutate", "reason"), NOT_TRIGGERS)
def test_an_event_that_is_not_a_trigger_is_one_logged_skip_without_an_aws_call(
    name: str, mutate: Callable[[dict[str, Any]], Any], reason: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    event = load_event(name, instance_id=INSTANCE)
    if name.startswith("alarm"):
        _without_instance_dimension(event)
    mutate(event)
    result = switch.run_event(event, clients=NO_AWS, settings=SETTINGS)
    assert result.outcome == switch.SKIPPED, result
    assert reason is None or reason in result.reason
    assert len(skip_records(caplog.records)) == 1


@pytest.mark.parametrize("event", [None, [], "aws.ec2", 42, {"RequestTypo": "Create"}, {}])
def test_a_value_that_is_no_event_at_all_is_one_logged_skip_without_an_aws_call(
    event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    result = switch.run_event(event, clients=NO_AWS, settings=SETTINGS)
    assert result.outcome == switch.SKIPPED
    assert len(skip_records(caplog.records)) == 1
