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

from tests.helpers.events import JSON_VALUES, mutated_events

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

EVENTS = mutated_events() | JSON_VALUES


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
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
        contract.PROP_TARGETS,
        "ServiceToken",
    ]
)
PROPERTY_VALUES = JSON_VALUES | st.sampled_from(
    ["1", "01", "\u00b2", "\u0661", "rms", "swr-monitor", "lt-1", *contract.TARGETS_MODES]
)


@settings(max_examples=150, deadline=None, database=None)
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
    assert parsed.config.targets in contract.TARGETS_MODES


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


def test_the_targets_property_is_on_switch_when_absent_and_refused_by_name_when_unknown() -> None:
    props = {
        contract.PROP_NODE_ID: "1",
        contract.PROP_VPC_NAME: "prod",
        contract.PROP_LAUNCH_TEMPLATE_ID: "lt-1",
        contract.PROP_LAUNCH_TEMPLATE_VERSION: "1",
        contract.PROP_TARGET_GROUP_ARN: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y",
    }
    # A stack written before the property existed deployed its node without standby interfaces.
    assert parse_properties(props).config.targets == contract.TARGETS_ON_SWITCH
    assert parse_properties({**props, contract.PROP_TARGETS: "preregistered"}).config.preregistered
    with pytest.raises(PropertyError, match=f"{contract.PROP_TARGETS}='standby'"):
        parse_properties({**props, contract.PROP_TARGETS: "standby"})
