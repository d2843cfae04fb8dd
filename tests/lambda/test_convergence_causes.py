"""Each way a switch used to end early and leave its node down, reproduced and shown converging now."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from switcher import contract, provision, state
from switcher.observability import metrics
from switcher.phases import Phase
from switcher.switch import run_event

from tests.helpers.aws_faults import FaultInjector, fast_retries
from tests.helpers.world import World, build_world


class Killed(BaseException):
    """The invocation dies (out of memory, crash, timeout): no handler of the switcher runs."""


def _at(point: tuple[str, str], action: Any) -> Any:
    """A phase hook that runs `action` once, the first time the switch reaches `point`."""
    fired: list[bool] = []

    def hook(phase: str, moment: str) -> None:
        if (phase, moment) == point and not fired:
            fired.append(True)
            action()

    return hook


def _kill() -> None:
    raise Killed("killed")


def _stopped(world: World) -> str:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    return source


def _notices(world: World, detail_type: str) -> list[dict[str, Any]]:
    return [
        json.loads(c.params["Message"])
        for c in world.calls.named("Publish")
        if c.params.get("Subject") == detail_type[:100]
    ]


def _assert_one_clean_replacement(world: World, source: str) -> str:
    node = world.node(1)
    assert node.state == state.ACTIVE and node.lease_until == 0
    current = node.current_instance_id
    assert current is not None and current != source
    assert world.state_of(current) == "running"
    assert [i["InstanceId"] for i in world.node_instances(1)] == [current]
    assert world.targets() == {current}
    assert set(world.alarm_instances(1).values()) == {current}
    return current


# --- a killed invocation: Lambda's retries of the same request resume it ------------------------------


def test_an_attempt_killed_mid_switch_is_resumed_by_lambdas_retry_of_the_same_request(world: World) -> None:
    source = _stopped(world)
    event = world.event("ec2_state_stopping", source)
    with pytest.raises(Killed):
        world.run(event, hook=_at((Phase.LAUNCH.value, "recorded"), _kill), request_id="req-1")
    assert world.node(1).lease_until > world.now() + 800  # the dead attempt's lease is still "live"

    world.advance(60)
    other = world.run(world.event("ec2_state_stopped", source), request_id="req-2")
    assert other.outcome == "SKIPPED" and "lease" in other.reason  # another request: the lease protects

    world.calls.clear()
    retried = world.run(event, request_id="req-1")  # Lambda's first retry, same request id
    assert retried.outcome == "SUCCEEDED"
    _assert_one_clean_replacement(world, source)
    (notice,) = _notices(world, contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE)
    assert notice["attempt"] == 2 and "killed" in notice["error"]


def test_a_failed_take_over_releases_the_lease_it_just_took(world: World, faults: FaultInjector) -> None:
    # The source's description after the take-over write used to run outside the error handling.
    source = _stopped(world)
    event = world.event("ec2_state_stopping", source)
    with pytest.raises(Killed):
        world.run(event, hook=_at((Phase.SNAPSHOT.value, "recorded"), _kill), request_id="req-1")
    world.advance(world.settings.lease_seconds + 1)
    taken = {"done": False}

    def after_write(**_: Any) -> None:
        taken["done"] = True

    world.clients.dynamodb.meta.events.register("after-call.dynamodb.TransactWriteItems", after_write)
    faults.fail(
        "ec2", "DescribeInstances", "InternalError", times=10**6, status=500, when=lambda r: taken["done"]
    )
    with fast_retries(), pytest.raises(ClientError):
        world.run(event, request_id="req-2")
    node = world.node(1)
    assert node.state == state.SWITCHING and node.lease_until == 0 and node.lease_owner is None


def test_a_write_that_committed_but_raised_still_releases_the_lease_by_owner(world: World) -> None:
    source = _stopped(world)
    writes = {"n": 0}

    def lose_response(**_: Any) -> None:
        writes["n"] += 1
        if writes["n"] == 2:  # the record after the snapshot: committed, then the response is lost
            raise ClientError(
                {"Error": {"Code": "InternalError", "Message": "response lost"}}, "TransactWriteItems"
            )

    world.clients.dynamodb.meta.events.register("after-call.dynamodb.TransactWriteItems", lose_response)
    with pytest.raises(ClientError):
        world.run(world.event("ec2_state_stopping", source), request_id="req-1")
    node = world.node(1)
    assert node.state == state.SWITCHING and node.lease_until == 0 and node.lease_owner is None
    world.advance(60)
    assert world.run(world.event("ec2_state_stopping", source), request_id="req-2").outcome == "SUCCEEDED"


# --- TransactionCanceledException: only a failed condition means "lost" ------------------------------


@pytest.mark.parametrize("code", ["TransactionConflict", "ThrottlingError"])
def test_a_transaction_cancelled_for_a_transient_reason_is_retried_not_read_as_a_lost_lease(
    world: World, faults: FaultInjector, code: str
) -> None:
    source = _stopped(world)
    faults.fail(
        "dynamodb",
        "TransactWriteItems",
        "TransactionCanceledException",
        times=2,
        extra={"CancellationReasons": [{"Code": code, "Message": "transient"}, {"Code": "None"}]},
    )
    result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "SUCCEEDED"
    _assert_one_clean_replacement(world, source)


def test_a_failed_condition_on_the_node_is_a_conflict(world: World, faults: FaultInjector) -> None:
    source = _stopped(world)
    faults.fail(
        "dynamodb",
        "TransactWriteItems",
        "TransactionCanceledException",
        times=1,
        extra={"CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]},
    )
    # The claim's condition "failed": the delivery reads the node again and decides again (still ACTIVE).
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "SUCCEEDED"


# --- a Custom::SwrNode Update or Delete during a switch ----------------------------------------------


@pytest.mark.parametrize(
    "point",
    [
        (Phase.SNAPSHOT.value, "recorded"),
        (Phase.LAUNCH.value, "recorded"),
        (Phase.MOVE_ALARMS.value, "acted"),
    ],
)
def test_an_update_during_a_switch_is_applied_after_it_and_never_breaks_it(
    world: World, point: tuple[str, str]
) -> None:
    source = _stopped(world)
    new_tg = world.new_target_group()
    update = world.cfn_request(
        "Update",
        1,
        ResourceProperties={"ServiceToken": "x", **world.node_props(1, TargetGroupArn=new_tg)},
        OldResourceProperties=world.node_props(1),
    )

    def do_update() -> None:
        provision.handle(update, clients=world.clients, settings=world.settings, now=world.now)

    result = world.run(world.event("ec2_state_stopping", source), hook=_at(point, do_update))
    assert result.outcome == "SUCCEEDED"
    node = world.node(1)
    assert node.state == state.ACTIVE and node.pending_config is None
    assert node.config is not None and node.config.target_group_arn == new_tg
    assert world.targets(new_tg) == {result.replacement_instance_id}
    assert world.targets() == set()  # the old group holds neither the replacement nor the source


DELETE_POINTS = [
    (Phase.FENCE.value, "acted"),
    (Phase.LAUNCH.value, "acted"),
    (Phase.MOVE_TRAFFIC.value, "acted"),
    (Phase.WAIT_RUNNING.value, "acted"),
    (Phase.MOVE_ALARMS.value, "acted"),
]


@pytest.mark.parametrize("point", DELETE_POINTS, ids=[p for p, _ in DELETE_POINTS])
def test_a_delete_during_a_switch_stops_it_and_leaves_nothing_behind(
    world: World, point: tuple[str, str]
) -> None:
    source = _stopped(world)
    delete = world.cfn_request("Delete", 1)

    def do_delete() -> None:
        provision.handle(delete, clients=world.clients, settings=world.settings, now=world.now)

    result = world.run(world.event("ec2_state_stopping", source), hook=_at(point, do_delete))
    assert result.outcome == "SKIPPED" and "deleted" in result.reason
    assert world.node_instances(1) == []  # 0 orphans
    assert world.alarm_instances(1) == {}
    assert world.targets() == set()
    assert world.node(1).state == state.DELETED
    (switch,) = world.switches(1)
    assert switch.outcome == state.SWITCH_CANCELLED
    # A late redelivery does nothing to a deleted node.
    assert world.run(world.event("ec2_state_stopped", source)).outcome == "SKIPPED"
    assert world.node_instances(1) == []


# --- a replacement that dies after `running`, before the close ----------------------------------------


@pytest.mark.parametrize("order", ["swr", "vendor"])
def test_a_replacement_that_dies_before_the_close_is_replaced_not_left_serving(
    faults: object, order: str
) -> None:
    world = build_world(order=order)
    source = _stopped(world)
    first: dict[str, str] = {}

    def crash_replacement() -> None:
        (switch,) = world.switches(1)
        assert switch.replacement_instance_id is not None
        first["id"] = switch.replacement_instance_id
        world.clients.ec2.stop_instances(InstanceIds=[switch.replacement_instance_id], Force=True)

    last_phase = Phase.TERMINATE_SOURCE if order == "swr" else Phase.MOVE_ALARMS
    result = world.run(
        world.event("ec2_state_stopping", source), hook=_at((last_phase.value, "recorded"), crash_replacement)
    )
    assert result.outcome == "SUCCEEDED"
    current = _assert_one_clean_replacement(world, source)
    assert current != first["id"] and world.state_of(first["id"]) == "terminated"


# --- an invocation that lost the node touches nothing --------------------------------------------------

STALE_POINTS = [(p.value, "acted") for p in Phase if p is not Phase.CLOSE]


@pytest.mark.parametrize("point", STALE_POINTS, ids=[p for p, _ in STALE_POINTS])
def test_a_stale_writer_makes_no_aws_mutation_after_its_lease_is_taken(
    world: World, point: tuple[str, str]
) -> None:
    # Invocation A stalls (here: in the hook) while B, whose clock runs ahead by more than the lease
    # (clock skew, or A paused), takes the switch over and completes it. A then wakes up.
    source = _stopped(world)
    skew = world.settings.lease_seconds + 31
    taken_over_at: dict[str, int] = {}

    def b_takes_over() -> None:
        b = run_event(
            world.event("alarm_monitor_alarm", source),
            clients=world.clients,
            settings=world.settings,
            now=lambda: world.now() + skew,
        )
        assert b.outcome == "SUCCEEDED"
        taken_over_at["calls"] = len(world.calls.calls)

    a = world.run(world.event("ec2_state_stopping", source), hook=_at(point, b_takes_over))
    assert a.outcome == "SKIPPED" and "lease lost" in a.reason
    after = [c for c in world.calls.calls[taken_over_at["calls"] :] if c.mutating and c.service != "dynamodb"]
    assert after == []
    _assert_one_clean_replacement(world, source)


# --- notices before state; FAILED cleans its dead targets; every failure is told ----------------------


def test_a_failed_switch_whose_notice_fails_is_retried_and_told(world: World, faults: FaultInjector) -> None:
    source = _stopped(world)
    faults.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    publish = faults.fail("sns", "Publish", "InternalError", times=10, status=500)
    with fast_retries(), pytest.raises(ClientError):
        world.run(world.event("ec2_state_stopping", source), request_id="req-1")
    assert world.node(1).state == state.SWITCHING  # not FAILED before the notice went out
    publish.times = 0
    world.advance(60)
    assert world.run(world.event("ec2_state_stopping", source), request_id="req-1").outcome == "FAILED"
    # The last FAILED notice (earlier calls were refused by the injected fault) went out, then the state.
    assert _notices(world, contract.SWITCH_FAILED_DETAIL_TYPE)[-1]["outcome"] == "FAILED"
    assert publish.injected == 10 and world.node(1).state == state.FAILED


def test_a_hold_whose_notice_fails_is_retried_and_told(world: World, faults: FaultInjector) -> None:
    world.provision(1)
    for _ in range(world.settings.flap_max_switches):
        current = world.node(1).current_instance_id
        assert current is not None
        world.clients.ec2.stop_instances(InstanceIds=[current])
        assert world.run(world.event("ec2_state_stopping", current)).outcome == "SUCCEEDED"
    current = world.node(1).current_instance_id
    assert current is not None
    world.clients.ec2.stop_instances(InstanceIds=[current])
    publish = faults.fail("sns", "Publish", "InternalError", times=10, status=500)
    with fast_retries(), pytest.raises(ClientError):
        world.run(world.event("ec2_state_stopping", current))
    assert world.node(1).state == state.ACTIVE
    publish.times = 0
    assert world.run(world.event("ec2_state_stopping", current)).outcome == "HELD"
    assert _notices(world, contract.NODE_HELD_DETAIL_TYPE)


def test_a_failed_switch_leaves_no_dead_replacement_in_the_target_group(
    world: World, faults: FaultInjector
) -> None:
    source = _stopped(world)
    faults.die_while_pending({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "FAILED"
    assert world.targets() <= {source}


# Server errors: botocore retries them, then the attempt raises and Lambda retries it. (A client error of
# RunInstances refuses the AZ for good instead: tests/lambda/test_reconcile.py, permanent failures.)
@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailable"])
def test_every_failed_attempt_is_told_with_its_attempt_count_and_a_metric(
    world: World, faults: FaultInjector, code: str
) -> None:
    source = _stopped(world)
    faults.fail("ec2", "RunInstances", code, times=10**6)
    event = world.event("ec2_state_stopping", source)
    for attempt in (1, 2, 3):  # the event and Lambda's two retries (then the event is dropped)
        metrics.clear_metrics()
        with fast_retries(), pytest.raises(ClientError):
            world.run(event, request_id="req-1")
        notice = _notices(world, contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE)[-1]
        assert notice["attempt"] == attempt and code in notice["error"]
        emf = metrics.serialize_metric_set()
        metric_names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert contract.METRIC_SWITCH_FAILED in metric_names
        world.advance(60)
    metrics.clear_metrics()


def test_switch_metrics_carry_exactly_the_contract_dimensions(world: World, faults: FaultInjector) -> None:
    source = _stopped(world)
    faults.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    metrics.clear_metrics()
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "FAILED"
    emf = metrics.serialize_metric_set()
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert contract.METRIC_SWITCH_FAILED in {m["Name"] for m in directive["Metrics"]}
    assert [sorted(d) for d in directive["Dimensions"]] == [sorted(contract.METRIC_DIMENSIONS)]
    metrics.clear_metrics()
