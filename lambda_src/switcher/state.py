"""The state record: the ONE module that owns the DynamoDB schema, used by the switcher and the CLI.

The schema is described in docs/design.md, "State record".

Layout (table keys `pk`/`sk`, strings):
- node item:   pk = ``NODE#<vpc>``, sk = ``NODE#<node_id>`` — current instance, state, config, version, lease.
- switch item: pk = ``SWITCH#<vpc>#<node_id>``, sk = ``<started ISO time>#<switch_id>`` — one per switch,
  with the phase timeline; carries the TTL attribute (`expires_at`), node items never do.

Every node change is a conditional write on `version` (optimistic concurrency): the claim of a switch is
the write that moves `ACTIVE` + the event's instance to `SWITCHING`; whoever loses the condition stops.
Transitions are pure functions on records (unit-testable); `save_*`/`record_phase` persist them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from switcher import contract

ACTIVE = "ACTIVE"
SWITCHING = "SWITCHING"
HOLD = "HOLD"
FAILED = "FAILED"
DELETED = "DELETED"
NODE_STATES = (ACTIVE, SWITCHING, HOLD, FAILED, DELETED)

IN_PROGRESS = "IN_PROGRESS"
SUCCEEDED = "SUCCEEDED"
SWITCH_FAILED = "FAILED"
#: The node was deleted (stack Delete) while the switch ran: the Delete removed what the switch created.
SWITCH_CANCELLED = "CANCELLED"


class TransitionError(Exception):
    """The requested transition is not allowed from the node's current state (message says why)."""


class ConflictError(Exception):
    """A conditional write lost: someone else changed the record first (duplicate or concurrent switch)."""


class LeaseLost(ConflictError):
    """The node is no longer held by this invocation's switch (taken over, closed elsewhere or deleted)."""

    def __init__(self, message: str, node: NodeRecord | None) -> None:
        super().__init__(message)
        #: The node as it is now (None if its record is gone): tells a takeover from a Delete.
        self.node = node


class TransientWriteError(Exception):
    """DynamoDB cancelled a write for a transient reason (transaction conflict, throttling) too often."""


def iso(epoch: float) -> str:
    """Epoch seconds as an ISO-8601 UTC string with milliseconds (the timeline's format)."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def node_key(vpc_name: str, node_id: int) -> dict[str, dict[str, str]]:
    """DynamoDB key of a node item."""
    return {
        contract.TABLE_PARTITION_KEY: {"S": f"NODE#{vpc_name}"},
        contract.TABLE_SORT_KEY: {"S": f"NODE#{node_id}"},
    }


def switch_pk(vpc_name: str, node_id: int) -> str:
    """Partition key of a node's switch history."""
    return f"SWITCH#{vpc_name}#{node_id}"


@dataclass(frozen=True)
class NodeConfig:
    """The node's configuration, stored from the custom resource's properties (not the Lambda environment)."""

    launch_template_id: str
    launch_template_version: str
    target_group_arn: str
    monitor_process: str = "swr-monitor"

    def __post_init__(self) -> None:
        if self.monitor_process not in contract.MONITOR_PROCESS_PATTERNS:
            raise ValueError(
                f"{contract.PROP_MONITOR_PROCESS}={self.monitor_process!r}: expected one of "
                f"{', '.join(contract.MONITOR_PROCESS_PATTERNS)}"
            )


@dataclass(frozen=True)
class NodeRecord:
    """One node: its current instance, state and the lease of a switch in progress."""

    vpc_name: str
    node_id: int
    state: str = ACTIVE
    version: int = 0
    config: NodeConfig | None = None
    current_instance_id: str | None = None
    current_az: str | None = None
    switch_id: str | None = None
    switch_sk: str | None = None
    lease_owner: str | None = None
    lease_until: int = 0
    hold_reason: str | None = None
    #: A config stored by a Custom::SwrNode Update that arrived during a switch: applied once it closes.
    pending_config: NodeConfig | None = None
    #: Recent switches as {"at": epoch, "az": failed source AZ}: flap guard and AZ preference.
    recent_switches: tuple[dict[str, Any], ...] = ()
    updated_at: str = ""

    def lease_live(self, now: float) -> bool:
        """True while a switch in progress still holds the node."""
        return self.state == SWITCHING and self.lease_until > now

    def held_by(self, owner: str, switch_id: str) -> bool:
        """True if this switch, driven by `owner`, still holds the node (not taken over, not deleted)."""
        return self.state == SWITCHING and self.lease_owner == owner and self.switch_id == switch_id


@dataclass
class SwitchRecord:
    """One switch of a node: source, replacement, reason and the timestamp of every phase."""

    switch_id: str
    vpc_name: str
    node_id: int
    sk: str
    reason: str
    order: str
    source_instance_id: str
    source_az: str | None = None
    outcome: str = IN_PROGRESS
    timeline: dict[str, str] = field(default_factory=dict)
    snapshot: dict[str, Any] | None = None
    #: The node's launch template as the snapshot saw it: a resumed launch repeats its ClientToken, and EC2
    #: refuses a token reused with other parameters, so a deploy mid-switch must not change them.
    launch_template_id: str | None = None
    launch_template_version: str | None = None
    candidates: list[dict[str, str]] = field(default_factory=list)
    replacement_instance_id: str | None = None
    replacement_az: str | None = None
    replacement_subnet_id: str | None = None
    #: Its target in the node's target group (known from RunInstances, before it runs).
    replacement_private_ip: str | None = None
    az_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: The fence that held (contract.FENCE_STOPPED | contract.FENCE_NETWORK), once confirmed.
    fence: str | None = None
    #: The network ACL rules of a network fence (switcher.fence.NetworkFence as a dict).
    network_fence: dict[str, Any] | None = None
    attempts: int = 1
    started_at: float = 0.0
    expires_at: int = 0


# --- (de)serialisation -----------------------------------------------------------------------------
# Structured fields are stored as JSON strings: simple, exact (no Decimal round trips) and readable.


def node_to_item(node: NodeRecord) -> dict[str, Any]:
    """A node record as a DynamoDB item (low-level attribute values)."""
    item: dict[str, Any] = node_key(node.vpc_name, node.node_id)
    item.update(
        {
            "kind": {"S": "node"},
            "vpc_name": {"S": node.vpc_name},
            "node_id": {"N": str(node.node_id)},
            "state": {"S": node.state},
            "version": {"N": str(node.version)},
            "lease_until": {"N": str(node.lease_until)},
            "recent_switches": {"S": json.dumps(list(node.recent_switches))},
            "updated_at": {"S": node.updated_at},
        }
    )
    if node.config is not None:
        item["config"] = {"S": json.dumps(asdict(node.config))}
    if node.pending_config is not None:
        item["pending_config"] = {"S": json.dumps(asdict(node.pending_config))}
    for name in ("current_instance_id", "current_az", "switch_id", "switch_sk", "lease_owner", "hold_reason"):
        value = getattr(node, name)
        if value is not None:
            item[name] = {"S": value}
    return item


def node_from_item(item: dict[str, Any]) -> NodeRecord:
    """A node record from a DynamoDB item."""

    def s(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    config = NodeConfig(**json.loads(item["config"]["S"])) if "config" in item else None
    pending = NodeConfig(**json.loads(item["pending_config"]["S"])) if "pending_config" in item else None
    return NodeRecord(
        vpc_name=item["vpc_name"]["S"],
        node_id=int(item["node_id"]["N"]),
        state=item["state"]["S"],
        version=int(item["version"]["N"]),
        config=config,
        current_instance_id=s("current_instance_id"),
        current_az=s("current_az"),
        switch_id=s("switch_id"),
        switch_sk=s("switch_sk"),
        lease_owner=s("lease_owner"),
        lease_until=int(item.get("lease_until", {"N": "0"})["N"]),
        hold_reason=s("hold_reason"),
        pending_config=pending,
        recent_switches=tuple(json.loads(item.get("recent_switches", {"S": "[]"})["S"])),
        updated_at=s("updated_at") or "",
    )


def switch_to_item(sw: SwitchRecord) -> dict[str, Any]:
    """A switch record as a DynamoDB item; `expires_at` is the table's TTL attribute."""
    body = asdict(sw)
    return {
        contract.TABLE_PARTITION_KEY: {"S": switch_pk(sw.vpc_name, sw.node_id)},
        contract.TABLE_SORT_KEY: {"S": sw.sk},
        "kind": {"S": "switch"},
        "switch_id": {"S": sw.switch_id},
        "outcome": {"S": sw.outcome},
        "body": {"S": json.dumps(body)},  # insertion order kept: the timeline reads in phase order
        contract.TTL_ATTRIBUTE: {"N": str(sw.expires_at)},
    }


def switch_from_item(item: dict[str, Any]) -> SwitchRecord:
    """A switch record from a DynamoDB item."""
    return SwitchRecord(**json.loads(item["body"]["S"]))


# --- pure transitions ------------------------------------------------------------------------------


def _touch(node: NodeRecord, now: float, **changes: Any) -> NodeRecord:
    return replace(node, version=node.version + 1, updated_at=iso(now), **changes)


def new_node(vpc_name: str, node_id: int, config: NodeConfig, now: float) -> NodeRecord:
    """A freshly provisioned node with its config and no instance yet."""
    return NodeRecord(vpc_name=vpc_name, node_id=node_id, config=config, version=1, updated_at=iso(now))


def with_config(node: NodeRecord, config: NodeConfig, now: float) -> NodeRecord:
    """Store a new config (applies at the next switch); a deleted node comes back `ACTIVE`."""
    state = ACTIVE if node.state == DELETED else node.state
    return _touch(node, now, config=config, state=state, pending_config=None)


def with_pending_config(node: NodeRecord, config: NodeConfig, now: float) -> NodeRecord:
    """Keep a config that arrives during a switch aside: the switch finishes on the config it started
    with, and the new one is applied (target group, alarms) right after it closes."""
    if node.state != SWITCHING:
        raise TransitionError(f"node {node.node_id} is {node.state}: apply the config at once instead")
    return _touch(node, now, pending_config=config)


def apply_pending(node: NodeRecord, now: float) -> NodeRecord:
    """The pending config becomes the node's config (its AWS side has been done)."""
    if node.pending_config is None:
        raise TransitionError(f"node {node.node_id} has no pending config")
    return _touch(node, now, config=node.pending_config, pending_config=None)


def with_current(node: NodeRecord, instance_id: str, az: str | None, now: float) -> NodeRecord:
    """Record the node's current instance (first launch or adoption)."""
    return _touch(node, now, current_instance_id=instance_id, current_az=az)


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
        node,
        now,
        state=SWITCHING,
        current_instance_id=instance_id,
        switch_id=switch_id,
        switch_sk=switch_sk,
        lease_owner=owner,
        lease_until=lease_until,
    )


def owner_id(request_id: str | None, nonce: str) -> str:
    """A lease owner: the Lambda request id (kept by Lambda's retries of the same event) + a per-attempt
    nonce (so the attempts of one request are still told apart when one of them loses the lease)."""
    return f"{request_id or '-'}/{nonce}"


def same_request(owner: str | None, request_id: str | None) -> bool:
    """True if the lease `owner` is an earlier attempt of the request `request_id` (Lambda retry)."""
    return bool(owner and request_id and owner.split("/", 1)[0] == request_id)


def take_over(
    node: NodeRecord, *, owner: str, lease_until: int, now: float, earlier_attempt_dead: bool = False
) -> NodeRecord:
    """Take over a switch whose lease expired (its switcher died or let it go); it resumes from its phase.

    `earlier_attempt_dead`: the lease belongs to an earlier attempt of this very request, which Lambda
    only retries once that attempt has ended (error, timeout, crash): its lease protects nobody.
    """
    if node.state != SWITCHING:
        raise TransitionError(f"node {node.node_id} is {node.state}: no switch to resume")
    if node.lease_live(now) and not earlier_attempt_dead:
        raise TransitionError(f"node {node.node_id}: switch {node.switch_id} still holds its lease")
    return _touch(node, now, lease_owner=owner, lease_until=lease_until)


def renew(node: NodeRecord, *, lease_until: int, now: float) -> NodeRecord:
    """Extend the lease of the switch that holds the node (the check before each mutating phase)."""
    return _touch(node, now, lease_until=lease_until)


def release(node: NodeRecord, now: float) -> NodeRecord:
    """Give the lease up after an error so the next delivery resumes at once."""
    return _touch(node, now, lease_until=0, lease_owner=None)


def close(
    node: NodeRecord, *, instance_id: str, az: str, source_az: str | None, window_seconds: int, now: float
) -> NodeRecord:
    """The switch succeeded: `ACTIVE` with the replacement; remember the failed AZ (flap guard, AZ choice)."""
    return _touch(
        node,
        now,
        state=ACTIVE,
        current_instance_id=instance_id,
        current_az=az,
        switch_id=None,
        switch_sk=None,
        lease_owner=None,
        lease_until=0,
        recent_switches=(*_recent(node, window_seconds, now), {"at": int(now), "az": source_az}),
    )


def fail(node: NodeRecord, *, source_az: str | None, window_seconds: int, now: float) -> NodeRecord:
    """The switch failed for good (no AZ could take the node): `FAILED`, the fenced source is kept."""
    return _touch(
        node,
        now,
        state=FAILED,
        lease_owner=None,
        lease_until=0,
        recent_switches=(*_recent(node, window_seconds, now), {"at": int(now), "az": source_az}),
    )


def hold_node(node: NodeRecord, reason: str, now: float) -> NodeRecord:
    """Put a node on `HOLD`: events about it are ignored until `resume`."""
    if node.state in (SWITCHING, DELETED):
        raise TransitionError(f"node {node.node_id} is {node.state}: cannot hold it now")
    return _touch(node, now, state=HOLD, hold_reason=reason)


def resume_node(node: NodeRecord, now: float) -> NodeRecord:
    """Return a held or failed node to `ACTIVE` (and forget its flap history, the operator has looked)."""
    if node.state not in (HOLD, FAILED):
        raise TransitionError(f"node {node.node_id} is {node.state}: only {HOLD} or {FAILED} can be resumed")
    return _touch(
        node, now, state=ACTIVE, hold_reason=None, switch_id=None, switch_sk=None, recent_switches=()
    )


def mark_deleted(node: NodeRecord, now: float) -> NodeRecord:
    """The node's custom resource was deleted; the record and its history stay.

    A switch in progress loses the node here: its next lease check fails and it stops.
    """
    return _touch(
        node,
        now,
        state=DELETED,
        current_instance_id=None,
        current_az=None,
        lease_until=0,
        lease_owner=None,
        switch_id=None,
        switch_sk=None,
        pending_config=None,
    )


def _recent(node: NodeRecord, window_seconds: int, now: float) -> tuple[dict[str, Any], ...]:
    return tuple(s for s in node.recent_switches if s["at"] > now - window_seconds)


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
        if entry.get("az"):
            counts[entry["az"]] = counts.get(entry["az"], 0) + 1
    return counts


def lease_deadline(now: float, seconds: float) -> int:
    """Epoch second until which a lease taken now holds."""
    return math.ceil(now + seconds)


# --- persistence -----------------------------------------------------------------------------------


#: TransactWriteItems cancellation reasons that say "try again", not "your condition is false".
#: Amazon DynamoDB API Reference, TransactWriteItems, "TransactionCanceledException": DynamoDB cancels a
#: transaction with per-item reason codes `None`, `ConditionalCheckFailed`, `TransactionConflict` (another
#: transaction is ongoing for the item), `ProvisionedThroughputExceeded`, `ThrottlingError`,
#: `ItemCollectionSizeLimitExceeded`, `ValidationError`
#: (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
TRANSIENT_CANCELLATION_CODES = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
#: Attempts of a transaction cancelled only for transient reasons, and the first back-off (doubles).
TRANSACT_ATTEMPTS = 5
TRANSACT_BACKOFF_SECONDS = 0.05


def cancellation_codes(err: ClientError) -> list[str]:
    """The per-item reason codes of a TransactionCanceledException, in the order of the items."""
    reasons = err.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


def _conditional_failed(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    return code == "TransactionCanceledException" and "ConditionalCheckFailed" in cancellation_codes(err)


def _transient_cancel(err: ClientError) -> bool:
    if err.response.get("Error", {}).get("Code", "") != "TransactionCanceledException":
        return False
    codes = [c for c in cancellation_codes(err) if c != "None"]
    # No reasons at all (an SDK that does not parse them) is not known to be transient: treat as fatal.
    return bool(codes) and all(c in TRANSIENT_CANCELLATION_CODES for c in codes)


def _transact(ddb: Any, items: list[dict[str, Any]], what: str) -> None:
    """TransactWriteItems; a condition that fails raises ConflictError; a transaction cancelled only for
    transient reasons (conflict with another transaction, throttling) is retried with back-off."""
    delay = TRANSACT_BACKOFF_SECONDS
    for attempt in range(1, TRANSACT_ATTEMPTS + 1):
        try:
            ddb.transact_write_items(TransactItems=items)
            return
        except ClientError as err:
            if _conditional_failed(err):
                raise ConflictError(f"{what} changed concurrently") from err
            if not _transient_cancel(err):
                raise
            if attempt == TRANSACT_ATTEMPTS:
                raise TransientWriteError(
                    f"{what}: transaction cancelled {attempt} times ({', '.join(cancellation_codes(err))})"
                ) from err
        time.sleep(delay)
        delay *= 2


def get_node(ddb: Any, table: str, vpc_name: str, node_id: int) -> NodeRecord | None:
    """The node's record, or None if it was never provisioned."""
    resp = ddb.get_item(TableName=table, Key=node_key(vpc_name, node_id), ConsistentRead=True)
    return node_from_item(resp["Item"]) if "Item" in resp else None


def list_nodes(ddb: Any, table: str, vpc_name: str) -> list[NodeRecord]:
    """All node records of a VPC, by node id."""
    paginator = ddb.get_paginator("query")
    nodes = [
        node_from_item(item)
        for page in paginator.paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"NODE#{vpc_name}"}},
            ConsistentRead=True,
        )
        for item in page["Items"]
    ]
    return sorted(nodes, key=lambda n: n.node_id)


def list_switches(
    ddb: Any, table: str, vpc_name: str, node_id: int, *, limit: int | None = None
) -> list[SwitchRecord]:
    """A node's switches, newest first."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": switch_pk(vpc_name, node_id)}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    switches: list[SwitchRecord] = []
    for page in ddb.get_paginator("query").paginate(**kwargs):
        switches.extend(switch_from_item(item) for item in page["Items"])
        if limit is not None and len(switches) >= limit:
            return switches[:limit]
    return switches


def get_switch(ddb: Any, table: str, vpc_name: str, node_id: int, sk: str) -> SwitchRecord | None:
    """One switch record by its sort key."""
    resp = ddb.get_item(
        TableName=table,
        Key={
            contract.TABLE_PARTITION_KEY: {"S": switch_pk(vpc_name, node_id)},
            contract.TABLE_SORT_KEY: {"S": sk},
        },
        ConsistentRead=True,
    )
    return switch_from_item(resp["Item"]) if "Item" in resp else None


def save_node(ddb: Any, table: str, node: NodeRecord, *, expected_version: int | None) -> NodeRecord:
    """Write a node if it is still at `expected_version` (None: only if it does not exist yet)."""
    if expected_version is None:
        cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        cond = {
            "ConditionExpression": "version = :expected",
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
    try:
        ddb.put_item(TableName=table, Item=node_to_item(node), **cond)
    except ClientError as err:
        if _conditional_failed(err):
            raise ConflictError(f"node {node.node_id} of {node.vpc_name} changed concurrently") from err
        raise
    return node


def save_node_and_switch(
    ddb: Any, table: str, node: NodeRecord, switch: SwitchRecord, *, expected_version: int | None
) -> NodeRecord:
    """Atomically write the node (conditional on its version) and the switch item."""
    node_put: dict[str, Any] = {"TableName": table, "Item": node_to_item(node)}
    if expected_version is None:
        node_put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        node_put["ConditionExpression"] = "version = :expected"
        node_put["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
    _transact(
        ddb,
        [{"Put": node_put}, {"Put": {"TableName": table, "Item": switch_to_item(switch)}}],
        f"node {node.node_id} of {node.vpc_name}",
    )
    return node


def save_held(
    ddb: Any,
    table: str,
    node: NodeRecord,
    switch: SwitchRecord,
    change: Callable[[NodeRecord], NodeRecord],
    *,
    owner: str,
) -> NodeRecord:
    """Write `change(node)` and the switch item while this switch (`owner`) still holds the node.

    A version conflict alone does not mean the lease is lost: a Custom::SwrNode Update may have stored a
    pending config, or our previous write committed although its call raised. The node is read again: if
    it is still held by `owner` under this switch, the change is re-applied to the fresh record and
    written again; otherwise LeaseLost (with the node as it is now).
    """
    current = node
    for _ in range(TRANSACT_ATTEMPTS):
        try:
            return save_node_and_switch(ddb, table, change(current), switch, expected_version=current.version)
        except ConflictError:
            fresh = get_node(ddb, table, node.vpc_name, node.node_id)
            if fresh is None or not fresh.held_by(owner, switch.switch_id):
                raise LeaseLost(
                    f"node {node.node_id}: switch {switch.switch_id} no longer holds it", fresh
                ) from None
            current = fresh
    raise TransientWriteError(f"node {node.node_id}: kept changing under switch {switch.switch_id}")


def release_owned(
    ddb: Any, table: str, node: NodeRecord, switch: SwitchRecord, *, owner: str, now: float
) -> None:
    """Give the lease up after an error, conditional on still OWNING it, not on a version: the write that
    failed may have committed (its call raised all the same), which moved the version on."""
    key = node_key(node.vpc_name, node.node_id)
    _transact(
        ddb,
        [
            {
                "Update": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "SET lease_until = :zero, version = version + :one, updated_at = :at "
                    "REMOVE lease_owner",
                    "ConditionExpression": "lease_owner = :owner AND switch_id = :switch AND #s = :switching",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": {
                        ":zero": {"N": "0"},
                        ":one": {"N": "1"},
                        ":at": {"S": iso(now)},
                        ":owner": {"S": owner},
                        ":switch": {"S": switch.switch_id},
                        ":switching": {"S": SWITCHING},
                    },
                }
            },
            {"Put": {"TableName": table, "Item": switch_to_item(switch)}},
        ],
        f"node {node.node_id} of {node.vpc_name}",
    )


def record_phase(
    ddb: Any, table: str, node: NodeRecord, switch: SwitchRecord, *, owner: str, lease_until: int, now: float
) -> NodeRecord:
    """Persist a switch's progress and renew the lease, only while this invocation still holds the node."""
    return save_held(
        ddb, table, node, switch, lambda n: renew(n, lease_until=lease_until, now=now), owner=owner
    )


def hold(ddb: Any, table: str, vpc_name: str, node_id: int, *, reason: str, now: float) -> NodeRecord:
    """Put a node on HOLD (operator action, or the flap guard). Raises if it is mid-switch or unknown."""
    node = get_node(ddb, table, vpc_name, node_id)
    if node is None:
        raise TransitionError(f"node {node_id} of VPC {vpc_name} has no record")
    return save_node(ddb, table, hold_node(node, reason, now), expected_version=node.version)


def resume(ddb: Any, table: str, vpc_name: str, node_id: int, *, now: float) -> NodeRecord:
    """Return a HOLD or FAILED node to ACTIVE so events switch it again."""
    node = get_node(ddb, table, vpc_name, node_id)
    if node is None:
        raise TransitionError(f"node {node_id} of VPC {vpc_name} has no record")
    return save_node(ddb, table, resume_node(node, now), expected_version=node.version)
