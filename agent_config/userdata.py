"""Render the node's EC2 user data: write the node identity and mount both EFS file systems.

The launch template passes this script; every instance of a node (first and replacements) runs it
at first boot. Values may be CDK tokens (rendered into CloudFormation `Fn::Join`), so rendering is
plain string substitution with no inspection of the values.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

TEMPLATE_PATH = Path(__file__).with_name("userdata.sh.tmpl")
#: Where the monitor-log EFS (the node's access point) and the user-data EFS are mounted.
MONITOR_LOG_MOUNT = "/var/log/swr"
USER_DATA_MOUNT = "/srv/swr-data"


def render_user_data(
    *,
    node_id: int | str,
    vpc_name: str,
    region: str,
    logs_file_system_id: str,
    logs_access_point_id: str,
    data_file_system_id: str | None,
    monitor_process: str = "swr-monitor",
) -> str:
    """Return the user-data shell script for one node.

    ``data_file_system_id`` is None when the node has no user-data EFS (config ``user_data_efs: false``).
    """
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
        MONITOR_PROCESS=monitor_process,
    )
