"""`swr status|history|hold|resume|drill` against a local deployment of the default app."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from switcher import contract, state
from switcher.phases import CLAIMED, DETECTED, plan

from swr_cli.discovery import find_node
from swr_cli.exitcodes import ExitCode


def test_status_lists_every_node_with_its_instance(deployment, swr) -> None:
    result = swr("status", *deployment.args)
    assert result.code == 0, result.out
    for node_id in (1, 2):
        _, record = find_node(deployment.target, node_id)
        row = next(line for line in result.out.splitlines() if f"│ {node_id} " in line)
        assert "ACTIVE" in row and record.current_instance_id in row and record.current_az in row


def test_hold_blocks_a_drill_until_resume(deployment, swr) -> None:
    held = swr("hold", "2", "--reason", "patching", *deployment.args)
    assert held.code == 0, held.out
    assert "HOLD" in held.out
    status = swr("status", *deployment.args)
    assert re.search(r"│ 2 .*HOLD \(patching\)", status.out), status.out
    refused = swr("drill", "2", "--fault", "app", *deployment.args)
    assert refused.code == ExitCode.REFUSED and "node 2 is HOLD" in refused.out
    resumed = swr("resume", "2", *deployment.args)
    assert resumed.code == 0 and "is ACTIVE" in resumed.out
    assert find_node(deployment.target, 2)[1].state == state.ACTIVE


def test_drill_status_fault_switches_the_node_and_history_shows_it(deployment, swr) -> None:
    _, before = find_node(deployment.target, 1)
    result = swr("drill", "1", "--fault", "status", "--timeout", "60", *deployment.args)
    assert result.code == 0, result.out
    assert "via rule" in result.out and "CloudWatch Alarm State Change" in result.out
    assert "SUCCEEDED" in result.out and "✘" not in result.out
    _, after = find_node(deployment.target, 1)
    assert after.current_instance_id != before.current_instance_id
    assert after.current_az != before.current_az

    history = swr("history", "1", *deployment.args)
    assert history.code == 0, history.out
    assert re.search(r"node 1 · SUCCEEDED · RTO \d+\.\d+s", history.out)
    for phase in ("detected", "claimed", "fenced", "launched", "traffic_moved", "alarms_moved", "done"):
        assert re.search(rf"│ {phase}\s+│", history.out), phase
    assert f"{before.current_instance_id} ({before.current_az}) → {after.current_instance_id}" in history.out

    status = swr("status", *deployment.args)
    assert re.search(r"│ 1 .*│ [1-9]/3 per 3600s", status.out), status.out


def test_drill_refuses_a_real_account_without_yes(swr, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # a non-local endpoint: any AWS call would fail; the refusal must come first
    result = swr(
        "drill", "1", "--fault", "app", "--region", "eu-west-1", "--endpoint-url", "https://ec2.invalid"
    )
    assert result.code == ExitCode.REFUSED
    assert "refusing" in result.out and "--yes" in result.out


#: Every phase of a switch in the default `swr` order, as the timeline table lists them.
SWR_ORDER_TIMELINE = (DETECTED, CLAIMED, *(phase.value for phase in plan("swr")))


@pytest.mark.parametrize(
    ("node_id", "fault", "detail_type"),
    [
        (2, "app", contract.EC2_STATE_CHANGE_DETAIL_TYPE),
        (1, "monitor", contract.ALARM_STATE_CHANGE_DETAIL_TYPE),
    ],
    ids=["app", "monitor"],
)
def test_drill_app_and_monitor_faults_switch_the_node_to_another_az(
    deployment, swr, node_id: int, fault: str, detail_type: str
) -> None:
    _, before = find_node(deployment.target, node_id)
    result = swr("drill", str(node_id), "--fault", fault, "--timeout", "60", *deployment.args)
    assert result.code == 0, result.out
    assert f"injected {fault} fault on node {node_id} ({before.current_instance_id})" in result.out
    assert f"delivering {detail_type!r} via rule" in result.out, result.out
    # the record: ACTIVE on a new instance in another AZ
    _, after = find_node(deployment.target, node_id)
    assert after.state == state.ACTIVE
    assert after.current_instance_id not in (None, before.current_instance_id)
    assert after.current_az not in (None, before.current_az)
    # the timeline: each phase live as it is recorded, then the table, and the route old → new
    assert re.search(rf"switch \S+ · node {node_id} · SUCCEEDED · RTO \d+\.\d+s", result.out), result.out
    for phase in SWR_ORDER_TIMELINE:
        assert re.search(rf"· {phase}\s+\d{{4}}-\d\d-\d\dT", result.out), phase
        assert re.search(rf"│ {phase}\s+│ \d{{4}}-", result.out), phase
    source, replacement = (f"{n.current_instance_id} ({n.current_az})" for n in (before, after))
    assert f"{source} → {replacement}" in result.out
    # and the invariants, checked against the live resources, all hold
    assert "replacement in another AZ" in result.out and "✘" not in result.out


def test_drill_yes_lifts_the_real_account_refusal(deployment, swr) -> None:
    # 127.1 reaches the local moto server, but it is not a host the CLI counts as local: a "real account"
    region, endpoint = deployment.target.region, deployment.target.endpoint_url
    assert endpoint and "//127.0.0.1:" in endpoint
    args = ("drill", "1", "--fault", "status", "--timeout", "1", "--region", region)
    real = ("--endpoint-url", endpoint.replace("//127.0.0.1:", "//127.1:"))
    switcher, node = find_node(deployment.target, 1)
    cloudwatch = deployment.target.client("cloudwatch")
    alarm = contract.status_alarm_name(switcher.vpc_name, 1)
    assert swr(*args, *real).code == ExitCode.REFUSED  # the same target without --yes is refused
    try:
        result = swr(*args, *real, "--yes")
        assert "refusing" not in result.out
        # the fault is injected into the account; a real account delivers the event itself, so the CLI only
        # follows the record (nothing delivers it here: no switch within the 1 s timeout)
        assert f"injected status fault on node 1 ({node.current_instance_id})" in result.out, result.out
        [after] = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        assert after["StateValue"] == contract.ALARM_TRIGGER_STATE
        assert "delivering" not in result.out
        assert result.code == 1 and "no switch started within 1s" in result.out
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test: drill undone")
    assert find_node(deployment.target, 1)[1] == node


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: --fault"),
        (("--fault", "disk"), "argument --fault: invalid choice: 'disk'"),
    ],
    ids=["missing_fault", "invalid_fault"],
)
def test_drill_argument_errors_exit_2_before_touching_the_node(
    deployment, swr, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    _, before = find_node(deployment.target, 1)
    with pytest.raises(SystemExit) as exited:
        swr("drill", "1", *args, *deployment.args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: swr drill" in err, err
    assert find_node(deployment.target, 1)[1] == before


@contextmanager
def node_in_state(target: Any, node_id: int, node_state: str) -> Iterator[state.NodeRecord]:
    """The node's record in `node_state` (as a switcher mid-switch would leave it), restored afterwards."""
    switcher, node = find_node(target, node_id)
    ddb = target.client("dynamodb")
    changed = replace(node, state=node_state, version=node.version + 1)
    if node_state == state.SWITCHING:
        changed = replace(
            changed,
            switch_id="test-switch",
            switch_sk="2026-01-01T00:00:00.000+00:00#test-switch",
            lease_owner="test",
            lease_until=int(time.time()) + 600,
        )
    state.save_node(ddb, switcher.table_name, changed, expected_version=node.version)
    try:
        yield changed
    finally:
        restored = replace(node, version=changed.version + 1)
        state.save_node(ddb, switcher.table_name, restored, expected_version=changed.version)


@pytest.mark.parametrize("node_state", [state.SWITCHING, state.DELETED])
def test_hold_refuses_a_node_that_cannot_be_held(deployment, swr, node_state: str) -> None:
    with node_in_state(deployment.target, 1, node_state) as node:
        result = swr("hold", "1", "--reason", "patching", *deployment.args)
        assert result.code == ExitCode.REFUSED, result.out
        assert f"node 1 is {node_state}: cannot hold it now" in result.out
        assert find_node(deployment.target, 1)[1] == node, "the record must be left as it was"


@pytest.mark.parametrize("node_state", [state.ACTIVE, state.SWITCHING])
def test_resume_refuses_a_node_that_is_not_held_or_failed(deployment, swr, node_state: str) -> None:
    with node_in_state(deployment.target, 1, node_state) as node:
        result = swr("resume", "1", *deployment.args)
        assert result.code == ExitCode.REFUSED, result.out
        assert f"node 1 is {node_state}: only HOLD or FAILED can be resumed" in result.out
        assert find_node(deployment.target, 1)[1] == node, "the record must be left as it was"


def test_unknown_node_and_missing_switcher_are_named(deployment, swr) -> None:
    unknown = swr("history", "99", *deployment.args)
    assert unknown.code == 1 and "node 99 has no record" in unknown.out
    assert deployment.target.endpoint_url
    other_region = swr("status", "--region", "us-west-2", "--endpoint-url", deployment.target.endpoint_url)
    assert other_region.code == 1 and "no swr switcher function" in other_region.out


def test_switch_invariants_fail_when_the_world_disagrees(deployment) -> None:
    """The invariants the demo and drill print are checked against live resources, not assumed."""
    from switcher import aws as switcher_aws

    from swr_cli import drill

    target = deployment.target
    switcher, node = find_node(target, 2)
    before = node
    efs_before = drill.launch_template_efs_ids(target, before.config.launch_template_id)
    result = swr_drill_result(target, switcher, before)
    checks = drill.check_switch(target, switcher, before, efs_before, result)
    assert all(c.ok for c in checks), checks
    # a stray target in the node's group, alarms left on the old instance, EFS ids that differ
    stray = result.node.current_instance_id
    elbv2, cloudwatch = target.client("elbv2"), target.client("cloudwatch")
    ec2 = target.client("ec2")
    launched = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    other, other_ip = launched["InstanceId"], launched["PrivateIpAddress"]
    elbv2.register_targets(TargetGroupArn=before.config.target_group_arn, Targets=[{"Id": other_ip}])
    switcher_aws.put_node_alarms(
        cloudwatch,
        vpc_name=switcher.vpc_name,
        node_id=2,
        instance_id=before.current_instance_id,
        monitor_process=before.config.monitor_process,
    )
    try:
        broken = {c.name: c for c in drill.check_switch(target, switcher, before, {"fs-00000000"}, result)}
        # The default config's nodes have pre-registered targets: the group must hold exactly their
        # standby addresses, the replacement's among them.
        assert not broken["replacement serves on a pre-registered address"].ok
        assert other_ip in broken["replacement serves on a pre-registered address"].detail
        assert not broken["both alarms moved to the replacement"].ok
        assert not broken["EFS ids in the launch template unchanged, mounted in the new AZ"].ok
        assert broken["replacement in another AZ"].ok and broken["source terminated"].ok
    finally:
        elbv2.deregister_targets(TargetGroupArn=before.config.target_group_arn, Targets=[{"Id": other_ip}])
        ec2.terminate_instances(InstanceIds=[other])
        switcher_aws.put_node_alarms(
            cloudwatch,
            vpc_name=switcher.vpc_name,
            node_id=2,
            instance_id=stray,
            monitor_process=before.config.monitor_process,
        )


def swr_drill_result(target, switcher, node):  # type: ignore[no-untyped-def]
    """Run a real monitor-fault switch of the node (in-process delivery) and return its result."""
    from swr_cli import drill
    from swr_local import drill as local_drill

    event = local_drill.event_of(drill.inject_fault(target, switcher, node, "monitor"))
    return local_drill.deliver_and_follow(
        target, switcher, node.node_id, event, on_phase=lambda *_: None, timeout=60
    )
