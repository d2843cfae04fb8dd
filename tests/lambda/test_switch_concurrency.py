"""One failure delivered three times at once (state change `stopping`, `stopped`, monitor alarm)
against a ThreadedMotoServer on 127.0.0.1: exactly one replacement, every time."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from switcher.switch import SwitchResult

from swr_local.emulator import REGION, moto_server
from tests.helpers.aws_faults import aws_faults
from tests.helpers.world import World, build_world

#: 20 repetitions keep `make test` within its 5 minutes on 2 cores (about 2.4 s each); removing the claim's
#: condition fails the first one. SWR_CONCURRENCY_REPETITIONS raises it (e.g. 200) for a longer hunt.
REPETITIONS = int(os.environ.get("SWR_CONCURRENCY_REPETITIONS", "20"))
TRIGGERS = ("ec2_state_stopping", "ec2_state_stopped", "alarm_monitor_alarm")


@pytest.fixture(scope="module")
def server_world() -> Iterator[World]:
    """One moto server (and one world) for the module; each repetition uses a fresh node."""
    with aws_faults(), moto_server(region=REGION) as server:
        yield build_world(endpoint_url=server.endpoint_url)


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
    assert world.every_instance_id_of(node_id) == {source, node.current_instance_id}
    assert [i["InstanceId"] for i in world.node_instances(node_id)] == [node.current_instance_id]
    assert len(world.switches(node_id)) == 1


RECONCILE_REPETITIONS = 10


@pytest.mark.e2e
@pytest.mark.parametrize("repetition", range(RECONCILE_REPETITIONS))
def test_events_and_a_reconcile_run_at_once_make_exactly_one_replacement(
    server_world: World, repetition: int
) -> None:
    del repetition
    # The reconciler decides with the same function and claims with the same conditional write: an
    # event delivery and a reconcile run that both see the stopped node never both switch it.
    from switcher.reconcile import reconcile

    # A world of its own (own table): the sweep sees this node only.
    world = build_world(endpoint_url=server_world.clients.ec2.meta.endpoint_url)
    node_id = 1
    source = world.provision(node_id)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    start = threading.Barrier(3)
    outcomes: list[str] = []
    switch_ids: set[str] = set()
    errors: list[BaseException] = []

    def deliver(name: str) -> None:
        start.wait()
        try:
            result = world.run(world.event(name, source, node_id))
            outcomes.append(result.outcome)
            if result.switch_id and result.outcome == "SUCCEEDED":
                switch_ids.add(result.switch_id)
        except BaseException as err:
            errors.append(err)

    def sweep() -> None:
        start.wait()
        try:
            report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
            for action in report.actions:
                if action["node_id"] == node_id:
                    outcomes.append(action["outcome"])
                    if action["outcome"] == "SUCCEEDED":
                        switch_ids.add(action["switch_id"])
        except BaseException as err:
            errors.append(err)

    threads = [
        threading.Thread(target=deliver, args=("ec2_state_stopping",)),
        threading.Thread(target=deliver, args=("ec2_state_stopped",)),
        threading.Thread(target=sweep),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert outcomes.count("SUCCEEDED") == 1 and len(switch_ids) == 1, outcomes
    node = world.node(node_id)
    assert node.current_instance_id is not None
    assert world.every_instance_id_of(node_id) == {source, node.current_instance_id}
    assert len(world.switches(node_id)) == 1
