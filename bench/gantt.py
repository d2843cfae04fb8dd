"""PNG Gantt chart of the recovery phases, vendor order vs swr order (from bench/results/p1_recovery.json).

Run alone: `.venv/bin/python -m bench.gantt [--case app_fault] [--lb nlb]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt

from bench.results_io import REPO_ROOT, RESULTS_DIR, read_result

ORDERS = ("vendor", "swr")
ORDER_COLORS = {"vendor": "#c0504d", "swr": "#4f81bd"}
OUTSIDE_COLOR = "#9e9e9e"
#: Phases that happen outside the switcher (drawn grey: identical model for both orders).
OUTSIDE_PREFIXES = ("detection", "event delivery", "replacement boot", "NLB ", "ALB ")


def chart_path(case: str, lb: str) -> Path:
    return RESULTS_DIR / f"gantt_{case}_{lb}.png"


def draw(p1: dict[str, Any], case: str = "app_fault", lb: str = "nlb") -> Path:
    """Two stacked timelines (vendor above, swr below) of the median phase boundaries."""
    entry = p1["cases"][case]
    fig, axes = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    horizon = max(entry["orders"][order]["rto_s"][lb]["median"] for order in ORDERS)
    for axis, order in zip(axes, ORDERS, strict=True):
        bars = entry["orders"][order]["gantt_median"][lb]
        rto = entry["orders"][order]["rto_s"][lb]["median"]
        labels = [bar["phase"] for bar in bars]
        for row, bar in enumerate(bars):
            outside = bar["phase"].startswith(OUTSIDE_PREFIXES)
            width = max(bar["end"] - bar["start"], 0.15)  # keep sub-second phases visible
            axis.barh(row, width, left=bar["start"], color=OUTSIDE_COLOR if outside else ORDER_COLORS[order])
            axis.text(
                bar["start"] + width + 0.6, row, f"{bar['end'] - bar['start']:.1f} s", va="center", fontsize=7
            )
        axis.axvline(rto, color="black", linestyle="--", linewidth=1)
        axis.text(rto, len(labels) - 0.6, f" healthy: {rto:.0f} s", fontsize=8)
        axis.set_yticks(range(len(labels)), labels, fontsize=8)
        axis.invert_yaxis()
        axis.set_title(f"{order} order - median RTO {rto:.1f} s (modeled)", fontsize=10, loc="left")
        axis.grid(axis="x", alpha=0.3)
    axes[-1].set_xlim(0, horizon * 1.12)
    axes[-1].set_xlabel("modeled seconds since the fault")
    ratio = entry["ratio_swr_over_vendor"][lb]
    runs = entry["orders"]["swr"]["runs"]
    fig.suptitle(
        f"{entry['title']}, {lb.upper()}: swr/vendor = {ratio:.2f} "
        f"(median of {runs} runs each; grey = outside the switcher, same model for both)",
        fontsize=10,
    )
    fig.tight_layout()
    path = chart_path(case, lb)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="failure case(s); default: every case in P1")
    parser.add_argument("--lb", default="nlb", choices=("nlb", "alb"))
    args = parser.parse_args(argv)
    p1 = read_result("p1_recovery")
    if p1 is None:
        raise SystemExit("no bench/results/p1_recovery.json: run `python -m bench.p1_recovery` first")
    paths = [draw(p1, case, args.lb) for case in (args.case or list(p1["cases"]))]
    for path in paths:
        print(f"chart written to {path.relative_to(REPO_ROOT)}")
    return paths


if __name__ == "__main__":
    main()
