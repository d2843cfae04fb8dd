"""One failure delivered three times at once (state change `stopping`, `stopped`, monitor alarm)
against a ThreadedMotoServer on 127.0.0.1: exactly one replacement, every time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from switcher import contract
from switcher.switch import SwitchResult

from swr_local.emulator import REGION, moto_server
from tests.helpers.aws_faults import aws_faults
from tests.helpers.world import World, build_world

REPETITIONS = 50
TRIGGERS = ("ec2_state_stopping", "ec2_state_stopped", "alarm_monitor_alarm")


@pytest.fixture(scope="module")
def server_world() -> Iterator[World]:
    """One moto server (and one world) for the module; each repetition uses a fresh node."""
    with aws_faults(), moto_server(region=REGION) as server:
        yield build_world(endpoint_url=server.endpoint_url)


def _every_instance_of(world: World, node_id: int) -> set[str]:
    resp = world.clients.ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{contract.TAG_NODE_ID}", "Values": [str(node_id)]},
            {"Name": "vpc-id", "Values": [world.vpc_id]},
        ]
    )
    return {i["InstanceId"] for r in resp["Reservations"] for i in r["Instances"]}


@pytest.mark.e2e
@pytest.mark.parametrize("repetition", range(REPETITIONS))
def test_three_concurrent_deliveries_make_exactly_one_replacement(
    server_world: World, repetition: int
) -> None:
    world = server_world
    node_id = 100 + repetition
    source = world.provision(node_id)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    events = [world.event(name, source, node_id) for name in TRIGGERS]

    start = threading.Barrier(len(events))
    results: list[SwitchResult] = []
    errors: list[BaseException] = []

    def deliver(event: dict) -> None:
        start.wait()
        try:
            results.append(world.run(event))
        except BaseException as err:  # surfaced below: a thread's exception must fail the test
            errors.append(err)

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(r.outcome for r in results) == ["SKIPPED", "SKIPPED", "SUCCEEDED"]
    # The losers were stopped by the claim itself, not later: no second switch was ever started (an
    # unconditional claim lets each delivery start its own switch and lose only at its next write).
    (winner,) = [r for r in results if r.outcome == "SUCCEEDED"]
    assert {r.switch_id for r in results if r.switch_id} == {winner.switch_id}
    node = world.node(node_id)
    assert node.current_instance_id is not None
    assert _every_instance_of(world, node_id) == {source, node.current_instance_id}
    assert [i["InstanceId"] for i in world.node_instances(node_id)] == [node.current_instance_id]
    assert len(world.switches(node_id)) == 1
