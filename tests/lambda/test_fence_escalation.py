"""The fence when the source's stop never completes (a lost Availability Zone): the switch parked instead
of holding its invocation, resumed by the source's `stopped` event or, at the fence deadline, by the
reconciler; escalation to the network ACL (one whole-subnet rule pair for a lost subnet), the fence kind
recorded, and no launch when no fence can be confirmed.

moto stops every instance at once; `swr_local.gaps.lost_availability_zones` keeps the source `stopping`
(its stop never completes), as in an AZ that lost power or network while the regional API still answers.
The world puts the EFS mount targets in subnets of their own, under a network ACL of their own (the layout
under which the network fence can be claimed, docs/fencing.md); the nodes' subnets keep the VPC's default
network ACL.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from switcher import contract, state
from switcher.observability import metrics
from switcher.phases import Phase
from switcher.reconcile import reconcile
from switcher.switch import SKIPPED, WAITING

from swr_local import gaps
from swr_local.world import allow_all_acl
from tests.helpers.aws_faults import FaultInjector
from tests.helpers.world import World, build_world, fill_with_per_address_denies, session

TIMEOUT = 60


@pytest.fixture
def world(faults: FaultInjector) -> World:
    """A fresh world whose EFS mount targets are in subnets of their own."""
    return build_world(efs_subnets=True)


def _acl_of(world: World, subnet_id: str) -> str:
    return str(
        world.clients.ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
        )["NetworkAcls"][0]["NetworkAclId"]
    )


def _mount_target_acl(world: World) -> str:
    (acl_id,) = {_acl_of(world, s) for s in world.mount_target_subnets.values()}
    return acl_id


def _notices(world: World, detail_type: str) -> list[dict[str, Any]]:
    return [
        json.loads(c.params["Message"])
        for c in world.calls.named("Publish")
        if c.params.get("Subject") == detail_type[:100]
    ]


def _swr_denies(world: World, acl_id: str) -> list[dict[str, Any]]:
    acl = world.clients.ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
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


def _own_acl(world: World, subnet_id: str) -> str:
    """Give the subnet a custom network ACL of its own that allows everything (as a custom ACL must be
    told to); returns its id."""
    ec2 = world.clients.ec2
    acl_id = allow_all_acl(ec2, world.vpc_id)
    (current,) = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
    )["NetworkAcls"]
    (association,) = [a for a in current["Associations"] if a["SubnetId"] == subnet_id]
    ec2.replace_network_acl_association(
        AssociationId=association["NetworkAclAssociationId"], NetworkAclId=acl_id
    )
    return str(acl_id)


def test_the_deny_rules_go_on_the_network_acl_of_the_mount_targets_subnets(world: World) -> None:
    """A network ACL rule matches the remote address of a packet crossing its subnet's boundary, so the
    source's address is denied where its NFS packets cross one: at the mount targets' subnets. With a
    custom network ACL on the source's subnet and another on the mount targets' subnets, a rule on the
    source's own ACL would match none of its packets."""
    source = world.provision(1)
    described = world.instance(source)
    az, subnet, ip = (
        described["Placement"]["AvailabilityZone"],
        described["SubnetId"],
        described["PrivateIpAddress"],
    )
    source_acl, mount_target_acl = _own_acl(world, subnet), _mount_target_acl(world)
    assert source_acl != mount_target_acl
    world.provision(2)  # another node in the same subnet keeps running: the rule is for the source alone
    with gaps.lost_availability_zones({az}):
        result = _run_past_the_deadline(world, source)
        assert result.outcome == state.SUCCEEDED, result
        assert world.state_of(source) in ("stopping", "shutting-down")  # the stop never completed

        (switch,) = world.switches(1)
        assert switch.fence == contract.FENCE_NETWORK
        denies = _swr_denies(world, mount_target_acl)
        assert {(e["Egress"], e["CidrBlock"], e["Protocol"]) for e in denies} == {
            (False, f"{ip}/32", "-1"),
            (True, f"{ip}/32", "-1"),
        }
        assert _swr_denies(world, source_acl) == []
        assert switch.network_fence is not None
        assert [r["network_acl_id"] for r in switch.network_fence["acls"]] == [mount_target_acl]
        (notice,) = _notices(world, contract.SWITCH_COMPLETED_DETAIL_TYPE)
        assert notice["fence"] == contract.FENCE_NETWORK
        assert world.instance(result.replacement_instance_id)["Placement"]["AvailabilityZone"] != az

        # While the source is not gone, the reconciler's sweep keeps the rules.
        reconcile(clients=world.clients, settings=world.settings, now=world.now)
        assert len(_swr_denies(world, mount_target_acl)) == 2
    # The AZ is back and the source's termination completes: the reconciler removes the rules.
    world.clients.ec2.terminate_instances(InstanceIds=[source])
    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert _swr_denies(world, mount_target_acl) == []
    assert len([r for r in report.repairs if "network fence" in r["what"]]) == 2


def test_every_network_acl_of_a_mount_target_subnet_gets_the_rules(world: World) -> None:
    source = world.provision(1)
    described = world.instance(source)
    other_az, other_subnet = next(
        (az, s)
        for az, s in world.mount_target_subnets.items()
        if az != described["Placement"]["AvailabilityZone"]
    )
    shared_acl, own_acl = _mount_target_acl(world), _own_acl(world, other_subnet)
    with gaps.lost_availability_zones({described["Placement"]["AvailabilityZone"]}):
        result = _run_past_the_deadline(world, source)
    assert result.outcome == state.SUCCEEDED, result
    for acl_id in (shared_acl, own_acl):
        assert len(_swr_denies(world, acl_id)) == 2, (acl_id, other_az)
    (switch,) = world.switches(1)
    assert switch.network_fence is not None
    assert sorted(r["network_acl_id"] for r in switch.network_fence["acls"]) == sorted((shared_acl, own_acl))
    # Once the source is gone, the reconciler's sweep removes the rules from every ACL they were put on.
    world.clients.ec2.terminate_instances(InstanceIds=[source])
    reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert _swr_denies(world, shared_acl) == [] and _swr_denies(world, own_acl) == []


def _unconfirmed(world: World, source: str, match: str) -> None:
    """No fence can be confirmed: the invocation ends normally (no error for Lambda to retry), the switch
    is parked due at once, nothing is launched, and one notice says why."""
    world.calls.clear()
    with gaps.lost_availability_zones({world.instance(source)["Placement"]["AvailabilityZone"]}):
        result = _run_past_the_deadline(world, source)
    assert result.outcome == WAITING and re.search(match, result.reason), result
    assert world.calls.named("RunInstances") == [] and world.switches(1)[0].fence is None
    node = world.node(1)
    assert (node.state, node.lease_owner) == (state.SWITCHING, None)
    assert node.lease_until <= math.ceil(world.now())  # due again at the next event or reconcile run
    (notice,) = _notices(world, contract.FENCE_UNCONFIRMED_DETAIL_TYPE)
    assert re.search(match, notice["error"]) and notice["outcome"] == WAITING
    assert _notices(world, contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE) == []


def test_a_mount_target_in_the_sources_own_subnet_means_no_network_fence(world: World) -> None:
    source = world.provision(1)
    # The layout the stacks build today: a mount target in the node subnets too (here a second file
    # system's, as EFS allows one mount target per file system and AZ).
    efs = session().client("efs")
    file_system_id = efs.create_file_system(CreationToken=f"own-{source}")["FileSystemId"]
    efs.create_mount_target(FileSystemId=file_system_id, SubnetId=world.instance(source)["SubnetId"])
    gaps.describe_mount_target_interfaces(efs, world.clients.ec2, file_system_id)
    _unconfirmed(world, source, "holds EFS mount target")
    assert _swr_denies(world, _mount_target_acl(world)) == []


def test_with_no_mount_target_in_the_vpc_no_network_fence_is_claimed(faults: FaultInjector) -> None:
    world = build_world()  # no EFS mount target at all: no network ACL is known to guard the shared data
    source = world.provision(1)
    _unconfirmed(world, source, "no EFS mount target")


def test_a_rule_another_switch_made_for_the_whole_subnet_fences_this_source_too(world: World) -> None:
    source = world.provision(1)
    described = world.instance(source)
    subnet = described["SubnetId"]
    world.provision(2)  # still running in the same subnet: this switch alone would deny only its /32
    acl_id = _mount_target_acl(world)
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
    assert len(_swr_denies(world, acl_id)) == 2  # reused, nothing added


def test_a_switch_whose_stop_completes_records_the_stopped_fence(world: World) -> None:
    source = world.provision(1)
    result = world.run(world.event("alarm_monitor_alarm", source))
    assert result.outcome == state.SUCCEEDED
    (switch,) = world.switches(1)
    assert switch.fence == contract.FENCE_STOPPED
    assert _swr_denies(world, _mount_target_acl(world)) == []
    (notice,) = _notices(world, contract.SWITCH_COMPLETED_DETAIL_TYPE)
    assert notice["fence"] == contract.FENCE_STOPPED


def _fill_quota(world: World, acl_id: str) -> None:
    """The operator's own rules take the whole quota: 20 per direction."""
    for egress in (False, True):
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


def test_with_no_confirmable_fence_nothing_is_launched_and_one_notice_says_why(world: World) -> None:
    """An unconfirmed fence is no attempt failure: the switch is parked due at once, every reconcile run
    tries again (and counts it), nothing is launched, and the notice is sent once for the same reason."""
    source = world.provision(1)
    described = world.instance(source)
    _fill_quota(world, _mount_target_acl(world))
    world.calls.clear()
    lost_az = described["Placement"]["AvailabilityZone"]
    with gaps.lost_availability_zones({lost_az}), gaps.nacl_rule_quota():
        result = _run_past_the_deadline(world, source)
        assert result.outcome == WAITING and "quota" in result.reason, result
        for _ in range(3):  # the reconciler's next runs: each resumes the due switch and parks it again
            world.advance(world.settings.reconcile_interval_seconds)
            metrics.clear_metrics()
            settings = dataclasses.replace(world.settings, fence_timeout_seconds=TIMEOUT)
            report = reconcile(clients=world.clients, settings=settings, now=world.now)
            assert [(a["action"], a["outcome"]) for a in report.actions] == [("resume", WAITING)], report
            assert report.errors == []
            emf = metrics.serialize_metric_set()
            names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
            assert contract.METRIC_FENCE_UNCONFIRMED in names and contract.METRIC_SWITCH_FAILED not in names
        metrics.clear_metrics()
    assert world.calls.named("RunInstances") == []
    assert [i["InstanceId"] for i in world.node_instances(1)] == [source]
    node = world.node(1)
    assert node.state == state.SWITCHING  # kept: the next run or event tries again
    (switch,) = world.switches(1)
    assert switch.fence is None and Phase.FENCE.value not in switch.timeline
    assert switch.fence_unconfirmed is not None and "quota" in switch.fence_unconfirmed
    (notice,) = _notices(world, contract.FENCE_UNCONFIRMED_DETAIL_TYPE)
    assert "quota" in notice["error"] and notice["source_instance_id"] == source
    assert _notices(world, contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE) == []


# --- the fence wait parks the switch instead of holding the invocation -----------------------------------


def _park(world: World, source: str, node_id: int = 1) -> Any:
    """Deliver the source's alarm while its AZ is lost: the stop never completes within the inline wait."""
    result = world.run(world.event("alarm_monitor_alarm", source, node_id=node_id))
    assert result.outcome == WAITING, result
    return result


def test_a_stop_that_never_completes_parks_the_switch_until_its_stopped_event(world: World) -> None:
    source = world.provision(1)
    az = world.instance(source)["Placement"]["AvailabilityZone"]
    with gaps.lost_availability_zones({az}):
        metrics.clear_metrics()
        result = _park(world, source)  # returns: no exception, so Lambda does not retry the event
        emf = metrics.serialize_metric_set()
        names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert contract.METRIC_FENCE_PENDING in names and contract.METRIC_SWITCH_FAILED not in names
        metrics.clear_metrics()
        (switch,) = world.switches(1)
        sent = datetime.fromisoformat(switch.timeline[Phase.STOP_SENT.value]).timestamp()
        deadline = sent + world.settings.fence_timeout_seconds
        assert source in result.reason and "stopping" in result.reason
        assert state.iso(deadline) in result.reason
        node = world.node(1)
        assert (node.state, node.switch_id, node.lease_owner) == (state.SWITCHING, switch.switch_id, None)
        assert node.lease_until == math.ceil(deadline)
        assert Phase.STOP_SENT.value in switch.timeline and Phase.FENCE.value not in switch.timeline
        assert _notices(world, contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE) == []

        # Before the deadline, an event about the source (its `stopping`, its alarm again) is skipped...
        world.advance(30)
        for name in ("ec2_state_stopping", "alarm_monitor_alarm"):
            skipped = world.run(world.event(name, source))
            assert skipped.outcome == SKIPPED and "waits for the fence of its source" in skipped.reason
        # ...and so is the switch by a reconcile run, with no call beyond the run's own reads.
        world.calls.clear()
        report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
        assert report.actions == [] and report.errors == []
        assert Counter(c.operation for c in world.calls.calls) == {
            "Query": 1,
            "DescribeInstances": 1,
            "DescribeAlarms": 1,
            "DescribeNetworkAcls": 1,
        }
    # The AZ comes back and the stop completes: EC2 sends `stopped`, which resumes the switch at once.
    world.clients.ec2.stop_instances(InstanceIds=[source], Force=True)
    assert world.state_of(source) == "stopped"
    resumed = world.run(world.event("ec2_state_stopped", source))
    assert resumed.outcome == state.SUCCEEDED, resumed
    (switch,) = world.switches(1)
    assert switch.fence == contract.FENCE_STOPPED and switch.attempts == 2
    assert world.node(1).current_instance_id == resumed.replacement_instance_id
    assert _notices(world, contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE) == []  # a parked switch was no kill


def test_a_parked_switch_is_network_fenced_by_the_reconciler_once_its_deadline_passes(world: World) -> None:
    source = world.provision(1)
    ip = world.instance(source)["PrivateIpAddress"]
    world.provision(2)  # still running in the same subnet: the rule is for the source alone
    az = world.instance(source)["Placement"]["AvailabilityZone"]
    with gaps.lost_availability_zones({az}):
        _park(world, source)
        world.advance(world.settings.fence_timeout_seconds + 1)
        report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
        assert [(a["node_id"], a["action"], a["outcome"]) for a in report.actions] == [
            (1, "resume", state.SUCCEEDED)
        ], report
        assert "its fence is due" in report.actions[0]["reason"]
    (switch,) = world.switches(1)
    assert switch.fence == contract.FENCE_NETWORK
    assert {e["CidrBlock"] for e in _swr_denies(world, _mount_target_acl(world))} == {f"{ip}/32"}


def test_the_parked_switches_of_a_lost_subnet_take_one_whole_subnet_rule_pair(world: World) -> None:
    """Every node of a subnet is lost (more than the quota of per-address rules). Each switch sends its
    stop and parks; at the deadline every instance of the subnet carries the blackhole group, so the
    first resumed switch writes one rule pair for the whole subnet and the others reuse it."""
    nodes = 11  # 22 per-address rules would exceed the 20 per direction of the default quota
    sources = {node_id: world.provision(node_id) for node_id in range(1, nodes + 1)}
    (subnet,) = {world.instance(s)["SubnetId"] for s in sources.values()}
    (az,) = {world.instance(s)["Placement"]["AvailabilityZone"] for s in sources.values()}
    subnet_cidr = world.clients.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"]
    acl_id = _mount_target_acl(world)
    with gaps.lost_availability_zones({az}), gaps.nacl_rule_quota():
        for node_id, source in sources.items():
            _park(world, source, node_id)
        assert _swr_denies(world, acl_id) == []
        world.advance(world.settings.fence_timeout_seconds + 1)
        report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert sorted((a["node_id"], a["outcome"]) for a in report.actions) == [
        (node_id, state.SUCCEEDED) for node_id in sources
    ], report
    assert {(e["Egress"], e["CidrBlock"]) for e in _swr_denies(world, acl_id)} == {
        (False, subnet_cidr),
        (True, subnet_cidr),
    }
    for node_id in sources:
        (switch,) = world.switches(node_id)
        assert switch.fence == contract.FENCE_NETWORK and switch.network_fence is not None
        assert switch.network_fence["cidr"] == subnet_cidr
    assert _notices(world, contract.FENCE_UNCONFIRMED_DETAIL_TYPE) == []


class _Killed(BaseException):
    """The invocation is killed (Lambda timeout, out of memory): no handler runs, its lease stays."""


def test_a_retry_past_the_inline_wait_looks_at_the_source_once_and_parks_again(world: World) -> None:
    """An attempt killed during its fence wait is retried by Lambda (same request) a minute later: past
    the inline wait, before the deadline. The retry does not wait again: its one look at the source
    (the describe every resumed switch makes, no waiter) shows the stop still pending, and it parks."""
    source = world.provision(1)
    az = world.instance(source)["Placement"]["AvailabilityZone"]

    def killed_in_the_wait(phase: str, moment: str) -> None:
        if (phase, moment) == (Phase.STOP_SENT.value, "recorded"):
            raise _Killed("timeout")

    event = world.event("alarm_monitor_alarm", source)
    with gaps.lost_availability_zones({az}):
        with pytest.raises(_Killed):
            world.run(event, request_id="req-1", hook=killed_in_the_wait)
        world.advance(60)  # Lambda's first retry
        world.calls.clear()
        result = world.run(event, request_id="req-1")
    assert result.outcome == WAITING, result
    # One describe to resolve the event, one by the resumed switch; no waiter poll.
    assert len(world.calls.named("DescribeInstances")) == 2
    node = world.node(1)
    assert node.lease_owner is None and node.state == state.SWITCHING


def _silence(world: World, node_id: int) -> None:
    """The node's monitor metric stops: its alarm goes INSUFFICIENT_DATA (no event is sent)."""
    world.clients.cloudwatch.set_alarm_state(
        AlarmName=contract.monitor_alarm_name(world.settings.vpc_name, node_id),
        StateValue=contract.ALARM_SILENT_STATE,
        StateReason="Insufficient Data: 3 datapoints were unknown.",
    )


def _lose_a_subnet_and_fence_its_first_node(world: World, *, healthy: set[int]) -> tuple[str, str]:
    """11 nodes in one lost subnet, all silent but `healthy`; only node 1's switch has started (the
    others' have not sent their stops yet). Node 1 parks, then is resumed past its deadline by its event.
    Returns the subnet's CIDR and node 1's source address."""
    sources = {node_id: world.provision(node_id) for node_id in range(1, 12)}
    (subnet,) = {world.instance(s)["SubnetId"] for s in sources.values()}
    (az,) = {world.instance(s)["Placement"]["AvailabilityZone"] for s in sources.values()}
    for node_id in sources:
        if node_id not in healthy:
            _silence(world, node_id)
    with gaps.lost_availability_zones({az}), gaps.nacl_rule_quota():
        _park(world, sources[1], 1)
        # Past the deadline, and past the silence bound whatever real time the provisioning took (moto
        # stamps the alarms' state with the wall clock, the tests' clock started when the world was built).
        world.advance(world.settings.fence_timeout_seconds + world.settings.silent_after_seconds)
        result = world.run(world.event("alarm_monitor_alarm", sources[1], node_id=1))
    assert result.outcome == state.SUCCEEDED, result
    cidr = world.clients.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"]
    return str(cidr), str(world.instance(sources[1])["PrivateIpAddress"])


def test_a_lost_subnet_whose_other_nodes_are_silent_is_fenced_whole_before_their_stops_go_out(
    world: World,
) -> None:
    """The whole-subnet rule does not wait for every switch of a lost subnet to send its stop: a node that
    swr's detection found silent (its switch is coming) counts as being fenced. Otherwise the first
    deadlines of a lost subnet larger than the quota take per-address rules until the quota is full."""
    subnet_cidr, _ = _lose_a_subnet_and_fence_its_first_node(world, healthy=set())
    assert {(e["Egress"], e["CidrBlock"]) for e in _swr_denies(world, _mount_target_acl(world))} == {
        (False, subnet_cidr),
        (True, subnet_cidr),
    }
    (switch,) = world.switches(1)
    assert switch.network_fence is not None and switch.network_fence["cidr"] == subnet_cidr


def test_one_node_of_the_subnet_still_reporting_keeps_the_fence_to_the_source_s_address(world: World) -> None:
    """A node of the subnet whose monitor still reports (alarm OK) is alive: the whole subnet is not
    denied, only the source's address."""
    _, ip = _lose_a_subnet_and_fence_its_first_node(world, healthy={7})
    assert {e["CidrBlock"] for e in _swr_denies(world, _mount_target_acl(world))} == {f"{ip}/32"}


def test_a_full_acl_widens_a_per_address_rule_of_the_lost_subnet_into_the_whole_subnet_rule(
    world: World,
) -> None:
    """Earlier switches of a lost subnet took per-address rules until the quota was full (they passed their
    deadlines before the subnet could be denied whole). The whole-subnet rule must still get in: it takes
    the place of one of them in one call (ReplaceNetworkAclEntry: the address it denied is never without a
    deny), and the sweep removes the per-address rules it made redundant, freeing the quota."""
    from switcher.fence import sweep_network_fences

    sources = {node_id: world.provision(node_id) for node_id in range(1, 12)}
    (subnet,) = {world.instance(s)["SubnetId"] for s in sources.values()}
    (az,) = {world.instance(s)["Placement"]["AvailabilityZone"] for s in sources.values()}
    subnet_cidr = str(world.clients.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["CidrBlock"])
    acl_id = _mount_target_acl(world)
    with gaps.nacl_rule_quota():
        fill_with_per_address_denies(world.clients.ec2, acl_id, subnet_cidr)
        for node_id in sources:
            _silence(world, node_id)
        with gaps.lost_availability_zones({az}):
            _park(world, sources[1], 1)
            world.advance(world.settings.fence_timeout_seconds + world.settings.silent_after_seconds)
            result = world.run(world.event("alarm_monitor_alarm", sources[1], node_id=1))
            assert result.outcome == state.SUCCEEDED, result
            denies = {(e["Egress"], e["RuleNumber"]): e["CidrBlock"] for e in _swr_denies(world, acl_id)}
            assert denies[(False, 1)] == denies[(True, 1)] == subnet_cidr  # rule 1 widened in place
            assert len(denies) == 38  # nothing added: the quota held
            (switch,) = world.switches(1)
            assert switch.network_fence is not None and switch.network_fence["cidr"] == subnet_cidr
            removed = sweep_network_fences(world.clients.ec2, world.vpc_id, serving=set())
    assert len(removed) == 36  # the 18 per-address rules per direction the subnet rule covers
    assert {e["CidrBlock"] for e in _swr_denies(world, acl_id)} == {subnet_cidr}
