"""The whole switch against moto: what the replacement inherits, where it lands, and what moves with it."""

from __future__ import annotations

import json

import pytest
from switcher import contract, state
from switcher.phases import plan

from tests.helpers.world import World


def aws_tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", []) if t["Key"].startswith("aws:")}


USER_TAGS = {"Name": "billing-app", "CostCenter": "4711"}


def _switch(world: World, event_name: str, *, stop_first: bool = True) -> tuple[str, str]:
    source = world.provision(1, user_tags=USER_TAGS)  # its profile comes from the launch template
    if stop_first:  # what the FaultScript does
        world.clients.ec2.stop_instances(InstanceIds=[source])
    world.calls.clear()
    result = world.run(world.event(event_name, source))
    assert result.outcome == "SUCCEEDED", result
    assert result.replacement_instance_id is not None
    return source, result.replacement_instance_id


@pytest.mark.parametrize("event_name", ["ec2_state_stopping", "ec2_state_stopped", "alarm_monitor_alarm"])
def test_switch_replaces_the_node_in_another_az_with_everything_it_inherits(
    world: World, event_name: str
) -> None:
    source, replacement = _switch(world, event_name)
    old, new = world.instance(source), world.instance(replacement)

    assert new["Placement"]["AvailabilityZone"] != old["Placement"]["AvailabilityZone"]
    assert new["SubnetId"] in world.subnets.values()
    assert new["ImageId"] == old["ImageId"]
    assert new["InstanceType"] == old["InstanceType"]
    assert new["KeyName"] == world.key_name
    assert [g["GroupId"] for g in new["SecurityGroups"]] == [world.app_sg]
    assert new["IamInstanceProfile"]["Arn"] == world.profile_arn
    tags = {t["Key"]: t["Value"] for t in new["Tags"]}
    assert {k: tags[k] for k in USER_TAGS} == USER_TAGS
    assert tags[contract.TAG_NODE_ID] == "1"
    assert tags[contract.TAG_VPC] == world.settings.vpc_name
    (switch,) = world.switches(1)
    assert tags[contract.TAG_SWITCH_ID] == switch.switch_id
    # The source carries AWS-reserved tags (launch template id); they are never copied.
    assert aws_tags(old)
    assert switch.snapshot is not None and not any(k.startswith("aws:") for k in switch.snapshot.tags)

    assert world.state_of(source) == "terminated"
    assert world.targets() == {replacement}
    assert set(world.alarm_instances(1).values()) == {replacement}


def test_the_replacement_is_registered_by_ip_before_the_switcher_waits_for_it_to_run(world: World) -> None:
    # ELBv2 takes an instance id only once it runs, an IP at once: the load balancer's registration
    # delay then overlaps the boot.
    _, replacement = _switch(world, "ec2_state_stopping")
    calls = [(c.operation, c.params) for c in world.calls.calls]
    (register_at,) = [i for i, (op, _) in enumerate(calls) if op == "RegisterTargets"]
    first_poll_at = next(
        i
        for i, (op, p) in enumerate(calls)
        if op == "DescribeInstances" and p.get("InstanceIds") == [replacement]
    )
    assert register_at < first_poll_at
    assert calls[register_at][1]["Targets"] == [{"Id": world.instance(replacement)["PrivateIpAddress"]}]
    assert world.targets() == {replacement}


def test_the_target_group_ends_with_the_replacement_only_whatever_it_held(world: World) -> None:
    source = world.provision(1)
    # A target registered by hand (or a replacement that died while pending) is stale after a switch.
    stray = "10.0.2.99"
    world.clients.elbv2.register_targets(TargetGroupArn=world.target_group_arn, Targets=[{"Id": stray}])
    assert world.targets() == {source, stray}
    world.clients.ec2.stop_instances(InstanceIds=[source])
    result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "SUCCEEDED"
    assert world.targets() == {result.replacement_instance_id}


def test_alarm_that_fired_for_the_source_is_re_armed_for_the_replacement(world: World) -> None:
    source = world.provision(1)
    monitor = contract.monitor_alarm_name("prod", 1)
    world.clients.cloudwatch.set_alarm_state(
        AlarmName=monitor, StateValue="ALARM", StateReason="monitor died"
    )
    result = world.run(world.event("alarm_monitor_alarm", source))
    assert result.outcome == "SUCCEEDED"
    (alarm,) = world.clients.cloudwatch.describe_alarms(AlarmNames=[monitor])["MetricAlarms"]
    assert alarm["StateValue"] == "OK" and result.replacement_instance_id in alarm["StateReason"]


def test_source_is_fenced_before_it_is_terminated_and_the_record_has_a_full_timeline(world: World) -> None:
    source, replacement = _switch(world, "ec2_state_stopping")
    mutations = [(c.operation, c.params) for c in world.calls.mutating() if c.service == "ec2"]
    fence_at = next(
        i
        for i, (op, p) in enumerate(mutations)
        if op == "ModifyInstanceAttribute"
        and p["InstanceId"] == source
        and p["Groups"] == [world.blackhole_sg]
    )
    terminate_at = next(
        i
        for i, (op, p) in enumerate(mutations)
        if op == "TerminateInstances" and p["InstanceIds"] == [source]
    )
    assert fence_at < terminate_at
    # The terminated source carries the blackhole group only.
    assert [g["GroupId"] for g in world.instance(source)["SecurityGroups"]] == [world.blackhole_sg]

    node = world.node(1)
    assert (node.state, node.current_instance_id) == (state.ACTIVE, replacement)
    assert node.current_az == world.instance(replacement)["Placement"]["AvailabilityZone"]
    (switch,) = world.switches(1)
    assert switch.outcome == state.SUCCEEDED
    expected = ["detected", "claimed", *(p.value for p in plan(switch.order))]
    assert list(switch.timeline) == expected
    assert sorted(switch.timeline.values()) == list(switch.timeline.values())  # phases in time order
    assert switch.snapshot is not None and switch.snapshot.security_group_ids == (world.app_sg,)


def test_completion_notice_is_published_on_sns_and_eventbridge(world: World) -> None:
    source, replacement = _switch(world, "ec2_state_stopping")
    (publish,) = world.calls.named("Publish")
    notice = json.loads(publish.params["Message"])
    assert publish.params["TopicArn"] == world.settings.topic_arn
    assert (notice["source_instance_id"], notice["replacement_instance_id"]) == (source, replacement)
    assert notice["outcome"] == state.SUCCEEDED and "done" in notice["timeline"]
    (put,) = world.calls.named("PutEvents")
    entry = put.params["Entries"][0]
    assert (entry["Source"], entry["DetailType"]) == (
        contract.NOTICE_EVENT_SOURCE,
        contract.SWITCH_COMPLETED_DETAIL_TYPE,
    )
    assert json.loads(entry["Detail"])["switch_id"] == notice["switch_id"]


def test_status_check_alarm_on_a_running_instance_force_stops_it_before_replacing(world: World) -> None:
    source, replacement = _switch(world, "alarm_status_alarm", stop_first=False)
    (stop,) = world.calls.named("StopInstances")
    assert stop.params == {"InstanceIds": [source], "Force": True}
    assert world.state_of(source) == "terminated"
    assert world.targets() == {replacement}


def test_alarm_event_is_resolved_through_the_alarms_instance_dimension(world: World) -> None:
    source = world.provision(1)
    event = world.event("alarm_monitor_alarm", source)
    dims = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
    del dims["InstanceId"]  # an alarm without the dimension: the node id in its name leads to the instance
    result = world.run(event)
    assert result.outcome == "SUCCEEDED" and result.source_instance_id == source


def test_vendor_order_terminates_the_source_before_launching(faults: object) -> None:
    from tests.helpers.world import build_world

    world = build_world(order="vendor")
    source = world.provision(1)
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopped", source))
    assert result.outcome == "SUCCEEDED"
    ops = [c.operation for c in world.calls.mutating() if c.service == "ec2"]
    assert ops.index("ModifyInstanceAttribute") < ops.index("TerminateInstances") < ops.index("RunInstances")
    assert world.targets() == {result.replacement_instance_id}
    assert world.switches(1)[0].order == "vendor"
