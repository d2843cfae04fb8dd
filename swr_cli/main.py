"""`swr`: the operator's command line (status, history, drill, hold/resume, validate, demo)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from switcher import state

from swr_cli import drill
from swr_cli.aws import AwsTarget
from swr_cli.discovery import NotFound, find_node, find_switchers
from swr_cli.exitcodes import ExitCode
from swr_cli.render import check_json, checks_table, print_json, switch_json, timeline_table
from swr_stacks.config import ConfigError

OUTPUTS = ("table", "json")
#: How to get the local emulator (the `local` extra: moto's server).
INSTALL_LOCAL = "pip install 'swr[local]'"


def _target(args: argparse.Namespace) -> AwsTarget:
    return AwsTarget.from_args(args.region, args.endpoint_url, args.profile)


def _json(args: argparse.Namespace) -> bool:
    return bool(args.output == "json")


def _done(args: argparse.Namespace, code: ExitCode, document: dict[str, Any]) -> ExitCode:
    """Print the command's JSON document (in --output json) with its exit code; return the code."""
    if _json(args):
        print_json({"command": args.command, "exit_code": int(code), **document}, file=args.json_stream)
    return code


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Keep stdout for the JSON document alone: what the in-process switcher of a local drill prints
    (Powertools EMF metrics with print(), log handlers that hold sys.stdout) goes to stderr."""
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for lg in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        for handler in getattr(lg, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
                swapped.append((handler, handler.setStream(sys.stderr)))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


def cmd_status(args: argparse.Namespace, console: Console) -> ExitCode:
    target = _target(args)
    ddb = target.client("dynamodb")
    now = time.time()
    table = Table(title=f"swr nodes · {target.region}", title_justify="left")
    for col in ("vpc", "node", "state", "instance", "AZ", "last switch", "switches in window"):
        table.add_column(col)
    rows: list[dict[str, Any]] = []
    for switcher in find_switchers(target, args.vpc):
        for node in state.list_nodes(ddb, switcher.table_name, switcher.vpc_name):
            last = state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node.node_id, limit=1)
            detected = last[0].timeline.get("detected", last[0].sk.split("#")[0]) if last else None
            window = switcher.flap_window_seconds
            in_window = state.switches_in_window(node, window, now)
            rows.append(
                {
                    "vpc": switcher.vpc_name,
                    "node_id": node.node_id,
                    "state": node.state,
                    "hold_reason": node.hold_reason if node.state == state.HOLD else None,
                    "instance_id": node.current_instance_id,
                    "availability_zone": node.current_az,
                    "last_switch": {
                        "switch_id": last[0].switch_id,
                        "detected_at": detected,
                        "outcome": last[0].outcome,
                    }
                    if last
                    else None,
                    "switches_in_window": in_window,
                    "flap_max_switches": switcher.flap_max_switches,
                    "flap_window_seconds": window,
                }
            )
            table.add_row(
                switcher.vpc_name,
                str(node.node_id),
                node.state + (f" ({node.hold_reason})" if rows[-1]["hold_reason"] else ""),
                node.current_instance_id or "-",
                node.current_az or "-",
                f"{detected} {last[0].outcome}" if last else "-",
                f"{in_window}/{switcher.flap_max_switches} per {window}s",
            )
    if not _json(args):
        console.print(table)
        if not rows:
            console.print("no node has a record yet")
    return _done(args, ExitCode.OK, {"region": target.region, "nodes": rows})


def cmd_history(args: argparse.Namespace, console: Console) -> ExitCode:
    target = _target(args)
    switcher, node = find_node(target, args.node, args.vpc)
    switches = state.list_switches(
        target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id, limit=args.limit
    )
    if not _json(args):
        if not switches:
            console.print(f"node {node.node_id} ({switcher.vpc_name}) has never switched")
        for switch in switches:
            console.print(timeline_table(switch))
    return _done(
        args,
        ExitCode.OK,
        {"vpc": switcher.vpc_name, "node_id": node.node_id, "switches": [switch_json(s) for s in switches]},
    )


def cmd_hold(args: argparse.Namespace, console: Console) -> ExitCode:
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
    if not _json(args):
        console.print(
            f"node {held.node_id} ({switcher.vpc_name}) is {held.state}: events about it are ignored "
            f"until `swr resume {held.node_id}`"
        )
    return _done(
        args,
        ExitCode.OK,
        {
            "vpc": switcher.vpc_name,
            "node_id": held.node_id,
            "state": held.state,
            "hold_reason": held.hold_reason,
        },
    )


def cmd_resume(args: argparse.Namespace, console: Console) -> ExitCode:
    target = _target(args)
    switcher, node = find_node(target, args.node, args.vpc)
    resumed = state.resume(
        target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id, now=time.time()
    )
    if not _json(args):
        console.print(
            f"node {resumed.node_id} ({switcher.vpc_name}) is {resumed.state} on "
            f"{resumed.current_instance_id or '-'}"
        )
    return _done(
        args,
        ExitCode.OK,
        {
            "vpc": switcher.vpc_name,
            "node_id": resumed.node_id,
            "state": resumed.state,
            "instance_id": resumed.current_instance_id,
        },
    )


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


class Refused(Exception):
    """The command refuses to act (nothing was changed): exit code REFUSED."""


def cmd_drill(args: argparse.Namespace, console: Console) -> ExitCode:
    """Inject a fault, follow the switch; in --output json the progress goes to stderr."""
    target = _target(args)
    if args.fault in drill.LOCAL_ONLY_FAULTS and not target.is_local:
        raise Refused(drill.AZ_REAL_ACCOUNT_REFUSAL.format(region=target.region))
    if not target.is_local and not args.yes:
        raise Refused(
            f"`swr drill` fails a real node in {target.region} (no local --endpoint-url). "
            "Re-run with --yes if that is what you want."
        )
    local = _local(console, "`swr drill` on a local endpoint") if target.is_local else None
    if target.is_local and local is None:
        return _done(args, ExitCode.NEEDS_LOCAL_EXTRA, {"ok": False, "install": INSTALL_LOCAL})
    switcher, node = find_node(target, args.node, args.vpc)
    if node.state != state.ACTIVE:
        raise Refused(f"node {node.node_id} is {node.state}: a drill needs an ACTIVE node")
    assert node.config is not None
    document: dict[str, Any] = {"vpc": switcher.vpc_name, "node_id": node.node_id, "fault": args.fault}
    efs_before = drill.launch_template_efs_ids(target, node.config.launch_template_id)
    known = {
        s.sk
        for s in state.list_switches(
            target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id
        )
    }

    def on_phase(phase: str, stamp: str) -> None:
        console.print(f"  · {phase:<18} {stamp}")

    if args.fault in drill.LOCAL_ONLY_FAULTS:
        assert local is not None  # refused above for a real account
        console.print(f"injecting {args.fault} fault on node {node.node_id} ({node.current_instance_id})")
        outcome = local.drill_az(target, switcher, node, console, on_phase, args.timeout)
        if outcome.overrides:
            document["local_overrides"] = outcome.overrides
    elif local is not None:
        injected = drill.inject_fault(target, switcher, node, args.fault)
        console.print(f"injected {args.fault} fault on node {node.node_id} ({node.current_instance_id})")
        # An emulator delivers no events: act as EventBridge, through the deployed rule's pattern.
        outcome = local.deliver(target, switcher, node.node_id, injected, console, on_phase, args.timeout)
    else:
        drill.inject_fault(target, switcher, node, args.fault)
        console.print(f"injected {args.fault} fault on node {node.node_id} ({node.current_instance_id})")
        switch = drill.follow(target, switcher, node.node_id, known, on_phase=on_phase, timeout=args.timeout)
        outcome = drill.FollowResult(
            switch=switch,
            node=state.get_node(
                target.client("dynamodb"), switcher.table_name, switcher.vpc_name, node.node_id
            ),
        )
    if outcome.switch is None:
        console.print(f"[red]no switch started within {args.timeout:.0f}s[/]")
        return _done(args, ExitCode.FAILED, {**document, "ok": False, "switch": None, "checks": []})
    console.print(timeline_table(outcome.switch))
    if local is not None:
        console.print(f"  [dim]the RTO above is {local.EMULATOR_TIME}[/]")
    document["switch"] = switch_json(outcome.switch)
    if outcome.switch.outcome == state.IN_PROGRESS:
        console.print(f"[yellow]still in progress after {args.timeout:.0f}s[/]: `swr history {node.node_id}`")
        return _done(args, ExitCode.FAILED, {**document, "ok": False, "checks": []})
    checks = drill.check_switch(target, switcher, node, efs_before, outcome) + outcome.checks
    console.print(checks_table(f"invariants · node {node.node_id}", checks))
    ok = all(c.ok for c in checks)
    return _done(
        args,
        ExitCode.OK if ok else ExitCode.FAILED,
        {**document, "ok": ok, "checks": [check_json(c) for c in checks]},
    )


def cmd_demo(args: argparse.Namespace, console: Console) -> ExitCode:
    """The local drill; it makes its own emulator, so the AWS options do not apply (said, not ignored)."""
    local = _local(console, "`swr demo`")
    if local is None:
        return _done(args, ExitCode.NEEDS_LOCAL_EXTRA, {"ok": False, "install": INSTALL_LOCAL})
    unused = [f"--{o.replace('_', '-')}" for o in ("region", "profile", "endpoint_url") if getattr(args, o)]
    if unused:
        console.print(
            f"note: {', '.join(unused)} not used: the demo deploys the default config into its own "
            "emulator on 127.0.0.1 (no AWS account)"
        )
    code = ExitCode.OK if int(local.demo(console, node_id=args.node)) == 0 else ExitCode.FAILED
    return _done(args, code, {"ok": code == ExitCode.OK})


def cmd_local(args: argparse.Namespace, console: Console) -> ExitCode:
    """`swr local up|down`: the background sandbox the other commands can be tried against."""
    local = _local(console, f"`swr local {args.action}`")
    if local is None:
        return _done(args, ExitCode.NEEDS_LOCAL_EXTRA, {"ok": False, "install": INSTALL_LOCAL})
    if args.action == "up":
        document = local.local_up(console, assembly=args.assembly)
    else:
        document = local.local_down(console)
    return _done(args, ExitCode.OK, {"action": args.action, **document})


def cmd_validate(args: argparse.Namespace, console: Console) -> ExitCode:
    from swr_cli.validate import run_validate

    code, document = run_validate(
        console,
        config_file=args.config,
        region=args.region,
        endpoint_url=args.endpoint_url,
        profile=args.profile,
        show=not _json(args),
    )
    return _done(args, code, document)


def _package_version() -> str:
    try:
        return version("swr")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"


def _global_options(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """--profile, --region, --endpoint-url, --output: before the command or after it.

    On a command, the defaults are SUPPRESSed: argparse would otherwise overwrite a value given before
    the command with the command's own default."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if on_command else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--profile", default=default(None), help="AWS profile of ~/.aws/config (default: AWS_PROFILE)"
    )
    group.add_argument(
        "--region",
        default=default(None),
        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / the profile's)",
    )
    group.add_argument(
        "--endpoint-url",
        default=default(None),
        help="AWS endpoint, e.g. a local emulator (default: AWS_ENDPOINT_URL)",
    )
    group.add_argument(
        "--output",
        choices=OUTPUTS,
        default=default("table"),
        help="table (default) for people; json: one stable JSON document on stdout (docs/cli.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swr", description="Smart Workload Recovery for AWS: operator CLI")
    parser.add_argument("--version", action="version", version=f"swr {_package_version()}")
    _global_options(parser, on_command=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, on_command=True)
    vpc = argparse.ArgumentParser(add_help=False)
    vpc.add_argument("--vpc", help="the VPC's name in the config (default: every VPC of the region)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", parents=[common], help="check the config offline, then the live account")
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
        help="app: stop the instance as the FaultScript does; monitor/status: set that alarm to ALARM; "
        "az (local emulator only): lose the node's Availability Zone, its monitor metric silent",
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
        "demo",
        parents=[common],
        help="local failover drill against moto on 127.0.0.1 (no AWS account; needs swr[local])",
    )
    p.add_argument("--node", type=int, help="node id to fail (default: the lowest)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "local",
        parents=[common],
        help="up: a sandbox (moto on 127.0.0.1 with the default app) left running for every command; down",
    )
    p.add_argument("action", choices=("up", "down"), help="start the sandbox, or stop it")
    p.add_argument(
        "--assembly",
        type=Path,
        help="up: deploy this synthesized cloud assembly (cdk.out) instead of synthesizing the default app",
    )
    p.set_defaults(func=cmd_local)
    return parser


#: Errors that end a command with FAILED: each names what is wrong on one line.
_FAILURES = (
    NotFound,
    state.ConflictError,
    drill.DrillError,
    ConfigError,
    ValueError,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    json_mode = args.output == "json"
    args.json_stream = sys.stdout
    # The console keeps its own reference to the terminal: `swr demo` redirects sys.stdout (switcher logs).
    # In --output json, stdout holds only the JSON document: what people read (progress, errors) goes to
    # stderr.
    stream = sys.stderr if json_mode else sys.stdout
    console = Console(file=stream, highlight=False, width=None if stream.isatty() else 120)

    def fail(code: ExitCode, kind: str, label: str, err: BaseException) -> int:
        console.print(f"[red]{label}:[/] {err}")
        if json_mode:
            print_json(
                {
                    "command": args.command,
                    "exit_code": int(code),
                    "error": {"kind": kind, "message": str(err)},
                }
            )
        return int(code)

    try:
        with _stdout_to_stderr() if json_mode else contextlib.nullcontext():
            return int(args.func(args, console))
    except ProfileNotFound as err:
        return fail(ExitCode.USAGE, "usage", "error", err)
    except (Refused, state.TransitionError) as err:
        return fail(ExitCode.REFUSED, "refused", "refusing", err)
    except _FAILURES as err:
        return fail(ExitCode.FAILED, "failed", "error", err)
    except NoCredentialsError as err:
        hint = f"{err} (set AWS_PROFILE or pass --profile, or export AWS credentials)"
        return fail(ExitCode.AWS_ERROR, "aws", "AWS error", RuntimeError(hint))
    except (ClientError, BotoCoreError) as err:
        return fail(ExitCode.AWS_ERROR, "aws", "AWS error", err)
    except Exception as err:
        # A step of the local drill (synthesis, emulator deploy, custom resource) failed: its error class
        # lives in swr_local, which the operator CLI never imports itself.
        local_errors = sys.modules.get("swr_local.errors")
        if local_errors is not None and isinstance(err, local_errors.LocalRunError):
            return fail(ExitCode.FAILED, "failed", "error", err)
        raise


if __name__ == "__main__":
    sys.exit(main())
