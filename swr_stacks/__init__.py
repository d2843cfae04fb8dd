"""swr's CDK constructs, for the config-driven app (app.py) and for one's own CDK app (examples/).

The names below load lazily: ``swr_stacks.config`` (used by the CLI) does not start the CDK's jsii
runtime. Compose them bottom-up: SwrRegion (state table, notice topic) once per region, SwrVpc per VPC
(network, switcher, ProtectedNode per node); ProtectedNode in turn composes NodeStorage, NodeRole,
NodeLaunchTemplate and NodeLoadBalancer. Configuration comes from ``parse_config``/``load_config_file``
(validated, frozen dataclasses).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swr_stacks.config import NodeConfig, SwrConfig, VpcConfig, load_config_file, parse_config
    from swr_stacks.monitor_logs import MonitorLogs, SecureFileSystem
    from swr_stacks.nag import acknowledge
    from swr_stacks.network import SwrNetwork
    from swr_stacks.node import NodeLaunchTemplate, NodeLoadBalancer, NodeRole, NodeStorage, ProtectedNode
    from swr_stacks.state import SwrRegion
    from swr_stacks.switcher import Switcher
    from swr_stacks.vpc import SwrVpc, SwrVpcResources

#: Public name → the module defining it.
_EXPORTS = {
    "NodeConfig": "config",
    "SwrConfig": "config",
    "VpcConfig": "config",
    "load_config_file": "config",
    "parse_config": "config",
    "MonitorLogs": "monitor_logs",
    "SecureFileSystem": "monitor_logs",
    "acknowledge": "nag",
    "SwrNetwork": "network",
    "NodeLaunchTemplate": "node",
    "NodeLoadBalancer": "node",
    "NodeRole": "node",
    "NodeStorage": "node",
    "ProtectedNode": "node",
    "SwrRegion": "state",
    "Switcher": "switcher",
    "SwrVpc": "vpc",
    "SwrVpcResources": "vpc",
}

__all__ = [
    "MonitorLogs",
    "NodeConfig",
    "NodeLaunchTemplate",
    "NodeLoadBalancer",
    "NodeRole",
    "NodeStorage",
    "ProtectedNode",
    "SecureFileSystem",
    "Switcher",
    "SwrConfig",
    "SwrNetwork",
    "SwrRegion",
    "SwrVpc",
    "SwrVpcResources",
    "VpcConfig",
    "acknowledge",
    "load_config_file",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    """Load an exported name from its module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'swr_stacks' has no attribute {name!r}")
    return getattr(import_module(f"swr_stacks.{_EXPORTS[name]}"), name)
