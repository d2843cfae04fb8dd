"""The emulator's side of the operator CLI: what `swr demo` and `swr drill` on a local endpoint run.

`swr_cli.main` imports this module only when such a command runs; importing it needs the `local` extra
(moto), so that a missing extra is one clear message, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import moto.server  # noqa: F401 - fails here, naming the missing module, without the `local` extra
from rich.console import Console
from switcher import state

from swr_cli.aws import AwsTarget
from swr_cli.discovery import Switcher
from swr_cli.drill import FollowResult, InjectedFault
from swr_local import drill as local_drill
from swr_local import sandbox
from swr_local.demo import EMULATOR_TIME, run_demo
from swr_local.errors import LocalRunError

__all__ = ["EMULATOR_TIME", "LocalRunError", "deliver", "demo", "drill_az", "local_down", "local_up"]


def demo(console: Console, *, node_id: int | None = None) -> int:
    """`swr demo`: the exit code (0 when every invariant holds); a failed local step is reported, exit 1."""
    try:
        return run_demo(console, node_id=node_id)
    except LocalRunError as err:
        console.print(f"[red]error:[/] {err}")
        return 1


def deliver(
    target: AwsTarget,
    switcher: Switcher,
    node_id: int,
    injected: InjectedFault,
    console: Console,
    on_phase: Callable[[str, str], None],
    timeout: float,
) -> FollowResult:
    """Deliver the injected fault's event through the deployed rule that matches it, run the switcher
    in-process and follow the switch (an emulator delivers no events)."""
    event = local_drill.event_of(injected)
    rule = local_drill.matching_rule(target, switcher, event)
    console.print(f"delivering {event['detail-type']!r} via rule {rule} to {switcher.function_name}")
    return local_drill.deliver_and_follow(
        target, switcher, node_id, event, on_phase=on_phase, timeout=timeout
    )


def drill_az(
    target: AwsTarget,
    switcher: Switcher,
    node: state.NodeRecord,
    console: Console,
    on_phase: Callable[[str, str], None],
    timeout: float,
) -> FollowResult:
    """`swr drill --fault az`: lose the node's AZ in the emulator, silence its monitor metric and drive
    the detection the product uses (the reconciler, then the raised alarm's event through the deployed
    rule) until the node runs in another AZ (swr_local.drill.drill_az)."""
    return local_drill.drill_az(
        target,
        switcher,
        node,
        say=lambda line: console.print(line, markup=False),
        on_phase=on_phase,
        timeout=timeout,
    )


def local_up(console: Console, *, assembly: Path | None = None) -> dict[str, Any]:
    """`swr local up`: start (or find) the background sandbox and say how to use it; its JSON document."""
    directory = sandbox.sandbox_dir()
    existing = sandbox.running(directory)
    if existing is None:
        console.print("starting the sandbox: synthesize, deploy into moto, provision the nodes …")
    started = sandbox.up(directory, assembly=assembly)
    sandbox.describe(console, started, directory, started=existing is None)
    return {
        "started": existing is None,
        "pid": started.pid,
        "endpoint_url": started.endpoint_url,
        "region": started.region,
        "nodes": started.nodes,
        "environment": started.environment(),
        "log": str(directory / sandbox.LOG_FILE),
    }


def local_down(console: Console) -> dict[str, Any]:
    """`swr local down`: stop the background sandbox; its JSON document."""
    stopped = sandbox.down(sandbox.sandbox_dir())
    if stopped is None:
        console.print("no sandbox is running")
    else:
        console.print(f"sandbox on {stopped.endpoint_url} stopped (pid {stopped.pid})")
    return {"stopped": stopped is not None, "pid": stopped.pid if stopped else None}
