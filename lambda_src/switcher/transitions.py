"""The node's allowed state changes, as pure functions on records (no AWS, no I/O: unit-testable).

Each returns the changed record with its `version` moved on; `switcher.store` writes it conditional on
the version it was read at. A change not allowed from the node's state raises TransitionError.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

from switcher.models import (
    ACTIVE,
    DELETED,
    FAILED,
    HOLD,
    SWITCHING,
    NodeConfig,
    NodeRecord,
    Outcome,
    RecentSwitch,
    SwitchRecord,
)


class TransitionError(Exception):
    """The requested transition is not allowed from the node's current state (message says why)."""


def iso(epoch: float) -> str:
    """Epoch seconds as an ISO-8601 UTC string with milliseconds (the timeline's format)."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def _touch(changed: NodeRecord, now: float) -> NodeRecord:
    """`changed` as the next version of the record, changed `now`."""
    return replace(changed, version=changed.version + 1, updated_at=iso(now))


def new_node(vpc_name: str, node_id: int, config: NodeConfig, now: float) -> NodeRecord:
    """A freshly provisioned node with its config and no instance yet."""
    return NodeRecord(vpc_name=vpc_name, node_id=node_id, config=config, version=1, updated_at=iso(now))


def with_config(node: NodeRecord, config: NodeConfig, now: float) -> NodeRecord:
    """Store a new config (applies at the next switch); a deleted node comes back `ACTIVE`."""
    state = ACTIVE if node.state == DELETED else node.state
    return _touch(replace(node, config=config, state=state, pending_config=None), now)


def with_pending_config(node: NodeRecord, config: NodeConfig, now: float) -> NodeRecord:
    """Keep a config that arrives during a switch aside: the switch finishes on the config it started
    with, and the new one is applied (target group, alarms) right after it closes."""
    if node.state != SWITCHING:
        raise TransitionError(f"node {node.node_id} is {node.state}: apply the config at once instead")
    return _touch(replace(node, pending_config=config), now)


def apply_pending(node: NodeRecord, now: float) -> NodeRecord:
    """The pending config becomes the node's config (its AWS side has been done)."""
    if node.pending_config is None:
        raise TransitionError(f"node {node.node_id} has no pending config")
    return _touch(replace(node, config=node.pending_config, pending_config=None), now)


def with_current(node: NodeRecord, instance_id: str, az: str | None, now: float) -> NodeRecord:
    """Record the node's current instance (first launch or adoption)."""
    return _touch(replace(node, current_instance_id=instance_id, current_az=az), now)


def claim(
    node: NodeRecord,
    *,
    instance_id: str,
    switch_id: str,
    switch_sk: str,
    owner: str,
    lease_until: int,
    now: float,
) -> NodeRecord:
    """`ACTIVE` with the event's instance as current → `SWITCHING` under a new switch and lease."""
    if node.state != ACTIVE:
        raise TransitionError(f"node {node.node_id} is {node.state}, not {ACTIVE}: cannot start a switch")
    if node.current_instance_id not in (None, instance_id):
        raise TransitionError(
            f"instance {instance_id} is not node {node.node_id}'s current instance "
            f"({node.current_instance_id})"
        )
    return _touch(
        replace(
            node,
            state=SWITCHING,
            current_instance_id=instance_id,
            switch_id=switch_id,
            switch_sk=switch_sk,
            lease_owner=owner,
            lease_until=lease_until,
        ),
        now,
    )


def owner_id(request_id: str | None, nonce: str) -> str:
    """A lease owner: the Lambda request id (kept by Lambda's retries of the same event) + a per-attempt
    nonce (so the attempts of one request are still told apart when one of them loses the lease)."""
    return f"{request_id or '-'}/{nonce}"


def same_request(owner: str | None, request_id: str | None) -> bool:
    """True if the lease `owner` is an earlier attempt of the request `request_id` (Lambda retry)."""
    return bool(owner and request_id and owner.split("/", 1)[0] == request_id)


def take_over(
    node: NodeRecord,
    *,
    owner: str,
    lease_until: int,
    now: float,
    earlier_attempt_dead: bool = False,
    parked: bool = False,
) -> NodeRecord:
    """Take over a switch whose lease expired (its switcher died or let it go); it resumes from its phase.

    `earlier_attempt_dead`: the lease belongs to an earlier attempt of this very request, which Lambda
    only retries once that attempt has ended (error, timeout, crash): its lease protects nobody.
    `parked`: the switch is parked (no owner) and was found due before its time (its source stopped).
    """
    if node.state != SWITCHING:
        raise TransitionError(f"node {node.node_id} is {node.state}: no switch to resume")
    if parked and not node.parked(now):
        raise TransitionError(f"node {node.node_id}: switch {node.switch_id} is not parked")
    if node.lease_live(now) and not (earlier_attempt_dead or parked):
        raise TransitionError(f"node {node.node_id}: switch {node.switch_id} still holds its lease")
    return _touch(replace(node, lease_owner=owner, lease_until=lease_until), now)


def retry_failed(node: NodeRecord, *, owner: str, lease_until: int, now: float) -> NodeRecord:
    """`FAILED` (for want of capacity) → `SWITCHING` again under the same switch and a new lease. The flap
    history entry that the failure added is dropped: the retry continues that one switch, whose close (or
    failure) adds it back."""
    if node.state != FAILED or node.switch_id is None:
        raise TransitionError(f"node {node.node_id} is {node.state}: no failed switch to retry")
    return _touch(
        replace(
            node,
            state=SWITCHING,
            lease_owner=owner,
            lease_until=lease_until,
            recent_switches=node.recent_switches[:-1],
        ),
        now,
    )


def reopen(switch: SwitchRecord) -> SwitchRecord:
    """A FAILED switch made ready for its retry: in progress again, from its launch, every AZ to try."""
    return replace(
        switch,
        outcome=Outcome.IN_PROGRESS,
        error=None,
        timeline={k: v for k, v in switch.timeline.items() if k != "failed"},
        az_errors={},
        permanent_azs=[],
        retries=switch.retries + 1,
        attempts=switch.attempts + 1,
    )


def renew(node: NodeRecord, *, lease_until: int, now: float) -> NodeRecord:
    """Extend the lease of the switch that holds the node (the check before each mutating phase)."""
    return _touch(replace(node, lease_until=lease_until), now)


def release(node: NodeRecord, now: float) -> NodeRecord:
    """Give the lease up after an error so the next delivery resumes at once."""
    return _touch(replace(node, lease_until=0, lease_owner=None), now)


def close(
    node: NodeRecord, *, instance_id: str, az: str, source_az: str | None, window_seconds: int, now: float
) -> NodeRecord:
    """The switch succeeded: `ACTIVE` with the replacement; remember the failed AZ (flap guard, AZ choice)."""
    return _touch(
        replace(
            node,
            state=ACTIVE,
            current_instance_id=instance_id,
            current_az=az,
            switch_id=None,
            switch_sk=None,
            lease_owner=None,
            lease_until=0,
            recent_switches=(*_recent(node, window_seconds, now), RecentSwitch(at=int(now), az=source_az)),
        ),
        now,
    )


def fail(node: NodeRecord, *, source_az: str | None, window_seconds: int, now: float) -> NodeRecord:
    """The switch failed for good (no AZ could take the node): `FAILED`, the fenced source is kept."""
    return _touch(
        replace(
            node,
            state=FAILED,
            lease_owner=None,
            lease_until=0,
            recent_switches=(*_recent(node, window_seconds, now), RecentSwitch(at=int(now), az=source_az)),
        ),
        now,
    )


def hold_node(node: NodeRecord, reason: str, now: float) -> NodeRecord:
    """Put a node on `HOLD`: events about it are ignored until `resume`."""
    if node.state in (SWITCHING, DELETED):
        raise TransitionError(f"node {node.node_id} is {node.state}: cannot hold it now")
    return _touch(replace(node, state=HOLD, hold_reason=reason), now)


def resume_node(node: NodeRecord, now: float) -> NodeRecord:
    """Return a held or failed node to `ACTIVE` (and forget its flap history, the operator has looked)."""
    if node.state not in (HOLD, FAILED):
        raise TransitionError(f"node {node.node_id} is {node.state}: only {HOLD} or {FAILED} can be resumed")
    return _touch(
        replace(node, state=ACTIVE, hold_reason=None, switch_id=None, switch_sk=None, recent_switches=()), now
    )


def mark_deleted(node: NodeRecord, now: float) -> NodeRecord:
    """The node's custom resource was deleted; the record and its history stay.

    A switch in progress loses the node here: its next lease check fails and it stops.
    """
    return _touch(
        replace(
            node,
            state=DELETED,
            current_instance_id=None,
            current_az=None,
            lease_until=0,
            lease_owner=None,
            switch_id=None,
            switch_sk=None,
            pending_config=None,
        ),
        now,
    )


def _recent(node: NodeRecord, window_seconds: int, now: float) -> tuple[RecentSwitch, ...]:
    return tuple(s for s in node.recent_switches if s.at > now - window_seconds)


def switches_in_window(node: NodeRecord, window_seconds: int, now: float) -> int:
    """How many switches of the node happened within the flap window."""
    return len(_recent(node, window_seconds, now))


def flapping(node: NodeRecord, *, max_switches: int, window_seconds: int, now: float) -> bool:
    """True if one more switch would exceed `max_switches` in the window (→ hold instead)."""
    return switches_in_window(node, window_seconds, now) >= max_switches


def failures_by_az(node: NodeRecord, window_seconds: int, now: float) -> dict[str, int]:
    """Failures of this node per AZ in the recent window (the AZ choice prefers AZs with fewer)."""
    counts: dict[str, int] = {}
    for entry in _recent(node, window_seconds, now):
        if entry.az:
            counts[entry.az] = counts.get(entry.az, 0) + 1
    return counts


def lease_deadline(now: float, seconds: float) -> int:
    """Epoch second until which a lease taken now holds."""
    return math.ceil(now + seconds)
