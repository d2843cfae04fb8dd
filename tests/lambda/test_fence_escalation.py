"""The fence when the source's stop never completes (a lost Availability Zone): escalation to the
network ACL, the fence kind recorded, and no launch when no fence can be confirmed.

moto stops every instance at once; `swr_local.gaps.lost_availability_zones` keeps the source `stopping`
(its stop never completes), as in an AZ that lost power or network while the regional API still answers.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from switcher import contract, fence, state
from switcher.phases import Phase
from switcher.reconcile import reconcile

from swr_local import gaps
from tests.helpers.world import World

TIMEOUT = 60


def _notices(world: World, detail_type: str) -> list[dict[str, Any]]:
    return [
        json.loads(c.params["Message"])
        for c in world.calls.named("Publish")
        if c.params.get("Subject") == detail_type[:100]
    ]


def _swr_denies(world: World, subnet_id: str) -> list[dict[str, Any]]:
    acl = world.clients.ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
    )["NetworkAcls"][0]
    return [
        e
        for e in acl["Entries"]
        if contract.NACL_RULE_FIRST <= e["RuleNumber"] <= contract.NACL_RULE_LAST
        and e["RuleAction"] == "deny"
    ]


def _run_past_the_deadline(world: World, source: str) -> Any:
    """Deliver the source's alarm; the fence deadline passes while the stop is pending (the tests' clock
    moves past it right after STOP_SENT is recorded, so no test waits for real)."""

    def hook(phase: str, moment: str) -> None:
        if (phase, moment) == (Phase.STOP_SENT.value, "recorded"):
            world.advance(TIMEOUT + 1)

    settings = dataclasses.replace(world.settings, fence_timeout_seconds=TIMEOUT)
    return world.run(world.event("alarm_monitor_alarm", source), settings=settings, hook=hook)


def test_a_stop_that_never_completes_leads_to_the_network_fence_and_a_switch(world: World) -> None:
    source = world.provision(1)
    described = world.instance(source)
    az, subnet, ip = (
        described["Placement"]["AvailabilityZone"],
        described["SubnetId"],
        described["PrivateIpAddress"],
    )
    world.provision(2)  # another node in the same subnet keeps running: the rule is for the source alone
    with gaps.lost_availability_zones({az}):
        result = _run_past_the_deadline(world, source)
        assert result.outcome == state.SUCCEEDED, result
        assert world.state_of(source) in ("stopping", "shutting-down")  # the stop never completed

        (switch,) = world.switches(1)
        assert switch.fence == contract.FENCE_NETWORK
        denies = _swr_denies(world, subnet)
        assert {(e["Egress"], e["CidrBlock"], e["Protocol"]) for e in denies} == {
            (False, f"{ip}/32", "-1"),
            (True, f"{ip}/32", "-1"),
        }
        (notice,) = _notices(world, contract.SWITCH_COMPLETED_DETAIL_TYPE)
        assert notice["fence"] == contract.FENCE_NETWORK
        assert world.instance(result.replacement_instance_id)["Placement"]["AvailabilityZone"] != az

        # While the source is not gone, the reconciler's sweep keeps the rules.
        reconcile(clients=world.clients, settings=world.settings, now=world.now)
        assert len(_swr_denies(world, subnet)) == 2
    # The AZ is back and the source's termination completes: the reconciler removes the rules.
    world.clients.ec2.terminate_instances(InstanceIds=[source])
    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert _swr_denies(world, subnet) == []
    assert len([r for r in report.repairs if "network fence" in r["what"]]) == 2


def test_a_rule_another_switch_made_for_the_whole_subnet_fences_this_source_too(world: World) -> None:
    source = world.provision(1)
    described = world.instance(source)
    subnet = described["SubnetId"]
    world.provision(2)  # still running in the same subnet: this switch alone would deny only its /32
    acl_id = world.clients.ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"][0]["NetworkAclId"]
    subnet_cidr = world.clients.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"]
    for egress in (False, True):  # what a concurrent switch of the same lost subnet wrote
        world.clients.ec2.create_network_acl_entry(
            NetworkAclId=acl_id,
            RuleNumber=1,
            Protocol="-1",
            RuleAction="deny",
            Egress=egress,
            CidrBlock=subnet_cidr,
        )
    with gaps.lost_availability_zones({described["Placement"]["AvailabilityZone"]}):
        result = _run_past_the_deadline(world, source)
    assert result.outcome == state.SUCCEEDED, result
    (switch,) = world.switches(1)
    assert switch.fence == contract.FENCE_NETWORK and switch.network_fence is not None
    assert switch.network_fence["cidr"] == subnet_cidr
    assert len(_swr_denies(world, subnet)) == 2  # reused, nothing added


def test_a_switch_whose_stop_completes_records_the_stopped_fence(world: World) -> None:
    source = world.provision(1)
    result = world.run(world.event("alarm_monitor_alarm", source))
    assert result.outcome == state.SUCCEEDED
    (switch,) = world.switches(1)
    assert switch.fence == contract.FENCE_STOPPED
    assert _swr_denies(world, world.instance(source)["SubnetId"]) == []
    (notice,) = _notices(world, contract.SWITCH_COMPLETED_DETAIL_TYPE)
    assert notice["fence"] == contract.FENCE_STOPPED


def test_with_no_confirmable_fence_nothing_is_launched_and_a_notice_says_why(world: World) -> None:
    source = world.provision(1)
    described = world.instance(source)
    acl_id = world.clients.ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [described["SubnetId"]]}]
    )["NetworkAcls"][0]["NetworkAclId"]
    for egress in (False, True):  # the operator's quota: 20 rules per direction, all taken
        for number in range(200, 220):
            world.clients.ec2.create_network_acl_entry(
                NetworkAclId=acl_id,
                RuleNumber=number,
                Protocol="6",
                RuleAction="allow",
                Egress=egress,
                CidrBlock="10.99.0.0/16",
                PortRange={"From": 443, "To": 443},
            )
    world.calls.clear()
    lost_az = described["Placement"]["AvailabilityZone"]
    with (
        gaps.lost_availability_zones({lost_az}),
        gaps.nacl_rule_quota(),
        pytest.raises(fence.FenceUnconfirmed, match="quota"),
    ):
        _run_past_the_deadline(world, source)
    assert world.calls.named("RunInstances") == []
    assert [i["InstanceId"] for i in world.node_instances(1)] == [source]
    node = world.node(1)
    assert node.state == state.SWITCHING  # kept: Lambda's retries, then the reconciler, try again
    (switch,) = world.switches(1)
    assert switch.fence is None and Phase.FENCE.value not in switch.timeline
    (notice,) = _notices(world, contract.FENCE_UNCONFIRMED_DETAIL_TYPE)
    assert "quota" in notice["error"] and notice["source_instance_id"] == source
