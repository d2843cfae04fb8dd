"""Generate bench/RESULTS.md from the results files (every figure is read from bench/results/*.json).

Run alone: `.venv/bin/python -m bench.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.gantt import chart_path
from bench.levers import fresh_launch_floor
from bench.peers import MEASURED
from bench.results_io import BENCH_DIR, REPO_ROOT, read_result

RESULTS_MD = BENCH_DIR / "RESULTS.md"


def _s(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _met(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _run_line(result: dict[str, Any]) -> str:
    run = result["run"]
    line = f"`{run['command']}` — {run['finished_at']}, commit {run['git_commit']}, {run['machine']}"
    load = run.get("load_average_1_5_15_min")
    if load:
        line += f", load average {load[0]:g} / {load[1]:g} / {load[2]:g} (1 / 5 / 15 min) at the end"
    return line


def _interval(estimate: dict[str, float], unit: str = " s", digits: int = 1) -> str:
    return (
        f"{estimate['value']:.{digits}f}{unit} [{estimate['low']:.{digits}f}-{estimate['high']:.{digits}f}]"
    )


def peers_table(p1: dict[str, Any]) -> list[str]:
    """The one comparison table: every peer's RTO per failure case and load balancer, and its ratio to swr."""
    lines = [
        "| case | LB | recovery | evidence | RTO median [90 % CI] | RTO max | ratio to swr [90 % CI] |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for case, per_lb in p1["peers"].items():
        title = p1["cases"][case]["title"]
        for lb, rows in per_lb.items():
            for row in rows.values():
                if row["recovers"]:
                    rto, top = _interval(row["rto_median"]), f"{row['rto_max']:.1f} s"
                    ratio = _interval(row["ratio_to_swr"], unit="", digits=2)
                else:
                    rto, top, ratio = f"no recovery: {row['reason']}", "—", "—"
                lines.append(
                    f"| {title} | {lb.upper()} | {row['title']} | {row['evidence']} | {rto} | {top} | "
                    f"{ratio} |"
                )
    return lines


def _deployed_line(p1: dict[str, Any]) -> str:
    config = p1["deployed_config"]
    parts = [
        f"{lb.upper()} health check every {tg['interval_seconds']} s, healthy after "
        f"{tg['healthy_threshold']}, unhealthy after {tg['unhealthy_threshold']}, deregistration delay "
        f"{tg['deregistration_delay_seconds']} s"
        for lb, tg in config["target_groups"].items()
    ]
    return (
        "Target groups as synthesized by `python app.py` (default config, "
        f"{config['origin']}): " + "; ".join(parts) + "."
    )


#: How results written before the pre-registered variant was the real switcher (its evidence then was
#: "modeled from the plan, product pending") are reported; a run of today's bench measures it.
PENDING_SHORT = "swr pre-registered (modeled, product pending)"


def _preregistered_measured(p1: dict[str, Any]) -> bool:
    return bool(p1.get("peer_evidence", {}).get("swr_preregistered") == MEASURED)


def _preregistered_name(p1: dict[str, Any]) -> str:
    return (
        "swr with pre-registered targets"
        if _preregistered_measured(p1)
        else "the pending pre-registered variant"
    )


def _preregistered_sentence(p1: dict[str, Any]) -> str:
    if _preregistered_measured(p1):
        return (
            "*swr with pre-registered targets* (`targets: preregistered`) is the real switcher too, on "
            "nodes whose standby addresses were registered at deploy time: nothing is registered during "
            "its switch, so no registration delay applies."
        )
    return (
        "*swr with a pre-registered target* is a planned variant, **modeled from the plan, product pending** "
        "— not a measurement."
    )


def p1_section(p1: dict[str, Any]) -> list[str]:
    v = p1["verdict"]
    runs = p1["runs_per_case_and_order"]
    lines = [
        "## P1 — recovery time per failure case, swr and its peers (modeled seconds)",
        "",
        _run_line(p1),
        "",
        f"Measured: the real switcher against moto server, {runs} runs per case and order (paired seeds), "
        f"time scale {p1['time_scale']}. Modeled: every AWS latency, detection, delivery, cold start, boot "
        "and load balancer (`bench/latency_model.json`). RTO = fault → replacement healthy in the target "
        "group. Every peer replays the same failures (same seeds) on the same model: the Auto Scaling group "
        "and EC2 automatic recovery are models of the documented AWS behaviour (`bench/peers.py`); "
        f"{_preregistered_sentence(p1)} Medians carry a 90 % percentile-bootstrap interval "
        "(2,000 resamples); a ratio "
        "is median / swr's median with a paired bootstrap interval.",
        "",
        _deployed_line(p1),
        "",
        *peers_table(p1),
    ]
    app = p1["cases"]["app_fault"]
    critical = v["critical_path_s"]
    lines += [
        "",
        "Where the swr RTO goes (app fault, NLB, medians of each piece; they add up to about the RTO):",
        "",
        "| piece | modeled s |",
        "|---|---:|",
    ]
    for piece, seconds in critical.items():
        lines.append(f"| {piece} | {_s(seconds)} |")
    lines += [
        "",
        f"Dominant piece: **{v['dominant_piece']}** ({_s(v['dominant_piece_s'])} s of "
        f"{_s(v['app_fault_nlb_swr_rto_s'])} s). The NLB's registration delay (90-300 s, from the sources "
        "in the model table) dwarfs everything swr controls: the switcher's own part (switcher start → "
        f"target registered) is {v['switcher_only_ratio_swr_over_vendor']:.2f}x the vendor order's, yet "
        "the whole-RTO ratio stays near 1 because detection, boot and above all the registration delay are "
        "the same for every order that registers a new target. Without any registration delay the same runs "
        f"would end at a median of {_s(v['swr_rto_without_registration_delay_s'])} s; behind an ALB they "
        f"measure {_s(v['swr_rto_alb_s'])} s. Only recoveries that keep a long-registered address (EC2 "
        f"automatic recovery, where it applies, and {_preregistered_name(p1)}) avoid the delay. "
        "One caveat on the sources: an AWS engineer commented on "
        "kubernetes-sigs/aws-load-balancer-controller #1834 on 2024-09-17 that NLB target "
        "registration 'should be much faster' now, without a figure; the "
        "model keeps the published 90-300 s until a newer figure is published.",
        "",
        f"Targets (app fault, NLB): swr RTO ≤ {v['target_rto_s']:.0f} s — "
        f"{_s(v['app_fault_nlb_swr_rto_s'])} s, {_met(v['rto_target_met'])}; swr/vendor ≤ "
        f"{v['target_ratio']} — {v['app_fault_nlb_ratio']:.2f}, {_met(v['ratio_target_met'])}.",
        "",
        "Median duration of each switcher phase, app fault:",
        "",
        "| phase | vendor | swr |",
        "|---|---:|---:|",
    ]
    vendor_phases = app["orders"]["vendor"]["phase_median_s"]
    swr_phases = app["orders"]["swr"]["phase_median_s"]
    for label in dict.fromkeys([*vendor_phases, *swr_phases]):
        lines.append(f"| {label} | {_s(vendor_phases.get(label))} s | {_s(swr_phases.get(label))} s |")
    lines.append("")
    chart = chart_path("app_fault", "nlb")
    if chart.exists():
        lines += [f"![Phases, vendor vs swr order]({chart.relative_to(BENCH_DIR).as_posix()})", ""]
    if "levers" in p1:
        lines += levers_section(p1["levers"], p1["model"])
    return lines


def levers_section(levers: dict[str, Any], model: list[dict[str, Any]]) -> list[str]:
    """The lever table (bench/levers.py): app fault behind an NLB with a pre-registered target."""
    lines = [
        "### Latency levers (app fault, NLB, pre-registered target)",
        "",
        f"{levers['rows'][0]['runs']} seeds per row, the same seeds in every row (the first row is the "
        "reference; a gain is the per-seed difference to it). The RTO is quantized by the health check's "
        "grid (a target turns healthy on a check), so a lever worth 2 s gains a whole interval in some "
        "runs and nothing in others: its median gain is 0 or one interval, its mean gain the expected "
        "value, and 'app up earlier by' the gain before the grid. The waiter delay is measured "
        "(the real switcher runs with each delay); the monitor, the health check, the gated start and the "
        "direct signal are computed from the same runs' phase timings and draws (`bench/levers.py`). "
        "*All adopted* is the product as shipped: the health check from the synthesized template, the "
        "waiter delay from the switcher's default, the monitor's check from its shipped configuration.",
        "",
        "| levers | health check | waiter | monitor | gated start | direct signal | RTO median [90 % CI] | "
        "RTO gain, median [90 % CI] / mean | app up earlier by, median [90 % CI] |",
        "|---|---|---:|---|---|---|---:|---:|---:|",
    ]
    for row in levers["rows"]:
        lv = row["levers"]
        title = f"**{row['title']}**" if row["kind"] == "adopted" else row["title"]
        lines.append(
            f"| {title} | {lv['health_check']} | {lv['waiter_delay_s']:g} s | {lv['monitor']} | "
            f"{'yes' if lv['gated_start'] else 'no'} | {'yes' if lv['direct_signal'] else 'no'} | "
            f"{_interval(row['rto_median'])} | {_interval(row['gain_median_s'])} / "
            f"{_s(row['gain_mean_s'])} s | {_interval(row['app_up_gain_median_s'])} |"
        )
    pieces = levers["adopted_pieces_median_s"]
    adopted = next(row for row in levers["rows"] if row["kind"] == "adopted")
    dominant = max(pieces, key=pieces.get)
    lines += [
        "",
        "Where the adopted RTO goes (medians of each piece):",
        "",
        "| piece | modeled s |",
        "|---|---:|",
        *(f"| {piece} | {_s(seconds)} |" for piece, seconds in pieces.items()),
        "",
        f"Target ≤ {levers['target_rto_s']:.0f} s: adopted {_s(adopted['rto_median']['value'])} s, "
        f"{_met(adopted['rto_median']['value'] <= levers['target_rto_s'])}. Dominant piece: **{dominant}** "
        f"({_s(pieces[dominant])} s).",
        "",
    ]
    lines += _floor_lines(levers, model)
    return lines


def _floor_lines(levers: dict[str, Any], model: list[dict[str, Any]]) -> list[str]:
    """The floor of a launch-based recovery on the run's model (bench.levers.fresh_launch_floor)."""
    ranges = {figure["figure"]: (float(figure["low"]), float(figure["high"])) for figure in model}
    floor = fresh_launch_floor(ranges.__getitem__)
    total, target = sum(floor.values()), levers["target_rto_s"]
    left = target - total
    adopted = next(row for row in levers["rows"] if row["kind"] == "adopted")
    interval_text, threshold_text = adopted["levers"]["monitor"].split(" s x ")
    interval, threshold = float(interval_text), int(threshold_text)

    def confirm(every: float) -> float:
        """Median time from a failure to its confirmation: the first check at a uniform phase, then
        threshold - 1 more."""
        return every / 2 + every * (threshold - 1)

    return [
        "The floor of any recovery that launches a new instance, from the same model: every step the "
        "recovery controls at zero (instant confirmation by the monitor, a warm function, the fence "
        "overlapped with the boot, free switcher calls) and the fastest health check a target group "
        "accepts. Medians (each remaining figure is a symmetric uniform draw, so the median of the sum is "
        "the sum of the midpoints):",
        "",
        "| piece | modeled s |",
        "|---|---:|",
        *(f"| {piece} | {_s(seconds)} |" for piece, seconds in floor.items()),
        f"| **floor** | **{_s(total)}** |",
        "",
        f"{_s(total)} s of the {target:.0f} s target are AWS's and the application's; {_s(left)} s are left "
        "for everything the recovery itself does before RunInstances: the monitor's confirmation "
        f"({threshold} failed checks in a row: {_s(confirm(interval))} s median at the shipped "
        f"{interval:g} s interval, {_s(confirm(1.0))} s even 1 s apart), the cold start, and the "
        "switcher's claim, snapshot and blackhole + stop (about 1 s, phase table above). "
        + (
            "A launch-based recovery cannot reach the target on this model; only an instance booted before "
            "the failure could."
            if left < confirm(1.0) + 1.0
            else "The target is within reach of a launch-based recovery on this model."
        ),
        "",
    ]


def p2_section(p2: dict[str, Any]) -> list[str]:
    lines = [
        "## P2 — the switcher's own overhead (app fault, on moto server)",
        "",
        _run_line(p2),
        "",
        "Measured: AWS calls counted by botocore hooks; real time spent outside the modeled sleeps "
        "(switcher code + moto server + HTTP on 127.0.0.1). Critical path = calls up to RegisterTargets.",
        "",
        "| order | calls to traffic moved (waiter re-polls excluded) | waiter re-polls | calls in all | "
        "wall s excl. modeled waits (median / max) |",
        "|---|---:|---:|---:|---:|",
    ]
    for order, entry in p2["orders"].items():
        repolls = entry["critical_path_calls_median"] - entry["critical_path_calls_without_repolls_median"]
        lines.append(
            f"| {order} | {entry['critical_path_calls_without_repolls_median']:g} | {repolls:g} | "
            f"{entry['total_calls_median']:g} | {entry['wall_s_excluding_modeled_waits_median']:.2f} / "
            f"{entry['wall_s_excluding_modeled_waits_max']:.2f} |"
        )
    verdict = p2["verdict"]
    profile = p2["orders"]["swr"]["example_profile"]["critical_path_by_operation"]
    lines += [
        "",
        f"Targets (swr): ≤ {verdict['target_calls']} sequential calls — {_met(verdict['calls_target_met'])}; "
        f"≤ {verdict['target_wall_s']} s — {_met(verdict['wall_target_met'])}.",
        "",
        "swr critical path by operation (one run): "
        + ", ".join(f"{op} x {count}" for op, count in profile.items())
        + ".",
        "",
    ]
    return lines


def p3_section(p3: dict[str, Any]) -> list[str]:
    lines = [
        "## P3 — mass stop (every node of one AZ stops at once)",
        "",
        _run_line(p3),
        "",
        "What it is: every node of one AZ **stops normally** (EC2 `stopping` + its status alarm, 2 "
        "events per node) and the real switcher recovers them in concurrent invocations on moto, with a "
        "scaled RunInstances token bucket answering `RequestLimitExceeded`; then moto and the state table "
        "are "
        "audited. What it is not: an AZ loss (instances unreachable rather than stopped, that AZ's API "
        "failing, its capacity gone) — that case is not modeled here. One shared clock at scale "
        f"{p3['mass_stops'][0]['time_scale']} (real compute counts 1/scale).",
        "",
        "| nodes | stopped | switched | double replacements | lost nodes | invocations | RunInstances "
        "refused (retried) | Lambda async retries | done, median / last | bucket bound, median / last | "
        "ratio, median / last |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in p3["mass_stops"]:
        a, b = o["audit"], o["bound"]
        lines.append(
            f"| {o['nodes']} | {a['failed_nodes']} | {a['switched']} | {a['double_replacements']} | "
            f"{a['lost_nodes']} | {o['invocations']} | {o['run_instances_throttled']} | "
            f"{o['lambda_async_retries']} | {_s(b['completion_median_s'])} / {_s(b['completion_max_s'])} s | "
            f"{_s(b['bound_median_s'])} / {_s(b['bound_max_s'])} s | "
            f"{b['ratio_median']:.2f} / {b['ratio_max']:.2f} |"
        )
    o = p3["mass_stops"][-1]
    lines += [
        "",
        f"Pool = reserved concurrency {o['concurrency']} (synthesized template); token bucket "
        f"{o['token_bucket']['burst']:g} burst / {o['token_bucket']['refill_per_second']:g} per s "
        "(AWS: 1,000 / 2). Bound of each switch = max(first RunInstances sent, time the bucket needs to "
        "admit its launch by launch order) + that switch's own time from launch to done; the measurement and "
        "the bound are compared with the same statistic (median with median, last with last). Target: "
        f"last / bound ≤ {p3['target_ratio_max']}.",
        "",
    ]
    for o in p3["mass_stops"]:
        lines.append(
            f"- N = {o['nodes']}: {o['run_instances_calls_throttled_at_least_once']} of "
            f"{o['audit']['failed_nodes']} RunInstances calls were refused at least once and retried by "
            f"botocore ({o['run_instances_throttled']} refused attempts, "
            f"{o['run_instances_calls_failed_after_retries']} gave up); the bucket could admit the last "
            f"launch at {_s(o['token_drain_s'])} s, the last one went through at "
            f"{_s(o['last_run_instances_admitted_s'])} s."
        )
    lines.append("")
    return lines


def _p6_recovered(o: dict[str, Any]) -> str:
    """The all-recovered cell: the time, or that the run ended without every node recovered."""
    if o.get("finished", o["audit"]["switched"] == o["silent_nodes"]):
        return f"{_s(o['all_recovered_s'])} s"
    return f"**not recovered** by {_s(o['dispatch_end_modeled_s'], 0)} s"


def _p6_legacy_unswitched(p6: dict[str, Any]) -> list[str]:
    """A run without the reconciler (results written before it was in the run): what it left."""
    unswitched = [
        f"{o['silent_nodes'] - o['audit']['switched']} of {o['silent_nodes']} at N = {o['nodes']}"
        for o in p6["az_losses"]
        if o["audit"]["switched"] < o["silent_nodes"]
    ]
    if not unswitched:
        return []
    return [
        f"Not switched by the end of the run: {', '.join(unswitched)}. Their fences were not "
        "confirmed (the quota was reached by per-address rules while other instances of the lost "
        "subnet were not yet fenced, so the whole-subnet rule was not yet allowed), and Lambda "
        "dropped their events after its two retries. The benchmark does not run the reconciler "
        "after that; in a deployment it resumes each such switch every interval, and the "
        "whole-subnet rule is allowed once every instance of the subnet carries the blackhole "
        "group. Neither that time nor its outcome is measured here.",
        "",
    ]


def _p6_reconciler_lines(p6: dict[str, Any]) -> list[str]:
    """Per N: what the events and the reconciler each did, and whether every node was recovered."""
    lines = []
    for o in [*p6["az_losses"], p6["single_silent_node"]]:
        r, by = o["reconcile"], o["closed_by"]
        actions = ", ".join(f"{k} {v}" for k, v in sorted(r["switch_actions"].items())) or "none"
        end = (
            f"every silent node ACTIVE on a live replacement at {_s(o['all_recovered_s'])} s"
            if o["finished"]
            else f"**not finished**: {o['silent_nodes'] - o['audit']['switched']} of {o['silent_nodes']} "
            f"nodes not recovered when the run stopped at {_s(o['dispatch_end_modeled_s'], 0)} s "
            f"(horizon {o['horizon_s']:g} s)"
        )
        lines.append(
            f"- N = {o['nodes']}{'' if o['lost_az'] else ' (one silent node, AZ healthy)'}: {end}. "
            f"Switches closed by an alarm event's invocation {by['event']}, by a reconcile run "
            f"{by['reconciler']}; {r['runs']} reconcile runs ({r['runs_timed_out']} timed out; longest "
            f"{_s(r['run_duration_max_s'])} s), {r['alarms_raised']} silent alarms raised, switch actions "
            f"of the reconciler: {actions}; {r['node_deferrals']} node visits deferred for want of "
            f"invocation time; {o['invocations_timed_out']} invocations ran into the function's timeout; "
            f"{len(o['invocations_failed_after_all_retries'])} events dropped after Lambda's retries"
            + (
                "; failed attempts by kind: "
                + ", ".join(
                    f"{k} {v}" for k, v in sorted(o["invocation_errors"].items(), key=lambda kv: -kv[1])
                )
                if o.get("invocation_errors")
                else ""
            )
            + "."
        )
    return [*lines, ""]


def _p6_quota_deadlock(p6: dict[str, Any]) -> list[str]:
    """A run that ended with its network ACL full of per-address rules and no whole-subnet rule: why the
    remaining fences stayed unconfirmed."""
    quota = p6["settings"].get("nacl_rules_per_direction")
    lines = []
    for o in p6["az_losses"]:
        cidrs = o["nacl_rule_cidrs"]
        per_address = sum(c.endswith("/32") for c in cidrs)
        if o.get("finished", True) or quota is None or per_address < quota - 1 or per_address < len(cidrs):
            continue
        lines.append(
            f"At N = {o['nodes']} the run ended with {per_address} per-address deny rules per direction and "
            "no whole-subnet rule in the network ACL: the per-address rules of the first switches past "
            "their fence deadline, written while other instances of the lost subnet were not yet fenced, "
            f"filled the quota ({quota} rules per direction, the ACL's own allow rule included); the "
            "whole-subnet rule then needs one more rule, "
            "which the quota refuses (the fence does not replace the per-address rules it would cover), and "
            "the per-address rules stay because their sources never finish terminating in a lost AZ. Every "
            "later network fence was unconfirmed and its switch parked again. Whether this happens depends "
            "on how many switches reach their fence deadline before every instance of the subnet is fenced."
        )
    return [*lines, ""] if lines else []


def p6_section(p6: dict[str, Any]) -> list[str]:
    cfg = p6["settings"]
    with_reconciler = bool(cfg.get("reconciler_in_run"))
    if with_reconciler:
        what = (
            "What it is: one AZ loses power or network. No `stopping` event and no status alarm come; a stop "
            "or termination of an instance there is accepted and never completes; each node's monitor metric "
            "stops and its alarm goes INSUFFICIENT_DATA 30 s later. The switcher's reconcile schedule runs "
            f"every {cfg['reconcile_interval_seconds']} s (from a random phase) in the same pool as the "
            f"events, each run with the function's {cfg['function_timeout_seconds']} s timeout as its "
            "remaining time (past it an invocation makes no further AWS call and counts as an error). The "
            "reconciler reads the alarms on the modeled clock, raises each silent node's alarm once the "
            f"silence has lasted `silent_after_seconds` = {cfg['silent_after_seconds']} s, and resumes "
            "what the events left; each raised alarm's event drives the real switcher on moto, whose fence "
            f"waits `fence_timeout_seconds` = {cfg['fence_timeout_seconds']} s for the stop"
            + (
                " (in the invocation for `fence_inline_wait_seconds` = "
                f"{cfg['fence_inline_wait_seconds']} s, then parked until the deadline, resumed by a "
                "reconcile run)"
                if cfg.get("fence_inline_wait_seconds")
                else " (holding its invocation)"
            )
            + ", then fences by "
            f"network ACL. {cfg['capacity_refusal_rate']:.0%} of RunInstances into one surviving AZ are "
            "refused for capacity. The run ends when every silent node is ACTIVE on a live replacement "
            f"outside the lost AZ (audited), or at {cfg['horizon_seconds']:g} s. "
            f"Clock scale {p6['az_losses'][0]['time_scale']} (real compute counts 1/scale)."
        )
    else:
        what = (
            "What it is: one AZ loses power or network. No `stopping` event and no status alarm come; a stop "
            "or termination of an instance there is accepted and never completes; each node's monitor metric "
            "stops. The reconciler raises each silent node's alarm once the silence has lasted "
            f"`silent_after_seconds` = {cfg['silent_after_seconds']} s (plus 30 s to INSUFFICIENT_DATA and a "
            f"uniformly drawn phase of the {cfg['reconcile_interval_seconds']} s schedule); each alarm event "
            "drives the real switcher on moto, whose fence waits `fence_timeout_seconds` = "
            f"{cfg['fence_timeout_seconds']} s for the stop, then fences by network ACL. "
            f"{cfg['capacity_refusal_rate']:.0%} of RunInstances into one surviving AZ are refused for "
            f"capacity. Clock scale {p6['az_losses'][0]['time_scale']} (real compute counts 1/scale)."
        )
    by_column = " (by events / by the reconciler)" if with_reconciler else ""
    lines = [
        "## P6 — AZ loss (no event, stops never complete, the AZ's nodes silent)",
        "",
        _run_line(p6),
        "",
        what,
        "",
        f"| nodes | silent (lost AZ) | switched{by_column} | double | lost | fence held | "
        "swr NACL rules (both directions) | capacity refusals | Lambda async retries | first done | "
        "all recovered | RunInstances bucket bound, last |",
        "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for o in [*p6["az_losses"], p6["single_silent_node"]]:
        a, b = o["audit"], o["bound"]
        fences = ", ".join(f"{k} {v}" for k, v in sorted(o["fence_kinds"].items()))
        cidrs = o["nacl_rule_cidrs"]
        per_address = sum(c.endswith("/32") for c in cidrs)
        rules = (
            f"{o['nacl_rules_in_place']} ({len(cidrs) - per_address} subnet-wide, "
            f"{per_address} per-address CIDRs)"
        )
        silent = f"{o['silent_nodes']}" + ("" if o["lost_az"] else " (one node, AZ healthy)")
        switched = f"{a['switched']}"
        if with_reconciler:
            switched += f" ({o['closed_by']['event']} / {o['closed_by']['reconciler']})"
        lines.append(
            f"| {o['nodes']} | {silent} | {switched} | {a['double_replacements']} | {a['lost_nodes']} | "
            f"{fences} | {rules} | {o['capacity_refusals']} | {o['lambda_async_retries']} | "
            f"{_s(o['first_switch_done_s'])} s | {_p6_recovered(o)} | "
            f"{_s(b.get('bound_max_s'))} s |"
        )
    o = p6["az_losses"][-1]
    if with_reconciler:
        times = (
            "Times are modeled seconds since the loss, to each switch's `done`; *all recovered* is the last "
            "silent node's `done` once every one is recovered. The detection floor is "
            f"{o['detection_s']} s (silence + bound) plus the wait for the next reconcile run; the fence "
            "adds `fence_timeout_seconds` for a lost AZ; the bucket bound column is P3's (token bucket "
            f"admission + each switch's own tail after its launch). Pool = {o['concurrency']} invocations "
            "(the stacks reserve no concurrency; 10 is the smallest unreserved pool a new account may have), "
            "shared by the events and the reconcile runs. The single silent node's switch time is its RTO "
            "up to `done` (its replacement then still boots; P1 models that)."
        )
    else:
        times = (
            "Times are modeled seconds since the loss, to each switch's `done`. The detection floor is "
            f"{o['detection_s']} s (silence + bound) and the fence adds `fence_timeout_seconds` for a lost "
            "AZ; the bucket bound column is P3's (token bucket admission + each switch's own tail after its "
            f"launch). Pool = {o['concurrency']} invocations (the stacks reserve no concurrency; 10 is the "
            "smallest unreserved pool a new account may have): switches beyond it queue, each holding an "
            "invocation for its fence deadline — with a larger pool the waves overlap. The single silent "
            "node's switch time is its RTO up to `done` (its replacement then still boots; P1 models that)."
        )
    lines += [
        "",
        times,
        "",
        *(_p6_reconciler_lines(p6) if with_reconciler else _p6_legacy_unswitched(p6)),
        *(_p6_quota_deadlock(p6) if with_reconciler else []),
        (
            f"The network ACL rule quota is enforced ({cfg['nacl_rules_per_direction']} rules per direction, "
            "as a new account has; swr_local.gaps.nacl_rule_quota in moto's process): a network fence that "
            "needs a rule past it is reported unconfirmed (nothing launched) and retried until the "
            "whole-subnet rule covers its source."
            if "nacl_rules_per_direction" in cfg
            else "Known gap of this run: moto server runs in its own process here, so the network ACL rules "
            "quota (20 per direction by default) is not enforced. Switches that were fenced before every "
            "instance of the lost subnet carried the blackhole group added per-address rules (the swr NACL "
            "rules column): on AWS the rules beyond the quota would be refused, those fences reported "
            "unconfirmed and retried until the whole-subnet rule covers them, so the N = 200 recovery time "
            "is optimistic in that respect."
        ),
        "",
    ]
    return lines


def p4_section(p4: dict[str, Any]) -> list[str]:
    imp, mem, synth, tests = p4["cold_start_import"], p4["switch_memory"], p4["synth"], p4["tests"]
    top = ", ".join(f"{name} {ms:.0f} ms" for name, ms in imp["top_imports_ms_last_sample"].items())
    lines = [
        "## P4 — cost of running it",
        "",
        _run_line(p4),
        "",
        "| figure | value | how |",
        "|---|---:|---|",
        f"| handler import (cold-start init) | {imp['import_ms_median']:.0f} ms | {imp['measured']}; "
        f"median of {imp['samples']}; costliest: {top} |",
        f"| interpreter RSS after importing the handler | {imp['max_rss_after_import_mib']} MiB | "
        "getrusage in the import probe (what the function's memory setting must hold before a switch) |",
        f"| peak Python heap of one switch | {mem['tracemalloc_peak_mib']} MiB | {mem['measured']} |",
        f"| benchmark process max RSS | {mem['process_max_rss_mib']} MiB | getrusage |",
        f"| `python app.py` (default config) | {_s(synth.get('synth_s'))} s | {synth['measured']}, exit "
        f"{synth.get('exit_code')} |",
        f"| tests collected | {tests.get('tests_collected')} | pytest --co -q ({tests['collect_s']} s) |",
        f"| full test suite | {_s(tests.get('full_run_s'))} s | {tests.get('full_run_source')}; "
        f"{tests.get('full_run_summary', '')} |",
        "",
    ]
    return lines


def p5_section(p5: dict[str, Any]) -> list[str]:
    v = p5["verdict"]
    lines = [
        "## P5 — time to convergence after a lost event (modeled seconds)",
        "",
        _run_line(p5),
        "",
        "The switcher's code in-process against moto, under the Lambda runtime model of the convergence "
        "tests (`tests/helpers/lambda_runtime.py`): Lambda retries a failed asynchronous event "
        f"{' s and '.join(str(d) for d in p5['lambda_retry_delays_s'])} s after the previous attempt ended, "
        "then drops it; a killed invocation runs no handler and keeps its lease; the reconciler runs every "
        f"{p5['reconcile_interval_s']} s (`SWR_RECONCILE_INTERVAL_SECONDS`), the lease is "
        f"{p5['lease_s']} s (`SWR_LEASE_SECONDS`). AWS calls take no modeled time: the figure is the "
        "detection and retry schedule, not EC2's boot (P1). The failure happens at a uniformly random "
        "moment of the reconcile schedule; a kill comes at a random AWS call after the claim, after a "
        "uniformly random 1-899 s or at the 900 s timeout (even odds). Measured: from the failure to the "
        "node ACTIVE on a running replacement. A kill after 1-899 s is resumed by Lambda's retry 60 s "
        "later; a kill at the 900 s timeout is retried only at 960 s, after its lease (930 s) expired, so "
        "the reconciler resumes it first (930-990 s): half the kills, hence the medians near 950 s.",
        "",
        "| case | runs | converged after: median [90 % CI] | max | after the last kill: median / max |",
        "|---|---:|---:|---:|---:|",
    ]
    for entry in p5["cases"].values():
        kill = entry.get("after_last_kill_s")
        after = f"{kill['value']:.0f} s / {entry['after_last_kill_max_s']:.0f} s" if kill else "—"
        lines.append(
            f"| {entry['title']} | {entry['runs']} | {_interval(entry['converged_after_s'], digits=0)} | "
            f"{entry['converged_after_max_s']:.0f} s | {after} |"
        )
    lines += [
        "",
        f"Bound: every attempt killed, the node converges within lease + one reconcile interval "
        f"({v['bound_after_last_kill_s']} s) of the last kill — worst "
        f"{_s(v['worst_after_last_kill_s'], 0)} s: {_met(v['bound_met'])}.",
        "",
    ]
    return lines


def model_section(p1: dict[str, Any]) -> list[str]:
    lines = [
        "## The latency model",
        "",
        "`bench/latency_model.json`. A range is drawn uniformly per run. Kind: *sourced* (the value comes "
        "from the sources), *assumption*, or *mixed* (a source plus an assumption, counted as an "
        "assumption). Health checks and the deregistration delay are not in the model: they are read from "
        "the synthesized template (above).",
        "",
        "| figure | value | kind | sources (date) | assumed |",
        "|---|---|---|---|---|",
    ]
    for figure in p1["model"]:
        value = (
            f"{figure['low']:g}"
            if figure["low"] == figure["high"]
            else f"{figure['low']:g}-{figure['high']:g}"
        )
        sources = "<br>".join(
            f"[{src['title']}]({src['url']}) ({src['date']}): {src['says']}" for src in figure["sources"]
        )
        lines.append(
            f"| {figure['figure']} | {value} {figure['unit']} | {figure['kind']} | {sources or '—'} | "
            f"{figure['assumed'] or '—'} |"
        )
    return [*lines, ""]


def render() -> str:
    """The whole RESULTS.md text, from whatever results exist."""
    lines = [
        "# swr benchmark results",
        "",
        "Generated by `make bench` (`python -m bench.run_all`) from `bench/results/*.json`; do not edit by "
        "hand. No AWS account is involved: the switcher's code runs against moto server, and AWS's "
        "timing is the documented latency model below. Each section says what was measured and what was "
        "modeled.",
        "",
        "Machine load: the modeled figures count the switcher's real compute (switcher code + moto + HTTP on "
        "127.0.0.1) one-to-one in P1 and five-fold in P3 (its shared clock runs at scale 0.2); P2's wall "
        "times are that compute. A busy machine therefore raises P1 slightly (fractions of a second per "
        "switch, against RTOs of minutes), P2 and P3 more. The figures below were taken while other jobs "
        "shared the 2 cores (load averages in each run line); on an idle machine P2 and P3 come out lower.",
        "",
    ]
    sections = (
        ("p1_recovery", p1_section),
        ("p2_overhead", p2_section),
        ("p3_mass_stop", p3_section),
        ("p4_cost", p4_section),
        ("p5_convergence", p5_section),
        ("p6_az_loss", p6_section),
    )
    for name, section in sections:
        result = read_result(name)
        if result is None:
            lines += [f"## {name}", "", f"Not run yet: `python -m bench.{name}`.", ""]
        else:
            lines += section(result)
    p1 = read_result("p1_recovery")
    if p1 is not None:
        lines += model_section(p1)
    return "\n".join(lines)


README = REPO_ROOT / "README.md"
README_BEGIN = "<!-- bench:begin — generated by `python -m bench.report` from bench/results; do not edit -->"
README_END = "<!-- bench:end -->"


def _peer_cell(row: dict[str, Any], key: str) -> str:
    if not row["recovers"]:
        return f"{key}: no recovery"
    median = row["rto_median"]
    text = f"{key} {_interval(median)}"
    return text if key == "swr" else f"{text} ({row['ratio_to_swr']['value']:.2f}x)"


#: Targets of swr with pre-registered targets (app fault behind an NLB): median RTO, and its ratio to the
#: Auto Scaling peer and to the vendor order on the same model.
PREREGISTERED_TARGET_S = 45.0
PREREGISTERED_TARGET_RATIO = 0.3


def _preregistered_target_row(p1: dict[str, Any]) -> list[str]:
    """The README row of the pre-registered targets' goals (app fault, NLB), once the variant is measured."""
    rows = p1["peers"]["app_fault"]["nlb"]
    pre = rows.get("swr_preregistered")
    if pre is None or not _preregistered_measured(p1) or not pre["recovers"]:
        return []
    median = pre["rto_median"]["value"]
    ratios = {
        key: median / rows[key]["rto_median"]["value"]
        for key in ("asg", "vendor")
        if rows.get(key, {}).get("recovers")
    }
    cells = "; ".join(
        f"{v:.2f}x {'Auto Scaling group' if k == 'asg' else 'vendor order'}" for k, v in ratios.items()
    )
    verdicts = ", ".join(
        [_met(median <= PREREGISTERED_TARGET_S)]
        + [_met(v <= PREREGISTERED_TARGET_RATIO) for v in ratios.values()]
    )
    ranges = {figure["figure"]: (float(figure["low"]), float(figure["high"])) for figure in p1["model"]}
    floor = sum(fresh_launch_floor(ranges.__getitem__).values())
    return [
        f"| P1 swr with pre-registered targets (the default), app fault, NLB: median, ratio to each peer | "
        f"{median:.1f} s; {cells} (floor of any recovery that launches an instance, same model: "
        f"{floor:.1f} s; see RESULTS.md) | ≤ {PREREGISTERED_TARGET_S:g} s, "
        f"≤ {PREREGISTERED_TARGET_RATIO:g}x each: {verdicts} |"
    ]


def _p6_readme_rows(p6: dict[str, Any] | None) -> list[str]:
    """The README rows of the AZ loss, once it is measured with the reconciler in the run."""
    if p6 is None or not p6["settings"].get("reconciler_in_run"):
        return []
    rows = []
    for o in p6["az_losses"]:
        a, by = o["audit"], o["closed_by"]
        ok = o["finished"] and a["double_replacements"] == 0 and a["lost_nodes"] == 0
        rows.append(
            f"| P6 AZ loss (the AZ's nodes silent, stops never complete; modeled), {o['nodes']} nodes, "
            f"`{p6['run']['command']}` | {a['switched']}/{o['silent_nodes']} switched "
            f"({by['event']} by their alarm events, {by['reconciler']} by the reconciler), "
            f"{a['double_replacements']} double, "
            f"{a['lost_nodes']} lost; all recovered: {_p6_recovered(o)} | every node recovered, 0 double, "
            f"0 lost: {_met(ok)} |"
        )
    return rows


def readme_summary() -> list[str]:
    """The README's benchmark block: the headline figures of the latest results, with their commands."""
    p1, p2, p3, p4 = (read_result(n) for n in ("p1_recovery", "p2_overhead", "p3_mass_stop", "p4_cost"))
    if p1 is None or p2 is None or p3 is None or p4 is None:
        return ["Not run yet: `make bench`."]
    v1, v2 = p1["verdict"], p2["verdict"]
    lines = [
        "| figure | latest result | target |",
        "|---|---|---|",
    ]
    short = {
        "swr": "swr",
        "vendor": "vendor order",
        "asg": "Auto Scaling group",
        "ec2_recovery": "EC2 auto recovery",
        "swr_preregistered": "swr pre-registered" if _preregistered_measured(p1) else PENDING_SHORT,
    }
    for case, per_lb in p1["peers"].items():
        rows = per_lb["nlb"]
        cells = "; ".join(_peer_cell(row, short.get(key, key)) for key, row in rows.items())
        target = (
            f"≤ {v1['target_rto_s']:g} s and ≤ {v1['target_ratio']:g}x vendor: "
            f"{_met(v1['rto_target_met'])}, {_met(v1['ratio_target_met'])}"
            if case == "app_fault"
            else "—"
        )
        lines.append(
            f"| P1 RTO, {p1['cases'][case]['title']}, NLB (modeled; median [90 % CI], ratio to swr) | "
            f"{cells} | {target} |"
        )
    lines.extend(_preregistered_target_row(p1))
    swr2 = p2["orders"]["swr"]
    lines.append(
        f"| P2 sequential AWS calls to traffic moved; switcher wall time excl. modeled waits | "
        f"{swr2['critical_path_calls_without_repolls_median']:g} calls; "
        f"{swr2['wall_s_excluding_modeled_waits_median']:.2f} s | ≤ {v2['target_calls']} calls: "
        f"{_met(v2['calls_target_met'])}; ≤ {v2['target_wall_s']:g} s: {_met(v2['wall_target_met'])} |"
    )
    for o in p3["mass_stops"]:
        a, b = o["audit"], o["bound"]
        target = p3["target_ratio_max"]
        lines.append(
            f"| P3 mass stop (every node of one AZ stops; not an AZ loss), {o['nodes']} nodes | "
            f"{a['switched']}/{a['failed_nodes']} switched, {a['double_replacements']} double, "
            f"{a['lost_nodes']} lost; last done {_s(b['completion_max_s'])} s vs token-bucket bound "
            f"{_s(b['bound_max_s'])} s ({b['ratio_max']:.2f}x) | 0 double, 0 lost; ≤ {target:g}x: "
            f"{_met(b['ratio_max'] <= target)} |"
        )
    p5 = read_result("p5_convergence")
    if p5 is not None:
        cells = "; ".join(
            f"{case.replace('_', ' ')} {_interval(e['converged_after_s'], digits=0)} (max "
            f"{e['converged_after_max_s']:.0f} s)"
            for case, e in p5["cases"].items()
        )
        v5 = p5["verdict"]
        lines.append(
            "| P5 time to convergence after a lost event (modeled; median [90 % CI]), "
            f"`{p5['run']['command']}` | "
            f"{cells} | ≤ lease + one interval ({v5['bound_after_last_kill_s']} s) after the last kill: "
            f"{_met(v5['bound_met'])} |"
        )
    lines.extend(_p6_readme_rows(read_result("p6_az_loss")))
    imp, mem, synth = p4["cold_start_import"], p4["switch_memory"], p4["synth"]
    chart = chart_path("app_fault", "nlb")
    lines += [
        f"| P4 handler import; peak heap of a switch; `python app.py` | {imp['import_ms_median']:.0f} ms; "
        f"{mem['tracemalloc_peak_mib']} MiB; {_s(synth.get('synth_s'))} s | — |",
        "",
        f"Where the swr RTO goes (app fault, NLB): the largest piece is **{v1['dominant_piece']}** "
        f"({_s(v1['dominant_piece_s'])} s of {_s(v1['app_fault_nlb_swr_rto_s'])} s). The NLB's registration "
        "delay is 90-300 s in the model (published figures, cited in the model table); it hits every "
        "recovery that registers a new target, swr included. The switcher's own part is "
        f"{v1['switcher_only_ratio_swr_over_vendor']:.2f}x the vendor order's; behind an ALB the same "
        f"switches take {_s(v1['swr_rto_alb_s'])} s, and without any registration delay "
        f"{_s(v1['swr_rto_without_registration_delay_s'])} s. Commands: "
        + ", ".join(f"`{r['run']['command']}` ({r['run']['finished_at']})" for r in (p1, p2, p3, p4))
        + ". Every figure, the ALB rows, what was measured and what was modeled: "
        "[bench/RESULTS.md](bench/RESULTS.md).",
        "",
        f"![Phases of a switch, vendor vs swr order]({chart.relative_to(REPO_ROOT)})",
    ]
    return lines


def update_readme(readme: Path = README) -> bool:
    """Replace the README's generated benchmark block; False if the README has no markers."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    block = "\n".join([README_BEGIN, *readme_summary(), README_END])
    readme.write_text(head + block + tail, encoding="utf-8")
    return True


def main() -> Path:
    RESULTS_MD.write_text(render(), encoding="utf-8")
    p1 = read_result("p1_recovery")
    if p1 is not None and "peers" in p1:
        print("\n".join(peers_table(p1)))
    print(f"report written to {RESULTS_MD.relative_to(REPO_ROOT)}")
    if update_readme():
        print(f"benchmark figures updated in {README.relative_to(REPO_ROOT)}")
    return RESULTS_MD


if __name__ == "__main__":
    main()
