"""The one loader of the real-shaped events in tests/events/*.json, and hypothesis strategies that mutate
them (fuzzing the switcher's event parsing)."""

from __future__ import annotations

import copy
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from switcher import contract

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
_SAMPLE_INSTANCE = "i-0123456789abcdef0"


@cache
def _raw(name: str) -> str:
    return (EVENTS_DIR / f"{name}.json").read_text()


def load_event(
    name: str, *, instance_id: str | None = None, vpc: str = "prod", node_id: int = 1
) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json, retargeted at an instance, VPC and node id.

    The samples name instance i-0123456789abcdef0 and node 1 of VPC `prod`; alarm names follow contract.py.
    """
    text = _raw(name)
    if instance_id is not None:
        text = text.replace(_SAMPLE_INSTANCE, instance_id)
    text = text.replace("swr-prod-1-", f"swr-{vpc}-{node_id}-")
    return copy.deepcopy(json.loads(text))


# --- fuzzing ------------------------------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=24)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
#: Values that are almost right: the fuzzer needs them to reach the deeper checks.
NEAR_MISSES = st.sampled_from(
    [
        "stopping",
        "stopped",
        "running",
        "STOPPING",
        "ALARM",
        "OK",
        contract.EC2_EVENT_SOURCE,
        contract.ALARM_EVENT_SOURCE,
        contract.EC2_STATE_CHANGE_DETAIL_TYPE,
        contract.ALARM_STATE_CHANGE_DETAIL_TYPE,
        "i-0123456789abcdef0",
        "i-0123456789ABCDEF0",
        "i-12345678",
        "i-",
        "swr-prod-1-monitor",
        "swr-prod-01-monitor",
        "swr-prod-\u0661-status",
        "swr-prod-\u00b2-monitor",
        "swr-prod-1-monitor-x",
        "swr-prod-2-1-monitor",
        "swr-prod--monitor",
        "2026-11-25T10:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "not a time",
    ]
)
#: The fields the switcher reads, per sample event; a mutation deletes one or sets it to anything.
PATHS: dict[str, list[tuple[Any, ...]]] = {
    "ec2_state_stopping": [
        ("source",),
        ("detail-type",),
        ("detail",),
        ("detail", "state"),
        ("detail", "instance-id"),
        ("time",),
    ],
    "alarm_monitor_alarm": [
        ("source",),
        ("detail-type",),
        ("detail",),
        ("detail", "alarmName"),
        ("detail", "state"),
        ("detail", "state", "value"),
        ("detail", "configuration"),
        ("detail", "configuration", "metrics"),
        ("detail", "configuration", "metrics", 0),
        ("detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions"),
        ("detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions", "InstanceId"),
        ("time",),
    ],
}
PATHS["ec2_state_stopped"] = PATHS["ec2_state_stopping"]
PATHS["alarm_status_alarm"] = PATHS["alarm_monitor_alarm"]

_DELETE = object()


def _apply(event: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set (or delete, for `_DELETE`) the value at `path`, if every container on the way is there."""
    target = event
    for step in path[:-1]:
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(target, dict) or (
        isinstance(target, list) and isinstance(last, int) and last < len(target)
    ):
        if value is _DELETE:
            if isinstance(target, list) or last in target:
                del target[last]
        else:
            target[last] = value


@st.composite
def mutated_events(draw: st.DrawFn, instance_ids: st.SearchStrategy[str] | None = None) -> Any:
    """A sample event with 1..3 of the fields the switcher reads deleted or replaced."""
    name = draw(st.sampled_from(sorted(PATHS)))
    event: Any = load_event(name)
    values = JSON_VALUES | NEAR_MISSES | st.just(_DELETE)
    if instance_ids is not None:
        values = values | instance_ids
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        _apply(event, draw(st.sampled_from(PATHS[name])), draw(values))
    return event


def skip_records(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The switcher's log records of skips among `records` (caplog.records: its Powertools logger
    propagates to pytest's handler)."""
    return [r for r in records if r.name == contract.METRICS_SERVICE and r.getMessage() == "skip"]
