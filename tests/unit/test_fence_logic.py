"""The fence's pure decisions: rule numbers within swr's range, the wait budget, when a rule may go."""

from __future__ import annotations

from typing import Any

from switcher import contract, fence
from switcher.phases import Phase, remaining

BLACKHOLE = "sg-blackhole"


def _entry(
    number: int, egress: bool, cidr: str, action: str = "deny", protocol: str = "-1"
) -> dict[str, Any]:
    return {
        "RuleNumber": number,
        "Egress": egress,
        "CidrBlock": cidr,
        "RuleAction": action,
        "Protocol": protocol,
    }


DEFAULTS = [_entry(100, e, "0.0.0.0/0", "allow") for e in (False, True)] + [
    _entry(32767, e, "0.0.0.0/0") for e in (False, True)
]


def test_rules_take_the_lowest_free_numbers_of_swrs_range_and_never_another_owners() -> None:
    others = [_entry(1, False, "10.9.0.0/16", "allow"), _entry(2, False, "10.8.0.0/16")]
    plan = fence.plan_rules([*DEFAULTS, *others], cidr="10.0.1.5/32", covering=["10.0.1.0/24"])
    assert plan == {False: (3, True), True: (1, True)}


def test_an_existing_swr_deny_for_the_address_or_its_subnet_is_reused() -> None:
    entries = [*DEFAULTS, _entry(7, False, "10.0.1.0/24"), _entry(4, True, "10.0.1.5/32")]
    plan = fence.plan_rules(entries, cidr="10.0.1.5/32", covering=["10.0.1.5/32", "10.0.1.0/24"])
    assert plan == {False: (7, False), True: (4, False)}


def test_a_deny_outside_swrs_range_is_not_taken_for_ours() -> None:
    entries = [*DEFAULTS, _entry(150, False, "10.0.1.5/32")]
    plan = fence.plan_rules(entries, cidr="10.0.1.5/32", covering=[])
    assert plan == {False: (1, True), True: (1, True)}


def test_no_free_number_in_swrs_range_is_a_reason_not_a_rule() -> None:
    full = [
        _entry(n, True, f"10.1.{n}.0/24", "allow")
        for n in range(contract.NACL_RULE_FIRST, contract.NACL_RULE_LAST + 1)
    ]
    plan = fence.plan_rules([*DEFAULTS, *full], cidr="10.0.1.5/32", covering=[])
    assert isinstance(plan, str) and "egress" in plan


def test_the_wait_fits_the_fence_deadline_and_the_invocation() -> None:
    # 300 s to the deadline, polls every 5 s: the first poll at once + 60 after a delay each (the last one
    # at the deadline, not a delay before it), capped by the waiter's own maximum.
    assert fence.wait_budget(deadline=400, now=100, remaining_seconds=None, delay=5, max_attempts=120) == 61
    assert fence.wait_budget(deadline=400, now=100, remaining_seconds=None, delay=5, max_attempts=10) == 10
    # 160 s of the invocation left: 100 s to wait (the escalation keeps its reserve).
    assert fence.wait_budget(deadline=400, now=100, remaining_seconds=160, delay=5, max_attempts=120) == 21
    # A resumed switch past its deadline does not wait at all: it escalates.
    assert fence.wait_budget(deadline=400, now=401, remaining_seconds=800, delay=5, max_attempts=120) == 0


def _instance(
    iid: str, ip: str, state: str = "running", groups: tuple[str, ...] = ("sg-app",)
) -> dict[str, Any]:
    return {
        "InstanceId": iid,
        "PrivateIpAddress": ip,
        "State": {"Name": state},
        "SecurityGroups": [{"GroupId": g} for g in groups],
    }


def test_one_rule_for_the_whole_subnet_only_when_every_instance_in_it_is_being_fenced() -> None:
    fenced = [
        _instance("i-1", "10.0.1.5", "stopping", (BLACKHOLE,)),
        _instance("i-2", "10.0.1.6", groups=(BLACKHOLE,)),
    ]
    assert fence.subnet_all_fenced([*fenced, _instance("i-3", "10.0.1.7", "terminated")], BLACKHOLE)
    assert not fence.subnet_all_fenced([*fenced, _instance("i-4", "10.0.1.8")], BLACKHOLE)
    assert not fence.subnet_all_fenced([], BLACKHOLE)


def test_a_rule_stays_while_a_fenced_source_in_its_cidr_is_not_terminated() -> None:
    source = _instance("i-src", "10.0.1.5", "shutting-down", (BLACKHOLE,))
    replacement = _instance("i-new", "10.0.2.9")
    assert fence.rule_needed("10.0.1.5/32", [source, replacement], serving={"i-new"})
    assert fence.rule_needed("10.0.1.0/24", [source], serving=set())
    gone = {**source, "State": {"Name": "terminated"}}
    assert not fence.rule_needed("10.0.1.5/32", [gone], serving=set())
    # A node's current instance that got the address later is not held off the network.
    reused = _instance("i-later", "10.0.1.5")
    assert not fence.rule_needed("10.0.1.5/32", [gone, reused], serving={"i-later"})


def test_a_switch_recorded_before_stop_sent_existed_does_not_send_its_stop_again() -> None:
    assert remaining("swr", ["detected", "claimed", "snapshot", "fenced"])[0] is Phase.LAUNCH
    assert remaining("swr", ["detected", "claimed", "snapshot"])[0] is Phase.STOP_SENT
    assert remaining("swr", ["detected", "claimed", "snapshot", "stop_sent"])[0] is Phase.FENCE


def test_after_a_collision_any_free_number_of_swrs_range_may_be_taken() -> None:
    taken = [_entry(n, e, f"10.0.1.{n}/32") for n in (1, 2) for e in (False, True)]
    plan = fence.plan_rules([*DEFAULTS, *taken], cidr="10.0.1.9/32", covering=[], choose=max)
    assert plan == {False: (contract.NACL_RULE_LAST, True), True: (contract.NACL_RULE_LAST, True)}


def test_the_rules_go_to_every_subnet_holding_a_mount_target_never_the_sources_own() -> None:
    mount_targets = {"subnet-mt-b": ["eni-2"], "subnet-mt-a": ["eni-1"]}
    assert fence.fence_subnets("subnet-node-a", mount_targets) == ["subnet-mt-a", "subnet-mt-b"]


def test_a_mount_target_in_the_sources_subnet_or_none_at_all_means_no_network_fence() -> None:
    own = fence.fence_subnets("subnet-a", {"subnet-a": ["eni-1"], "subnet-b": ["eni-2"]})
    assert isinstance(own, str) and "subnet-a holds EFS mount target" in own
    none = fence.fence_subnets("subnet-a", {})
    assert isinstance(none, str) and "no EFS mount target" in none
