"""A switcher that dies at any point is resumed by the next delivery: exactly one replacement, always."""

from __future__ import annotations

from dataclasses import replace

import pytest
from switcher import contract, provision, state
from switcher.phases import CLAIMED, Phase

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.world import World, build_world


class Crash(Exception):
    """An error inside the switcher (throttling beyond retries, a bug, ...): it is caught and re-raised."""


class Killed(BaseException):
    """The invocation is killed (Lambda timeout): no handler runs, the lease is NOT released."""


CRASH_POINTS = [(CLAIMED, "recorded")] + [(p.value, m) for p in Phase for m in ("acted", "recorded")]


def _crash_at(point: tuple[str, str], exc: type[BaseException] = Crash):
    def hook(phase: str, moment: str) -> None:
        if (phase, moment) == point:
            raise exc(f"crash at {phase}/{moment}")

    return hook


def _assert_exactly_one_clean_switch(world: World, source: str) -> str:
    node = world.node(1)
    assert node.state == state.ACTIVE and node.lease_until == 0
    replacement = node.current_instance_id
    assert replacement is not None and replacement != source
    # Exactly one instance was ever launched for the node: no orphan, no double launch.
    assert world.every_instance_id_of(1) == {source, replacement}
    assert [i["InstanceId"] for i in world.node_instances(1)] == [replacement]
    terminations = [c for c in world.calls.named("TerminateInstances") if c.params["InstanceIds"] == [source]]
    assert len(terminations) == 1
    assert world.state_of(source) == "terminated"
    assert world.targets() == {replacement}
    assert set(world.alarm_instances(1).values()) == {replacement}
    (switch,) = world.switches(1)
    assert switch.outcome == state.SUCCEEDED and switch.replacement_instance_id == replacement
    assert [p.value for p in Phase if p.value not in switch.timeline] == []
    return replacement


@pytest.mark.parametrize("order", ["swr", "vendor"])
@pytest.mark.parametrize("point", CRASH_POINTS, ids=[f"{p}-{m}" for p, m in CRASH_POINTS])
def test_crash_at_any_phase_then_redelivery_ends_with_exactly_one_replacement(
    faults: object, order: str, point: tuple[str, str]
) -> None:
    world = build_world(order=order)
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    event = world.event("ec2_state_stopping", source)

    with pytest.raises(Crash):
        world.run(event, hook=_crash_at(point))
    if point != (Phase.CLOSE.value, "recorded"):
        node = world.node(1)
        assert node.state == state.SWITCHING and node.lease_until == 0, "lease released for the retry"
        assert world.switches(1)[0].error is not None

    world.run(event)  # Lambda's async retry, or the next event about the node
    world.run(event)  # a late duplicate changes nothing
    _assert_exactly_one_clean_switch(world, source)


#: A kill after the close is recorded leaves nothing to resume.
KILL_POINTS = [p for p in CRASH_POINTS if p != (Phase.CLOSE.value, "recorded")]


@pytest.mark.parametrize("point", KILL_POINTS, ids=[f"{p}-{m}" for p, m in KILL_POINTS])
def test_killed_invocation_keeps_its_lease_until_it_expires_then_a_later_event_takes_over(
    world: World, point: tuple[str, str]
) -> None:
    # Killed (a Lambda timeout) runs no error handler: whatever was not yet written is simply lost,
    # including phases whose timestamps wait for the next write.
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    with pytest.raises(Killed):
        world.run(world.event("ec2_state_stopping", source), hook=_crash_at(point, Killed))

    mutated = len(world.calls.mutating())
    early = world.run(world.event("ec2_state_stopped", source))
    assert early.outcome == "SKIPPED" and "lease" in early.reason
    assert world.calls.mutating()[mutated:] == []

    world.advance(world.settings.lease_seconds + 1)
    resumed = world.run(world.event("alarm_monitor_alarm", source))
    assert resumed.outcome == "SUCCEEDED"
    replacement = _assert_exactly_one_clean_switch(world, source)
    assert resumed.replacement_instance_id == replacement
    assert world.switches(1)[0].attempts == 2


def _update_launch_template_version(world: World) -> str:
    """A deploy: a new launch template version, pushed to the node's config by the custom resource."""
    version = str(
        world.clients.ec2.create_launch_template_version(
            LaunchTemplateId=world.launch_template_id, LaunchTemplateData={"InstanceType": "t3.medium"}
        )["LaunchTemplateVersion"]["VersionNumber"]
    )
    request = world.cfn_request("Update", 1)
    request["OldResourceProperties"] = dict(request["ResourceProperties"])
    request["ResourceProperties"][contract.PROP_LAUNCH_TEMPLATE_VERSION] = version
    provision.handle(request, clients=world.clients, settings=world.settings, now=world.now)
    # The node is SWITCHING: the Update is kept aside and applies once the switch closes.
    assert world.node(1).pending_config.launch_template_version == version  # type: ignore[union-attr]
    return version


def _force_launch_template_version(world: World) -> str:
    """A node config changed under a switch recorded before switches kept their launch template (a switch
    in progress across an upgrade of swr): the resumed launch can only read the node's current config."""
    version = str(
        world.clients.ec2.create_launch_template_version(
            LaunchTemplateId=world.launch_template_id, LaunchTemplateData={"InstanceType": "t3.medium"}
        )["LaunchTemplateVersion"]["VersionNumber"]
    )
    node = world.node(1)
    assert node.config is not None
    changed = state.with_config(node, replace(node.config, launch_template_version=version), world.now())
    state.save_node(world.clients.dynamodb, world.settings.table_name, changed, expected_version=node.version)
    return version


def _crash_right_after_the_launch(world: World) -> tuple[str, dict]:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    event = world.event("ec2_state_stopping", source)
    with pytest.raises(Crash):
        world.run(event, hook=_crash_at((Phase.LAUNCH.value, "acted")))
    return source, event


def test_a_deploy_between_a_crashed_launch_and_its_resume_launches_with_the_recorded_template_version(
    world: World,
) -> None:
    source, event = _crash_right_after_the_launch(world)
    version = _update_launch_template_version(world)

    result = world.run(event)

    assert result.outcome == "SUCCEEDED"
    launches = world.calls.named("RunInstances")[1:]  # the first is the provisioning
    assert len(launches) == 2
    assert launches[0].params == launches[1].params  # same ClientToken, same request: same instance
    assert launches[1].params["LaunchTemplate"]["Version"] == "1"
    (switch,) = world.switches(1)
    assert (switch.launch_template_id, switch.launch_template_version) == (world.launch_template_id, "1")
    _assert_exactly_one_clean_switch(world, source)
    # The deploy's config took effect when the switch closed: the next switch launches with it.
    assert world.node(1).config.launch_template_version == version  # type: ignore[union-attr]


def _forget_recorded_template(world: World) -> None:
    """Make the switch look recorded by a switcher that did not yet record the launch template."""
    (switch,) = world.switches(1)
    switch.launch_template_id = switch.launch_template_version = None
    world.clients.dynamodb.put_item(TableName=world.settings.table_name, Item=state.switch_to_item(switch))


def test_a_token_reused_with_other_parameters_takes_the_replacement_that_token_launched(
    world: World, faults: FaultInjector
) -> None:
    source, event = _crash_right_after_the_launch(world)
    (launched,) = [i["InstanceId"] for i in world.node_instances(1) if i["InstanceId"] != source]
    _forget_recorded_template(world)
    _force_launch_template_version(world)

    result = world.run(event)

    # EC2 refused the token with the new version (IdempotentParameterMismatch, a client error): no retry,
    # the instance the token launched is this switch's replacement.
    assert result.outcome == "SUCCEEDED" and result.replacement_instance_id == launched
    assert len(world.calls.named("RunInstances")) == 3  # provisioning, first launch, refused repeat
    assert _assert_exactly_one_clean_switch(world, source) == launched


def test_a_token_reused_with_other_parameters_whose_instance_is_gone_moves_to_the_next_az(
    world: World, faults: FaultInjector
) -> None:
    source, event = _crash_right_after_the_launch(world)
    (launched,) = [i["InstanceId"] for i in world.node_instances(1) if i["InstanceId"] != source]
    refused_az = world.instance(launched)["Placement"]["AvailabilityZone"]
    world.clients.ec2.terminate_instances(InstanceIds=[launched])  # e.g. capacity lost while pending
    _forget_recorded_template(world)
    _force_launch_template_version(world)

    result = world.run(event)

    assert result.outcome == "SUCCEEDED" and result.replacement_az not in (None, refused_az)
    (switch,) = world.switches(1)
    assert switch.az_errors[refused_az].startswith("IdempotentParameterMismatch")
    assert [i["InstanceId"] for i in world.node_instances(1)] == [result.replacement_instance_id]
