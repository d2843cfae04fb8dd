"""Synthesize each app ONCE per session (jsii + bundling cost seconds): the default and the test config."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from swr_stacks.app_builder import build_app
from swr_stacks.config import SwrConfig, load_config_file, parse_config

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # tests.helpers (the metric contract test runs the switcher in moto)
    sys.path.insert(0, str(REPO))
TEST_CONFIG = REPO / "tests" / "config" / "two_regions.yaml"


@dataclass(frozen=True)
class Synthesized:
    """A synthesized app: its config, output directory and one assertions Template per stack."""

    config: SwrConfig
    outdir: Path
    templates: dict[str, Template]
    raw: dict[str, dict]

    def validation_report(self) -> dict:
        """cdk-nag's policy-validation report (written on every synth)."""
        return json.loads((self.outdir / "validation-report.json").read_text())


def cdk_json_context() -> dict:
    """The context `cdk synth`/`cdk deploy` pass to app.py: cdk.json's, feature flags included.

    Synthesizing without it would test a different template than the one deployed (e.g. the EFS and
    NLB defaults of aws-cdk-lib depend on feature flags)."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return {k: v for k, v in context.items() if not k.startswith("swr:")}


def _synth(config: SwrConfig, outdir: Path, *, feature_flags: bool = True) -> Synthesized:
    app = App(outdir=str(outdir), context=cdk_json_context() if feature_flags else None)
    build_app(app, config)
    assembly = app.synth()
    raw = {stack.stack_name: stack.template for stack in assembly.stacks}
    return Synthesized(
        config=config,
        outdir=outdir,
        templates={name: Template.from_json(template) for name, template in raw.items()},
        raw=raw,
    )


@pytest.fixture(scope="session")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default config of cdk.json (1 region, 1 VPC over 3 AZs, 2 nodes)."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return _synth(parse_config(context["swr:defaults"]), tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def default_app_without_flags(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default config synthesized as `python3 app.py` run directly does (`swr demo`): no cdk.json
    feature flags. What swr deploys must not depend on them."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return _synth(
        parse_config(context["swr:defaults"]), tmp_path_factory.mktemp("cdk-noflags"), feature_flags=False
    )


@pytest.fixture(scope="session")
def multi_app(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """tests/config/two_regions.yaml: 2 regions x 2 VPCs x 3 nodes."""
    return _synth(load_config_file(TEST_CONFIG), tmp_path_factory.mktemp("cdk-multi"))
