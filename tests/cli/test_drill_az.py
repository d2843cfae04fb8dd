"""`swr drill --fault az`: the node's Availability Zone is lost (its stops never complete, its monitor metric
silent) on the local emulator; the reconciler detects the silence, the raised alarm's event starts the
switch, the fence escalates to the network ACLs of the EFS mount-target subnets and the node runs again in
another AZ. Against a real account the fault is refused before any AWS call."""

from __future__ import annotations

import json
import re

import pytest
from switcher import contract, state

from swr_cli.discovery import find_node
from swr_cli.exitcodes import ExitCode
from swr_cli.main import main
from swr_local.drill import AZ_DRILL_ENVIRONMENT, RECONCILE_EVENT, set_lost_zones
from swr_local.lambda_runtime import DeployedFunction

#: The invariants the az drill prints, beside those of every drill.
AZ_CHECKS = (
    "replacement in another AZ",
    "fence: network-fenced (the source never stopped)",
    "nothing launched before the fence was confirmed",
    "source termination requested (it never completes while its AZ is lost)",
    "deny rules on the mount-target subnets' network ACLs while the source lives",
    "the reconciler's sweep removes the deny rules once the source is terminated",
)


def _swr_rules(ec2, vpc_id: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"]
    return [
        e
        for a in acls
        for e in a["Entries"]
        if contract.NACL_RULE_FIRST <= e["RuleNumber"] <= contract.NACL_RULE_LAST
    ]


def test_drill_az_switches_the_silent_node_of_a_lost_az_behind_a_network_fence(
    deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    target = deployment.target
    switcher, before = find_node(target, 1)
    ec2 = target.client("ec2")
    deployed_env = DeployedFunction.describe(target, switcher.function_arn).environment
    capsys.readouterr()

    code = main(["drill", "1", "--fault", "az", "--timeout", "120", *deployment.args, "--output", "json"])

    captured = capsys.readouterr()
    progress, document = captured.err, json.loads(captured.out)
    assert code == 0 and document["ok"] is True, (progress, document)
    # the fault as it happens: the AZ lost, the metric silent, nothing announced
    assert f"AZ {before.current_az} lost" in progress and "no `stopping` event" in progress, progress
    assert "→ INSUFFICIENT_DATA (no ALARM event)" in progress, progress
    # the short timings are said, and given to the in-process switcher only
    assert document["local_overrides"] == AZ_DRILL_ENVIRONMENT
    for key, value in AZ_DRILL_ENVIRONMENT.items():
        assert f"{key}={value}" in progress
    assert DeployedFunction.describe(target, switcher.function_arn).environment == deployed_env
    # detection by the reconciler, then the raised alarm's event through the deployed rule
    assert re.search(r"reconcile run \d+: .*monitor metric silent for \d+ s", progress), progress
    assert f"delivering {contract.ALARM_STATE_CHANGE_DETAIL_TYPE!r} via rule" in progress, progress
    # every invariant checked, and every one holds
    checks = {c["name"]: c for c in document["checks"]}
    for name in AZ_CHECKS:
        assert checks[name]["ok"], checks[name]
    assert all(c["ok"] for c in document["checks"]), document["checks"]

    # the world agrees: ACTIVE on a running replacement in another AZ, the fence on record
    _, after = find_node(target, 1)
    assert after.state == state.ACTIVE
    assert after.current_instance_id not in (None, before.current_instance_id)
    assert after.current_az not in (None, before.current_az)
    [switch] = state.list_switches(
        target.client("dynamodb"), switcher.table_name, switcher.vpc_name, 1, limit=1
    )
    assert switch.outcome == state.SUCCEEDED and switch.fence == contract.FENCE_NETWORK
    assert switch.timeline["fenced"] <= switch.timeline["launched"]
    # the drill ended the loss: the source's requested termination completed, the sweep took the rules
    [source] = ec2.describe_instances(InstanceIds=[before.current_instance_id])["Reservations"][0][
        "Instances"
    ]
    assert source["State"]["Name"] == "terminated"
    assert _swr_rules(ec2, switcher.vpc_id) == []


def test_the_drill_invokes_the_reconciler_with_the_schedules_input() -> None:
    from swr_stacks.reconcile import reconcile_event

    assert reconcile_event() == RECONCILE_EVENT


def test_drill_az_is_refused_against_a_real_account_even_with_yes(swr, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # a non-local endpoint: any AWS call would fail; the refusal must come first, --yes or not
    for yes in ((), ("--yes",)):
        result = swr(
            "drill",
            "1",
            "--fault",
            "az",
            *yes,
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "https://ec2.invalid",
        )
        assert result.code == ExitCode.REFUSED, result.out
        said = " ".join(result.out.split())  # the console wraps long lines
        assert "`--fault az` runs only against the local emulator" in said
        assert "AZ Availability: Power Interruption" in said and "Nothing was changed" in said


def test_a_drill_that_ends_before_a_switch_leaves_the_node_as_it_was(deployment, swr) -> None:
    """--timeout 0: the reconciler never runs. The AZ is back, the alarm reports again, the node untouched."""
    target = deployment.target
    switcher, before = find_node(target, 2)
    alarm = contract.monitor_alarm_name(switcher.vpc_name, 2)
    cloudwatch = target.client("cloudwatch")
    [previous] = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]

    result = swr("drill", "2", "--fault", "az", "--timeout", "0", *deployment.args)

    assert result.code == ExitCode.FAILED, result.out
    assert f"the reconciler did not raise {alarm} within the timeout" in " ".join(result.out.split())
    assert f"AZ {before.current_az} back" in result.out
    assert find_node(target, 2)[1] == before
    [after] = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert after["StateValue"] == previous["StateValue"]
    # no AZ is left lost in the emulator
    assert set_lost_zones(target, [])["lost"] == []
