"""The state record: the ONE module that owns the DynamoDB schema (DESIGN §2), used by the switcher and CLI.

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


class TransitionError(Exception):
    """The requested transition is not allowed from the node's current state (message says why)."""


class ConflictError(Exception):
    """A conditional write lost: someone else changed the record first (duplicate or concurrent switch)."""


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
    #: Recent switches as {"at": epoch, "az": failed source AZ}: flap guard and AZ preference.
    recent_switches: tuple[dict[str, Any], ...] = ()
    updated_at: str = ""

    def lease_live(self, now: float) -> bool:
        """True while a switch in progress still holds the node."""
        return self.state == SWITCHING and self.lease_until > now


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
    return _touch(node, now, config=config, state=state)


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


def take_over(node: NodeRecord, *, owner: str, lease_until: int, now: float) -> NodeRecord:
    """Take over a switch whose lease expired (its switcher died or let it go); it resumes from its phase."""
    if node.state != SWITCHING:
        raise TransitionError(f"node {node.node_id} is {node.state}: no switch to resume")
    if node.lease_live(now):
        raise TransitionError(f"node {node.node_id}: switch {node.switch_id} still holds its lease")
    return _touch(node, now, lease_owner=owner, lease_until=lease_until)


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
    """The node's custom resource was deleted; the record and its history stay."""
    return _touch(node, now, state=DELETED, current_instance_id=None, current_az=None, lease_until=0)


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


def _conditional_failed(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


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
    try:
        ddb.transact_write_items(
            TransactItems=[{"Put": node_put}, {"Put": {"TableName": table, "Item": switch_to_item(switch)}}]
        )
    except ClientError as err:
        if _conditional_failed(err):
            raise ConflictError(f"node {node.node_id} of {node.vpc_name} changed concurrently") from err
        raise
    return node


def record_phase(
    ddb: Any, table: str, node: NodeRecord, switch: SwitchRecord, *, lease_until: int, now: float
) -> NodeRecord:
    """Persist a switch's progress and renew the lease, only while this invocation still holds the node."""
    renewed = _touch(node, now, lease_until=lease_until)
    return save_node_and_switch(ddb, table, renewed, switch, expected_version=node.version)


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
