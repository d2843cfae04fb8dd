"""Render the node's EC2 user data: node identity, both EFS mounts, the CloudWatch agent, swr-monitor.

The launch template passes this script; every instance of a node (first and replacements) runs it
at first boot. Values may be CDK tokens (rendered into CloudFormation `Fn::Join`), so rendering is
plain string substitution with no inspection of the values -- except ``monitor_process``, which
selects what the agent watches and must be a literal key of ``MONITOR_PROCESS_PATTERNS``.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from .cwagent import AGENT_CONFIG_PATH, AGENT_CTL_PATH, render_agent_config_json
from .paths import MONITOR_LOG_MOUNT, NODE_ENV_FILE, USER_DATA_MOUNT

__all__ = ["MONITOR_LOG_MOUNT", "TEMPLATE_PATH", "USER_DATA_MOUNT", "render_user_data"]

TEMPLATE_PATH = Path(__file__).with_name("userdata.sh.tmpl")
#: Shutdown behaviours the FaultScript understands (the launch template's instance-initiated one).
SHUTDOWN_BEHAVIORS = ("stop", "terminate")


def render_user_data(
    *,
    node_id: int | str,
    vpc_name: str,
    region: str,
    logs_file_system_id: str,
    logs_access_point_id: str,
    data_file_system_id: str | None,
    monitor_process: str = "swr-monitor",
    shutdown_behavior: str = "stop",
) -> str:
    """Return the user-data shell script for one node.

    ``data_file_system_id`` is None when the node has no user-data EFS (config ``user_data_efs: false``).
    ``shutdown_behavior`` must equal the launch template's instance-initiated shutdown behaviour: the
    FaultScript falls back to an OS shutdown only when it is ``stop`` (so it can never terminate).
    """
    if shutdown_behavior not in SHUTDOWN_BEHAVIORS:
        raise ValueError(f"shutdown_behavior must be one of {SHUTDOWN_BEHAVIORS}, got {shutdown_behavior!r}")
    agent_config = render_agent_config_json(vpc_name=vpc_name, monitor_process=monitor_process)
    template = Template(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return template.substitute(
        NODE_ID=str(node_id),
        VPC_NAME=vpc_name,
        REGION=region,
        LOGS_FS_ID=logs_file_system_id,
        LOGS_AP_ID=logs_access_point_id,
        DATA_FS_ID=data_file_system_id or "",
        LOGS_MOUNT=MONITOR_LOG_MOUNT,
        DATA_MOUNT=USER_DATA_MOUNT,
        NODE_ENV=NODE_ENV_FILE,
        MONITOR_PROCESS=monitor_process,
        START_SWR_MONITOR="yes" if monitor_process == "swr-monitor" else "no",
        SHUTDOWN_BEHAVIOR=shutdown_behavior,
        AGENT_CONFIG_PATH=AGENT_CONFIG_PATH,
        AGENT_CTL=AGENT_CTL_PATH,
        AGENT_CONFIG_JSON=agent_config.rstrip("\n"),
    )
