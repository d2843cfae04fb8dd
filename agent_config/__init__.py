"""On-instance pieces of swr: CloudWatch agent config, FaultScript, swr-monitor, EFS mount user data.

Importable as ``swr_agent`` (see pyproject.toml) so the stacks can render the node's user data.
Everything that runs on the instance itself is Python stdlib or POSIX shell only.
"""
