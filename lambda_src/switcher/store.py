"""The DynamoDB store of the state records: the ONE module that owns the table's item format.

Layout (table keys `pk`/`sk`, strings):
- node item:   pk = ``NODE#<vpc>``, sk = ``NODE#<node_id>`` — current instance, state, config, version, lease.
- switch item: pk = ``SWITCH#<vpc>#<node_id>``, sk = ``<started ISO time>#<switch_id>`` — one per switch,
  with the phase timeline; carries the TTL attribute (`expires_at`), node items never do.

Every node change is a conditional write on `version` (optimistic concurrency): the claim of a switch is
the write that moves `ACTIVE` + the event's instance to `SWITCHING`; whoever loses the condition stops.
The condition is built in one place (`_version_condition`) and a lost condition is recognised in one
place (`_conditional_failed`), whether the write is a PutItem or a TransactWriteItems.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from switcher import contract
from switcher.models import (
    SWITCHING,
    Candidate,
    NodeConfig,
    NodeRecord,
    NodeState,
    Outcome,
    RecentSwitch,
    Snapshot,
    SwitchRecord,
)
from switcher.transitions import TransitionError, hold_node, iso, renew, resume_node

if TYPE_CHECKING:
    # boto3-stubs (dev extra): for the type checker only, the Lambda runtime has no stubs.
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutTypeDef,
        QueryInputPaginateTypeDef,
        TransactWriteItemTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]


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


def node_key(vpc_name: str, node_id: int) -> Item:
    """DynamoDB key of a node item."""
    return {
        contract.TABLE_PARTITION_KEY: {"S": f"NODE#{vpc_name}"},
        contract.TABLE_SORT_KEY: {"S": f"NODE#{node_id}"},
    }


def switch_pk(vpc_name: str, node_id: int) -> str:
    """Partition key of a node's switch history."""
    return f"SWITCH#{vpc_name}#{node_id}"


# --- (de)serialisation -----------------------------------------------------------------------------
# Structured fields are stored as JSON strings: simple, exact (no Decimal round trips) and readable.
# Enums are StrEnums, so an item holds the same strings it held before they were enums.

#: Optional string attributes of a node item: absent when None.
_NODE_OPTIONAL_STRINGS = (
    "current_instance_id",
    "current_az",
    "switch_id",
    "switch_sk",
    "lease_owner",
    "hold_reason",
)


def _config_json(config: NodeConfig) -> str:
    """A node's config as stored. `targets` is written only when it is not on_switch: a record stored before
    the setting existed reads as on_switch, and is written back byte for byte as it was."""
    data = asdict(config)
    if config.targets == contract.TARGETS_ON_SWITCH:
        del data["targets"]
    return json.dumps(data)


def node_to_item(node: NodeRecord) -> Item:
    """A node record as a DynamoDB item (low-level attribute values)."""
    item = node_key(node.vpc_name, node.node_id)
    item.update(
        {
            "kind": {"S": "node"},
            "vpc_name": {"S": node.vpc_name},
            "node_id": {"N": str(node.node_id)},
            "state": {"S": node.state},
            "version": {"N": str(node.version)},
            "lease_until": {"N": str(node.lease_until)},
            "recent_switches": {"S": json.dumps([asdict(r) for r in node.recent_switches])},
            "updated_at": {"S": node.updated_at},
        }
    )
    if node.config is not None:
        item["config"] = {"S": _config_json(node.config)}
    if node.pending_config is not None:
        item["pending_config"] = {"S": _config_json(node.pending_config)}
    for name in _NODE_OPTIONAL_STRINGS:
        value = getattr(node, name)
        if value is not None:
            item[name] = {"S": value}
    return item


def _string(item: Item, name: str) -> str:
    """A string attribute that must be there (a KeyError names it otherwise)."""
    return item[name]["S"]


def _number(item: Item, name: str, default: int) -> int:
    return int(item[name]["N"]) if name in item else default


def node_from_item(item: Item) -> NodeRecord:
    """A node record from a DynamoDB item."""

    def s(name: str) -> str | None:
        return _string(item, name) if name in item else None

    config = NodeConfig(**json.loads(_string(item, "config"))) if "config" in item else None
    pending = NodeConfig(**json.loads(_string(item, "pending_config"))) if "pending_config" in item else None
    recent = json.loads(s("recent_switches") or "[]")
    return NodeRecord(
        vpc_name=_string(item, "vpc_name"),
        node_id=int(item["node_id"]["N"]),
        state=NodeState(_string(item, "state")),
        version=int(item["version"]["N"]),
        config=config,
        current_instance_id=s("current_instance_id"),
        current_az=s("current_az"),
        switch_id=s("switch_id"),
        switch_sk=s("switch_sk"),
        lease_owner=s("lease_owner"),
        lease_until=_number(item, "lease_until", 0),
        hold_reason=s("hold_reason"),
        pending_config=pending,
        recent_switches=tuple(RecentSwitch(at=int(r["at"]), az=r.get("az")) for r in recent),
        updated_at=s("updated_at") or "",
    )


def switch_to_item(sw: SwitchRecord) -> Item:
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


def switch_from_item(item: Item) -> SwitchRecord:
    """A switch record from a DynamoDB item."""
    body = json.loads(_string(item, "body"))
    body["outcome"] = Outcome(body.get("outcome", Outcome.IN_PROGRESS))
    if body.get("snapshot") is not None:
        body["snapshot"] = Snapshot.from_json(body["snapshot"])
    body["candidates"] = [Candidate(**c) for c in body.get("candidates", [])]
    return SwitchRecord(**body)


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
    """The write lost its condition (PutItem's or one item's of a transaction)."""
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


def _version_condition(table: str, node: NodeRecord, expected_version: int | None) -> PutTypeDef:
    """The one conditional write of a node: a Put that holds only if the stored node is still at
    `expected_version` (None: only if it does not exist yet)."""
    put: PutTypeDef = {"TableName": table, "Item": node_to_item(node)}
    if expected_version is None:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "version = :expected"
        put["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
    return put


def _transact(ddb: DynamoDBClient, items: Sequence[TransactWriteItemTypeDef], what: str) -> None:
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


def get_node(ddb: DynamoDBClient, table: str, vpc_name: str, node_id: int) -> NodeRecord | None:
    """The node's record, or None if it was never provisioned."""
    resp = ddb.get_item(TableName=table, Key=node_key(vpc_name, node_id), ConsistentRead=True)
    return node_from_item(resp["Item"]) if "Item" in resp else None


def list_nodes(ddb: DynamoDBClient, table: str, vpc_name: str) -> list[NodeRecord]:
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
    ddb: DynamoDBClient, table: str, vpc_name: str, node_id: int, *, limit: int | None = None
) -> list[SwitchRecord]:
    """A node's switches, newest first."""
    query: QueryInputPaginateTypeDef = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": switch_pk(vpc_name, node_id)}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    switches: list[SwitchRecord] = []
    for page in ddb.get_paginator("query").paginate(**query):
        switches.extend(switch_from_item(item) for item in page["Items"])
        if limit is not None and len(switches) >= limit:
            return switches[:limit]
    return switches


def get_switch(ddb: DynamoDBClient, table: str, vpc_name: str, node_id: int, sk: str) -> SwitchRecord | None:
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


def save_node(
    ddb: DynamoDBClient, table: str, node: NodeRecord, *, expected_version: int | None
) -> NodeRecord:
    """Write a node if it is still at `expected_version` (None: only if it does not exist yet)."""
    try:
        ddb.put_item(**_version_condition(table, node, expected_version))
    except ClientError as err:
        if _conditional_failed(err):
            raise ConflictError(f"node {node.node_id} of {node.vpc_name} changed concurrently") from err
        raise
    return node


def save_node_and_switch(
    ddb: DynamoDBClient, table: str, node: NodeRecord, switch: SwitchRecord, *, expected_version: int | None
) -> NodeRecord:
    """Atomically write the node (conditional on its version) and the switch item."""
    _transact(
        ddb,
        [
            {"Put": _version_condition(table, node, expected_version)},
            {"Put": {"TableName": table, "Item": switch_to_item(switch)}},
        ],
        f"node {node.node_id} of {node.vpc_name}",
    )
    return node


def save_held(
    ddb: DynamoDBClient,
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
    ddb: DynamoDBClient, table: str, node: NodeRecord, switch: SwitchRecord, *, owner: str, now: float
) -> None:
    """Give the lease up after an error, conditional on still OWNING it, not on a version: the write that
    failed may have committed (its call raised all the same), which moved the version on."""
    _let_go(ddb, table, node, switch, owner=owner, lease_until=0, now=now)


def park_owned(
    ddb: DynamoDBClient,
    table: str,
    node: NodeRecord,
    switch: SwitchRecord,
    *,
    owner: str,
    lease_until: int,
    now: float,
) -> None:
    """Park the switch: the node stays SWITCHING under it, nobody holds it (no `lease_owner`) and
    `lease_until` is when it is due again (the fence deadline; `now` to be retried at the next chance).
    decide.decide resumes a parked switch at once when its source is seen stopped, else when it is due.
    Conditional on still owning the lease, as release_owned; the switch item (its timeline) is written
    with it."""
    _let_go(ddb, table, node, switch, owner=owner, lease_until=lease_until, now=now)


def _let_go(
    ddb: DynamoDBClient,
    table: str,
    node: NodeRecord,
    switch: SwitchRecord,
    *,
    owner: str,
    lease_until: int,
    now: float,
) -> None:
    key = node_key(node.vpc_name, node.node_id)
    _transact(
        ddb,
        [
            {
                "Update": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "SET lease_until = :until, version = version + :one, "
                    "updated_at = :at REMOVE lease_owner",
                    "ConditionExpression": "lease_owner = :owner AND switch_id = :switch AND #s = :switching",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": {
                        ":until": {"N": str(lease_until)},
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
    ddb: DynamoDBClient,
    table: str,
    node: NodeRecord,
    switch: SwitchRecord,
    *,
    owner: str,
    lease_until: int,
    now: float,
) -> NodeRecord:
    """Persist a switch's progress and renew the lease, only while this invocation still holds the node."""
    return save_held(
        ddb, table, node, switch, lambda n: renew(n, lease_until=lease_until, now=now), owner=owner
    )


def hold(
    ddb: DynamoDBClient, table: str, vpc_name: str, node_id: int, *, reason: str, now: float
) -> NodeRecord:
    """Put a node on HOLD (operator action, or the flap guard). Raises if it is mid-switch or unknown."""
    node = get_node(ddb, table, vpc_name, node_id)
    if node is None:
        raise TransitionError(f"node {node_id} of VPC {vpc_name} has no record")
    return save_node(ddb, table, hold_node(node, reason, now), expected_version=node.version)


def resume(ddb: DynamoDBClient, table: str, vpc_name: str, node_id: int, *, now: float) -> NodeRecord:
    """Return a HOLD or FAILED node to ACTIVE so events switch it again."""
    node = get_node(ddb, table, vpc_name, node_id)
    if node is None:
        raise TransitionError(f"node {node_id} of VPC {vpc_name} has no record")
    return save_node(ddb, table, resume_node(node, now), expected_version=node.version)
