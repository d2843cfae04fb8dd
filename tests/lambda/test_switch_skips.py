"""Anything that is not ours, or not to be switched now, is skipped without a single mutating AWS call."""

from __future__ import annotations

import json

import pytest
from switcher import contract, state

from tests.helpers.world import World


def _assert_skipped_untouched(world: World, event: dict, reason_part: str) -> None:
    world.calls.clear()
    result = world.run(event)
    assert result.outcome == "SKIPPED"
    assert reason_part in result.reason
    assert world.calls.mutating() == []


def test_instance_without_the_node_tag_is_skipped(world: World) -> None:
    other = world.launch_by_hand(tags={"Name": "not-a-node"})
    _assert_skipped_untouched(world, world.event("ec2_state_stopping", other), contract.TAG_NODE_ID)


def test_tagged_instance_of_another_vpc_is_skipped(world: World) -> None:
    subnet = world.clients.ec2.create_subnet(VpcId=world.other_vpc_id, CidrBlock="10.1.1.0/24")["Subnet"]
    other = world.launch_by_hand(subnet_id=subnet["SubnetId"], tags={contract.TAG_NODE_ID: "1"})
    _assert_skipped_untouched(world, world.event("ec2_state_stopping", other), "VPC")


def test_late_event_about_an_already_replaced_instance_is_skipped(world: World) -> None:
    source = world.provision(1)
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "SUCCEEDED"
    # The source is terminated now; a stray `stopped` or alarm about it must change nothing.
    _assert_skipped_untouched(world, world.event("alarm_monitor_alarm", source), source)


def test_not_current_instance_that_is_still_alive_is_skipped(world: World) -> None:
    world.provision(1)
    stray = world.launch_by_hand(tags={contract.TAG_NODE_ID: "1"})
    _assert_skipped_untouched(world, world.event("ec2_state_stopped", stray), "not node 1's current")


def test_node_on_hold_is_skipped(world: World) -> None:
    source = world.provision(1)
    state.hold(
        world.clients.dynamodb, world.settings.table_name, "prod", 1, reason="maintenance", now=world.now()
    )
    _assert_skipped_untouched(world, world.event("ec2_state_stopping", source), "HOLD")


@pytest.mark.parametrize("gone_state", ["shutting-down", "terminated"])
def test_instance_already_going_away_is_skipped(world: World, gone_state: str) -> None:
    source = world.provision(1)
    world.clients.ec2.terminate_instances(InstanceIds=[source])  # moto goes straight to `terminated`
    event = world.event("ec2_state_stopping", source)
    if gone_state == "shutting-down":
        from moto.ec2.models import ec2_backends

        instance = ec2_backends["123456789012"]["us-east-1"].get_instance(source)
        instance._state.name, instance._state.code = "shutting-down", 32
    _assert_skipped_untouched(world, event, gone_state)


def test_node_without_configuration_is_skipped_with_a_notice_naming_it(world: World) -> None:
    stray = world.launch_by_hand(tags={contract.TAG_NODE_ID: "7"})
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", stray, 7))
    assert result.outcome == "SKIPPED" and "node 7" in result.reason
    assert {(c.service, c.operation) for c in world.calls.mutating()} == {
        ("sns", "Publish"),
        ("events", "PutEvents"),
    }
    assert '"node_id": 7' in world.calls.named("Publish")[0].params["Message"]
    assert world.state_of(stray) == "running"


def test_two_live_instances_with_the_same_node_id_are_refused_with_a_notice(world: World) -> None:
    node = state.new_node(
        "prod", 9, state.NodeConfig(world.launch_template_id, "1", world.target_group_arn), world.now()
    )
    state.save_node(world.clients.dynamodb, world.settings.table_name, node, expected_version=None)
    first = world.launch_by_hand(tags={contract.TAG_NODE_ID: "9"})
    second = world.launch_by_hand(tags={contract.TAG_NODE_ID: "9"})
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", first, 9))
    assert result.outcome == "SKIPPED" and "several live instances" in result.reason
    assert {(c.service, c.operation) for c in world.calls.mutating()} == {
        ("sns", "Publish"),
        ("events", "PutEvents"),
    }
    assert sorted(json.loads(world.calls.named("Publish")[0].params["Message"])["instance_ids"]) == sorted(
        [first, second]
    )
    assert world.node(9).current_instance_id is None
