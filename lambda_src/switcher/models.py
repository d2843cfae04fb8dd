"""The state records of the switcher: node and switch, their states and outcomes (no AWS, no I/O).

The DynamoDB item format lives in `switcher.store`, the allowed changes in `switcher.transitions`;
docs/design.md, "State record", describes the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switcher import contract


class NodeState(StrEnum):
    """A node's state. StrEnum: the values are the strings stored in the table and shown by the CLI."""

    ACTIVE = "ACTIVE"
    SWITCHING = "SWITCHING"
    HOLD = "HOLD"
    FAILED = "FAILED"
    DELETED = "DELETED"


class Outcome(StrEnum):
    """The outcome of a switch (the `outcome` attribute of its item)."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: The node was deleted (stack Delete) while the switch ran: the Delete removed what the switch created.
    CANCELLED = "CANCELLED"


ACTIVE = NodeState.ACTIVE
SWITCHING = NodeState.SWITCHING
HOLD = NodeState.HOLD
FAILED = NodeState.FAILED
DELETED = NodeState.DELETED
NODE_STATES = tuple(NodeState)

IN_PROGRESS = Outcome.IN_PROGRESS
SUCCEEDED = Outcome.SUCCEEDED
SWITCH_FAILED = Outcome.FAILED
SWITCH_CANCELLED = Outcome.CANCELLED


@dataclass(frozen=True)
class NodeConfig:
    """The node's configuration, stored from the custom resource's properties (not the Lambda environment)."""

    launch_template_id: str
    launch_template_version: str
    target_group_arn: str
    monitor_process: str = "swr-monitor"
    #: contract.TARGETS_MODES; a record stored before the setting existed is on_switch (as it was deployed).
    targets: str = contract.TARGETS_ON_SWITCH

    def __post_init__(self) -> None:
        if self.monitor_process not in contract.MONITOR_PROCESS_PATTERNS:
            raise ValueError(
                f"{contract.PROP_MONITOR_PROCESS}={self.monitor_process!r}: expected one of "
                f"{', '.join(contract.MONITOR_PROCESS_PATTERNS)}"
            )
        if self.targets not in contract.TARGETS_MODES:
            raise ValueError(
                f"{contract.PROP_TARGETS}={self.targets!r}: expected one of "
                f"{', '.join(contract.TARGETS_MODES)}"
            )

    @property
    def preregistered(self) -> bool:
        """True if the node's targets are its standby interfaces' addresses, registered at deploy time."""
        return self.targets == contract.TARGETS_PREREGISTERED


@dataclass(frozen=True)
class Snapshot:
    """What a replacement inherits from its source instance, as the snapshot phase recorded it.

    Stored in the switch item's JSON body in this field order (a deployed table holds such bodies).
    """

    instance_id: str
    image_id: str
    instance_type: str
    key_name: str | None
    security_group_ids: tuple[str, ...]
    tags: dict[str, str]
    iam_instance_profile_arn: str | None
    subnet_id: str | None
    az: str | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Snapshot:
        """A snapshot from the JSON object of a switch item's body."""
        return cls(**{**raw, "security_group_ids": tuple(raw["security_group_ids"])})


@dataclass(frozen=True)
class Candidate:
    """A subnet a replacement may be launched in: one per AZ, in the order they are tried."""

    az: str
    subnet_id: str


@dataclass(frozen=True)
class RecentSwitch:
    """A switch the node went through lately: when (epoch seconds) and the AZ its source failed in."""

    at: int
    az: str | None


@dataclass(frozen=True)
class NodeRecord:
    """One node: its current instance, state and the lease of a switch in progress."""

    vpc_name: str
    node_id: int
    state: NodeState = NodeState.ACTIVE
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
    #: Recent switches: flap guard and AZ preference.
    recent_switches: tuple[RecentSwitch, ...] = ()
    updated_at: str = ""

    def lease_live(self, now: float) -> bool:
        """True while a switch in progress still holds the node."""
        return self.state == NodeState.SWITCHING and self.lease_until > now

    def parked(self, now: float) -> bool:
        """True while the switch in progress is parked (store.park_owned): nobody holds it, and it is not
        due before `lease_until` unless its source is seen stopped (decide.decide)."""
        return self.lease_live(now) and self.lease_owner is None

    def held_by(self, owner: str, switch_id: str) -> bool:
        """True if this switch, driven by `owner`, still holds the node (not taken over, not deleted)."""
        return self.state == NodeState.SWITCHING and self.lease_owner == owner and self.switch_id == switch_id


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
    outcome: Outcome = Outcome.IN_PROGRESS
    timeline: dict[str, str] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    #: The node's launch template as the snapshot saw it: a resumed launch repeats its ClientToken, and EC2
    #: refuses a token reused with other parameters, so a deploy mid-switch must not change them.
    launch_template_id: str | None = None
    launch_template_version: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    replacement_instance_id: str | None = None
    replacement_az: str | None = None
    replacement_subnet_id: str | None = None
    #: Its target in the node's target group (known from RunInstances, before it runs).
    replacement_private_ip: str | None = None
    #: The standby interface the replacement was launched on (pre-registered targets); None: its own.
    replacement_interface_id: str | None = None
    az_errors: dict[str, str] = field(default_factory=dict)
    #: AZs (keys of `az_errors`) that refused for a reason no retry fixes (decide.launch_refusal).
    permanent_azs: list[str] = field(default_factory=list)
    #: Times this switch was retried after it FAILED for want of capacity (the retry back-off doubles).
    retries: int = 0
    error: str | None = None
    #: The fence that held (contract.FENCE_STOPPED | contract.FENCE_NETWORK), once confirmed.
    fence: str | None = None
    #: The network ACL rules of a network fence (switcher.fence.NetworkFence as a dict).
    network_fence: dict[str, Any] | None = None
    #: Why no fence could be confirmed, as last told (`SWR Fence Unconfirmed`): a parked switch that finds
    #: the same reason again is not told again. None: never unconfirmed.
    fence_unconfirmed: str | None = None
    attempts: int = 1
    started_at: float = 0.0
    expires_at: int = 0
