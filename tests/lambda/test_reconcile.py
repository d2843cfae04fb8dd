"""The reconciler (switcher.reconcile): whatever the events missed, the periodic sweep converges."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from switcher import contract, handler, state
from switcher.observability import metrics
from switcher.phases import Phase
from switcher.reconcile import ReconcileReport, reconcile

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.world import World


class Killed(BaseException):
    """The invocation dies: no handler runs, the lease stays."""


def _reconcile(world: World, **kwargs: Any) -> ReconcileReport:
    return reconcile(clients=world.clients, settings=world.settings, now=world.now, **kwargs)


def _kill_at(point: tuple[str, str]) -> Any:
    def hook(phase: str, moment: str) -> None:
        if (phase, moment) == point:
            raise Killed(f"{phase}/{moment}")

    return hook


def _assert_switched(world: World, node_id: int, source: str) -> str:
    node = world.node(node_id)
    assert node.state == state.ACTIVE and node.current_instance_id not in (None, source)
    current = node.current_instance_id
    assert current is not None and world.state_of(current) == "running"
    assert [i["InstanceId"] for i in world.node_instances(node_id)] == [current]
    return current


def test_a_stopped_node_whose_events_were_all_lost_is_switched(world: World) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])  # the events never arrive (dropped)
    report = _reconcile(world)
    (action,) = report.actions
    assert (action["node_id"], action["action"], action["outcome"]) == (1, "claim", "SUCCEEDED")
    current = _assert_switched(world, 1, source)
    assert world.targets() == {current}
    assert _reconcile(world).actions == []  # converged: the next run does nothing


def test_a_switch_whose_invocation_was_killed_is_resumed_once_its_lease_expired(world: World) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    with pytest.raises(Killed):
        world.run(world.event("ec2_state_stopping", source), hook=_kill_at((Phase.LAUNCH.value, "recorded")))
    assert _reconcile(world).actions == []  # the lease is still live: the switch may still be running
    world.advance(world.settings.lease_seconds + 1)
    (action,) = _reconcile(world).actions
    assert (action["action"], action["outcome"]) == ("resume", "SUCCEEDED")
    _assert_switched(world, 1, source)
    assert len(world.node_instances(1)) == 1 and world.switches(1)[0].attempts == 2


def test_a_running_instance_whose_alarm_is_in_alarm_is_switched(world: World) -> None:
    source = world.provision(1)
    world.clients.cloudwatch.set_alarm_state(
        AlarmName=contract.monitor_alarm_name("prod", 1), StateValue="ALARM", StateReason="monitor died"
    )
    (action,) = _reconcile(world).actions
    assert action["action"] == "claim" and "alarm" in action["reason"]
    _assert_switched(world, 1, source)


def test_a_failed_node_the_operator_resumed_is_retried(world: World, faults: FaultInjector) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    no_capacity = faults.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "FAILED"
    assert _reconcile(world).actions == []  # FAILED: left to the operator
    no_capacity.times = 0
    state.resume(world.clients.dynamodb, world.settings.table_name, "prod", 1, now=world.now())
    (action,) = _reconcile(world).actions  # the fenced, stopped source sends no event: the sweep acts
    assert action["outcome"] == "SUCCEEDED"
    _assert_switched(world, 1, source)


def _failed_notices(world: World) -> list[dict[str, Any]]:
    return [
        json.loads(c.params["Message"])
        for c in world.calls.named("Publish")
        if c.params.get("Subject") == contract.SWITCH_FAILED_DETAIL_TYPE[:100]
    ]


def test_a_switch_failed_for_want_of_capacity_is_retried_with_back_off_until_capacity_is_back(
    world: World, faults: FaultInjector
) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    no_capacity = faults.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    assert world.run(world.event("ec2_state_stopping", source)).outcome == "FAILED"
    interval = world.settings.reconcile_interval_seconds
    outcomes = []
    for _ in range(4):  # retried one interval after the failure, then two intervals after the retry
        world.advance(interval)
        outcomes.append([(a["action"], a["outcome"]) for a in _reconcile(world).actions])
    assert outcomes == [[("resume", "FAILED")], [], [("resume", "FAILED")], []]
    assert world.node(1).state == state.FAILED
    assert len(_failed_notices(world)) == 3  # every failed try is told

    no_capacity.times = 0  # capacity is back: the next retry is due 4 intervals after the last one
    world.advance(2 * interval)
    assert _reconcile(world).actions == []
    world.advance(interval)
    (action,) = _reconcile(world).actions
    assert (action["action"], action["outcome"]) == ("resume", "SUCCEEDED")
    current = _assert_switched(world, 1, source)
    (switch,) = world.switches(1)  # the one switch, retried: not one switch per try
    assert switch.outcome == state.SUCCEEDED and switch.replacement_instance_id == current
    assert switch.retries == 3
    assert len(world.node(1).recent_switches) == 1  # one failure of the node, one flap-history entry
    assert world.targets() == {current} and set(world.alarm_instances(1).values()) == {current}


@pytest.mark.parametrize("code", ["InvalidAMIID.NotFound", "UnauthorizedOperation"])
def test_a_switch_failed_for_a_reason_no_retry_fixes_is_told_once_and_never_retried(
    world: World, faults: FaultInjector, code: str
) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    faults.fail("ec2", "RunInstances", code, times=10**6)
    result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "FAILED" and code in result.reason  # at once: no Lambda retry, no DLQ
    (notice,) = _failed_notices(world)
    assert set(notice["az_errors"]) == {"us-east-1b", "us-east-1c"}
    world.calls.clear()
    for _ in range(3):
        world.advance(world.settings.lease_seconds + world.settings.reconcile_interval_seconds)
        assert _reconcile(world).actions == []
    assert world.calls.named("RunInstances") == [] and _failed_notices(world) == []
    assert world.node(1).state == state.FAILED
    assert world.state_of(source) == "stopped"  # kept, fenced, for the operator (`swr resume`)


def test_drift_of_a_healthy_node_is_repaired_and_reported(world: World) -> None:
    source = world.provision(1)
    other = world.provision(2)
    stray = "10.0.2.99"
    world.clients.elbv2.register_targets(TargetGroupArn=world.target_group_arn, Targets=[{"Id": stray}])
    world.clients.cloudwatch.put_metric_alarm(
        AlarmName=contract.status_alarm_name("prod", 1),
        Namespace=contract.STATUS_METRIC_NAMESPACE,
        MetricName=contract.STATUS_METRIC_NAME,
        Dimensions=[{"Name": "InstanceId", "Value": other}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    world.calls.clear()
    report = _reconcile(world)
    assert report.actions == []
    repaired = {r["node_id"]: r["what"] for r in report.repairs}
    assert stray in repaired[1] and contract.status_alarm_name("prod", 1) in repaired[1]
    # Both nodes share the world's target group here: node 2's view also saw node 1's target.
    assert world.state_of(source) == "running"
    notices = [c for c in world.calls.named("PutEvents")]
    assert any(
        e["DetailType"] == contract.DRIFT_REPAIRED_DETAIL_TYPE for c in notices for e in c.params["Entries"]
    )
    assert set(world.alarm_instances(1).values()) == {source}


def test_a_healthy_vpc_costs_one_query_one_describe_instances_one_describe_alarms_and_no_mutation(
    world: World,
) -> None:
    from switcher import provision

    for node_id in (1, 2, 3):  # each node its own target group, as in a real deployment
        tg = world.target_group_arn
        if node_id > 1:
            tg = world.new_target_group()
        request = world.cfn_request(
            "Create",
            node_id,
            ResourceProperties={"ServiceToken": "x", **world.node_props(node_id, TargetGroupArn=tg)},
        )
        provision.handle(request, clients=world.clients, settings=world.settings, now=world.now)
    state.hold(
        world.clients.dynamodb, world.settings.table_name, "prod", 3, reason="patching", now=world.now()
    )
    world.calls.clear()
    metrics.clear_metrics()
    report = _reconcile(world)
    assert (report.nodes, report.held, report.failed, report.actions, report.repairs) == (3, 1, 0, [], [])
    ops = Counter(c.operation for c in world.calls.calls)
    # + 1 DescribeNetworkAcls: the network fence's sweep (no swr rule in place: nothing more).
    assert ops == {
        "Query": 1,
        "DescribeInstances": 1,
        "DescribeAlarms": 1,
        "DescribeTargetHealth": 2,
        "DescribeNetworkAcls": 1,
    }
    emf = metrics.serialize_metric_set()
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {
        contract.METRIC_RECONCILE_HEARTBEAT,
        contract.METRIC_RECONCILE_NODES_FAILED,
        contract.METRIC_RECONCILE_NODES_HELD,
        contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE,
    } <= names
    assert [sorted(d) for d in directive["Dimensions"]] == [sorted(contract.METRIC_DIMENSIONS)]
    assert emf[contract.METRIC_RECONCILE_NODES_HELD] in (1.0, [1.0])
    metrics.clear_metrics()


def test_a_switch_older_than_the_overdue_limit_is_counted(world: World) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    with pytest.raises(Killed):
        world.run(
            world.event("ec2_state_stopping", source), hook=_kill_at((Phase.SNAPSHOT.value, "recorded"))
        )
    assert _reconcile(world).switching_overdue == 0
    world.advance(world.settings.switch_overdue_seconds + 1)
    report = _reconcile(world, remaining_ms=lambda: 30_000)  # too little time left to resume here
    assert report.switching_overdue == 1 and report.deferred == [1]


def test_live_instances_of_a_deleted_node_are_terminated(world: World) -> None:
    world.provision(1)
    delete = world.cfn_request("Delete", 1)
    from switcher import provision

    provision.handle(delete, clients=world.clients, settings=world.settings, now=world.now)
    # A replacement whose launch was in flight when the Delete looked (it carries the node's id).
    late = world.launch_by_hand(node_tag="1", subnet_id=world.subnets["us-east-1b"])
    report = _reconcile(world)
    assert late in report.repairs[0]["what"] and world.node_instances(1) == []


def test_the_handler_routes_the_reconcile_event(
    world: World, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    s = world.settings
    for var, value in {
        contract.ENV_TABLE_NAME: s.table_name,
        contract.ENV_TOPIC_ARN: s.topic_arn,
        contract.ENV_BLACKHOLE_SG_ID: s.blackhole_sg_id,
        contract.ENV_VPC_NAME: s.vpc_name,
        contract.ENV_VPC_ID: s.vpc_id,
    }.items():
        monkeypatch.setenv(var, value)
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    monkeypatch.setattr(handler, "_clients", world.clients)
    event = {
        "source": contract.RECONCILE_EVENT_SOURCE,
        "detail-type": contract.RECONCILE_DETAIL_TYPE,
        "detail": {},
    }
    out = handler.lambda_handler(event, lambda_context)
    assert out["vpc"] == "prod" and out["actions"][0]["outcome"] == "SUCCEEDED"
