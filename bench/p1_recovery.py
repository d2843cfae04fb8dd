"""P1 - recovery time per failure case: swr and its peers, same latency model, same failures, same run.

Modeled RTO = fault -> detection -> EventBridge -> cold start -> the real switcher on moto (modeled
AWS latencies) -> replacement booted and healthy in the target group (NLB and ALB modeled apart).
The peers (vendor order, Auto Scaling group, EC2 automatic recovery, and swr with pre-registered
targets, the real switcher too) replay the same failures (bench/peers.py). Medians carry a 90 %
bootstrap interval.
Run alone: `.venv/bin/python -m bench.p1_recovery [--runs 21]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from typing import Any

from bench import levers
from bench.deployment_config import DeployedConfig, load_deployed
from bench.harness import deployment
from bench.latency_model import LatencyModel
from bench.peers import PEERS, REFERENCE, PeerInput
from bench.results_io import REPO_ROOT, run_metadata, write_result
from bench.rto_model import CASE_TITLES, CASES, healthy_time
from bench.single_switch import LB_TYPES, PREREGISTERED_VARIANTS, SwitchRun, SwitchRunner
from bench.stats import median_interval, ratio_interval

ORDERS = ("vendor", "swr")
#: Every switcher variant P1 runs on moto (the pre-registered one appears in the peer table).
VARIANTS = (*ORDERS, "swr_preregistered")
DEFAULT_RUNS = 21
BASE_SEED = 20_000
TARGET_RATIO = 0.5
TARGET_APP_FAULT_NLB_S = 75.0

REGISTRATION_PIECE = "target registered -> first health check (load balancer registration delay)"

#: Segments after the switcher, per load balancer (label, start key, end key of `readiness`).
READINESS_SEGMENTS = (
    ("replacement boot + app start", "launched_at", "app_up_at"),
    ("{lb} registration delay", "registered_at", "health_checks_start_at"),
    ("{lb} health checks until healthy", "health_checks_start_at", "healthy_at"),
)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    interval = median_interval(values)
    return {
        "median": statistics.median(ordered),
        "median_ci90_low": interval.low,
        "median_ci90_high": interval.high,
        "min": ordered[0],
        "max": ordered[-1],
        "p90": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
    }


def _segments(run: SwitchRun, lb: str) -> list[tuple[str, float, float]]:
    """Every phase of one run for one lb type: detection, switcher phases, then readiness."""
    ready = dict(run.readiness[lb])
    ready["launched_at"] = max(c["end"] for c in run.calls if c["operation"] == "ec2.RunInstances")
    ready["registered_at"] = max(c["end"] for c in run.calls if c["operation"] == "elbv2.RegisterTargets")
    extra = [
        (label.format(lb=lb.upper()), ready[start], ready[end]) for label, start, end in READINESS_SEGMENTS
    ]
    return [*run.phases, *extra]


def _critical_path(run: SwitchRun, lb: str) -> dict[str, float]:
    """The RTO cut into consecutive pieces that add up to it (what dominates?)."""
    detected = run.phases[0][2]
    switcher_start = run.phases[1][2]
    registered = max(c["end"] for c in run.calls if c["operation"] == "elbv2.RegisterTargets")
    launch_call_start = max(c["start"] for c in run.calls if c["operation"] == "ec2.RunInstances")
    checks_start = run.readiness[lb]["health_checks_start_at"]
    return {
        "fault -> detected": detected,
        "detected -> switcher starts (EventBridge + cold start)": switcher_start - detected,
        "switcher start -> RunInstances sent": launch_call_start - switcher_start,
        "RunInstances sent -> target registered": registered - launch_call_start,
        REGISTRATION_PIECE: checks_start - registered,
        "health checks start -> healthy (waits for the app if it is not up yet)": run.rto[lb] - checks_start,
    }


def without_registration_delay(run: SwitchRun, lb: str, deployed: DeployedConfig) -> float:
    """Counterfactual RTO of the same run had health checks started at registration (no LB
    registration delay): how much of the RTO the registration delay alone accounts for."""
    ready = run.readiness[lb]
    registered = max(c["end"] for c in run.calls if c["operation"] == "elbv2.RegisterTargets")
    return healthy_time(
        checks_start=registered,
        app_up=ready["app_up_at"],
        interval=float(deployed.health(lb).interval_seconds),
        threshold=deployed.health(lb).healthy_threshold,
    )


def aggregate(runs: list[SwitchRun], deployed: DeployedConfig) -> dict[str, Any]:
    """Medians per case/order/lb, ratios swr/vendor, per-phase medians, Gantt bars, critical path."""
    grouped: dict[tuple[str, str], list[SwitchRun]] = defaultdict(list)
    for run in runs:
        grouped[(run.case, run.order)].append(run)
    cases: dict[str, Any] = {}
    for case in CASES:
        entry: dict[str, Any] = {"title": CASE_TITLES[case], "orders": {}, "ratio_swr_over_vendor": {}}
        for order in ORDERS:
            group = grouped[(case, order)]
            per_lb = {lb: _summary([r.rto[lb] for r in group]) for lb in LB_TYPES}
            phase_durations: dict[str, list[float]] = defaultdict(list)
            bars: dict[str, dict[str, list[float]]] = {lb: defaultdict(list) for lb in LB_TYPES}
            for run in group:
                for label, start, end in run.phases:
                    phase_durations[label].append(end - start)
                for lb in LB_TYPES:
                    for label, start, end in _segments(run, lb):
                        bars[lb][label].append(start)
                        bars[lb][label + "\0end"].append(end)
            critical: dict[str, dict[str, float]] = {}
            for lb in LB_TYPES:
                pieces: dict[str, list[float]] = defaultdict(list)
                for run in group:
                    for key, value in _critical_path(run, lb).items():
                        pieces[key].append(value)
                critical[lb] = {key: statistics.median(values) for key, values in pieces.items()}
            entry["orders"][order] = {
                "runs": len(group),
                "rto_s": per_lb,
                "rto_without_registration_delay_s": {
                    lb: _summary([without_registration_delay(r, lb, deployed) for r in group])
                    for lb in LB_TYPES
                },
                "switcher_to_registered_s_median": statistics.median(
                    max(c["end"] for c in r.calls if c["operation"] == "elbv2.RegisterTargets")
                    - r.phases[1][2]
                    for r in group
                ),
                "phase_median_s": {label: statistics.median(v) for label, v in phase_durations.items()},
                "switcher_modeled_s_median": statistics.median(r.switcher_modeled_s for r in group),
                "critical_path_median_s": critical,
                "gantt_median": {
                    lb: [
                        {
                            "phase": label,
                            "start": statistics.median(values),
                            "end": statistics.median(bars[lb][label + "\0end"]),
                        }
                        for label, values in bars[lb].items()
                        if not label.endswith("\0end")
                    ]
                    for lb in LB_TYPES
                },
            }
        for lb in LB_TYPES:
            vendor = entry["orders"]["vendor"]["rto_s"][lb]["median"]
            swr = entry["orders"]["swr"]["rto_s"][lb]["median"]
            entry["ratio_swr_over_vendor"][lb] = swr / vendor
        cases[case] = entry
    return cases


def peer_table(runs: list[SwitchRun], model: LatencyModel, deployed: DeployedConfig) -> dict[str, Any]:
    """RTO of every peer per case and lb type: median with its 90 % bootstrap interval, and the
    ratio of medians to swr's with a paired bootstrap interval (run i of every peer shares seed i)."""
    by_seed: dict[tuple[str, int], dict[str, SwitchRun]] = defaultdict(dict)
    for run in runs:
        by_seed[(run.case, run.seed)][run.order] = run
    table: dict[str, Any] = {}
    for case in CASES:
        seeds = sorted(seed for c, seed in by_seed if c == case)
        table[case] = {}
        for lb in LB_TYPES:
            series: dict[str, list[float | None]] = {}
            reasons: dict[str, str] = {}
            for peer in PEERS:
                values: list[float | None] = []
                for seed in seeds:
                    outcome = peer.recover(
                        PeerInput(
                            case=case,
                            lb=lb,
                            seed=seed,
                            model=model,
                            health=deployed.health(lb),
                            runs=by_seed[(case, seed)],
                        )
                    )
                    values.append(outcome.rto)
                    if outcome.reason:
                        reasons[peer.key] = outcome.reason
                series[peer.key] = values
            reference = [float(v) for v in series[REFERENCE] if v is not None]
            rows: dict[str, Any] = {}
            for peer in PEERS:
                values = series[peer.key]
                row: dict[str, Any] = {"title": peer.title, "evidence": peer.evidence, "runs": len(values)}
                if any(v is None for v in values):
                    row["recovers"] = False
                    row["reason"] = reasons.get(peer.key, "no recovery")
                else:
                    numbers = [float(v) for v in values if v is not None]
                    row["recovers"] = True
                    row["rto_median"] = median_interval(numbers).as_dict()
                    row["rto_max"] = max(numbers)
                    row["ratio_to_swr"] = ratio_interval(numbers, reference).as_dict()
                rows[peer.key] = row
            table[case][lb] = rows
    return table


def verdict(cases: dict[str, Any]) -> dict[str, Any]:
    """The targets checked against the measured medians, and which piece of the RTO dominates."""
    app = cases["app_fault"]
    swr_rto = app["orders"]["swr"]["rto_s"]["nlb"]["median"]
    ratio = app["ratio_swr_over_vendor"]["nlb"]
    critical = app["orders"]["swr"]["critical_path_median_s"]["nlb"]
    dominant = max(critical, key=critical.get)
    switcher_ratio = (
        app["orders"]["swr"]["switcher_to_registered_s_median"]
        / app["orders"]["vendor"]["switcher_to_registered_s_median"]
    )
    return {
        "switcher_only_ratio_swr_over_vendor": switcher_ratio,
        "swr_rto_without_registration_delay_s": (
            app["orders"]["swr"]["rto_without_registration_delay_s"]["nlb"]["median"]
        ),
        "swr_rto_alb_s": app["orders"]["swr"]["rto_s"]["alb"]["median"],
        "app_fault_nlb_swr_rto_s": swr_rto,
        "target_rto_s": TARGET_APP_FAULT_NLB_S,
        "rto_target_met": swr_rto <= TARGET_APP_FAULT_NLB_S,
        "app_fault_nlb_ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "ratio_target_met": ratio <= TARGET_RATIO,
        "dominant_piece": dominant,
        "dominant_piece_s": critical[dominant],
        "critical_path_s": critical,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help=f"runs per case and order (default {DEFAULT_RUNS})"
    )
    args = parser.parse_args(argv)
    model, deployed = LatencyModel.load(), load_deployed()
    # One node per run; the same seed for every variant: identical detection draws, so runs differ by
    # variant only.
    planned = [
        (node_id, case, variant, BASE_SEED + index * 10 + CASES.index(case))
        for node_id, (index, case, variant) in enumerate(
            ((i, c, v) for i in range(args.runs) for c in CASES for v in VARIANTS), start=1
        )
    ]
    lever_seeds = [BASE_SEED + index * 10 + CASES.index(levers.CASE) for index in range(args.runs)]
    # The lever table runs the pre-registered product (levers.LEVER_VARIANT) on nodes of its own.
    lever_nodes = list(
        range(len(planned) + 1, len(planned) + levers.runs_needed(deployed, len(lever_seeds)) + 1)
    )
    node_ids = [node_id for node_id, *_ in planned] + lever_nodes
    standby = (
        *(node_id for node_id, _, variant, _ in planned if variant in PREREGISTERED_VARIANTS),
        *lever_nodes,
    )
    began = time.perf_counter()
    runs: list[SwitchRun] = []
    with deployment(node_ids, deployed.health("nlb"), standby_nodes=standby) as deployed_world:
        runner = SwitchRunner(deployed_world, model, deployed)
        for node_id, case, variant, seed in planned:
            runs.append(runner.run(node_id=node_id, case=case, order=variant, seed=seed))
        lever_table = levers.run_levers(
            runner, model=model, deployed=deployed, seeds=lever_seeds, next_node=iter(lever_nodes)
        )
    cases = aggregate(runs, deployed)
    payload = {
        "benchmark": "p1_recovery",
        "run": run_metadata(f"python -m bench.p1_recovery --runs {args.runs}"),
        "what": "modeled RTO from fault to replacement healthy in the target group (modeled seconds); "
        "the switcher is the real code against moto server, AWS latencies from bench/latency_model.json, "
        "health checks from the synthesized template; peers replay the same failures",
        "runs_per_case_and_order": args.runs,
        "wall_s": time.perf_counter() - began,
        "time_scale": model.time_scale,
        "deployed_config": deployed.as_dict(),
        "cases": cases,
        "peers": peer_table(runs, model, deployed),
        "peer_evidence": {peer.key: peer.evidence for peer in PEERS},
        "verdict": verdict(cases),
        "levers": lever_table,
        "model": model.sources_table(),
    }
    path = write_result("p1_recovery", payload)
    print(f"P1 written to {path.relative_to(REPO_ROOT)} ({payload['wall_s']:.0f} s)")
    for case, per_lb in payload["peers"].items():
        for lb, rows in per_lb.items():
            cells = []
            for key, row in rows.items():
                if row["recovers"]:
                    median, ratio = row["rto_median"]["value"], row["ratio_to_swr"]["value"]
                    cells.append(f"{key} {median:.0f} s ({ratio:.2f}x)")
                else:
                    cells.append(f"{key} -")
            print(f"  {case:14s} {lb}: " + ", ".join(cells))
    for row in lever_table["rows"]:
        rto, gain = row["rto_median"], row["gain_median_s"]
        print(
            f"  lever {row['key']:10s} RTO {rto['value']:.1f} s [{rto['low']:.1f}-{rto['high']:.1f}], "
            f"gain {gain['value']:.1f} s"
        )
    return payload


if __name__ == "__main__":
    main()
