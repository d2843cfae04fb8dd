"""The one event factory: events exactly as AWS delivers them to an EventBridge rule's target (the switcher
Lambda), for the local drill, the tests and the benchmarks.

The shapes follow AWS's samples kept in tests/events/*.json (tests/local/test_events.py compares them).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from switcher import aws, contract

from swr_local.emulator import LOCAL_ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(
    detail_type: str, source: str, *, account_id: str, region: str, time: str | None, resource: str
) -> dict[str, Any]:
    """The fields EventBridge puts around every event's `detail`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": time or _now(),
        "region": region,
        "resources": [resource],
    }


def ec2_state_change(
    instance_id: str,
    state: str,
    *,
    account_id: str = LOCAL_ACCOUNT_ID,
    region: str = REGION,
    time: str | None = None,
) -> dict[str, Any]:
    """ "EC2 Instance State-change Notification", as EC2 emits it when the FaultScript stops the instance
    (`time`: the event's ISO time, default now)."""
    return {
        **_envelope(
            contract.EC2_STATE_CHANGE_DETAIL_TYPE,
            contract.EC2_EVENT_SOURCE,
            account_id=account_id,
            region=region,
            time=time,
            resource=f"arn:aws:ec2:{region}:{account_id}:instance/{instance_id}",
        ),
        "detail": {"instance-id": instance_id, "state": state},
    }


def _metric_config(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if alarm.get("Metrics"):
        out = []
        for query in alarm["Metrics"]:
            item: dict[str, Any] = {"id": query["Id"], "returnData": query.get("ReturnData", True)}
            if "MetricStat" in query:
                stat = query["MetricStat"]
                item["metricStat"] = {
                    "metric": {
                        "namespace": stat["Metric"].get("Namespace"),
                        "name": stat["Metric"].get("MetricName"),
                        "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])},
                    },
                    "period": stat.get("Period"),
                    "stat": stat.get("Stat"),
                }
            if "Expression" in query:
                item["expression"] = query["Expression"]
            out.append(item)
        return out
    return [
        {
            "id": "m1",
            "metricStat": {
                "metric": {
                    "namespace": alarm.get("Namespace"),
                    "name": alarm.get("MetricName"),
                    "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
                },
                "period": alarm.get("Period"),
                "stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            },
            "returnData": True,
        }
    ]


def alarm_state_change(
    alarm: dict[str, Any],
    *,
    previous_state: str = "OK",
    account_id: str = LOCAL_ACCOUNT_ID,
    region: str = REGION,
    time: str | None = None,
) -> dict[str, Any]:
    """The alarm state-change event of an alarm as `describe_alarms` returns it (now in ALARM)."""
    timestamp = alarm.get("StateUpdatedTimestamp")
    stamp = (
        timestamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        if isinstance(timestamp, datetime)
        else time or _now()
    )
    return {
        **_envelope(
            contract.ALARM_STATE_CHANGE_DETAIL_TYPE,
            contract.ALARM_EVENT_SOURCE,
            account_id=account_id,
            region=region,
            time=time,
            resource=alarm["AlarmArn"],
        ),
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {
                "value": alarm.get("StateValue", contract.ALARM_TRIGGER_STATE),
                "reason": alarm.get("StateReason", ""),
                "reasonData": alarm.get("StateReasonData", json.dumps({})),
                "timestamp": stamp,
            },
            "previousState": {"value": previous_state, "reason": "", "timestamp": stamp},
            "configuration": {
                "description": alarm.get("AlarmDescription", ""),
                "metrics": _metric_config(alarm),
            },
        },
    }


def node_alarm(
    alarm_name: str,
    instance_id: str,
    *,
    status_check: bool,
    monitor_process: str = "swr-monitor",
    account_id: str = LOCAL_ACCOUNT_ID,
    region: str = REGION,
) -> dict[str, Any]:
    """A node's alarm in ALARM as `describe_alarms` returns it (metric, dimensions and period as the switcher
    puts them), without asking the emulator: what `alarm_state_change` takes."""
    if status_check:
        namespace, metric, period = contract.STATUS_METRIC_NAMESPACE, contract.STATUS_METRIC_NAME, 60
        dimensions: list[DimensionTypeDef] = [{"Name": "InstanceId", "Value": instance_id}]
    else:
        namespace, metric = contract.MONITOR_METRIC_NAMESPACE, contract.MONITOR_METRIC_NAME
        period = contract.MONITOR_INTERVAL_SECONDS
        dimensions = aws.monitor_alarm_dimensions(instance_id, monitor_process)
    return {
        "AlarmName": alarm_name,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm_name}",
        "StateValue": contract.ALARM_TRIGGER_STATE,
        "StateReason": "Threshold Crossed",
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": dimensions,
        "Period": period,
        "Statistic": "Maximum",
    }
