"""Bad input never raises: node ids are canonical ASCII decimal, and any event or property set parses
to a trigger/properties or to a reason (property-based, with hypothesis; no AWS involved)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from switcher import contract
from switcher.provision import NodeProperties, PropertyError, parse_properties
from switcher.switch import Trigger, parse_event

from tests.helpers.events import load_event

INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("7", 7),
        ("123456789012345678", 123456789012345678),
        ("01", None),  # not canonical: would alias node 1
        ("\u0661", None),  # ARABIC-INDIC DIGIT ONE: isdigit() and int() accept it
        ("\u00b2", None),  # SUPERSCRIPT TWO: isdigit() accepts it, int() raises
        ("\uff11", None),  # FULLWIDTH DIGIT ONE
        ("1234567890123456789", None),  # longer than any node id
        ("", None),
        (" 1", None),
        ("1\n", None),
        ("+1", None),
        ("-1", None),
        ("1_000", None),
        (1, None),
        (None, None),
    ],
)
def test_node_ids_are_canonical_ascii_decimal(raw: object, expected: int | None) -> None:
    assert contract.parse_node_id(raw) == expected


# --- property-based: events ------------------------------------------------------------------------

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


EVENTS = mutated_events() | JSON_VALUES


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_any_event_parses_to_a_trigger_or_a_reason(event: Any) -> None:
    result = parse_event(event, "prod")
    assert isinstance(result, Trigger | str)
    if isinstance(result, Trigger):
        assert result.kind in ("ec2-state", "alarm")
        assert result.instance_id is None or INSTANCE_ID.fullmatch(result.instance_id)
        assert result.kind == "alarm" or result.instance_id is not None
        assert result.node_id_hint is None or (
            contract.monitor_alarm_name("prod", result.node_id_hint) == event["detail"]["alarmName"]
            or contract.status_alarm_name("prod", result.node_id_hint) == event["detail"]["alarmName"]
        )
        assert result.event_time is None or isinstance(result.event_time, float)


# --- property-based: custom-resource properties ----------------------------------------------------

PROPERTY_NAMES = st.sampled_from(
    [
        contract.PROP_NODE_ID,
        contract.PROP_VPC_NAME,
        contract.PROP_LAUNCH_TEMPLATE_ID,
        contract.PROP_LAUNCH_TEMPLATE_VERSION,
        contract.PROP_TARGET_GROUP_ARN,
        contract.PROP_MONITOR_PROCESS,
        "ServiceToken",
    ]
)
PROPERTY_VALUES = JSON_VALUES | st.sampled_from(["1", "01", "\u00b2", "\u0661", "rms", "swr-monitor", "lt-1"])


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(PROPERTY_NAMES, PROPERTY_VALUES) | JSON_VALUES)
def test_any_properties_parse_or_name_what_is_wrong(props: Any) -> None:
    try:
        parsed = parse_properties(props)
    except PropertyError as err:
        assert str(err)
        return
    assert isinstance(parsed, NodeProperties)
    assert contract.parse_node_id(str(parsed.node_id)) == parsed.node_id
    assert parsed.config.monitor_process in contract.MONITOR_PROCESS_PATTERNS


@pytest.mark.parametrize("node_id", ["01", "\u0661", "\u00b2", "1.0", "0x1"])
def test_a_non_canonical_node_id_property_is_refused_by_name(node_id: str) -> None:
    props = {
        contract.PROP_NODE_ID: node_id,
        contract.PROP_VPC_NAME: "prod",
        contract.PROP_LAUNCH_TEMPLATE_ID: "lt-1",
        contract.PROP_LAUNCH_TEMPLATE_VERSION: "1",
        contract.PROP_TARGET_GROUP_ARN: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y",
    }
    with pytest.raises(PropertyError, match=contract.PROP_NODE_ID):
        parse_properties(props)
