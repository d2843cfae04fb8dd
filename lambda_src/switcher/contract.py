"""The swr contract: names that the stacks, the switcher, the CLI and the on-instance agent share.

This module is the single source of these spellings (docs/design.md, "Contract"). It is stdlib-only and has no
side effects, so the CDK app (`swr_stacks`), the switcher Lambda, the CLI and the tests can all
import it. Users' existing deployments depend on these values: change them only with a migration note.
"""

from __future__ import annotations

import re
from typing import Final

# --- Tags -----------------------------------------------------------------------------------------
#: Instance tag carrying the node id (decimal integer, unique among the nodes of a region).
#: The vendor's key is kept so an existing deployment migrates without retagging.
TAG_NODE_ID: Final = "fujitsu.pclswr.id"
#: Subnet tag marking a subnet that may receive a node (value free; the stacks write "true").
TAG_SUBNET: Final = "fujitsu.pclswr.subnet"
TAG_SUBNET_VALUE: Final = "true"
#: Carried by everything the stacks and the switcher create: the VPC's name in the config.
#: IAM conditions and the switcher use it to tell a VPC's own resources from another VPC's.
TAG_VPC: Final = "swr:vpc"
#: Set on a replacement instance: the switch that launched it (for audit and orphan detection).
TAG_SWITCH_ID: Final = "swr:switch-id"

#: Carried by a node's standby network interface (one per target AZ, created by the stacks when the node's
#: targets are pre-registered): the node id, as in TAG_NODE_ID. With TAG_VPC it is how the switcher finds
#: the interface of the AZ it launches into, and the IAM condition that lets it launch on the interface.
TAG_STANDBY_NODE: Final = "swr:standby-node"

#: Tag keys AWS reserves; never copied from a source instance to its replacement.
RESERVED_TAG_PREFIX: Final = "aws:"

#: A node id as written in the node tag, alarm names and the custom resource: canonical ASCII decimal
#: ("0" or no leading zero), at most 18 digits. `str.isdigit`/`int` also accept "01", "\u0661" (Arabic-Indic
#: one) and "\u00b2" (superscript two; `int` even raises on it): such a value names no node.
_NODE_ID_RE: Final = re.compile(r"0|[1-9][0-9]{0,17}")


def parse_node_id(raw: object) -> int | None:
    """The node id written as `raw`, or None if `raw` is not a canonical ASCII decimal string."""
    if isinstance(raw, str) and _NODE_ID_RE.fullmatch(raw):
        return int(raw)
    return None


# --- Alarms ---------------------------------------------------------------------------------------
ALARM_PREFIX_TEMPLATE: Final = "swr-{vpc}-"
MONITOR_ALARM_TEMPLATE: Final = "swr-{vpc}-{node_id}-monitor"
STATUS_ALARM_TEMPLATE: Final = "swr-{vpc}-{node_id}-status"


def alarm_prefix(vpc_name: str) -> str:
    """The alarm-name prefix of a VPC; the VPC's alarm rule matches exactly this prefix."""
    return ALARM_PREFIX_TEMPLATE.format(vpc=vpc_name)


def monitor_alarm_name(vpc_name: str, node_id: int) -> str:
    """Name of the alarm on the monitor process's pid count (fires when the monitor dies)."""
    return MONITOR_ALARM_TEMPLATE.format(vpc=vpc_name, node_id=node_id)


def status_alarm_name(vpc_name: str, node_id: int) -> str:
    """Name of the alarm on EC2 `StatusCheckFailed` (fires when the instance is impaired)."""
    return STATUS_ALARM_TEMPLATE.format(vpc=vpc_name, node_id=node_id)


# --- Metrics the alarms watch ---------------------------------------------------------------------
#: The CloudWatch agent publishes procstat metrics in this namespace by default.
MONITOR_METRIC_NAMESPACE: Final = "CWAgent"
#: procstat's `pid_count` measurement, as the agent names the metric (`procstat_lookup_` prefix).
MONITOR_METRIC_NAME: Final = "procstat_lookup_pid_count"
#: procstat selects the process by one of exe | pattern | pid_file; that key becomes a dimension.
MONITOR_SELECTOR_KEY: Final = "pattern"
#: The agent adds this dimension to procstat_lookup metrics.
MONITOR_PID_FINDER: Final = "native"
#: Collection interval of procstat (seconds) and period of the high-resolution monitor alarm.
MONITOR_INTERVAL_SECONDS: Final = 10
#: Which process the monitor alarm watches: swr's own monitor or PRIMECLUSTER RMS's base monitor.
MONITOR_PROCESS_PATTERNS: Final[dict[str, str]] = {
    "swr-monitor": "swr-monitor",
    "rms": "/opt/SMAW/SMAWRrms/bin/bm",
}

STATUS_METRIC_NAMESPACE: Final = "AWS/EC2"
STATUS_METRIC_NAME: Final = "StatusCheckFailed"

# --- Logs -----------------------------------------------------------------------------------------
#: Log group (per VPC) the CloudWatch agent ships the monitor's logs to; stream = instance id.
MONITOR_LOG_GROUP_TEMPLATE: Final = "/swr/{vpc}/monitor"


def monitor_log_group_name(vpc_name: str) -> str:
    """Log group of a VPC's on-instance monitor logs (created by the stacks, written by the agent)."""
    return MONITOR_LOG_GROUP_TEMPLATE.format(vpc=vpc_name)


# --- Events ---------------------------------------------------------------------------------------
EC2_EVENT_SOURCE: Final = "aws.ec2"
EC2_STATE_CHANGE_DETAIL_TYPE: Final = "EC2 Instance State-change Notification"
#: Reacting at `stopping` saves the OS shutdown time; `stopped` is kept for a missed `stopping`.
EC2_TRIGGER_STATES: Final = ("stopping", "stopped")
ALARM_EVENT_SOURCE: Final = "aws.cloudwatch"
ALARM_STATE_CHANGE_DETAIL_TYPE: Final = "CloudWatch Alarm State Change"
ALARM_TRIGGER_STATE: Final = "ALARM"

#: Notices the switcher puts on the default event bus when a switch ends.
NOTICE_EVENT_SOURCE: Final = "swr"
SWITCH_COMPLETED_DETAIL_TYPE: Final = "SWR Switch Completed"
SWITCH_FAILED_DETAIL_TYPE: Final = "SWR Switch Failed"
NODE_HELD_DETAIL_TYPE: Final = "SWR Node Held"
#: One attempt of a switch failed (it is retried by Lambda, or resumed by the reconciler).
SWITCH_ATTEMPT_FAILED_DETAIL_TYPE: Final = "SWR Switch Attempt Failed"
#: Drift the reconciler found and repaired (target group, alarms, an orphan of a deleted node).
DRIFT_REPAIRED_DETAIL_TYPE: Final = "SWR Drift Repaired"
#: No fence of the source could be confirmed (its stop did not complete and the network fence could not be
#: applied): nothing was launched, the switch is parked and retried by the next event about its source or
#: the next reconcile run. Sent once per reason (again only when the reason changes).
FENCE_UNCONFIRMED_DETAIL_TYPE: Final = "SWR Fence Unconfirmed"

# --- Fence ----------------------------------------------------------------------------------------
#: The fence that held, as the switch record and the notices name it: the source reached `stopped`
#: (or ended), or the network ACL of every subnet holding an EFS mount target denies its address in both
#: directions.
FENCE_STOPPED: Final = "stopped"
FENCE_NETWORK: Final = "network-fenced"
#: Network ACL rule numbers reserved for swr's deny rules (docs/fencing.md). Rules are evaluated in
#: ascending order ("Control subnet traffic with network ACLs", Amazon VPC User Guide), so a deny must
#: come before the users' allow rules: swr takes the lowest numbers and never touches a rule outside them.
NACL_RULE_FIRST: Final = 1
NACL_RULE_LAST: Final = 99

#: The reconciler's invocation: `{"source": RECONCILE_EVENT_SOURCE, "detail-type": RECONCILE_DETAIL_TYPE,
#: "detail": {}}`, the Input of the VPC's schedule.
RECONCILE_EVENT_SOURCE: Final = "swr.reconciler"
RECONCILE_DETAIL_TYPE: Final = "SWR Reconcile"

# --- Powertools metrics (the dashboard reads these) -----------------------------------------------
METRICS_NAMESPACE: Final = "swr"
#: Powertools' `service` dimension of every switcher metric.
METRICS_SERVICE: Final = "swr-switcher"
#: Extra dimension on every switcher metric: the VPC's name in the config.
METRICS_VPC_DIMENSION: Final = "vpc"
METRIC_SWITCH_COUNT: Final = "SwitchCount"
METRIC_SWITCH_FAILED: Final = "SwitchFailed"
METRIC_SWITCH_DURATION: Final = "SwitchDurationSeconds"
METRIC_PHASE_DURATION_PREFIX: Final = "PhaseSeconds_"
METRIC_NODES_HELD: Final = "NodeHeld"
#: A switch found no fence it could confirm and waits (one per attempt).
METRIC_FENCE_UNCONFIRMED: Final = "FenceUnconfirmed"
#: A switch whose source had not stopped by the end of the fence's inline wait was parked until the fence
#: deadline (one per park): its invocation ended instead of holding the wait (docs/fencing.md).
METRIC_FENCE_PENDING: Final = "FencePending"
#: A switch whose source was fenced by the network ACL (its stop did not complete in time).
METRIC_NETWORK_FENCED: Final = "NetworkFenced"
#: Names of the dimension keys of every switcher metric (emitter, dashboard and alarms use this set).
METRIC_DIMENSIONS: Final = ("service", "vpc")
#: Reconciler metrics: one heartbeat per run, and gauges of the VPC's nodes per run.
METRIC_RECONCILE_HEARTBEAT: Final = "ReconcileHeartbeat"
METRIC_RECONCILE_NODES_FAILED: Final = "NodesFailed"
METRIC_RECONCILE_NODES_HELD: Final = "NodesHeld"
METRIC_RECONCILE_NODES_SWITCHING_OVERDUE: Final = "NodesSwitchingOverdue"
METRIC_DRIFT_REPAIRED: Final = "DriftRepaired"

# --- Switcher environment (set by the stacks, read and validated by the handler) ------------------
ENV_TABLE_NAME: Final = "SWR_TABLE_NAME"
ENV_TOPIC_ARN: Final = "SWR_TOPIC_ARN"
ENV_BLACKHOLE_SG_ID: Final = "SWR_BLACKHOLE_SG_ID"
ENV_VPC_NAME: Final = "SWR_VPC_NAME"
ENV_VPC_ID: Final = "SWR_VPC_ID"
ENV_SWITCH_ORDER: Final = "SWR_SWITCH_ORDER"  # "swr" (default) | "vendor"
ENV_FLAP_MAX_SWITCHES: Final = "SWR_FLAP_MAX_SWITCHES"
ENV_FLAP_WINDOW_SECONDS: Final = "SWR_FLAP_WINDOW_SECONDS"
ENV_LEASE_SECONDS: Final = "SWR_LEASE_SECONDS"
ENV_HISTORY_TTL_DAYS: Final = "SWR_HISTORY_TTL_DAYS"
ENV_RECONCILE_INTERVAL_SECONDS: Final = "SWR_RECONCILE_INTERVAL_SECONDS"
ENV_SWITCH_OVERDUE_SECONDS: Final = "SWR_SWITCH_OVERDUE_SECONDS"
#: How long the fence waits for the source's forced stop before it escalates to the network fence.
ENV_FENCE_TIMEOUT_SECONDS: Final = "SWR_FENCE_TIMEOUT_SECONDS"
#: How long one invocation waits for the source's forced stop (from the stop) before it parks the switch
#: until the fence deadline instead of holding the invocation (docs/fencing.md).
ENV_FENCE_INLINE_WAIT_SECONDS: Final = "SWR_FENCE_INLINE_WAIT_SECONDS"
#: How long a node's monitor alarm may stay INSUFFICIENT_DATA (its metric silent) before the reconciler
#: switches the node (docs/detection.md); it is also the boot grace of a new instance.
ENV_SILENT_AFTER_SECONDS: Final = "SWR_SILENT_AFTER_SECONDS"
#: The alarm state of an alarm whose metric has no datapoints (TreatMissingData=missing).
ALARM_SILENT_STATE: Final = "INSUFFICIENT_DATA"

# --- Provisioning custom resource (one per node; ServiceToken = the VPC's switcher function) -------
NODE_RESOURCE_TYPE: Final = "Custom::SwrNode"
#: Property names of the node custom resource; the switcher stores them as the node's configuration.
PROP_NODE_ID: Final = "NodeId"
PROP_VPC_NAME: Final = "VpcName"
PROP_LAUNCH_TEMPLATE_ID: Final = "LaunchTemplateId"
PROP_LAUNCH_TEMPLATE_VERSION: Final = "LaunchTemplateVersion"
PROP_TARGET_GROUP_ARN: Final = "TargetGroupArn"
PROP_MONITOR_PROCESS: Final = "MonitorProcess"  # a key of MONITOR_PROCESS_PATTERNS
#: How the node's load-balancer target is handled: one of TARGETS_MODES. Absent (a stack written before the
#: setting existed): TARGETS_ON_SWITCH, the behaviour such a node was deployed with.
PROP_TARGETS: Final = "Targets"

# --- Target modes (config key `targets`, custom-resource property Targets) -----------------------------
#: One standby network interface per node per target AZ, its address registered in the node's target group
#: at deploy time; a replacement is launched on its AZ's interface: no registration during a switch.
TARGETS_PREREGISTERED: Final = "preregistered"
#: The replacement gets a new address, registered (and the old one deregistered) during the switch.
TARGETS_ON_SWITCH: Final = "on_switch"
TARGETS_MODES: Final = (TARGETS_PREREGISTERED, TARGETS_ON_SWITCH)
#: The default of a new deployment's config.
TARGETS_DEFAULT: Final = TARGETS_PREREGISTERED

# --- State record ---------------------------------------------------------------------------------
#: Name of the TTL attribute on history (switch) items of the table.
TTL_ATTRIBUTE: Final = "expires_at"
TABLE_PARTITION_KEY: Final = "pk"
TABLE_SORT_KEY: Final = "sk"
