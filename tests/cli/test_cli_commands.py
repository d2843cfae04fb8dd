"""`swr status|history|hold|resume|drill` against a local deployment of the default app."""

from __future__ import annotations

import re

from switcher import state

from swr_cli.discovery import find_node


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
    assert refused.code == 1 and "node 2 is HOLD" in refused.out
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
    # a non-local endpoint: any AWS call would fail; the refusal must come first (exit 2)
    result = swr(
        "drill", "1", "--fault", "app", "--region", "eu-west-1", "--endpoint-url", "https://ec2.invalid"
    )
    assert result.code == 2
    assert "refusing" in result.out and "--yes" in result.out


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
    other = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=before.config.target_group_arn, Targets=[{"Id": other}])
    switcher_aws.put_node_alarms(
        cloudwatch,
        vpc_name=switcher.vpc_name,
        node_id=2,
        instance_id=before.current_instance_id,
        monitor_process=before.config.monitor_process,
    )
    try:
        broken = {c.name: c for c in drill.check_switch(target, switcher, before, {"fs-00000000"}, result)}
        assert not broken["target group holds only the replacement"].ok
        assert other in broken["target group holds only the replacement"].detail
        assert not broken["both alarms moved to the replacement"].ok
        assert not broken["EFS ids in the launch template unchanged, mounted in the new AZ"].ok
        assert broken["replacement in another AZ"].ok and broken["source terminated"].ok
    finally:
        elbv2.deregister_targets(TargetGroupArn=before.config.target_group_arn, Targets=[{"Id": other}])
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

    event = drill.inject_fault(target, switcher, node, "monitor")
    return drill.deliver_and_follow(
        target, switcher, node.node_id, event, on_phase=lambda *_: None, timeout=60
    )
