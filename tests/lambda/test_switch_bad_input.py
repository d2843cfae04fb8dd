"""Bad input against a moto world: a malformed event, a foreign or oddly tagged instance, a malformed
custom-resource request is ONE logged skip (or a FAILED answer), never an exception, never a mutating AWS
call; a request nobody can answer does no AWS work at all."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from switcher import contract, handler

from tests.helpers.events import JSON_VALUES, mutated_events, skip_records
from tests.helpers.world import World


def _assert_one_quiet_skip(world: World, event: Any, caplog: pytest.LogCaptureFixture) -> str:
    world.calls.clear()
    caplog.clear()
    result = world.run(event)
    assert result.outcome == "SKIPPED", result
    assert world.calls.mutating() == []
    assert len(skip_records(caplog.records)) == 1
    return result.reason


def test_instances_with_a_non_canonical_node_id_are_skipped_and_do_not_stop_the_vpcs_switches(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    source = world.provision(1)
    for raw_id in ("\u00b2", "01", "\u0661", "1 "):
        odd = world.launch_by_hand(node_tag=raw_id, subnet_id=world.subnets["us-east-1b"])
        world.clients.ec2.stop_instances(InstanceIds=[odd])
        for trigger in ("ec2_state_stopping", "ec2_state_stopped"):
            reason = _assert_one_quiet_skip(world, world.event(trigger, odd), caplog)
            assert "canonical" in reason and repr(raw_id) in reason
        assert world.state_of(odd) == "stopped"

    world.clients.ec2.stop_instances(InstanceIds=[source])
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "SUCCEEDED"


def test_an_alarm_named_with_a_non_canonical_node_id_does_not_switch_the_node(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # "swr-prod-01-monitor" is not node 1's alarm, even if its dimension names node 1's instance.
    source = world.provision(1)
    event = world.event("alarm_monitor_alarm", source)
    event["detail"]["alarmName"] = "swr-prod-01-monitor"
    _assert_one_quiet_skip(world, event, caplog)
    assert world.node(1).current_instance_id == source and world.state_of(source) == "running"


# --- the custom-resource request ---------------------------------------------------------------------


@pytest.fixture
def handler_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The switcher's environment for this world, with the handler using (and recording) its clients."""
    world.as_function(monkeypatch, clients=world.clients)
    yield world


BAD_URLS = [
    None,
    "",
    42,
    "ftp://example.com/r",
    "file:///etc/passwd",
    "http://example.com/r",
    "https://",
    "x",
]


def test_a_request_without_a_usable_response_url_does_no_aws_work(
    handler_env: World, lambda_context: Any
) -> None:
    world = handler_env
    current = world.provision(1)
    for request_type in ("Delete", "Create", "Update"):
        for url in BAD_URLS:
            request = world.cfn_request(request_type, 1, ResponseURL=url)
            world.calls.clear()
            response = handler.lambda_handler(request, lambda_context)
            assert response["Status"] == "SKIPPED" and "ResponseURL" in response["Reason"], (
                request_type,
                url,
            )
            assert world.calls.calls == [], (request_type, url)  # not even a read: nobody would hear of it
    assert world.state_of(current) == "running"


def test_a_malformed_request_is_answered_failed_before_any_aws_call(
    handler_env: World, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = handler_env
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(handler, "send_response", lambda url, body: sent.append(body))
    for changes in (
        {"RequestType": "Bogus"},
        {"RequestType": None},
        {"RequestType": ["Create"]},
        {"RequestType": "Create", "ResourceProperties": "NodeId=1"},
        {"RequestType": "Update", "ResourceProperties": None},
        {"RequestType": "Create", "ResourceProperties": {"NodeId": "\u00b2"}},
    ):
        request = world.cfn_request(
            "Create", 1, ResponseURL="https://cloudformation-custom-resource.example/r"
        )
        request.update(changes)
        sent.clear()
        world.calls.clear()
        handler.lambda_handler(request, lambda_context)
        (answer,) = sent
        assert answer["Status"] == "FAILED" and answer["Reason"], changes
        assert world.calls.calls == [], changes


# --- Powertools' empty-metrics warning -----------------------------------------------------------


def test_a_skip_through_the_handler_does_not_warn_about_no_metrics_and_a_switch_still_publishes_them(
    handler_env: World, lambda_context: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    world = handler_env
    source = world.provision(1)
    other_vpc_event = world.event("ec2_state_stopping", "i-0fffffffffffffff0")  # any EC2 stop in the region
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert handler.lambda_handler(other_vpc_event, lambda_context)["outcome"] == "SKIPPED"
    assert not [w for w in caught if "metrics" in str(w.message)], [str(w.message) for w in caught]

    world.clients.ec2.stop_instances(InstanceIds=[source])
    capfd.readouterr()
    assert handler.lambda_handler(world.event("ec2_state_stopping", source), lambda_context)["outcome"] == (
        "SUCCEEDED"
    )
    blobs = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [b for b in blobs if contract.METRIC_SWITCH_COUNT in b]


# --- property-based: fuzzed events against one moto world --------------------------------------------

_NODE, _UNTAGGED, _ODD, _FOREIGN = "<node>", "<untagged>", "<odd>", "<foreign>"
INSTANCE_CHOICES = st.sampled_from([_NODE, _UNTAGGED, _ODD, _FOREIGN, "i-0fffffffffffffff0", "i-1234abcd"])


def _maybe_a_trigger_about_the_node(event: Any, node_instance: str) -> bool:
    """True if `event` could be a valid trigger about node 1 (conservative: such cases are not asserted)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return False
    source, detail_type = event.get("source"), event.get("detail-type")
    if source == contract.EC2_EVENT_SOURCE and detail_type == contract.EC2_STATE_CHANGE_DETAIL_TYPE:
        return (
            detail.get("state") in contract.EC2_TRIGGER_STATES and detail.get("instance-id") == node_instance
        )
    if source == contract.ALARM_EVENT_SOURCE and detail_type == contract.ALARM_STATE_CHANGE_DETAIL_TYPE:
        state = detail.get("state")
        names = (contract.monitor_alarm_name("prod", 1), contract.status_alarm_name("prod", 1))
        return isinstance(state, dict) and state.get("value") == "ALARM" and detail.get("alarmName") in names
    return False


def _bind(value: Any, ids: dict[str, str]) -> Any:
    text = json.dumps(value)
    for placeholder, instance_id in ids.items():
        text = text.replace(json.dumps(placeholder), json.dumps(instance_id))
    return json.loads(text)


@pytest.fixture
def fuzz_world(world: World) -> tuple[World, dict[str, str]]:
    """Node 1 live; an untagged instance, one tagged with a non-canonical id, one of another VPC."""
    ec2 = world.clients.ec2
    node_instance = world.provision(1)

    def launch(subnet: str, tags: dict[str, str]) -> str:
        return world.launch_by_hand(tags=tags, subnet_id=subnet)

    foreign_subnet = ec2.create_subnet(VpcId=world.other_vpc_id, CidrBlock="10.1.7.0/24")["Subnet"][
        "SubnetId"
    ]
    ids = {
        # Samples name node 1's sample instance: bind it to the live one.
        "i-0123456789abcdef0": node_instance,
        _NODE: node_instance,
        _UNTAGGED: launch(world.subnets["us-east-1a"], {}),
        _ODD: launch(world.subnets["us-east-1b"], {contract.TAG_NODE_ID: "\u00b2"}),
        _FOREIGN: launch(foreign_subnet, {contract.TAG_NODE_ID: "1"}),
    }
    return world, ids


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(raw=mutated_events(INSTANCE_CHOICES) | JSON_VALUES)
def test_fuzzed_events_that_are_no_trigger_about_a_live_node_change_nothing(
    fuzz_world: tuple[World, dict[str, str]], raw: Any
) -> None:
    world, ids = fuzz_world
    event = _bind(raw, ids)
    assume(not _maybe_a_trigger_about_the_node(event, ids[_NODE]))
    world.calls.clear()
    result = world.run(event)  # any exception fails the test
    assert result.outcome == "SKIPPED", (event, result)
    assert world.calls.mutating() == [], event
