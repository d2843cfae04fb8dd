"""`swr`: the operator's command line (status, history, drill, hold/resume, validate, demo)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from types import ModuleType

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from switcher import state

from swr_cli import drill
from swr_cli.aws import AwsTarget
from swr_cli.discovery import NotFound, find_node, find_switchers
from swr_cli.render import checks_table, timeline_table

#: How to get the local emulator (the `local` extra: moto's server).
INSTALL_LOCAL = "pip install 'swr[local]'"
#: Exit code of a local command (`swr demo`, `swr drill` on an emulator) without the `local` extra.
EXIT_NEEDS_LOCAL_EXTRA = 3


def _target(args: argparse.Namespace) -> AwsTarget:
    return AwsTarget.from_args(args.region, args.endpoint_url)


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    target = _target(args)
    ddb = target.client("dynamodb")
    now = time.time()
    table = Table(title=f"swr nodes · {target.region}", title_justify="left")
    for col in ("vpc", "node", "state", "instance", "AZ", "last switch", "switches in window"):
        table.add_column(col)
    count = 0
    for switcher in find_switchers(target, args.vpc):
        for node in state.list_nodes(ddb, switcher.table_name, switcher.vpc_name):
            count += 1
            last = state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node.node_id, limit=1)
            last_text = (
                f"{last[0].timeline.get('detected', last[0].sk.split('#')[0])} {last[0].outcome}"
                if last
                else "-"
            )
            window = switcher.flap_window_seconds
            in_window = state.switches_in_window(node, window, now)
            state_text = node.state + (
                f" ({node.hold_reason})" if node.hold_reason and node.state == state.HOLD else ""
            )
            table.add_row(
                switcher.vpc_name,
                str(node.node_id),
                state_text,
                node.current_instance_id or "-",
                node.current_az or "-",
                last_text,
                f"{in_window}/{switcher.flap_max_switches} per {window}s",
            )
    console.print(table)
    if not count:
        console.print("no node has a record yet")
    return 0


def cmd_history(args: argparse.Namespace, console: Console) -> int:
    target = _target(args)
    switcher, node = find_node(target, args.node, args.vpc)
    switches = state.list_switches(
        target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id, limit=args.limit
    )
    if not switches:
        console.print(f"node {node.node_id} ({switcher.vpc_name}) has never switched")
        return 0
    for switch in switches:
        console.print(timeline_table(switch))
    return 0


def cmd_hold(args: argparse.Namespace, console: Console) -> int:
    target = _target(args)
    switcher, node = find_node(target, args.node, args.vpc)
    held = state.hold(
        target.client("dynamodb"),
        switcher.table_name,
        switcher.vpc_name,
        node.node_id,
        reason=args.reason,
        now=time.time(),
    )
    console.print(
        f"node {held.node_id} ({switcher.vpc_name}) is {held.state}: events about it are ignored "
        f"until `swr resume {held.node_id}`"
    )
    return 0


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    target = _target(args)
    switcher, node = find_node(target, args.node, args.vpc)
    resumed = state.resume(
        target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id, now=time.time()
    )
    console.print(
        f"node {resumed.node_id} ({switcher.vpc_name}) is {resumed.state} on "
        f"{resumed.current_instance_id or '-'}"
    )
    return 0


def _local(console: Console, what: str) -> ModuleType | None:
    """`swr_local.cli` (the emulator's side of the CLI), or None after telling the user which extra to
    install: the operator CLI itself installs and runs without the emulator."""
    try:
        from swr_local import cli
    except ModuleNotFoundError as err:
        console.print(
            f"[red]error:[/] {what} needs the local emulator, which is not installed "
            f"({err.name} is missing): {escape(INSTALL_LOCAL)}",
            soft_wrap=True,
        )
        return None
    return cli


def cmd_drill(args: argparse.Namespace, console: Console) -> int:
    target = _target(args)
    if not target.is_local and not args.yes:
        console.print(
            f"[red]refusing:[/] `swr drill` fails a real node in {target.region} (no local --endpoint-url). "
            "Re-run with --yes if that is what you want."
        )
        return 2
    local = _local(console, "`swr drill` on a local endpoint") if target.is_local else None
    if target.is_local and local is None:
        return EXIT_NEEDS_LOCAL_EXTRA
    switcher, node = find_node(target, args.node, args.vpc)
    if node.state != state.ACTIVE:
        console.print(f"[red]node {node.node_id} is {node.state}[/]: a drill needs an ACTIVE node")
        return 1
    assert node.config is not None
    efs_before = drill.launch_template_efs_ids(target, node.config.launch_template_id)
    known = {
        s.sk
        for s in state.list_switches(
            target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id
        )
    }
    injected = drill.inject_fault(target, switcher, node, args.fault)
    console.print(f"injected {args.fault} fault on node {node.node_id} ({node.current_instance_id})")

    def on_phase(phase: str, stamp: str) -> None:
        console.print(f"  · {phase:<18} {stamp}")

    if local is not None:
        # An emulator delivers no events: act as EventBridge, through the deployed rule's pattern.
        outcome = local.deliver(target, switcher, node.node_id, injected, console, on_phase, args.timeout)
    else:
        switch = drill.follow(target, switcher, node.node_id, known, on_phase=on_phase, timeout=args.timeout)
        outcome = drill.FollowResult(
            switch=switch,
            node=state.get_node(
                target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id
            ),
        )
    if outcome.switch is None:
        console.print(f"[red]no switch started within {args.timeout:.0f}s[/]")
        return 1
    console.print(timeline_table(outcome.switch))
    if outcome.switch.outcome == state.IN_PROGRESS:
        console.print(f"[yellow]still in progress after {args.timeout:.0f}s[/]: `swr history {node.node_id}`")
        return 1
    checks = drill.check_switch(target, switcher, node, efs_before, outcome)
    console.print(checks_table(f"invariants · node {node.node_id}", checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    local = _local(console, "`swr demo`")
    if local is None:
        return EXIT_NEEDS_LOCAL_EXTRA
    return int(local.demo(console, node_id=args.node))


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from swr_cli.validate import run_validate

    return run_validate(console, config_file=args.config, region=args.region, endpoint_url=args.endpoint_url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swr", description="Smart Workload Recovery for AWS: operator CLI")
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('swr')}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    common.add_argument(
        "--endpoint-url", help="AWS endpoint, e.g. a local emulator (default: AWS_ENDPOINT_URL)"
    )
    vpc = argparse.ArgumentParser(add_help=False)
    vpc.add_argument("--vpc", help="the VPC's name in the config (default: every VPC of the region)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", parents=[common], help="check the config and the live account")
    p.add_argument("--config", help="config file (JSON or YAML; default: swr:defaults in cdk.json)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("status", parents=[common, vpc], help="every node of the region")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("history", parents=[common, vpc], help="a node's switches with their timelines")
    p.add_argument("node", type=int, metavar="NODE", help="node id")
    p.add_argument("--limit", type=int, default=10, help="at most this many switches (newest first)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("drill", parents=[common, vpc], help="inject a fault and follow the switch")
    p.add_argument("node", type=int, metavar="NODE", help="node id")
    p.add_argument(
        "--fault",
        choices=drill.FAULTS,
        required=True,
        help="app: stop the instance as the FaultScript does; monitor/status: set that alarm to ALARM",
    )
    p.add_argument("--yes", action="store_true", help="required against a real account")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to follow the switch")
    p.set_defaults(func=cmd_drill)

    p = sub.add_parser("hold", parents=[common, vpc], help="ignore events about a node until resumed")
    p.add_argument("node", type=int, metavar="NODE", help="node id")
    p.add_argument("--reason", default="operator hold (swr hold)", help="recorded with the hold")
    p.set_defaults(func=cmd_hold)

    p = sub.add_parser("resume", parents=[common, vpc], help="take a node off hold")
    p.add_argument("node", type=int, metavar="NODE", help="node id")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "demo", help="local failover drill against moto on 127.0.0.1 (no AWS account; needs swr[local])"
    )
    p.add_argument("--node", type=int, help="node id to fail (default: the lowest)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The console keeps its own reference to the terminal: `swr demo` redirects sys.stdout (switcher logs).
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
    try:
        return int(args.func(args, console))
    except (
        NotFound,
        state.TransitionError,
        state.ConflictError,
        drill.DrillError,
        ValueError,
    ) as err:
        console.print(f"[red]error:[/] {err}")
        return 1
    except (ClientError, BotoCoreError) as err:
        console.print(f"[red]AWS error:[/] {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
