"""Helpers of the CLI tests (a uniquely named module: every test directory has its own conftest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def default_config() -> dict[str, Any]:
    """The default config (cdk.json `swr:defaults`), as a fresh dict a test may modify."""
    return json.loads((REPO / "cdk.json").read_text())["context"]["swr:defaults"]


def synthesize_in_process(outdir: Path) -> Path:
    """The default app, synthesized in this process: the test session's jsii runtime is shared with the
    infrastructure tests (measured: a cold synth ~10 s either way, a warm one ~3 s). `swr demo` itself
    runs `python app.py` (see tests/e2e)."""
    from aws_cdk import App

    from swr_stacks.app_builder import build_app
    from swr_stacks.config import parse_config

    app = App(outdir=str(outdir))
    build_app(app, parse_config(default_config()))
    app.synth()
    return outdir
