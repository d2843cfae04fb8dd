"""Phase planning, AZ choice, record transitions, settings and event parsing — no AWS involved."""

from __future__ import annotations

import pytest
from switcher import contract, state
from switcher.aws import snapshot_instance, user_tags
from switcher.models import Candidate
from switcher.phases import Phase, plan, remaining
from switcher.placement import client_token, fenced_subnets, rank_candidates
from switcher.settings import Settings, SettingsError
from switcher.switch import Trigger, parse_event

from tests.helpers.events import load_event

NOW = 1_800_000_000.0
CONFIG = state.NodeConfig("lt-1", "1", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y", "rms")


# --- phase plan ------------------------------------------------------------------------------------


def test_swr_order_launches_before_terminating_and_vendor_order_the_other_way_round() -> None:
    swr, vendor = plan("swr"), plan("vendor")
    assert set(swr) == set(vendor) == set(Phase)
    assert swr.index(Phase.FENCE) < swr.index(Phase.LAUNCH) < swr.index(Phase.TERMINATE_SOURCE)
    assert vendor.index(Phase.FENCE) < vendor.index(Phase.TERMINATE_SOURCE) < vendor.index(Phase.LAUNCH)
    assert swr[0] is Phase.SNAPSHOT and swr[-1] is vendor[-1] is Phase.CLOSE
    # swr registers the replacement's IP target as soon as it exists; the vendor only once it runs.
    assert swr.index(Phase.LAUNCH) + 1 == swr.index(Phase.MOVE_TRAFFIC) < swr.index(Phase.WAIT_RUNNING)
    assert vendor.index(Phase.WAIT_RUNNING) < vendor.index(Phase.MOVE_TRAFFIC)


def test_remaining_resumes_after_the_last_recorded_phase() -> None:
    done = ["detected", "claimed", "snapshot", "fenced", "launched"]
    assert remaining("swr", done)[0] is Phase.MOVE_TRAFFIC
    assert remaining("vendor", ["snapshot", "fenced"])[0] is Phase.TERMINATE_SOURCE
    assert remaining("swr", [p.value for p in Phase]) == []


def test_unknown_order_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'fast'"):
        plan("fast")


# --- AZ choice -------------------------------------------------------------------------------------

SUBNETS = [
    {"subnet_id": "subnet-a", "az": "az-a"},
    {"subnet_id": "subnet-b2", "az": "az-b"},
    {"subnet_id": "subnet-b1", "az": "az-b"},
    {"subnet_id": "subnet-c", "az": "az-c"},
]


def test_candidates_exclude_the_source_az_one_subnet_per_az_in_a_stable_order() -> None:
    ranked = rank_candidates(SUBNETS, source_az="az-a", failures_by_az={})
    assert ranked == [Candidate("az-b", "subnet-b1"), Candidate("az-c", "subnet-c")]


def test_candidates_prefer_azs_with_fewer_recent_failures() -> None:
    ranked = rank_candidates(SUBNETS, source_az="az-a", failures_by_az={"az-b": 2, "az-c": 1})
    assert [c.az for c in ranked] == ["az-c", "az-b"]


def test_excluded_subnets_are_never_candidates_another_subnet_of_the_az_may_be() -> None:
    ranked = rank_candidates(SUBNETS, source_az="az-a", failures_by_az={}, exclude={"subnet-b1", "subnet-c"})
    assert ranked == [Candidate("az-b", "subnet-b2")]


def test_a_subnet_is_fenced_only_when_a_deny_cidr_covers_all_of_it() -> None:
    subnets = [
        {"subnet_id": "subnet-a", "az": "az-a", "cidr": "10.0.1.0/24"},
        {"subnet_id": "subnet-b", "az": "az-b", "cidr": "10.0.2.0/24"},
        {"subnet_id": "subnet-c", "az": "az-c", "cidr": "10.0.3.0/24"},
        {"subnet_id": "subnet-v6", "az": "az-c", "cidr": "2001:db8::/64"},
    ]
    # whole subnet a; a /32 inside b (one fenced source); a /16 covering everything IPv4
    assert fenced_subnets(subnets, ["10.0.1.0/24", "10.0.2.9/32"]) == {"subnet-a"}
    assert fenced_subnets(subnets, ["10.0.0.0/16"]) == {"subnet-a", "subnet-b", "subnet-c"}
    assert fenced_subnets(subnets, []) == set()


def test_no_other_az_means_no_candidate() -> None:
    assert rank_candidates(SUBNETS[:1], source_az="az-a", failures_by_az={}) == []


def test_client_token_is_deterministic_per_switch_and_az_and_within_the_ec2_limit() -> None:
    assert client_token("swr-abc", "us-east-1b") == client_token("swr-abc", "us-east-1b")
    assert client_token("swr-abc", "us-east-1b") != client_token("swr-abc", "us-east-1c")
    assert len(client_token("swr-" + "f" * 20, "ap-southeast-2c")) <= 64
    with pytest.raises(ValueError, match="64"):
        client_token("x" * 60, "us-east-1a")


# --- record transitions ----------------------------------------------------------------------------


def _active(current: str | None = "i-old") -> state.NodeRecord:
    return (
        state.with_current(state.new_node("prod", 1, CONFIG, NOW), current, "az-a", NOW)
        if current
        else (state.new_node("prod", 1, CONFIG, NOW))
    )


def _claimed(node: state.NodeRecord, now: float = NOW) -> state.NodeRecord:
    return state.claim(
        node,
        instance_id="i-old",
        switch_id="swr-1",
        switch_sk="sk",
        owner="me",
        lease_until=int(now) + 60,
        now=now,
    )


def test_claim_moves_active_to_switching_with_a_lease_and_bumps_the_version() -> None:
    node = _active()
    claimed = _claimed(node)
    assert (claimed.state, claimed.switch_id, claimed.lease_owner) == (state.SWITCHING, "swr-1", "me")
    assert claimed.version == node.version + 1 and claimed.lease_live(NOW)


def test_claim_refuses_another_instance_and_a_non_active_node() -> None:
    with pytest.raises(state.TransitionError, match="not node 1's current"):
        state.claim(
            _active("i-new"),
            instance_id="i-old",
            switch_id="s",
            switch_sk="k",
            owner="o",
            lease_until=0,
            now=NOW,
        )
    with pytest.raises(state.TransitionError, match="SWITCHING"):
        _claimed(_claimed(_active()))


def test_claim_of_a_node_with_no_instance_adopts_the_events_instance() -> None:
    assert _claimed(_active(None)).current_instance_id == "i-old"


def test_take_over_only_once_the_lease_expired() -> None:
    claimed = _claimed(_active())
    with pytest.raises(state.TransitionError, match="holds its lease"):
        state.take_over(claimed, owner="you", lease_until=int(NOW) + 999, now=NOW + 1)
    taken = state.take_over(claimed, owner="you", lease_until=int(NOW) + 999, now=NOW + 61)
    assert taken.lease_owner == "you" and taken.switch_id == "swr-1"
    assert not state.release(claimed, NOW).lease_live(NOW)


def test_close_records_the_replacement_and_the_failed_az() -> None:
    closed = state.close(
        _claimed(_active()), instance_id="i-new", az="az-b", source_az="az-a", window_seconds=3600, now=NOW
    )
    assert (closed.state, closed.current_instance_id, closed.current_az) == (state.ACTIVE, "i-new", "az-b")
    assert closed.switch_id is None and closed.lease_until == 0
    assert state.failures_by_az(closed, 3600, NOW) == {"az-a": 1}


def test_flap_guard_counts_switches_in_the_window_only() -> None:
    node = _active()
    for i in range(3):
        node = state.close(
            _claimed(node, NOW + i),
            instance_id="i-old",
            az="az-b",
            source_az="az-a",
            window_seconds=3600,
            now=NOW + i,
        )
    assert state.flapping(node, max_switches=3, window_seconds=3600, now=NOW + 10)
    assert not state.flapping(node, max_switches=4, window_seconds=3600, now=NOW + 10)
    assert not state.flapping(node, max_switches=3, window_seconds=3600, now=NOW + 3601)


def test_hold_and_resume_rules() -> None:
    held = state.hold_node(_active(), "patching", NOW)
    assert (held.state, held.hold_reason) == (state.HOLD, "patching")
    assert state.resume_node(held, NOW).state == state.ACTIVE
    with pytest.raises(state.TransitionError, match="cannot hold"):
        state.hold_node(_claimed(_active()), "x", NOW)
    with pytest.raises(state.TransitionError, match="only HOLD or FAILED"):
        state.resume_node(_active(), NOW)


def test_records_round_trip_through_dynamodb_items() -> None:
    node = state.close(
        _claimed(_active()), instance_id="i-new", az="az-b", source_az="az-a", window_seconds=3600, now=NOW
    )
    assert state.node_from_item(state.node_to_item(node)) == node
    switch = state.SwitchRecord(
        "swr-1",
        "prod",
        1,
        "sk",
        "instance stopping",
        "swr",
        "i-old",
        timeline={"detected": "t0", "claimed": "t1"},
    )
    item = state.switch_to_item(switch)
    assert contract.TTL_ATTRIBUTE in item and contract.TTL_ATTRIBUTE not in state.node_to_item(node)
    assert list(state.switch_from_item(item).timeline) == ["detected", "claimed"]


def test_node_config_rejects_an_unknown_monitor_process() -> None:
    with pytest.raises(ValueError, match="MonitorProcess='nagios'"):
        state.NodeConfig("lt", "1", "arn", "nagios")


# --- settings and events ---------------------------------------------------------------------------

ENV = {
    contract.ENV_TABLE_NAME: "t",
    contract.ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:1:t",
    contract.ENV_BLACKHOLE_SG_ID: "sg-1",
    contract.ENV_VPC_NAME: "prod",
    contract.ENV_VPC_ID: "vpc-1",
}


def test_settings_from_env_with_defaults() -> None:
    s = Settings.from_env(ENV)
    assert (s.switch_order, s.flap_max_switches, s.flap_window_seconds, s.lease_seconds) == (
        "swr",
        3,
        3600,
        930,
    )


def test_the_waiters_poll_every_2_seconds_and_still_give_up_inside_the_lambda_timeout() -> None:
    """2 s: the fence's wait-stopped ends within 2 s of the stop (bench P1 lever table); the bound on a
    waiter stays 600 s, under the 900 s Lambda timeout, whatever the delay."""
    s = Settings.from_env(ENV)
    assert s.waiter_delay_seconds == 2.0
    assert s.waiter_delay_seconds * s.waiter_max_attempts == 600


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (contract.ENV_SWITCH_ORDER, "fast", "SWR_SWITCH_ORDER='fast'"),
        (contract.ENV_FLAP_MAX_SWITCHES, "three", "SWR_FLAP_MAX_SWITCHES='three'"),
        (contract.ENV_LEASE_SECONDS, "0", "lease_seconds=0"),
        (contract.ENV_VPC_ID, "", "SWR_VPC_ID"),
    ],
)
def test_settings_errors_name_the_bad_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({**ENV, var: value})


def test_parse_ec2_state_change_and_alarm_events() -> None:
    ec2 = parse_event(load_event("ec2_state_stopping", instance_id="i-0000000000000000a"), "prod")
    assert isinstance(ec2, Trigger) and (ec2.kind, ec2.instance_id) == ("ec2-state", "i-0000000000000000a")
    alarm = parse_event(load_event("alarm_status_alarm", instance_id="i-0000000b", node_id=12), "prod")
    assert isinstance(alarm, Trigger) and (alarm.instance_id, alarm.node_id_hint) == ("i-0000000b", 12)
    assert "not a trigger" in str(
        parse_event(load_event("ec2_state_stopping") | {"source": "aws.s3"}, "prod")
    )
    assert "does not belong" in str(parse_event(load_event("alarm_monitor_alarm", vpc="dev"), "prod"))


# --- what a replacement inherits -------------------------------------------------------------------


def test_snapshot_keeps_user_tags_and_original_groups_never_the_blackhole() -> None:
    source = {
        "InstanceId": "i-1",
        "ImageId": "ami-1",
        "InstanceType": "m6i.large",
        "KeyName": "ops",
        "SecurityGroups": [{"GroupId": "sg-app"}, {"GroupId": "sg-bh"}],
        "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/node"},
        "SubnetId": "subnet-a",
        "Placement": {"AvailabilityZone": "az-a"},
        "Tags": [
            {"Key": "Name", "Value": "app"},
            {"Key": "aws:cloudformation:stack-name", "Value": "x"},
            {"Key": contract.TAG_SWITCH_ID, "Value": "swr-old"},
        ],
    }
    snap = snapshot_instance(source, "sg-bh")
    assert snap.security_group_ids == ("sg-app",) and snap.tags == {"Name": "app"}
    assert (snap.image_id, snap.instance_type, snap.key_name, snap.az) == (
        "ami-1",
        "m6i.large",
        "ops",
        "az-a",
    )
    assert snap.iam_instance_profile_arn == "arn:aws:iam::1:instance-profile/node"
    with pytest.raises(ValueError, match="blackhole"):
        snapshot_instance({**source, "SecurityGroups": [{"GroupId": "sg-bh"}]}, "sg-bh")
    assert user_tags({"aws:x": "1", "k": "v"}) == {"k": "v"}
