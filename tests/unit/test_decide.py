"""The decision both the events and the reconciler take (switcher.decide): pure, no AWS, no moto."""

from __future__ import annotations

from dataclasses import replace

import pytest
from switcher import state
from switcher.decide import (
    CLAIM,
    EVENT,
    HOLD,
    PERMANENT,
    RECONCILE,
    REPAIR,
    RESUME,
    SKIP,
    TRANSIENT,
    Policy,
    Seen,
    decide,
    launch_refusal,
    retry_at,
)

NOW = 1_800_000_000.0
CONFIG = state.NodeConfig("lt-1", "1", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y")
POLICY = Policy(flap_max_switches=3, flap_window_seconds=3600)


def _active(current: str | None = "i-cur") -> state.NodeRecord:
    node = state.new_node("prod", 1, CONFIG, NOW - 100)
    return state.with_current(node, current, "az-a", NOW - 100) if current else node


def _switching(*, lease_until: float, owner: str = "req-1/abc") -> state.NodeRecord:
    return state.claim(
        _active(),
        instance_id="i-cur",
        switch_id="swr-1",
        switch_sk="sk",
        owner=owner,
        lease_until=int(lease_until),
        now=NOW - 50,
    )


def _seen(cause: str = EVENT, instance_state: str | None = "stopped", **kw: object) -> Seen:
    base = {"description": "instance stopping", "instance_id": "i-cur", "node_id": 1}
    base.update(kw)
    return Seen(cause=cause, instance_state=instance_state, **base)  # type: ignore[arg-type]


def test_an_event_about_the_current_instance_claims_the_node() -> None:
    d = decide(_active(), _seen(), now=NOW, policy=POLICY)
    assert (d.action, d.reason) == (CLAIM, "instance stopping")


def test_a_node_without_a_record_is_skipped_with_a_notice_naming_it() -> None:
    d = decide(None, _seen(node_id=7), now=NOW, policy=POLICY)
    assert d.action == SKIP and d.notice is not None and "node 7" in d.notice["reason"]


@pytest.mark.parametrize("node_state", [state.HOLD, state.FAILED, state.DELETED])
def test_held_failed_and_deleted_nodes_are_left_alone_by_events_and_the_reconciler(node_state: str) -> None:
    node = replace(_active(), state=node_state)
    for cause in (EVENT, RECONCILE):
        assert decide(node, _seen(cause), now=NOW, policy=POLICY).action == SKIP


def test_an_instance_that_is_not_the_current_one_is_skipped() -> None:
    d = decide(_active(), _seen(instance_id="i-other"), now=NOW, policy=POLICY)
    assert d.action == SKIP and "not node 1's current" in d.reason


def test_a_switching_node_with_a_live_lease_is_skipped_by_another_request() -> None:
    d = decide(_switching(lease_until=NOW + 500), _seen(request_id="req-2"), now=NOW, policy=POLICY)
    assert d.action == SKIP and "holds the lease" in d.reason


def test_lambdas_retry_of_the_same_request_resumes_at_once_its_earlier_attempt_has_ended() -> None:
    d = decide(_switching(lease_until=NOW + 500), _seen(request_id="req-1"), now=NOW, policy=POLICY)
    assert d.action == RESUME and d.earlier_attempt_dead


@pytest.mark.parametrize("cause", [EVENT, RECONCILE])
def test_an_expired_lease_is_resumed_by_whoever_comes(cause: str) -> None:
    d = decide(_switching(lease_until=NOW - 1), _seen(cause, request_id="req-9"), now=NOW, policy=POLICY)
    assert d.action == RESUME and not d.earlier_attempt_dead


def test_an_event_about_the_switchs_own_replacement_resumes_an_expired_switch() -> None:
    seen = _seen(instance_id="i-new", switch_replacement_id="i-new")
    assert decide(_switching(lease_until=NOW - 1), seen, now=NOW, policy=POLICY).action == RESUME


@pytest.mark.parametrize("ec2_state", ["stopping", "stopped", "terminated", "shutting-down"])
def test_the_reconciler_switches_an_active_node_whose_instance_is_down_or_gone(ec2_state: str) -> None:
    d = decide(_active(), _seen(RECONCILE, ec2_state, description="reconcile"), now=NOW, policy=POLICY)
    assert d.action == CLAIM and ec2_state in d.reason


def test_an_event_about_a_gone_instance_is_left_to_the_reconciler() -> None:
    assert decide(_active(), _seen(EVENT, "terminated"), now=NOW, policy=POLICY).action == SKIP


def test_the_reconciler_switches_a_running_node_whose_alarm_is_in_alarm() -> None:
    seen = _seen(RECONCILE, "running", alarm_firing=True, description="reconcile")
    assert decide(_active(), seen, now=NOW, policy=POLICY).action == CLAIM
    healthy = decide(_active(), _seen(RECONCILE, "running"), now=NOW, policy=POLICY)
    assert healthy.action == SKIP and healthy.reason.endswith("is healthy")


def test_the_reconciler_applies_a_config_left_pending_by_a_switch() -> None:
    node = replace(_active(), pending_config=CONFIG)
    assert decide(node, _seen(RECONCILE, "running"), now=NOW, policy=POLICY).action == REPAIR


def test_an_instance_ec2_no_longer_describes_is_reported_by_the_reconciler() -> None:
    d = decide(_active(), _seen(RECONCILE, None), now=NOW, policy=POLICY)
    assert d.action == SKIP and d.notice is not None and "operator" in d.reason


def test_a_flapping_node_is_held_instead_of_switched() -> None:
    node = replace(
        _active(), recent_switches=tuple(state.RecentSwitch(at=int(NOW) - i, az="az-a") for i in range(3))
    )
    for cause in (EVENT, RECONCILE):
        d = decide(node, _seen(cause), now=NOW, policy=POLICY)
        assert d.action == HOLD and "flap guard" in d.reason


def test_adoption_is_refused_when_several_live_instances_carry_the_node_id() -> None:
    seen = _seen(live_instance_ids=("i-b", "i-a"))
    d = decide(_active(None), seen, now=NOW, policy=POLICY)
    assert d.action == SKIP and d.notice is not None and d.notice["instance_ids"] == ["i-a", "i-b"]
    assert decide(_active(None), _seen(live_instance_ids=("i-cur",)), now=NOW, policy=POLICY).action == CLAIM


def test_events_and_the_reconciler_reach_the_same_decision_about_a_down_node() -> None:
    # Same node, same facts: both claim (and only the first conditional claim write wins).
    node = _active()
    assert decide(node, _seen(EVENT), now=NOW, policy=POLICY).action == CLAIM
    assert decide(node, _seen(RECONCILE), now=NOW, policy=POLICY).action == CLAIM


# --- state transitions the decision relies on ------------------------------------------------------


def test_a_lease_is_released_by_its_owner_and_held_by_owner_and_switch() -> None:
    node = _switching(lease_until=NOW + 500)
    assert node.held_by("req-1/abc", "swr-1")
    assert not node.held_by("req-1/other", "swr-1") and not node.held_by("req-1/abc", "swr-2")
    assert state.same_request("req-1/abc", "req-1") and not state.same_request("req-1/abc", "req-2")
    assert not state.same_request(None, "req-1") and not state.same_request("req-1/abc", None)


def test_an_update_during_a_switch_is_kept_pending_and_applied_after() -> None:
    new = replace(CONFIG, target_group_arn="arn:new")
    pending = state.with_pending_config(_switching(lease_until=NOW + 500), new, NOW)
    assert pending.config == CONFIG and pending.pending_config == new
    roundtrip = state.node_from_item(state.node_to_item(pending))
    assert roundtrip.pending_config == new
    applied = state.apply_pending(replace(pending, state=state.ACTIVE), NOW)
    assert applied.config == new and applied.pending_config is None
    with pytest.raises(state.TransitionError):
        state.with_pending_config(_active(), new, NOW)


def test_a_delete_takes_the_node_from_its_switch() -> None:
    deleted = state.mark_deleted(_switching(lease_until=NOW + 500), NOW)
    assert deleted.state == state.DELETED and deleted.lease_owner is None and deleted.switch_id is None
    assert not deleted.held_by("req-1/abc", "swr-1")


@pytest.mark.parametrize(
    ("codes", "transient"),
    [
        (["TransactionConflict", "None"], True),
        (["ThrottlingError", "None"], True),
        (["ConditionalCheckFailed", "None"], False),
        (["ValidationError", "None"], False),
        ([], False),
    ],
)
def test_cancellation_reasons_tell_a_transient_cancel_from_a_failed_condition(
    codes: list[str], transient: bool
) -> None:
    from botocore.exceptions import ClientError

    err = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException"},
            "CancellationReasons": [{"Code": c} for c in codes],
        },
        "TransactWriteItems",
    )
    assert state._transient_cancel(err) is transient
    assert state._conditional_failed(err) is ("ConditionalCheckFailed" in codes)


def _required_env() -> dict[str, str]:
    """The environment variables the switcher cannot start without (the stacks always set them)."""
    from switcher import contract

    return {
        contract.ENV_TABLE_NAME: "t",
        contract.ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:1:t",
        contract.ENV_BLACKHOLE_SG_ID: "sg-1",
        contract.ENV_VPC_NAME: "prod",
        contract.ENV_VPC_ID: "vpc-1",
    }


def test_reconciler_settings_come_from_the_environment_with_the_agreed_defaults() -> None:
    from switcher import contract
    from switcher.settings import Settings, SettingsError

    env = _required_env()
    defaults = Settings.from_env(env)
    assert (defaults.reconcile_interval_seconds, defaults.switch_overdue_seconds) == (60, 1800)
    custom = Settings.from_env(
        {**env, contract.ENV_RECONCILE_INTERVAL_SECONDS: "120", contract.ENV_SWITCH_OVERDUE_SECONDS: "600"}
    )
    assert (custom.reconcile_interval_seconds, custom.switch_overdue_seconds) == (120, 600)
    with pytest.raises(SettingsError, match="SWR_RECONCILE_INTERVAL_SECONDS"):
        Settings.from_env({**env, contract.ENV_RECONCILE_INTERVAL_SECONDS: "often"})
    with pytest.raises(SettingsError, match="switch_overdue_seconds=0"):
        Settings.from_env({**env, contract.ENV_SWITCH_OVERDUE_SECONDS: "0"})
    assert contract.METRIC_DIMENSIONS == ("service", "vpc")
    assert contract.RECONCILE_EVENT_SOURCE == "swr.reconciler"


# --- a FAILED switch: retried while its failure was for want of capacity, never for a permanent one --------

RETRY = Policy(flap_max_switches=3, flap_window_seconds=3600, retry_first_seconds=60, retry_max_seconds=930)


def _failed(*, retries: int = 0, permanent: tuple[str, ...] = (), failed_at: float = NOW - 10) -> tuple:
    node = replace(_switching(lease_until=NOW + 500), state=state.FAILED, lease_owner=None, lease_until=0)
    switch = state.SwitchRecord(
        switch_id="swr-1",
        vpc_name="prod",
        node_id=1,
        sk="sk",
        reason="instance stopping",
        order="swr",
        source_instance_id="i-cur",
        outcome=state.SWITCH_FAILED,
        timeline={
            "snapshot": state.iso(NOW - 20),
            "fence": state.iso(NOW - 15),
            "failed": state.iso(failed_at),
        },
        az_errors={"az-b": "InsufficientInstanceCapacity: no", "az-c": "InvalidAMIID.NotFound: gone"},
        permanent_azs=["az-c", *permanent],
        retries=retries,
    )
    return node, switch


def test_a_failed_switch_is_retried_by_the_reconciler_once_its_back_off_has_passed() -> None:
    node, switch = _failed(failed_at=NOW - 60)
    d = decide(node, _seen(RECONCILE, failed_switch=switch), now=NOW, policy=RETRY)
    assert (d.action, d.retry_failed) == (RESUME, True)
    early = decide(node, _seen(RECONCILE, failed_switch=switch), now=NOW - 1, policy=RETRY)
    assert early.action == SKIP and "retried in 1 s" in early.reason
    assert decide(node, _seen(EVENT, failed_switch=switch), now=NOW, policy=RETRY).action == SKIP


def test_the_retry_back_off_doubles_from_one_interval_up_to_the_lease() -> None:
    delays = [retry_at(_failed(retries=n, failed_at=NOW)[1], RETRY) - NOW for n in range(7)]  # type: ignore[operator]
    assert delays == [60, 120, 240, 480, 930, 930, 930]


def test_a_switch_every_az_refused_for_good_is_never_retried() -> None:
    node, switch = _failed(permanent=("az-b",), failed_at=NOW - 10**6)
    d = decide(node, _seen(RECONCILE, failed_switch=switch), now=NOW, policy=RETRY)
    assert d.action == SKIP and "operator" in d.reason
    assert retry_at(switch, RETRY) is None
    no_az = replace(switch, az_errors={"*": "no subnet tagged"}, permanent_azs=[])
    assert retry_at(no_az, RETRY) is None


@pytest.mark.parametrize(
    ("code", "status", "refusal"),
    [
        ("InsufficientInstanceCapacity", 500, TRANSIENT),
        ("InsufficientFreeAddressesInSubnet", 400, TRANSIENT),
        ("InvalidAMIID.NotFound", 400, PERMANENT),
        ("UnauthorizedOperation", 403, PERMANENT),
        ("Unsupported", 400, PERMANENT),
        ("InternalError", 500, None),
        ("RequestLimitExceeded", 503, None),
        ("Throttling", 400, None),
    ],
)
def test_run_instances_errors_are_told_apart_transient_permanent_or_raised(
    code: str, status: int, refusal: str | None
) -> None:
    assert launch_refusal(code, status) == refusal


def test_a_retried_switch_is_reopened_from_its_launch_and_its_failure_leaves_the_flap_history() -> None:
    node, switch = _failed()
    node = replace(
        node, recent_switches=({"at": int(NOW) - 3000, "az": "az-a"}, {"at": int(NOW), "az": "az-a"})
    )
    taken = state.retry_failed(node, owner="rec-1/x", lease_until=int(NOW) + 900, now=NOW)
    assert (taken.state, taken.switch_id, taken.lease_owner) == (state.SWITCHING, "swr-1", "rec-1/x")
    assert taken.recent_switches == node.recent_switches[:1]
    reopened = state.reopen(switch)
    assert reopened.outcome == state.IN_PROGRESS and "failed" not in reopened.timeline
    assert (reopened.az_errors, reopened.permanent_azs, reopened.retries) == ({}, [], 1)
    with pytest.raises(state.TransitionError):
        state.retry_failed(_active(), owner="o", lease_until=1, now=NOW)


# --- a silent node (docs/detection.md) --------------------------------------------------------------


def test_a_running_node_whose_monitor_metric_is_silent_past_the_bound_is_switched() -> None:
    seen = _seen(RECONCILE, "running", silent_for=POLICY.silent_after_seconds + 1)
    d = decide(_active(), seen, now=NOW, policy=POLICY)
    assert d.action == CLAIM and "silent" in d.reason


def test_a_booting_instance_silent_for_less_than_the_bound_is_not_switched() -> None:
    seen = _seen(RECONCILE, "running", silent_for=POLICY.silent_after_seconds - 1)
    assert decide(_active(), seen, now=NOW, policy=POLICY).action == SKIP


def test_a_silent_node_on_hold_or_being_switched_is_not_switched() -> None:
    seen = _seen(RECONCILE, "running", silent_for=10 * POLICY.silent_after_seconds)
    held = state.hold_node(_active(), "patching", NOW)
    assert decide(held, seen, now=NOW, policy=POLICY).action == SKIP
    switching = _switching(lease_until=NOW + 600)
    assert decide(switching, seen, now=NOW, policy=POLICY).action == SKIP


# --- a switch parked at its fence (its source's stop pending past the inline wait) ------------------------

DEADLINE = NOW + 200


def _parked(*, until: float = DEADLINE) -> state.NodeRecord:
    """A switch parked by store.park_owned: still SWITCHING under its switch, no owner, due at `until`."""
    return replace(_switching(lease_until=NOW + 500), lease_owner=None, lease_until=int(until))


@pytest.mark.parametrize("cause", [EVENT, RECONCILE])
@pytest.mark.parametrize("ec2_state", ["stopped", "terminated"])
def test_a_parked_switch_is_resumed_at_once_when_its_source_is_seen_stopped(
    cause: str, ec2_state: str
) -> None:
    d = decide(_parked(), _seen(cause, ec2_state, request_id="req-9"), now=NOW, policy=POLICY)
    assert d.action == RESUME and d.parked and ec2_state in d.reason and "i-cur" in d.reason
    # The take-over it leads to is allowed although `lease_until` has not passed.
    taken = state.take_over(_parked(), owner="req-9/x", lease_until=int(NOW + 900), now=NOW, parked=True)
    assert (taken.lease_owner, taken.state) == ("req-9/x", state.SWITCHING)


@pytest.mark.parametrize("cause", [EVENT, RECONCILE])
@pytest.mark.parametrize("ec2_state", ["stopping", "running", "shutting-down", None])
def test_a_parked_switch_whose_source_has_not_stopped_waits_for_its_deadline(
    cause: str, ec2_state: str | None
) -> None:
    d = decide(_parked(), _seen(cause, ec2_state, request_id="req-9"), now=NOW, policy=POLICY)
    assert d.action == SKIP, d
    assert d.reason == (
        f"node 1: switch swr-1 waits for the fence of its source i-cur until {state.iso(int(DEADLINE))}"
    )


@pytest.mark.parametrize("cause", [EVENT, RECONCILE])
def test_a_parked_switch_is_resumed_once_its_fence_deadline_has_passed(cause: str) -> None:
    d = decide(_parked(), _seen(cause, "stopping", request_id="req-9"), now=DEADLINE, policy=POLICY)
    assert d.action == RESUME and not d.parked and "its fence is due" in d.reason


def test_a_killed_invocations_live_lease_is_not_taken_for_a_parked_switch() -> None:
    """Owner present, lease live: a switch in progress (or killed), not parked. Its source stopping is
    the switch's own stop: still skipped until the lease expires, as before parking existed."""
    node = _switching(lease_until=NOW + 500)
    assert not node.parked(NOW)
    d = decide(node, _seen(RECONCILE, "stopped", request_id="req-9"), now=NOW, policy=POLICY)
    assert d.action == SKIP and "holds the lease" in d.reason
    with pytest.raises(state.TransitionError, match="not parked"):
        state.take_over(node, owner="req-9/x", lease_until=int(NOW + 900), now=NOW, parked=True)


def test_the_fence_inline_wait_comes_from_the_environment_30_s_by_default() -> None:
    from switcher import contract
    from switcher.settings import Settings, SettingsError

    env = _required_env()
    assert Settings.from_env(env).fence_inline_wait_seconds == 30
    assert contract.ENV_FENCE_INLINE_WAIT_SECONDS == "SWR_FENCE_INLINE_WAIT_SECONDS"
    custom = Settings.from_env({**env, contract.ENV_FENCE_INLINE_WAIT_SECONDS: "45"})
    assert custom.fence_inline_wait_seconds == 45
    with pytest.raises(SettingsError, match="fence_inline_wait_seconds=0"):
        Settings.from_env({**env, contract.ENV_FENCE_INLINE_WAIT_SECONDS: "0"})
