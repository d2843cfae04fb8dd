"""Where benchmark results go and what each results file records about its run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def run_metadata(command: str) -> dict[str, Any]:
    """What produced a result: the command, when, on what (commit, Python, cores)."""
    return {
        "command": command,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        # Other jobs on the machine slow the real compute that P1 counts one-to-one and P3 five-fold.
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path


def read_result(name: str) -> dict[str, Any] | None:
    """The last result of a benchmark, or None if it never ran here."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def python_cmd() -> list[str]:
    """The interpreter running the benchmarks (the project's virtualenv under `make bench`)."""
    return [sys.executable]
