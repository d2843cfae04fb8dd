"""`swr demo`: the whole system on this machine — synthesize, deploy into moto, provision, fail, recover."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from switcher import state

from swr_cli import drill
from swr_cli.aws import AwsTarget
from swr_cli.discovery import find_node, find_switchers
from swr_cli.render import OK_MARK, checks_table, timeline_table
from swr_local import drill as local_drill
from swr_local import events
from swr_local.assembly import app_directory, read_assembly, synthesize
from swr_local.deploy import deploy_assembly, provision_nodes
from swr_local.emulator import LOCAL_ACCOUNT_ID, moto_server

#: Every duration the demo shows is measured on the emulator, on this machine.
EMULATOR_TIME = "emulator time, not an AWS recovery time; see the modeled RTO in bench/RESULTS.md"

#: The two failure cases of the spec, in the order the demo runs them.
CASES = (
    ("app", "case 1 · application fault: the FaultScript stops the instance"),
    ("monitor", "case 2 · monitor death: the monitor alarm goes to ALARM"),
)


@contextmanager
def quiet(sink: io.StringIO) -> Iterator[None]:
    """Keep the demo's own output readable: the emulator's request log and moto's CloudFormation warnings
    are dropped; what the switcher prints (Powertools JSON logs, EMF metrics) goes to `sink`.

    The console must hold its own reference to the terminal (Console(file=sys.stdout) before this)."""
    loggers = [logging.getLogger(name) for name in ("werkzeug", "moto", "botocore.credentials")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    # Powertools' handlers hold sys.stdout itself: point every stdout stream handler at the sink.
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for lg in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        for handler in lg.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
                swapped.append((handler, handler.setStream(sink)))
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for handler, stream in swapped:
                handler.setStream(stream)
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


class _Step:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()

    @contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        t0 = time.monotonic()
        with self.console.status(what):
            yield
        self.console.print(f"[green]{OK_MARK}[/] {what} [dim]({time.monotonic() - t0:.1f}s)[/]")


def run_demo(console: Console, *, app_dir: Path | None = None, node_id: int | None = None) -> int:
    """Run the local drill; return the process exit code (0 when every invariant holds)."""
    app_dir = app_dir or app_directory()
    step = _Step(console)
    failures = 0
    switcher_output = io.StringIO()
    with (
        quiet(switcher_output),
        tempfile.TemporaryDirectory(prefix="swr-demo-") as tmp,
        moto_server() as server,
    ):
        console.print(f"AWS emulator (moto) on {server.endpoint_url}")
        with step(f"synthesize the default app ({app_dir / 'app.py'})"):
            assembly = read_assembly(synthesize(Path(tmp) / "cdk.out", app_dir=app_dir))
        region = assembly.stacks[0].region
        target = AwsTarget(region=region, endpoint_url=server.endpoint_url)
        with step(f"deploy {len(assembly.stacks)} stack(s) into the emulator's CloudFormation ({region})"):
            deployed = deploy_assembly(
                assembly, target, LOCAL_ACCOUNT_ID, progress=lambda m: console.print(f"  {m}")
            )
        count = sum(len(stack.custom_resources) for stack in deployed)
        with step(f"provision {count} node(s) through the switcher (Custom::SwrNode Create, in-process)"):
            provision_nodes(deployed, target)
        switchers = find_switchers(target)
        ddb = target.client("dynamodb")
        records = [n for s in switchers for n in state.list_nodes(ddb, s.table_name, s.vpc_name)]
        for record in records:
            console.print(
                f"  node {record.node_id} ({record.vpc_name}): {record.state} on "
                f"{record.current_instance_id} in {record.current_az}"
            )
        if not records:
            console.print("[red]no node was provisioned[/]")
            return 1
        chosen = node_id if node_id is not None else records[0].node_id
        for fault, title in CASES:
            console.rule(title)
            switcher, before = find_node(target, chosen)
            assert before.config is not None
            efs_before = drill.launch_template_efs_ids(target, before.config.launch_template_id)
            event = local_drill.event_of(drill.inject_fault(target, switcher, before, fault))
            rule = local_drill.matching_rule(target, switcher, event)
            console.print(f"  event {event['detail-type']!r} matches deployed rule {rule}")
            t0 = time.monotonic()
            outcome = local_drill.deliver_and_follow(
                target,
                switcher,
                chosen,
                event,
                on_phase=lambda phase, stamp: console.print(f"    · {phase:<18} {stamp}"),
            )
            console.print(f"  handler returned in {time.monotonic() - t0:.2f}s [dim]({EMULATOR_TIME})[/]")
            if outcome.switch is not None:
                console.print(timeline_table(outcome.switch))
                console.print(f"  [dim]the RTO above is {EMULATOR_TIME}[/]")
            checks = drill.check_switch(target, switcher, before, efs_before, outcome)
            if fault == "app" and before.current_instance_id:
                # EC2 goes on to emit `stopped` for the source: a late event about a replaced instance
                late = events.ec2_state_change(
                    before.current_instance_id, "stopped", account_id=LOCAL_ACCOUNT_ID, region=region
                )
                checks.append(
                    local_drill.redeliver_is_ignored(
                        target, switcher, chosen, late, what="the late `stopped` event of the source"
                    )
                )
            else:
                # EventBridge and Lambda deliver at least once: the same alarm event again
                checks.append(
                    local_drill.redeliver_is_ignored(
                        target, switcher, chosen, event, what="a duplicate delivery of the event"
                    )
                )
            console.print(checks_table(f"invariants · {fault} fault · node {chosen}", checks))
            failures += sum(not c.ok for c in checks)
    total = time.monotonic() - step.started
    log_lines = switcher_output.getvalue().splitlines()
    console.print(f"[dim]the switcher wrote {len(log_lines)} log line(s) (Powertools JSON + EMF metrics)[/]")
    if failures:
        for line in log_lines[-20:]:
            console.print(line, markup=False)
        console.print(f"[red]demo FAILED: {failures} invariant(s) broken[/] ({total:.1f}s)")
        return 1
    console.print(
        f"[green]demo passed: both failure cases recovered, every invariant holds[/] ({total:.1f}s)"
    )
    return 0
