#!/usr/bin/env python3
"""swr CDK app: read and validate the configuration once, then build the stacks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from aws_cdk import App

from swr_stacks.app_builder import build_app
from swr_stacks.config import ConfigError, SwrConfig, load_config_file, parse_config

CONFIG_CONTEXT_KEY = "swr:config"
DEFAULTS_CONTEXT_KEY = "swr:defaults"


def config_from_context(app: App) -> SwrConfig:
    """The user's file (``-c swr:config=path``) if given, else the default config in cdk.json."""
    path = app.node.try_get_context(CONFIG_CONTEXT_KEY)
    if path:
        return load_config_file(str(path))
    defaults = app.node.try_get_context(DEFAULTS_CONTEXT_KEY)
    if defaults is None:
        # Run as `python3 app.py` (not by the CDK CLI): read the defaults from cdk.json ourselves.
        cdk_json = Path(__file__).with_name("cdk.json")
        defaults = (
            json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {}).get(DEFAULTS_CONTEXT_KEY)
        )
    if defaults is None:
        raise ConfigError(
            f"no configuration: pass -c {CONFIG_CONTEXT_KEY}=file or keep {DEFAULTS_CONTEXT_KEY} in cdk.json"
        )
    return parse_config(defaults)


def main() -> None:
    """Synthesize; a bad config ends with one clear line instead of a traceback."""
    # The CDK CLI sets CDK_OUTDIR; run directly, write where the CLI would (not to a temp dir).
    app = App(outdir=None if "CDK_OUTDIR" in os.environ else "cdk.out")
    try:
        config = config_from_context(app)
    except ConfigError as err:
        # every error, each with the file and line where the config came from a file
        sys.exit("\n".join(f"swr config error: {line}" for line in err.describe().splitlines()))
    build_app(app, config)
    app.synth()


if __name__ == "__main__":
    main()
