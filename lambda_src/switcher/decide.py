"""The decision: what to do about a node, given what an event delivery or the reconciler saw (pure).

Both entry points (`switch.run_event` for EventBridge events, `reconcile.reconcile` for the periodic
sweep) gather what they saw into a `Seen`, call `decide` and act on its `Decision` through the same
conditional claim/take-over writes, so they can never both switch a node: whoever writes first wins,
the other re-reads the node and decides again (then: skip, the switch holds the lease).

A switch that FAILED because no AZ had capacity is not the end: capacity comes back, and a FAILED node is
a node down. The reconciler retries such a switch (`RESUME` of the FAILED switch, from its launch), with
a back-off that doubles from one reconcile interval up to the lease, so it converges within the lease + one
reconcile interval of capacity returning. A switch that FAILED for a reason no retry can fix (a bad AMI
or launch template, AccessDenied: a client error of RunInstances, "Error codes for the Amazon EC2 API")
stays FAILED with its notice until an operator runs `swr resume`.

A switch whose source's stop did not complete within the fence's inline wait is PARKED (no lease owner,
`lease_until` = its fence deadline: store.park_owned), so no invocation is held while the stop is
pending. It is resumed at once when an event or a reconcile run sees its source `stopped` or
`terminated`, else once its deadline has passed (then the network fence is tried); before that it is
skipped. A killed invocation's switch (owner present, lease live) is not parked and waits for its lease.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switcher import aws, fence, state

SKIP = "skip"
CLAIM = "claim"
RESUME = "resume"
HOLD = "hold"
REPAIR = "repair"
ACTIONS = (SKIP, CLAIM, RESUME, HOLD, REPAIR)

#: The timeline key a FAILED switch records its failure under, and the az_errors key of "no AZ to try".
FAILED_PHASE = "failed"
NO_AZ = "*"

EVENT = "event"
RECONCILE = "reconcile"

#: EC2 states in which the node's instance does not serve: the reconciler switches the node.
#: (The event path acts on its trigger, `stopping`/`stopped` or an alarm, whatever the state.)
DOWN_STATES = frozenset({"stopping", "stopped"}) | aws.GONE_STATES

#: How an AZ refused a replacement (RunInstances error), as `launch_refusal` classifies it.
TRANSIENT = "transient"
PERMANENT = "permanent"
#: RunInstances errors that say "this AZ has no room now": the next AZ is tried at once, and a switch they
#: failed is retried later. "Error codes for the Amazon EC2 API"
#: (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
#: InsufficientInstanceCapacity (server error, 5xx), InsufficientFreeAddressesInSubnet (client error: the
#: subnet has no free address now; addresses come back as instances end).
TRANSIENT_REFUSAL_CODES = frozenset({"InsufficientInstanceCapacity", "InsufficientFreeAddressesInSubnet"})
#: Throttling, not a refusal ("Error codes for the Amazon EC2 API": RequestLimitExceeded is a server error
#: there; other services say `Throttling`): botocore retries them, then the attempt raises.
THROTTLING_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})


def launch_refusal(code: str, status: int | None) -> str | None:
    """How a RunInstances error refuses this AZ: TRANSIENT (capacity: try the next AZ, retry the switch
    later), PERMANENT (a client error no retry fixes: bad AMI or template, AccessDenied, an instance type the
    AZ does not offer; "Ensuring idempotency in Amazon EC2 API requests": a 400 "typically indicates the
    request will never succeed") or None (a server error or throttling: raise, Lambda retries the attempt)."""
    if code in TRANSIENT_REFUSAL_CODES:
        return TRANSIENT
    if code in THROTTLING_CODES or status is None or not 400 <= status < 500:
        return None
    return PERMANENT


@dataclass(frozen=True)
class Seen:
    """What the caller observed about one node (no AWS client in here)."""

    cause: str  # EVENT | RECONCILE
    description: str  # e.g. "instance stopping", "alarm swr-prod-1-monitor", "instance stopped (reconcile)"
    instance_id: str | None  # event: the event's instance; reconcile: the node's current instance
    instance_state: str | None  # EC2 state name; None: EC2 does not describe the instance (any more)
    #: reconcile: one of the node's alarms is in ALARM and watches `instance_id`.
    alarm_firing: bool = False
    #: The Lambda request id of this invocation (kept by Lambda's retries of one event).
    request_id: str | None = None
    #: SWITCHING node: the replacement its switch launched (so an event about it is not "foreign").
    switch_replacement_id: str | None = None
    #: The node id the instance carries (its record may not exist).
    node_id: int | None = None
    #: Node with no current instance (adoption): the live instances of the VPC carrying its id.
    live_instance_ids: tuple[str, ...] | None = None
    #: FAILED node (reconcile): the switch that failed (its AZs' refusals and when it failed).
    failed_switch: state.SwitchRecord | None = None
    #: reconcile: seconds the monitor alarm watching `instance_id` has been INSUFFICIENT_DATA (None: not).
    silent_for: float | None = None


@dataclass(frozen=True)
class Policy:
    """The settings the decision depends on."""

    flap_max_switches: int
    flap_window_seconds: int
    #: First delay before a FAILED switch is retried (one reconcile interval), doubled at each retry...
    retry_first_seconds: int = 60
    #: ...up to this (the lease): capacity back at T, the node converges by T + this + one interval.
    retry_max_seconds: int = 930
    #: A running instance whose monitor metric is silent longer than this is switched (reconcile).
    silent_after_seconds: float = 300


@dataclass(frozen=True)
class Decision:
    """What to do, and why (the reason is logged and returned as is)."""

    action: str
    reason: str
    #: A skip an operator must hear about (a setup problem): the notice's detail.
    notice: dict[str, Any] | None = None
    #: RESUME: the lease belongs to an earlier attempt of this same request, which has ended.
    earlier_attempt_dead: bool = False
    #: RESUME of a FAILED switch (capacity may be back): it is reopened and resumed from its launch.
    retry_failed: bool = False
    #: RESUME of a parked switch before it is due: its source was seen stopped (or ended).
    parked: bool = False


def decide(node: state.NodeRecord | None, seen: Seen, *, now: float, policy: Policy) -> Decision:
    """Skip, claim (start a switch), resume (take over a switch), hold (flap guard) or repair."""
    if node is None or node.config is None:
        reason = f"node {seen.node_id} has no configuration record: provision it (Custom::SwrNode) first"
        return Decision(SKIP, reason, notice={"reason": reason})
    nid = node.node_id
    if node.state == state.DELETED:
        return Decision(SKIP, f"node {nid} is {state.DELETED}")
    if node.state == state.FAILED:
        return _failed(node, seen, now=now, policy=policy)
    if node.state == state.HOLD:
        return Decision(SKIP, f"node {nid} is {node.state}")
    if node.state == state.SWITCHING:
        return _switching(node, seen, now=now)
    return _active(node, seen, now=now, policy=policy)


def retryable(switch: state.SwitchRecord) -> bool:
    """True if a FAILED switch may succeed later: at least one AZ refused it only for want of capacity
    (or lost its replacement while pending); False if every AZ refused it for good (or none was tagged)."""
    return bool(set(switch.az_errors) - set(switch.permanent_azs) - {NO_AZ})


def retry_at(switch: state.SwitchRecord, policy: Policy) -> float | None:
    """When a FAILED switch is retried: its failure + first delay x 2^retries, capped (None: never)."""
    failed = switch.timeline.get(FAILED_PHASE)
    if failed is None or not retryable(switch):
        return None
    delay = min(policy.retry_first_seconds * 2.0 ** min(switch.retries, 30), float(policy.retry_max_seconds))
    return datetime.fromisoformat(failed).timestamp() + delay


def _failed(node: state.NodeRecord, seen: Seen, *, now: float, policy: Policy) -> Decision:
    nid = node.node_id
    sw = seen.failed_switch
    if seen.cause != RECONCILE or sw is None or sw.switch_id != node.switch_id:
        return Decision(SKIP, f"node {nid} is {state.FAILED}")
    at = retry_at(sw, policy)
    if at is None:
        return Decision(
            SKIP, f"node {nid} is {state.FAILED} for a reason no retry fixes: it needs an operator"
        )
    if now < at:
        return Decision(
            SKIP, f"node {nid} is {state.FAILED}: switch {sw.switch_id} is retried in {math.ceil(at - now)} s"
        )
    return Decision(
        RESUME,
        f"node {nid}: retry switch {sw.switch_id} (retry {sw.retries + 1}; it failed for want of capacity)",
        retry_failed=True,
    )


def _switching(node: state.NodeRecord, seen: Seen, *, now: float) -> Decision:
    nid = node.node_id
    ours = {node.current_instance_id, seen.switch_replacement_id} - {None}
    if seen.instance_id is not None and seen.instance_id not in ours:
        return Decision(
            SKIP,
            f"instance {seen.instance_id} is not node {nid}'s current instance {node.current_instance_id}",
        )
    if node.parked(now):
        # Parked at its fence (store.park_owned): nobody holds it. The source's stop completing is what it
        # waits for; until then (or its deadline, when `lease_until` passes) there is nothing to do.
        source = node.current_instance_id
        if seen.instance_id == source and seen.instance_state in fence.STOPPED_STATES:
            return Decision(
                RESUME,
                f"node {nid}: resume switch {node.switch_id} (its source {source} is {seen.instance_state})",
                parked=True,
            )
        return Decision(
            SKIP,
            f"node {nid}: switch {node.switch_id} waits for the fence of its source {source} "
            f"until {state.iso(node.lease_until)}",
        )
    own_earlier = state.same_request(node.lease_owner, seen.request_id)
    if node.lease_live(now) and not own_earlier:
        return Decision(SKIP, f"node {nid}: switch {node.switch_id} in progress holds the lease")
    if node.lease_live(now):
        why = "an earlier attempt of this request ended"
    elif node.lease_owner is None and node.lease_until > 0:
        why = "its fence is due"  # parked until its fence deadline, or to retry an unconfirmed fence
    else:
        why = "its lease expired"
    return Decision(
        RESUME,
        f"node {nid}: resume switch {node.switch_id} ({why})",
        earlier_attempt_dead=own_earlier and node.lease_live(now),
    )


def _active(node: state.NodeRecord, seen: Seen, *, now: float, policy: Policy) -> Decision:
    nid = node.node_id
    live = seen.live_instance_ids
    if node.current_instance_id is None and live is not None and len(live) > 1:
        reason = f"several live instances carry node {nid}'s id, refusing to adopt"
        return Decision(SKIP, reason, notice={"reason": reason, "instance_ids": sorted(live)})
    if seen.instance_id is None:
        return Decision(SKIP, f"node {nid} has no instance to act on")
    if node.current_instance_id not in (None, seen.instance_id):
        return Decision(
            SKIP,
            f"instance {seen.instance_id} is not node {nid}'s current instance {node.current_instance_id}",
        )
    if seen.instance_state is None:
        reason = f"node {nid}: EC2 no longer describes its instance {seen.instance_id}; it needs an operator"
        notice = {"reason": reason} if seen.cause == RECONCILE else None
        return Decision(SKIP, reason, notice=notice)
    if seen.cause == EVENT:
        if seen.instance_state in aws.GONE_STATES:
            # Nothing to fence or stop; a node left on a gone instance is the reconciler's (it sees all).
            return Decision(SKIP, f"instance {seen.instance_id} is already {seen.instance_state}")
        return _claim_or_hold(node, seen.description, now=now, policy=policy)
    if seen.instance_state in DOWN_STATES:
        return _claim_or_hold(
            node, f"{seen.description}: instance {seen.instance_state}", now=now, policy=policy
        )
    if seen.alarm_firing:
        return _claim_or_hold(node, f"{seen.description}: alarm in ALARM", now=now, policy=policy)
    if seen.silent_for is not None and seen.silent_for >= policy.silent_after_seconds:
        # Frozen, cut off, powered off with its AZ, or its agent killed with the monitor: the metric
        # stops and the alarm goes INSUFFICIENT_DATA, which sends no event. A shorter silence is a
        # booting instance (its alarm was re-armed to OK when it became the node's).
        return _claim_or_hold(
            node,
            f"{seen.description}: monitor metric silent for {int(seen.silent_for)} s",
            now=now,
            policy=policy,
        )
    if node.pending_config is not None:
        return Decision(REPAIR, f"node {nid}: a config update is pending since a switch")
    return Decision(SKIP, f"node {nid} is healthy")


def _claim_or_hold(node: state.NodeRecord, description: str, *, now: float, policy: Policy) -> Decision:
    if state.flapping(
        node, max_switches=policy.flap_max_switches, window_seconds=policy.flap_window_seconds, now=now
    ):
        return Decision(
            HOLD, f"flap guard: {policy.flap_max_switches} switches within {policy.flap_window_seconds} s"
        )
    return Decision(CLAIM, description)
