"""One local deployment of the default app (moto on 127.0.0.1) shared by the CLI tests, and a CLI runner."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from swr_cli.aws import AwsTarget
from swr_cli.main import main
from swr_local.assembly import read_assembly
from swr_local.deploy import deploy_assembly, provision_nodes
from swr_local.emulator import LOCAL_ACCOUNT_ID, moto_server
from swr_local.gaps import lost_availability_zones_control

from .cli_helpers import synthesize_in_process

# tests.helpers (the one place that bends moto) is imported by module path, as tests/lambda does.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass(frozen=True)
class LocalDeployment:
    target: AwsTarget

    @property
    def args(self) -> list[str]:
        assert self.target.endpoint_url
        return ["--region", self.target.region, "--endpoint-url", self.target.endpoint_url]


# package scope (tests/cli is a package): the emulator and its fake credentials end with these tests
@pytest.fixture(scope="package")
def assembly_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default app's cloud assembly (cdk.out), synthesized once for the CLI tests."""
    return synthesize_in_process(tmp_path_factory.mktemp("synth") / "cdk.out")


@pytest.fixture(scope="package")
def deployment(assembly_dir: Path) -> Iterator[LocalDeployment]:
    assembly = read_assembly(assembly_dir)
    # The lost-AZ control of gap 8 in this process, as the sandbox has it: `swr drill --fault az`.
    with warnings.catch_warnings(), lost_availability_zones_control(), moto_server() as server:
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
