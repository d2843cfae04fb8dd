"""Render the CloudWatch agent configuration of a node from the shared contract.

The agent reports the monitor process's pid count (the metric the monitor alarm watches), memory and
disk use, and ships the on-instance logs from the monitor-log EFS to the VPC's log group. Names come
from ``switcher.contract`` so the agent, the stacks and the switcher cannot spell them differently.

Verified against the agent (see docs/on-instance.md): with ``pattern`` selection, procstat's
``procstat_lookup_pid_count`` carries the dimensions ``pattern`` and ``pid_finder`` (the agent's
translator defaults ``pid_finder`` to ``native`` and excludes the ``user`` and ``result`` tags), plus
``InstanceId`` from ``append_dimensions``; ``append_dimensions`` also drops the ``host`` dimension.
Those are exactly the dimensions the switcher's monitor alarm uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from switcher.contract import (
    MONITOR_INTERVAL_SECONDS,
    MONITOR_METRIC_NAMESPACE,
    MONITOR_PROCESS_PATTERNS,
    MONITOR_SELECTOR_KEY,
    monitor_log_group_name,
)

from .paths import MONITOR_LOG_MOUNT

#: Where the agent reads its configuration on the instance (the path its docs recommend).
AGENT_CONFIG_PATH = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
#: The agent's control script (fetch-config, start, stop).
AGENT_CTL_PATH = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
#: The rendering committed beside this module (baked into the AMI; user data overwrites it per VPC).
DEFAULT_CONFIG_FILE = Path(__file__).with_name("amazon-cloudwatch-agent.json")
DEFAULT_VPC_NAME = "default"
DEFAULT_MONITOR_PROCESS = "swr-monitor"

#: Log files the node writes under its directory on the monitor-log EFS (``<mount>/<node id>/``).
#: RMS writes its own logs there too when RELIANT_LOG_PATH points at ``<node dir>/rms``.
MONITOR_LOG_FILE = "monitor.log"
FAULTSCRIPT_LOG_FILE = "faultscript.log"
RMS_SWITCHLOG_FILE = "rms/switchlog"
#: Log stream: the instance id (the contract's stream name), a suffix per file keeps them apart.
LOG_STREAM_TEMPLATE = "{instance_id}/"
#: How often the agent flushes logs (seconds): short, so a failure's reason is visible quickly.
LOG_FORCE_FLUSH_SECONDS = 5
#: Longest time (seconds) a collected metric waits in the agent before it is sent to CloudWatch. The
#: agent's default is 60 s (``metrics.force_flush_interval``, "Max time to wait before batch publishing
#: the metrics, unit is second" in the agent's translator/config/schema.json, default set by
#: translator/translate/metrics/ruleForceFlushInterval.go): the monitor alarm's 10 s datapoints would
#: reach CloudWatch a minute at a time and the alarm would fire 60-90 s after the monitor died. Below the
#: procstat interval, every datapoint is sent before the next one is collected; only batches holding
#: data are sent, so this costs no more PutMetricData calls than one per collection.
METRICS_FORCE_FLUSH_SECONDS = 5


def log_files(monitor_process: str) -> list[str]:
    """Paths (relative to a node's log directory) the agent ships for this monitor process."""
    files = [MONITOR_LOG_FILE, FAULTSCRIPT_LOG_FILE]
    if monitor_process == "rms":
        files = [RMS_SWITCHLOG_FILE, FAULTSCRIPT_LOG_FILE]
    return files


def render_agent_config(*, vpc_name: str, monitor_process: str) -> dict[str, Any]:
    """Return the CloudWatch agent configuration (the agent's JSON schema) for a VPC's node.

    ``monitor_process`` is a key of ``MONITOR_PROCESS_PATTERNS`` ("swr-monitor" or "rms"); it must be a
    literal value, not a CDK token. ``vpc_name`` may be a token: it is only embedded in a string.
    """
    if monitor_process not in MONITOR_PROCESS_PATTERNS:
        raise ValueError(
            f"unknown monitor_process {monitor_process!r}: expected one of {sorted(MONITOR_PROCESS_PATTERNS)}"
        )
    log_group = monitor_log_group_name(vpc_name)
    collect_list = [
        {
            # The node's directory is its node id; a glob keeps this config independent of the node.
            "file_path": f"{MONITOR_LOG_MOUNT}/*/{relative}",
            "log_group_name": log_group,
            "log_stream_name": LOG_STREAM_TEMPLATE + relative,
            "retention_in_days": -1,
        }
        for relative in log_files(monitor_process)
    ]
    return {
        "agent": {
            "metrics_collection_interval": 60,
            "run_as_user": "root",
            "logfile": "/opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log",
        },
        "metrics": {
            "namespace": MONITOR_METRIC_NAMESPACE,
            "force_flush_interval": METRICS_FORCE_FLUSH_SECONDS,
            # Adds InstanceId to every metric (and drops `host`): the alarms select by InstanceId.
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            "metrics_collected": {
                "procstat": [
                    {
                        MONITOR_SELECTOR_KEY: MONITOR_PROCESS_PATTERNS[monitor_process],
                        "measurement": ["pid_count"],
                        # The monitor alarm is high-resolution: the default 60 s would slow detection.
                        "metrics_collection_interval": MONITOR_INTERVAL_SECONDS,
                    }
                ],
                "mem": {"measurement": ["mem_used_percent", "mem_available_percent"]},
                "disk": {
                    "resources": ["/"],
                    "measurement": ["used_percent", "inodes_free"],
                    "drop_device": True,
                },
            },
        },
        "logs": {
            "force_flush_interval": LOG_FORCE_FLUSH_SECONDS,
            "logs_collected": {"files": {"collect_list": collect_list}},
        },
    }


def render_agent_config_json(*, vpc_name: str, monitor_process: str) -> str:
    """The configuration as the JSON text written to the agent's config file (stable key order)."""
    config = render_agent_config(vpc_name=vpc_name, monitor_process=monitor_process)
    return json.dumps(config, indent=2) + "\n"


def main() -> None:
    """Rewrite the committed default rendering (run after changing the contract or this module)."""
    DEFAULT_CONFIG_FILE.write_text(
        render_agent_config_json(vpc_name=DEFAULT_VPC_NAME, monitor_process=DEFAULT_MONITOR_PROCESS),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
