"""Capacity errors move the launch to the next AZ at once, whatever HTTP status EC2 sends them with; with
no AZ left the source stays fenced; throttling is retried by botocore's retry mode until the switch
completes. The fault helper injects each error with EC2's own status (InsufficientInstanceCapacity is a
server error, 5xx, which botocore retries unless told otherwise) and counts the attempts."""

from __future__ import annotations

import dataclasses
import json

import pytest
from switcher import state
from switcher.clients import make_clients, retry_config

from tests.helpers.aws_faults import FaultInjector, fast_retries, record_calls, status_of
from tests.helpers.world import REGION, World


def _stopped_node(world: World) -> str:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    return source


@pytest.mark.parametrize(
    "code", ["InsufficientInstanceCapacity", "InsufficientFreeAddressesInSubnet", "Unsupported"]
)
def test_capacity_error_in_one_of_two_other_azs_lands_in_the_other(
    world: World, faults: FaultInjector, code: str
) -> None:
    source = _stopped_node(world)  # in us-east-1a: candidates are 1b then 1c
    refusal = faults.fail_in_subnets({world.subnets["us-east-1b"]}, code)
    with fast_retries():  # without the fix, a 5xx would be retried: keep that quick, count it instead
        result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "SUCCEEDED" and result.replacement_az == "us-east-1c"
    assert refusal.injected == 1, f"{code} (HTTP {refusal.status}) was sent {refusal.injected} times"
    (switch,) = world.switches(1)
    assert switch.az_errors.keys() == {"us-east-1b"} and code in switch.az_errors["us-east-1b"]
    assert len(world.node_instances(1)) == 1


def test_capacity_errors_are_injected_with_ec2s_status() -> None:
    # "Error codes for the Amazon EC2 API": server errors (5xx) vs client errors (4xx).
    assert status_of("ec2", "InsufficientInstanceCapacity") >= 500
    assert status_of("ec2", "RequestLimitExceeded") >= 500
    assert status_of("ec2", "InsufficientFreeAddressesInSubnet") == 400
    assert status_of("ec2", "Unsupported") == 400


def test_with_the_lambdas_retry_config_each_refusing_az_is_asked_once(
    world: World, faults: FaultInjector
) -> None:
    # The Lambda builds its clients with adaptive mode, max_attempts 10 (botocore counts retries: 11
    # attempts). Without the fix each refusing AZ is asked 11 times, up to ~45 s of botocore's backoff
    # for a 5xx, before the next AZ is tried.
    clients = make_clients(region_name=REGION, config=retry_config())  # the Lambda's: adaptive, 10
    world = dataclasses.replace(world, clients=clients, calls=record_calls(clients.ec2))
    source = _stopped_node(world)
    refusals = [faults.fail_in_subnets({world.subnets[az]}) for az in ("us-east-1b", "us-east-1c")]
    with fast_retries():
        result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "FAILED"
    assert [r.injected for r in refusals] == [1, 1]
    assert [r.status for r in refusals] == [500, 500]


def test_throttling_before_a_capacity_error_is_still_retried(world: World, faults: FaultInjector) -> None:
    source = _stopped_node(world)
    subnet_b = world.subnets["us-east-1b"]
    throttled = faults.fail(
        "ec2",
        "RunInstances",
        "RequestLimitExceeded",
        times=2,
        when=lambda r: r._get_param("SubnetId") == subnet_b,
    )
    refusal = faults.fail_in_subnets({subnet_b})
    with fast_retries():
        result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "SUCCEEDED" and result.replacement_az == "us-east-1c"
    assert (throttled.injected, throttled.status, refusal.injected) == (2, 503, 1)


def test_no_capacity_anywhere_keeps_the_source_fenced_and_stopped_and_records_failed(
    world: World, faults: FaultInjector
) -> None:
    source = _stopped_node(world)
    faults.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", source))

    assert result.outcome == "FAILED"
    assert world.state_of(source) == "stopped"
    assert [g["GroupId"] for g in world.instance(source)["SecurityGroups"]] == [world.blackhole_sg]
    assert world.calls.named("TerminateInstances") == []
    node = world.node(1)
    assert (node.state, node.current_instance_id) == (state.FAILED, source)
    (switch,) = world.switches(1)
    assert switch.outcome == state.SWITCH_FAILED
    assert set(switch.az_errors) == {"us-east-1b", "us-east-1c"}
    notice = json.loads(world.calls.named("Publish")[0].params["Message"])
    assert notice["outcome"] == "FAILED" and set(notice["az_errors"]) == {"us-east-1b", "us-east-1c"}
    # A FAILED node is left alone until an operator resumes it.
    assert world.run(world.event("ec2_state_stopped", source)).outcome == "SKIPPED"


def test_throttling_bursts_are_retried_and_the_switch_completes(world: World, faults: FaultInjector) -> None:
    source = _stopped_node(world)
    bursts = [
        faults.fail("ec2", "RunInstances", "RequestLimitExceeded", times=3),
        faults.fail("ec2", "ModifyInstanceAttribute", "RequestLimitExceeded", times=2),
        faults.fail("elbv2", "RegisterTargets", "Throttling", times=2),
        faults.fail("dynamodb", "TransactWriteItems", "ThrottlingException", times=2),
    ]
    with fast_retries():
        result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "SUCCEEDED"
    assert [b.injected for b in bursts] == [3, 2, 2, 2]
    assert [i["InstanceId"] for i in world.node_instances(1)] == [result.replacement_instance_id]
    assert world.targets() == {result.replacement_instance_id}


def test_a_failed_node_resumed_by_the_operator_switches_with_the_groups_it_had_before_the_fence(
    world: World, faults: FaultInjector
) -> None:
    source = _stopped_node(world)
    groups_before = [g["GroupId"] for g in world.instance(source)["SecurityGroups"]]
    no_capacity = faults.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "FAILED"

    # Capacity is back; the operator resumes the node and drills it (the status alarm fires).
    no_capacity.times = 0
    state.resume(world.clients.dynamodb, world.settings.table_name, "prod", 1, now=world.now())
    result = world.run(world.event("alarm_status_alarm", source))

    assert result.outcome == "SUCCEEDED" and result.replacement_instance_id is not None
    replacement = world.instance(result.replacement_instance_id)
    # The source carries only the blackhole group now; its replacement must not inherit that.
    assert [g["GroupId"] for g in replacement["SecurityGroups"]] == groups_before
    assert world.state_of(source) == "terminated"


def test_a_replacement_that_dies_while_pending_is_replaced_in_the_next_az(
    world: World, faults: FaultInjector
) -> None:
    source = _stopped_node(world)  # in us-east-1a: candidates are 1b then 1c
    faults.die_while_pending({world.subnets["us-east-1b"]})
    result = world.run(world.event("ec2_state_stopping", source))

    assert result.outcome == "SUCCEEDED" and result.replacement_az == "us-east-1c"
    (switch,) = world.switches(1)
    assert "Server.InsufficientInstanceCapacity" in switch.az_errors["us-east-1b"]
    # The dead one is gone; exactly one live instance, the replacement, serves the node.
    assert [i["InstanceId"] for i in world.node_instances(1)] == [result.replacement_instance_id]
    assert world.targets() == {result.replacement_instance_id}
    assert set(world.alarm_instances(1).values()) == {result.replacement_instance_id}
    assert world.state_of(source) == "terminated"


def test_replacements_dying_in_every_other_az_keep_the_source_fenced_and_record_failed(
    world: World, faults: FaultInjector
) -> None:
    source = _stopped_node(world)
    faults.die_while_pending({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    result = world.run(world.event("ec2_state_stopping", source))

    assert result.outcome == "FAILED"
    assert world.state_of(source) == "stopped"
    assert [g["GroupId"] for g in world.instance(source)["SecurityGroups"]] == [world.blackhole_sg]
    assert world.node_instances(1) == [world.instance(source)]
    (switch,) = world.switches(1)
    assert set(switch.az_errors) == {"us-east-1b", "us-east-1c"}
    assert world.node(1).state == state.FAILED
