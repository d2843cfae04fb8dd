"""`swr demo` end to end, as a user runs it: a subprocess, the real synthesized app, moto on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INVARIANTS = (
    "switch succeeded",
    "replacement in another AZ",
    "source terminated",
    "replacement serves on a pre-registered address",  # the default config's nodes (targets: preregistered)
    "both alarms moved to the replacement",
    "EFS ids in the launch template unchanged",
    "record ACTIVE on the replacement",
    "changes nothing",  # the late `stopped` event (case 1), a duplicate alarm delivery (case 2)
)


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    # The timeout only guards against a hung emulator; how long the demo takes is not asserted here
    # (speed is measured in bench/, never in tests).
    return subprocess.run(
        [sys.executable, "-m", "swr_cli.main", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.e2e
def test_demo_recovers_both_failure_cases_and_checks_every_invariant(
    demo: subprocess.CompletedProcess[str],
) -> None:
    proc = demo
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "demo passed" in out
    case1, case2 = out.split("case 1 ·", 1)[1].split("case 2 ·", 1)
    for case in (case1, case2):
        # a timeline that reaches `done`, and every invariant reported as held
        assert re.search(r"SUCCEEDED · RTO \d+\.\d+s", case), case
        assert re.search(r"│ done\s+│", case), case
        for name in INVARIANTS:
            assert re.search(r"✔ │ [^│]*" + re.escape(name), case), f"{name!r} not held in:\n{case}"
        assert "✘" not in case
    # Every duration it shows is labelled as emulator time, pointing at the modeled RTO.
    for case in (case1, case2):
        assert "RTO above is emulator time, not an AWS recovery time" in " ".join(case.split()), case
        assert "modeled RTO in bench/RESULTS.md" in " ".join(case.split()), case
    assert "EC2 Instance State-change Notification' matches deployed rule" in case1
    assert "CloudWatch Alarm State Change' matches deployed rule" in case2


@pytest.mark.e2e
def test_demo_leaves_no_server_behind(demo: subprocess.CompletedProcess[str]) -> None:
    proc = demo
    match = re.search(r"AWS emulator \(moto\) on http://127\.0\.0\.1:(\d+)", proc.stdout)
    assert match, proc.stdout
    with socket.socket() as sock:
        sock.settimeout(0.5)
        assert sock.connect_ex(("127.0.0.1", int(match.group(1)))) != 0, "the emulator's port is still open"
