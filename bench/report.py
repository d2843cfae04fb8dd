"""Generate bench/RESULTS.md from the results files (every figure is read from bench/results/*.json).

Run alone: `.venv/bin/python -m bench.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.gantt import chart_path
from bench.results_io import BENCH_DIR, REPO_ROOT, read_result

RESULTS_MD = BENCH_DIR / "RESULTS.md"


def _s(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _met(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _run_line(result: dict[str, Any]) -> str:
    run = result["run"]
    return f"`{run['command']}` — {run['finished_at']}, commit {run['git_commit']}, {run['machine']}"


def p1_section(p1: dict[str, Any]) -> list[str]:
    v = p1["verdict"]
    lines = [
        "## P1 — recovery time per failure case (modeled seconds)",
        "",
        _run_line(p1),
        "",
        f"Measured: the real switcher against moto server, {p1['runs_per_case_and_order']} runs per case and "
        "order (paired seeds), time scale "
        f"{p1['time_scale']}. Modeled: every AWS latency, detection, delivery, cold start, boot and load "
        "balancer (`bench/latency_model.json`). RTO = fault → replacement healthy in the target group.",
        "",
        "| case | LB | vendor median | swr median | swr p90 | swr / vendor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for entry in p1["cases"].values():
        for lb in ("nlb", "alb"):
            vendor = entry["orders"]["vendor"]["rto_s"][lb]
            swr = entry["orders"]["swr"]["rto_s"][lb]
            lines.append(
                f"| {entry['title']} | {lb.upper()} | {_s(vendor['median'])} s | {_s(swr['median'])} s | "
                f"{_s(swr['p90'])} s | {entry['ratio_swr_over_vendor'][lb]:.2f} |"
            )
    app = p1["cases"]["app_fault"]
    lines += [
        "",
        "Median duration of each phase, app fault:",
        "",
        "| phase | vendor | swr |",
        "|---|---:|---:|",
    ]
    vendor_phases = app["orders"]["vendor"]["phase_median_s"]
    swr_phases = app["orders"]["swr"]["phase_median_s"]
    for label in dict.fromkeys([*vendor_phases, *swr_phases]):
        lines.append(f"| {label} | {_s(vendor_phases.get(label))} s | {_s(swr_phases.get(label))} s |")
    lines += [
        "",
        f"Targets (app fault, NLB): swr RTO ≤ {v['target_rto_s']:.0f} s — "
        f"{_s(v['app_fault_nlb_swr_rto_s'])} s, "
        f"{_met(v['rto_target_met'])}; swr/vendor ≤ {v['target_ratio']} — {v['app_fault_nlb_ratio']:.2f}, "
        f"{_met(v['ratio_target_met'])}.",
        "",
        "Where the swr RTO goes (app fault, NLB, medians; the pieces add up to the RTO):",
        "",
        "| piece | modeled s |",
        "|---|---:|",
    ]
    for piece, seconds in v["critical_path_s"].items():
        lines.append(f"| {piece} | {_s(seconds)} |")
    lines += [
        "",
        f"Dominant piece: **{v['dominant_piece']}** ({_s(v['dominant_piece_s'])} s). The switcher's own part "
        f"(switcher start → target registered) is {v['switcher_only_ratio_swr_over_vendor']:.2f}x the vendor "
        "order's; the whole-RTO ratio stays higher because detection, the boot and the health checks are "
        "the same for both orders. The swr order registers the replacement's IP target right after "
        "RunInstances, so the load balancer's registration delay (for an NLB an assumption: AWS documents "
        "only that it 'can take a few minutes') runs during the boot; the vendor order registers once the "
        "instance runs. Without any registration delay the same runs would end at a median of "
        f"{_s(v['swr_rto_without_registration_delay_s'])} s; the same switches behind an ALB measure "
        f"{_s(v['swr_rto_alb_s'])} s.",
        "",
    ]
    chart = chart_path("app_fault", "nlb")
    if chart.exists():
        lines += [f"![Phases, vendor vs swr order]({chart.relative_to(BENCH_DIR).as_posix()})", ""]
    return lines


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
        "## P3 — whole-AZ outage",
        "",
        _run_line(p3),
        "",
        "Measured: the real switcher in concurrent invocations on moto, 2 events per failed node (EC2 "
        "`stopping` + status alarm), a scaled RunInstances token bucket answering `RequestLimitExceeded`, "
        "then an audit of moto and the state table. Modeled: latencies, one shared clock at scale "
        f"{p3['outages'][0]['time_scale']} (real compute counts 1/scale).",
        "",
        "| nodes | failed | switched | double replacements | lost nodes | invocations | RunInstances "
        "throttled (retried) | Lambda async retries | completion | token-bucket bound | ratio | "
        "concurrency bound |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in p3["outages"]:
        a, b = o["audit"], o["bound"]
        lines.append(
            f"| {o['nodes']} | {a['failed_nodes']} | {a['switched']} | {a['double_replacements']} | "
            f"{a['lost_nodes']} | {o['invocations']} | {o['run_instances_throttled']} | "
            f"{o['lambda_async_retries']} | {_s(o['completion_modeled_s'])} s | "
            f"{_s(b['token_bucket_bound_s'])} s | {b['ratio_to_token_bucket_bound']:.2f} | "
            f"{_s(b['concurrency_bound_s'])} s |"
        )
    o = p3["outages"][-1]
    lines += [
        "",
        f"Pool = reserved concurrency {o['concurrency']} (cdk.json); token bucket "
        f"{o['token_bucket']['burst']:g} burst / {o['token_bucket']['refill_per_second']:g} per s "
        "(AWS: 1,000 / 2). "
        "Token-bucket bound = max(first RunInstances, time the bucket needs to admit every launch) + median "
        "time from launch to done; target ratio ≤ "
        f"{p3['target_ratio_to_token_bucket_bound']}.",
        "",
    ]
    for o in p3["outages"]:
        b = o["bound"]
        throttled, gave_up = (
            b["run_instances_calls_throttled_at_least_once"],
            b["run_instances_calls_failed_after_retries"],
        )
        failed_nodes = o["audit"]["failed_nodes"]
        lines.append(
            f"- N = {o['nodes']}: {throttled} of {failed_nodes} RunInstances calls were throttled at least "
            f"once and retried by botocore ({o['run_instances_throttled']} refused attempts, {gave_up} gave "
            f"up); the bucket could admit the last launch at {_s(b['token_drain_s'])} s, the last one went "
            f"through at {_s(b['last_run_instances_admitted_s'])} s."
        )
    lines.append("")
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


def model_section(p1: dict[str, Any]) -> list[str]:
    lines = [
        "## The latency model",
        "",
        "`bench/latency_model.json` (health-check figures from the default config in cdk.json). A range is "
        "drawn uniformly per run.",
        "",
        "| figure | value | source |",
        "|---|---|---|",
    ]
    for figure in p1["model"]:
        value = (
            f"{figure['low']:g}"
            if figure["low"] == figure["high"]
            else f"{figure['low']:g}-{figure['high']:g}"
        )
        lines.append(f"| {figure['figure']} | {value} {figure['unit']} | {figure['source']} |")
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
    ]
    sections = (
        ("p1_recovery", p1_section),
        ("p2_overhead", p2_section),
        ("p3_az_outage", p3_section),
        ("p4_cost", p4_section),
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


def readme_summary() -> list[str]:
    """The README's benchmark paragraph: the headline figures of the latest results, with their commands."""
    p1, p2, p3, p4 = (read_result(n) for n in ("p1_recovery", "p2_overhead", "p3_az_outage", "p4_cost"))
    if p1 is None or p2 is None or p3 is None or p4 is None:
        return ["Not run yet: `make bench`."]
    v1, v2 = p1["verdict"], p2["verdict"]
    lines = [
        "| figure | latest result | target |",
        "|---|---|---|",
    ]
    for entry in p1["cases"].values():
        orders = entry["orders"]
        swr, vendor = orders["swr"]["rto_s"]["nlb"]["median"], orders["vendor"]["rto_s"]["nlb"]["median"]
        lines.append(
            f"| P1 RTO, {entry['title']}, NLB (modeled, median) | swr {_s(swr)} s, vendor {_s(vendor)} s "
            f"({entry['ratio_swr_over_vendor']['nlb']:.2f}x) | "
            + (
                f"≤ {v1['target_rto_s']:g} s and ≤ {v1['target_ratio']:g}x vendor: "
                f"{_met(v1['rto_target_met'])}, {_met(v1['ratio_target_met'])} |"
                if entry is p1["cases"]["app_fault"]
                else "— |"
            )
        )
    swr2 = p2["orders"]["swr"]
    lines.append(
        f"| P2 sequential AWS calls to traffic moved; switcher wall time excl. modeled waits | "
        f"{swr2['critical_path_calls_without_repolls_median']:g} calls; "
        f"{swr2['wall_s_excluding_modeled_waits_median']:.2f} s | ≤ {v2['target_calls']} calls: "
        f"{_met(v2['calls_target_met'])}; ≤ {v2['target_wall_s']:g} s: {_met(v2['wall_target_met'])} |"
    )
    for o in p3["outages"]:
        a, b = o["audit"], o["bound"]
        ratio = b["ratio_to_token_bucket_bound"]
        target = p3["target_ratio_to_token_bucket_bound"]
        lines.append(
            f"| P3 whole-AZ outage, {o['nodes']} nodes | {a['switched']}/{a['failed_nodes']} switched, "
            f"{a['double_replacements']} double, {a['lost_nodes']} lost; "
            f"{_s(o['completion_modeled_s'])} s vs "
            f"token-bucket bound {_s(b['token_bucket_bound_s'])} s ({ratio:.2f}x) | 0 double, 0 lost; "
            f"≤ {target:g}x: {_met(ratio <= target)} |"
        )
    imp, mem, synth = p4["cold_start_import"], p4["switch_memory"], p4["synth"]
    chart = chart_path("app_fault", "nlb")
    lines += [
        f"| P4 handler import; peak heap of a switch; `python app.py` | {imp['import_ms_median']:.0f} ms; "
        f"{mem['tracemalloc_peak_mib']} MiB; {_s(synth.get('synth_s'))} s | — |",
        "",
        f"Where the swr RTO goes (app fault, NLB): the largest piece is **{v1['dominant_piece']}** "
        f"({_s(v1['dominant_piece_s'])} s), the same for both orders. The switcher's own part is "
        f"{v1['switcher_only_ratio_swr_over_vendor']:.2f}x the vendor order's; the same switches behind an "
        f"ALB take {_s(v1['swr_rto_alb_s'])} s, and without the NLB's registration delay (an assumption: "
        f"AWS documents only 'a few minutes') {_s(v1['swr_rto_without_registration_delay_s'])} s. Commands: "
        + ", ".join(f"`{r['run']['command']}` ({r['run']['finished_at']})" for r in (p1, p2, p3, p4))
        + ". Every figure, what was measured and what was modeled: [bench/RESULTS.md](bench/RESULTS.md).",
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
    print(f"report written to {RESULTS_MD.relative_to(REPO_ROOT)}")
    if update_readme():
        print(f"benchmark figures updated in {README.relative_to(REPO_ROOT)}")
    return RESULTS_MD


if __name__ == "__main__":
    main()
