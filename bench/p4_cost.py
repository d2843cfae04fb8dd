"""P4 - cost of running swr: cold-start import time, peak memory of a switch, synth time, test time.

Run alone: `.venv/bin/python -m bench.p4_cost` (add `--full-tests` to time the whole test suite;
without it the suite is only collected and a previously recorded full-run time is quoted, if any).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results_io import REPO_ROOT, read_result, run_metadata, write_result

HANDLER_MODULE = "switcher.handler"
LAMBDA_SRC = REPO_ROOT / "lambda_src"
IMPORT_SAMPLES = 5
SYNTH_TIMEOUT_SECONDS = 300
TEST_TIMEOUT_SECONDS = 420

_IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(LAMBDA_SRC)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def parse_importtime(stderr: str, module: str) -> dict[str, Any]:
    """Cumulative import time of `module` and its 5 costliest direct imports, from `-X importtime`.

    The output lists a module's imports before the module itself, one indentation level deeper
    (2 spaces per level, 1 space at the top level).
    """
    cumulative_us: dict[str, int] = {}
    pending_children: list[tuple[str, int]] = []
    children: list[tuple[str, int]] = []
    for line in stderr.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if not match:
            continue
        cumulative, indent, name = int(match.group(2)), len(match.group(3)), match.group(4)
        cumulative_us[name] = cumulative
        if indent == 3:  # imported directly by the next top-level module in the listing
            pending_children.append((name, cumulative))
        elif indent <= 1:
            if name == module:
                children = pending_children
            pending_children = []
    if module not in cumulative_us:
        raise RuntimeError(f"{module} does not appear in the -X importtime output")
    children.sort(key=lambda item: item[1], reverse=True)
    return {
        "module_cumulative_ms": cumulative_us[module] / 1000,
        "top_imports_ms": {name: us / 1000 for name, us in children[:5]},
    }


def measure_import(module: str = HANDLER_MODULE, samples: int = IMPORT_SAMPLES) -> dict[str, Any]:
    """Median over fresh interpreters of the handler's import (what a Lambda cold start pays in init)."""
    cumulative: list[float] = []
    wall: list[float] = []
    rss_kib: list[int] = []
    last: dict[str, Any] = {}
    for _ in range(samples):
        began = time.perf_counter()
        probe = f"import resource, {module}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", probe],
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=REPO_ROOT,
            timeout=120,
            check=False,
        )
        wall.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{done.stderr[-2000:]}")
        last = parse_importtime(done.stderr, module)
        cumulative.append(last["module_cumulative_ms"])
        rss_kib.append(int(done.stdout.strip().splitlines()[-1]))
    return {
        "module": module,
        "samples": samples,
        "import_ms_median": statistics.median(cumulative),
        "interpreter_start_and_import_s_median": statistics.median(wall),
        "max_rss_after_import_mib": round(statistics.median(rss_kib) / 1024, 1),
        "top_imports_ms_last_sample": last["top_imports_ms"],
        "measured": "python -X importtime -c 'import switcher.handler' (PYTHONPATH=lambda_src), fresh "
        "interpreter per sample; local CPU, not a Lambda",
    }


def measure_synth() -> dict[str, Any]:
    """Wall time of `python app.py` (the default app synthesized offline) into a temporary directory."""
    app = REPO_ROOT / "app.py"
    if not app.exists():
        return {"error": "app.py is missing", "measured": "python app.py"}
    with tempfile.TemporaryDirectory(prefix="swr-bench-synth-") as outdir:
        env = {**os.environ, "CDK_OUTDIR": outdir, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "app.py"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_SECONDS,
            check=False,
        )
        elapsed = time.perf_counter() - began
        templates = sorted(p.name for p in Path(outdir).glob("*.template.json"))
    result: dict[str, Any] = {
        "synth_s": round(elapsed, 2),
        "exit_code": done.returncode,
        "templates": templates,
        "measured": "python app.py with CDK_OUTDIR=<tmp>, default config, offline",
    }
    if done.returncode != 0:
        result["stderr_tail"] = done.stderr[-1500:]
    return result


def measure_tests(full: bool) -> dict[str, Any]:
    """Count the tests (`pytest --co -q`); with `full`, time one whole run of the suite."""
    began = time.perf_counter()
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    collect_s = time.perf_counter() - began
    count_match = re.search(r"(\d+) tests? collected", collected.stdout)
    result: dict[str, Any] = {
        "tests_collected": int(count_match.group(1)) if count_match else None,
        "collect_s": round(collect_s, 2),
        "collect_exit_code": collected.returncode,
    }
    if full:
        began = time.perf_counter()
        run = subprocess.run(
            # As `make test` runs it (the README's test command): on 2 workers (pytest-xdist).
            [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT_SECONDS,
            check=False,
        )
        summary = run.stdout.strip().splitlines()[-1:] or [""]
        result.update(
            {
                "full_run_s": round(time.perf_counter() - began, 2),
                "full_run_exit_code": run.returncode,
                "full_run_summary": summary[0],
                "full_run_source": "measured in this run (pytest -n 2 as `make test` runs it, without mypy)",
            }
        )
    else:
        previous = read_result("p4_cost")
        recorded = (previous or {}).get("tests", {})
        if recorded.get("full_run_s") is not None:
            result.update(
                {
                    key: recorded[key]
                    for key in ("full_run_s", "full_run_exit_code", "full_run_summary")
                    if key in recorded
                }
            )
            result["full_run_source"] = (
                f"recorded earlier ({(previous or {}).get('run', {}).get('finished_at')})"
            )
        else:
            result["full_run_source"] = "not measured (run `python -m bench.p4_cost --full-tests`)"
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-tests", action="store_true", help="time one full pytest run as well")
    args = parser.parse_args(argv)

    from bench.p2_overhead import measure_switch_memory

    measured = {
        "cold_start_import": measure_import(),
        "switch_memory": measure_switch_memory(),
        "synth": measure_synth(),
        "tests": measure_tests(args.full_tests),
    }
    payload: dict[str, Any] = {
        "benchmark": "p4_cost",
        "run": run_metadata("python -m bench.p4_cost" + (" --full-tests" if args.full_tests else "")),
        **measured,
    }
    path = write_result("p4_cost", payload)
    print(f"P4 written to {path.relative_to(REPO_ROOT)}")
    print(f"  handler import: {payload['cold_start_import']['import_ms_median']:.0f} ms (median)")
    print(f"  switch peak memory: {payload['switch_memory'].get('tracemalloc_peak_mib')} MiB (tracemalloc)")
    print(f"  synth: {payload['synth'].get('synth_s')} s; tests: {payload['tests']}")
    return payload


if __name__ == "__main__":
    main()
