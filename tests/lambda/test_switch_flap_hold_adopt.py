"""Flap guard, operator hold/resume, and adoption of instances swr did not launch."""

from __future__ import annotations

import json

from switcher import contract, state

from tests.helpers.world import World


def _fail_current(world: World) -> str:
    current = world.node(1).current_instance_id
    assert current is not None
    world.clients.ec2.stop_instances(InstanceIds=[current])
    return current


def test_flap_guard_holds_the_node_after_n_switches_in_the_window(world: World) -> None:
    world.provision(1)
    for _ in range(world.settings.flap_max_switches):
        current = _fail_current(world)
        assert world.run(world.event("ec2_state_stopping", current)).outcome == "SUCCEEDED"
        world.advance(60)

    current = _fail_current(world)
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", current))
    assert result.outcome == "HELD"
    node = world.node(1)
    assert node.state == state.HOLD and "flap guard" in (node.hold_reason or "")
    assert world.calls.named("RunInstances") == []
    (put,) = world.calls.named("PutEvents")
    assert put.params["Entries"][0]["DetailType"] == contract.NODE_HELD_DETAIL_TYPE

    # Outside the window the count starts over: after resume the node switches again.
    state.resume(world.clients.dynamodb, world.settings.table_name, "prod", 1, now=world.now())
    assert world.run(world.event("ec2_state_stopped", current)).outcome == "SUCCEEDED"


def test_switches_outside_the_window_do_not_count(world: World) -> None:
    world.provision(1)
    for _ in range(world.settings.flap_max_switches + 1):
        current = _fail_current(world)
        assert world.run(world.event("ec2_state_stopping", current)).outcome == "SUCCEEDED"
        world.advance(world.settings.flap_window_seconds)


def test_hold_then_resume_by_the_operator(world: World) -> None:
    source = world.provision(1)
    held = state.hold(
        world.clients.dynamodb, world.settings.table_name, "prod", 1, reason="patching", now=world.now()
    )
    assert (held.state, held.hold_reason) == (state.HOLD, "patching")
    world.clients.ec2.stop_instances(InstanceIds=[source])  # the operator's planned stop
    assert world.run(world.event("ec2_state_stopped", source)).outcome == "SKIPPED"
    assert world.state_of(source) == "stopped"

    resumed = state.resume(world.clients.dynamodb, world.settings.table_name, "prod", 1, now=world.now())
    assert resumed.state == state.ACTIVE and resumed.hold_reason is None
    assert world.run(world.event("ec2_state_stopped", source)).outcome == "SUCCEEDED"


def test_hand_launched_tagged_instance_of_a_configured_node_is_adopted_and_switched(world: World) -> None:
    # The node's config exists (custom resource), no instance recorded: e.g. migrated from the vendor product.
    node = state.new_node(
        "prod",
        5,
        state.NodeConfig(world.launch_template_id, "1", world.target_group_arn, "swr-monitor"),
        world.now(),
    )
    state.save_node(world.clients.dynamodb, world.settings.table_name, node, expected_version=None)
    legacy = world.launch_by_hand(
        node_tag="5", subnet_id=world.subnets["us-east-1b"], security_group_ids=[world.app_sg]
    )
    world.clients.ec2.stop_instances(InstanceIds=[legacy])

    result = world.run(world.event("ec2_state_stopping", legacy, 5))
    assert result.outcome == "SUCCEEDED" and result.source_instance_id == legacy
    assert result.replacement_az != "us-east-1b"
    assert world.node(5).current_instance_id == result.replacement_instance_id
    assert world.state_of(legacy) == "terminated"
    assert json.loads(world.calls.named("Publish")[-1].params["Message"])["source_instance_id"] == legacy
