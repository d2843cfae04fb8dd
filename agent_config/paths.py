"""Paths on the node that the user data, the agent config, the monitor and the docs agree on."""

from __future__ import annotations

#: Where the monitor-log EFS (the node's access point) is mounted; the node writes under ``<node id>/``.
MONITOR_LOG_MOUNT = "/var/log/swr"
#: Where the node's user-data EFS is mounted (absent when the config says ``user_data_efs: false``).
USER_DATA_MOUNT = "/srv/swr-data"
#: Node identity and settings written by the user data, read by the FaultScript and swr-monitor's unit.
NODE_ENV_FILE = "/etc/swr/node.env"
#: swr-monitor's health-check configuration (installed from ``monitor.conf.example`` by install.sh).
MONITOR_CONFIG_FILE = "/etc/swr/monitor.conf"
#: Where install.sh puts the on-instance programs.
MONITOR_BIN = "/usr/local/bin/swr-monitor"
FAULTSCRIPT_BIN = "/usr/local/sbin/swr-faultscript"
