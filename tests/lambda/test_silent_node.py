"""A node that goes silent (frozen, cut off, lost with its AZ, or its agent killed with the monitor): its
monitor metric stops, the alarm goes INSUFFICIENT_DATA and sends no event. The reconciler switches it once
the silence outlasts `silent_after_seconds`; a shorter silence (a booting instance) and a held node are
left alone. moto does not evaluate alarms: the tests set the state the missing data would give."""

from __future__ import annotations

import pytest
from switcher import contract, state
from switcher.reconcile import ALARM_RAISED, reconcile

from tests.helpers.world import World


def _silence(world: World, node_id: int) -> None:
    """The monitor metric stops: after its evaluation periods the alarm is INSUFFICIENT_DATA."""
    world.clients.cloudwatch.set_alarm_state(
        AlarmName=contract.monitor_alarm_name(world.settings.vpc_name, node_id),
        StateValue=contract.ALARM_SILENT_STATE,
        StateReason="Insufficient Data: 3 datapoints were unknown.",
    )


def test_a_node_silent_past_the_bound_is_switched(world: World) -> None:
    source = world.provision(1)
    _silence(world, 1)
    world.advance(world.settings.silent_after_seconds + 1)
    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    # The reconciler raises the alarm (an invocation of its own per node switches it, not this sweep).
    assert [a["outcome"] for a in report.actions] == [ALARM_RAISED], report
    assert "silent" in report.actions[0]["reason"]
    alarm = world.clients.cloudwatch.describe_alarms(
        AlarmNames=[contract.monitor_alarm_name(world.settings.vpc_name, 1)]
    )["MetricAlarms"][0]
    assert alarm["StateValue"] == contract.ALARM_TRIGGER_STATE and "silent" in alarm["StateReason"]
    # CloudWatch sends that state change to EventBridge; its delivery switches the node.
    result = world.run(world.event("alarm_monitor_alarm", source))
    assert result.outcome == state.SUCCEEDED
    assert world.node(1).current_instance_id not in (None, source)


def test_a_booting_instance_silent_within_its_grace_is_not_switched(world: World) -> None:
    source = world.provision(1)
    _silence(world, 1)  # no datapoint yet: the agent is still starting
    world.advance(world.settings.silent_after_seconds - 30)
    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert report.actions == []
    assert world.node(1).current_instance_id == source


def test_a_held_node_that_goes_silent_is_not_switched(world: World) -> None:
    source = world.provision(1)
    state.hold(
        world.clients.dynamodb, world.settings.table_name, "prod", 1, reason="patching", now=world.now()
    )
    _silence(world, 1)
    world.advance(10 * world.settings.silent_after_seconds)
    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert report.actions == []
    assert world.node(1).current_instance_id == source and world.state_of(source) == "running"


def test_a_silent_node_switched_after_the_run_read_it_does_not_get_its_alarm_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run reads the nodes and alarms when it begins and raises the alarms of silent nodes later. If an
    event switched the node meanwhile, its monitor alarm (set by name) now watches the replacement:
    raising it would switch the healthy replacement. The run raises it only for the node as it read it."""
    from switcher import reconcile as reconcile_module

    source = world.provision(1)
    _silence(world, 1)
    world.advance(world.settings.silent_after_seconds + 1)
    nodes = state.list_nodes(world.clients.dynamodb, world.settings.table_name, world.settings.vpc_name)
    alarms = reconcile_module._node_alarms(world.clients.cloudwatch, world.settings.vpc_name)
    world.clients.ec2.stop_instances(InstanceIds=[source])  # meanwhile: the node fails for good, an event
    assert world.run(world.event("ec2_state_stopping", source)).outcome == state.SUCCEEDED
    monkeypatch.setattr(reconcile_module.state, "list_nodes", lambda *_a, **_k: nodes)
    monkeypatch.setattr(reconcile_module, "_node_alarms", lambda *_a, **_k: alarms)

    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)

    assert ALARM_RAISED not in [a["outcome"] for a in report.actions], report
    alarm = world.clients.cloudwatch.describe_alarms(
        AlarmNames=[contract.monitor_alarm_name(world.settings.vpc_name, 1)]
    )["MetricAlarms"][0]
    assert alarm["StateValue"] != contract.ALARM_TRIGGER_STATE
