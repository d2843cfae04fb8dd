"""One local deployment of the default app (moto on 127.0.0.1) shared by the CLI tests, and a CLI runner."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from swr_cli.assembly import read_assembly
from swr_cli.aws import AwsTarget
from swr_cli.localdeploy import deploy_assembly, provision_nodes
from swr_cli.main import main
from swr_cli.moto_server import LOCAL_ACCOUNT_ID, moto_server


@dataclass(frozen=True)
class LocalDeployment:
    target: AwsTarget

    @property
    def args(self) -> list[str]:
        assert self.target.endpoint_url
        return ["--region", self.target.region, "--endpoint-url", self.target.endpoint_url]


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


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    assembly = read_assembly(synthesize_in_process(tmp_path_factory.mktemp("synth") / "cdk.out"))
    with warnings.catch_warnings(), moto_server() as server:
        warnings.simplefilter("ignore")
        target = AwsTarget(assembly.stacks[0].region, server.endpoint_url)
        deployed = deploy_assembly(assembly, target, LOCAL_ACCOUNT_ID, progress=lambda _: None)
        assert provision_nodes(deployed, target) == 2
        yield LocalDeployment(target)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str


@pytest.fixture
def swr(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `swr ARGS...` in-process; returns its exit code and everything it printed."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        return CliResult(code, capsys.readouterr().out)

    return run
