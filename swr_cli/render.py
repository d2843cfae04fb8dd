"""Rich tables shared by the commands (status, history, drill/demo timelines, checks)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from rich.console import Group
from rich.table import Table
from rich.text import Text
from switcher import phases, state

OK_MARK = "✔"
FAIL_MARK = "✘"


@dataclass(frozen=True)
class Check:
    """One checked statement and whether it holds."""

    name: str
    ok: bool
    detail: str = ""


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def timeline_rows(switch: state.SwitchRecord) -> list[tuple[str, str, float]]:
    """(phase, timestamp, seconds since detection) in the order of the switch's plan."""
    order = [phases.DETECTED, phases.CLAIMED, *(p.value for p in phases.plan(switch.order))]
    keys = [k for k in order if k in switch.timeline] + sorted(k for k in switch.timeline if k not in order)
    if not keys:
        return []
    start = _parse(switch.timeline[keys[0]])
    return [(k, switch.timeline[k], (_parse(switch.timeline[k]) - start).total_seconds()) for k in keys]


def rto_seconds(switch: state.SwitchRecord) -> float | None:
    """Detection to the last recorded phase (`done` for a finished switch)."""
    rows = timeline_rows(switch)
    return rows[-1][2] if rows else None


def timeline_table(switch: state.SwitchRecord) -> Group:
    """A switch: one heading line (id, node, outcome, RTO), its phase table, source → replacement."""
    rto = rto_seconds(switch)
    heading = Text.from_markup(
        f"[bold]switch {switch.switch_id}[/] · node {switch.node_id} · {switch.outcome}"
        + (f" · RTO {rto:.2f}s" if rto is not None else "")
    )
    table = Table()
    table.add_column("phase")
    table.add_column("at (UTC)")
    table.add_column("+s", justify="right")
    for phase, stamp, offset in timeline_rows(switch):
        table.add_row(phase, stamp, f"{offset:.2f}")
    route = Text(
        f"{switch.source_instance_id} ({switch.source_az or '?'}) → "
        f"{switch.replacement_instance_id or '-'} ({switch.replacement_az or '-'}) · reason: {switch.reason}"
        + (f" · error: {switch.error}" if switch.error else "")
    )
    return Group(heading, table, route)


def checks_table(title: str, checks: Iterable[Check]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("check")
    table.add_column("detail")
    for check in checks:
        mark = f"[green]{OK_MARK}[/]" if check.ok else f"[red]{FAIL_MARK}[/]"
        table.add_row(mark, check.name, check.detail)
    return table


# --- `--output json`: the documents of docs/cli.md ("JSON output"); keys are stable -------------------


def check_json(check: Check) -> dict[str, Any]:
    """A check as `{"name", "ok", "detail"}`."""
    return {"name": check.name, "ok": check.ok, "detail": check.detail}


def switch_json(switch: state.SwitchRecord) -> dict[str, Any]:
    """A switch with its timeline (phase, timestamp, seconds since detection) and RTO."""
    return {
        "switch_id": switch.switch_id,
        "vpc": switch.vpc_name,
        "node_id": switch.node_id,
        "outcome": switch.outcome,
        "reason": switch.reason,
        "source_instance_id": switch.source_instance_id,
        "source_az": switch.source_az,
        "replacement_instance_id": switch.replacement_instance_id,
        "replacement_az": switch.replacement_az,
        "error": switch.error,
        "rto_seconds": rto_seconds(switch),
        "timeline": [
            {"phase": phase, "at": stamp, "offset_seconds": offset}
            for phase, stamp, offset in timeline_rows(switch)
        ],
    }


def print_json(document: dict[str, Any], *, file: TextIO | None = None) -> None:
    """One JSON document on stdout (plain print: no console markup or wrapping)."""
    stream = file or sys.stdout
    stream.write(json.dumps(document, indent=2) + "\n")
    stream.flush()
