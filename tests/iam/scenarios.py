"""Representative runs of the switcher (and its nodes) whose AWS requests the IAM tests check.

Each scenario gets a fresh world built from the synthesized templates. Only the code under test runs
inside `iw.switcher()` (or as the node's role): setting up a failure and inspecting the result are
the harness's calls and are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

from switcher import contract, provision, state

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.iam_world import IamWorld
from tests.helpers.world import AZS, fill_with_per_address_denies

Scenario = Callable[[IamWorld, FaultInjector], None]


def _provision(iw: IamWorld, node_id: int = 1, *, record: bool = True) -> str:
    w = iw.world
    request = w.cfn_request("Create", node_id)
    with iw.switcher() if record else nullcontext():
        _, data = provision.handle(request, clients=w.clients, settings=w.settings, now=w.now)
    return data["InstanceId"]


def _provisioned_and_stopped(iw: IamWorld) -> str:
    source = _provision(iw)
    iw.world.clients.ec2.stop_instances(InstanceIds=[source])  # the failure (harness)
    return source


def _switch(iw: IamWorld, event: str, instance_id: str, node_id: int = 1) -> str:
    w = iw.world
    with iw.switcher():
        result = w.run(w.event(event, instance_id, node_id))
    return result.outcome


def provisioning_create(iw: IamWorld, faults: FaultInjector) -> None:
    """Create: the first instance is launched, registered, its alarms created; the node's own calls."""
    instance = _provision(iw)
    iw.record_node_agent(instance)
    iw.record_lambda_runtime()


def switch_on_stop(iw: IamWorld, faults: FaultInjector) -> None:
    """A stopped instance is switched in swr's order (launch first, terminate last)."""
    source = _provisioned_and_stopped(iw)
    assert _switch(iw, "ec2_state_stopping", source) == "SUCCEEDED"


def switch_on_alarm_running_source(iw: IamWorld, faults: FaultInjector) -> None:
    """The monitor alarm fires for a running instance: it is fenced (force-stopped) and replaced."""
    source = _provision(iw)
    assert _switch(iw, "alarm_monitor_alarm", source) == "SUCCEEDED"


def capacity_error_then_next_az(iw: IamWorld, faults: FaultInjector) -> None:
    """The first candidate AZ refuses the launch; the next one takes it."""
    source = _provisioned_and_stopped(iw)
    faults.fail_in_subnets({iw.world.subnets["us-east-1b"]})
    assert _switch(iw, "ec2_state_stopping", source) == "SUCCEEDED"


def no_capacity_anywhere_then_resume(iw: IamWorld, faults: FaultInjector) -> None:
    """Every AZ refuses: the switch fails, the source stays fenced, a failure notice goes out. The
    operator resumes the node; the fenced source is switched with the groups its first switch recorded."""
    w = iw.world
    source = _provisioned_and_stopped(iw)
    faults.fail_in_subnets({w.subnets["us-east-1b"], w.subnets["us-east-1c"]})
    assert _switch(iw, "ec2_state_stopping", source) == "FAILED"
    faults.faults.clear()
    state.resume(w.clients.dynamodb, w.settings.table_name, "prod", 1, now=w.now())
    assert _switch(iw, "ec2_state_stopped", source) == "SUCCEEDED"


def lost_replacement(iw: IamWorld, faults: FaultInjector) -> None:
    """EC2 ends the replacement while pending: it is terminated and the next AZ is tried."""
    source = _provisioned_and_stopped(iw)
    faults.die_while_pending({iw.world.subnets["us-east-1b"]})
    assert _switch(iw, "ec2_state_stopping", source) == "SUCCEEDED"


def provisioning_update_and_delete(iw: IamWorld, faults: FaultInjector) -> None:
    """Update to another target group and monitor process, then Delete."""
    w = iw.world
    # Provisioned under the stack's first version (its policy named the first target group).
    _provision(iw, record=False)
    new_group = w.new_target_group()
    # CloudFormation replaced the target group: the new one carries the stack's tags, the grants follow it.
    iw.tag_target_group(new_group)
    iw.deployment.bind(iw.vpc_stack, iw.node_target_group, Ref=new_group)
    update = w.cfn_request("Update", 1)
    update["OldResourceProperties"] = {
        **update["ResourceProperties"],
        contract.PROP_TARGET_GROUP_ARN: w.target_group_arn,
        contract.PROP_MONITOR_PROCESS: "rms",
    }
    update["ResourceProperties"][contract.PROP_TARGET_GROUP_ARN] = new_group
    with iw.switcher():
        provision.handle(update, clients=w.clients, settings=w.settings, now=w.now)
    delete = w.cfn_request("Delete", 1)
    delete["ResourceProperties"][contract.PROP_TARGET_GROUP_ARN] = new_group
    with iw.switcher():
        provision.handle(delete, clients=w.clients, settings=w.settings, now=w.now)


def _vendor_era_instance(iw: IamWorld, node_id: int) -> str:
    """An instance launched before swr, carrying only the vendor's node tag (harness)."""
    w = iw.world
    return w.launch_by_hand(node_tag=str(node_id), security_group_ids=[w.app_sg])


def adoption_by_provisioning(iw: IamWorld, faults: FaultInjector) -> None:
    """Create finds a vendor-era instance of the node and adopts it; it is later switched."""
    legacy = _vendor_era_instance(iw, 1)
    assert _provision(iw) == legacy
    iw.world.clients.ec2.stop_instances(InstanceIds=[legacy])
    assert _switch(iw, "ec2_state_stopping", legacy) == "SUCCEEDED"


def adoption_by_switch(iw: IamWorld, faults: FaultInjector) -> None:
    """A configured node with no instance on record: its vendor-era instance fails and is switched."""
    w = iw.world
    node = state.new_node(
        "prod", 1, state.NodeConfig(w.launch_template_id, "1", w.target_group_arn, "swr-monitor"), w.now()
    )
    state.save_node(w.clients.dynamodb, w.settings.table_name, node, expected_version=None)
    legacy = _vendor_era_instance(iw, 1)
    w.clients.ec2.stop_instances(InstanceIds=[legacy])
    assert _switch(iw, "ec2_state_stopping", legacy) == "SUCCEEDED"


def flap_guard_hold(iw: IamWorld, faults: FaultInjector) -> None:
    """Too many switches in the window: the node is held and a held notice goes out."""
    w = iw.world
    current = _provision(iw)
    for _ in range(w.settings.flap_max_switches):
        w.clients.ec2.stop_instances(InstanceIds=[current])
        assert _switch(iw, "ec2_state_stopping", current) == "SUCCEEDED"
        current = w.node(1).current_instance_id or ""
        w.advance(60)
    w.clients.ec2.stop_instances(InstanceIds=[current])
    assert _switch(iw, "ec2_state_stopping", current) == "HELD"


def operator_hold_and_skips(iw: IamWorld, faults: FaultInjector) -> None:
    """A held node's stop is skipped; so are events about foreign and unknown instances."""
    w = iw.world
    source = _provision(iw)
    state.hold(w.clients.dynamodb, w.settings.table_name, "prod", 1, reason="patching", now=w.now())
    w.clients.ec2.stop_instances(InstanceIds=[source])
    assert _switch(iw, "ec2_state_stopped", source) == "SKIPPED"
    assert _switch(iw, "ec2_state_stopped", "i-0123456789abcdef0") == "SKIPPED"


def vendor_order(iw: IamWorld, faults: FaultInjector) -> None:
    """The vendor's order: terminate the source (and wait) before launching."""
    source = _provisioned_and_stopped(iw)
    assert _switch(iw, "ec2_state_stopping", source) == "SUCCEEDED"


def escalated_fence(iw: IamWorld, faults: FaultInjector) -> None:
    """The source's AZ is lost: its stop never completes, the fence deadline passes and the network fence
    denies its address in the network ACL of the EFS mount targets' subnets; once it is gone, the reconciler's
    sweep removes the rules."""
    import dataclasses

    from switcher.fence import sweep_network_fences
    from switcher.phases import Phase

    from swr_local import gaps

    w = iw.world
    source = _provision(iw)
    az = w.instance(source)["Placement"]["AvailabilityZone"]
    settings = dataclasses.replace(w.settings, fence_timeout_seconds=60)

    def past_the_deadline(phase: str, moment: str) -> None:
        if (phase, moment) == (Phase.STOP_SENT.value, "recorded"):
            w.advance(61)

    with gaps.lost_availability_zones({az}), iw.switcher():
        result = w.run(w.event("alarm_monitor_alarm", source), settings=settings, hook=past_the_deadline)
    assert result.outcome == "SUCCEEDED", result
    assert w.switches(1)[0].fence == contract.FENCE_NETWORK
    w.clients.ec2.terminate_instances(InstanceIds=[source])  # the AZ is back (harness)
    with iw.switcher():
        removed = sweep_network_fences(w.clients.ec2, w.vpc_id, serving={w.node(1).current_instance_id or ""})
    assert len(removed) == 2


def widened_fence(iw: IamWorld, faults: FaultInjector) -> None:
    """A lost subnet whose per-address rules filled the ACL quota: the whole-subnet rule takes the place of
    one of them (ReplaceNetworkAclEntry) once the subnet's other node is silent (DescribeAlarms), and the
    sweep removes the per-address rules it covers."""
    import dataclasses

    from switcher.fence import sweep_network_fences
    from switcher.phases import Phase

    from swr_local import gaps

    w = iw.world
    source, other = _provision(iw, 1), _provision(iw, 2)
    az = w.instance(source)["Placement"]["AvailabilityZone"]
    assert w.instance(other)["SubnetId"] == w.instance(source)["SubnetId"]
    cidr = w.clients.ec2.describe_subnets(SubnetIds=[w.instance(source)["SubnetId"]])["Subnets"][0][
        "CidrBlock"
    ]
    (acl,) = {
        a["NetworkAclId"]
        for subnet in w.mount_target_subnets.values()
        for a in w.clients.ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
        )["NetworkAcls"]
    }
    settings = dataclasses.replace(w.settings, fence_timeout_seconds=60, silent_after_seconds=120)
    w.clients.cloudwatch.set_alarm_state(
        AlarmName=contract.monitor_alarm_name(w.settings.vpc_name, 2),
        StateValue=contract.ALARM_SILENT_STATE,
        StateReason="Insufficient Data",
    )

    def past_the_deadline(phase: str, moment: str) -> None:
        if (phase, moment) == (Phase.STOP_SENT.value, "recorded"):
            w.advance(181)  # past the fence deadline and the silence bound

    with gaps.nacl_rule_quota():
        fill_with_per_address_denies(w.clients.ec2, acl, str(cidr))
        with gaps.lost_availability_zones({az}), iw.switcher():
            result = w.run(w.event("alarm_monitor_alarm", source), settings=settings, hook=past_the_deadline)
        assert result.outcome == "SUCCEEDED", result
        assert (w.switches(1)[0].network_fence or {}).get("cidr") == cidr
        with iw.switcher():
            removed = sweep_network_fences(
                w.clients.ec2, w.vpc_id, serving={w.node(1).current_instance_id or ""}
            )
    assert len(removed) == 36


#: name -> (scenario, switch order of its world)


def reconcile_sweeps(iw: IamWorld, faults: FaultInjector) -> None:
    """The scheduled reconcile: a healthy sweep, drift repaired (a stray target, an alarm on another
    instance), then a node stopped with no event is switched by the sweep alone."""
    from switcher.reconcile import reconcile

    w = iw.world
    source = _provision(iw)
    with iw.switcher():
        reconcile(clients=w.clients, settings=w.settings, now=w.now)
    # Drift (harness): a hand-registered target and the status alarm pointed elsewhere.
    w.clients.elbv2.register_targets(TargetGroupArn=w.target_group_arn, Targets=[{"Id": "10.0.9.9"}])
    w.clients.cloudwatch.put_metric_alarm(
        AlarmName=contract.status_alarm_name(w.settings.vpc_name, 1),
        Namespace=contract.STATUS_METRIC_NAMESPACE,
        MetricName=contract.STATUS_METRIC_NAME,
        Dimensions=[{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    with iw.switcher():
        reconcile(clients=w.clients, settings=w.settings, now=w.now)
    w.clients.ec2.stop_instances(InstanceIds=[source])  # the failure, and its event is lost (harness)
    with iw.switcher():
        report = reconcile(clients=w.clients, settings=w.settings, now=w.now)
    assert report.actions, report
    assert w.node(1).current_instance_id != source


def preregistered_switch_and_back(iw: IamWorld, faults: FaultInjector) -> None:
    """Pre-registered targets (node 2): the first instance runs on a standby interface, a switch moves the
    node onto another AZ's, a second one back onto the first interface, whose groups the fence changed."""
    w = iw.world
    source = _provision(iw, 2)
    w.clients.ec2.stop_instances(InstanceIds=[source])  # the failure (harness)
    assert _switch(iw, "ec2_state_stopping", source, 2) == "SUCCEEDED"
    replacement = w.node(2).current_instance_id
    assert replacement is not None
    azs = {w.instance(i)["Placement"]["AvailabilityZone"] for i in (source, replacement)}
    faults.fail_in_subnets({w.subnets[az] for az in AZS if az not in azs})
    w.advance(60)
    w.clients.ec2.stop_instances(InstanceIds=[replacement])
    assert _switch(iw, "ec2_state_stopping", replacement, 2) == "SUCCEEDED"
    assert w.instance(w.node(2).current_instance_id or "")["Placement"] == w.instance(source)["Placement"]


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "provisioning-create": (provisioning_create, "swr"),
    "switch-on-stop": (switch_on_stop, "swr"),
    "switch-on-alarm": (switch_on_alarm_running_source, "swr"),
    "vendor-order": (vendor_order, "vendor"),
    "capacity-error-next-az": (capacity_error_then_next_az, "swr"),
    "no-capacity-then-resume": (no_capacity_anywhere_then_resume, "swr"),
    "lost-replacement": (lost_replacement, "swr"),
    "provisioning-update-delete": (provisioning_update_and_delete, "swr"),
    "adoption-by-provisioning": (adoption_by_provisioning, "swr"),
    "adoption-by-switch": (adoption_by_switch, "swr"),
    "flap-guard-hold": (flap_guard_hold, "swr"),
    "operator-hold-and-skips": (operator_hold_and_skips, "swr"),
    "reconcile-sweeps": (reconcile_sweeps, "swr"),
    "preregistered-switch-and-back": (preregistered_switch_and_back, "swr"),
    "escalated-fence": (escalated_fence, "swr"),
    "widened-fence": (widened_fence, "swr"),
}
#: The node of the synthesized config a scenario's world stands for (default "1": on_switch targets; node 2
#: has pre-registered targets).
SCENARIO_NODE: dict[str, str] = {"preregistered-switch-and-back": "2"}
