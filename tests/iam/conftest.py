"""Fixtures of the IAM tests: the app synthesized once per session from the IAM config, moto in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from moto import mock_aws  # noqa: E402

from swr_local.emulator import fake_credentials  # noqa: E402
from tests.helpers.aws_faults import FaultInjector, aws_faults  # noqa: E402
from tests.helpers.iam_templates import synthesize  # noqa: E402
from tests.helpers.iam_world import COVERAGE_KEY  # noqa: E402
from tests.helpers.world import AZS, IMAGE_ID, REGION  # noqa: E402

#: The config the IAM world stands for: the test world's region, AZs and image; node 1 with a key pair
#: and a data EFS (every kind of resource a launch can name) and on_switch targets, node 2 an ALB node
#: watching RMS, with pre-registered targets (the default).
IAM_CONFIG: dict[str, Any] = {
    "switch_order": "swr",
    "regions": [
        {
            "name": REGION,
            "vpcs": [
                {
                    "name": "prod",
                    "cidr": "10.0.0.0/16",
                    "availability_zones": list(AZS),
                    "nodes": [
                        {
                            "id": 1,
                            "ami": IMAGE_ID,
                            "instance_type": "t3.small",
                            "key_pair": "swr-iam-key",
                            "lb": "nlb",
                            "targets": "on_switch",
                            "listener_ports": [80],
                            "target_port": 8080,
                            "user_data_efs": True,
                        },
                        {
                            "id": 2,
                            "ami": IMAGE_ID,
                            "instance_type": "t3.small",
                            "lb": "alb",
                            "listener_ports": [80],
                            "target_port": 8080,
                            "monitor_process": "rms",
                        },
                    ],
                }
            ],
        }
    ],
}


@pytest.fixture(scope="session")
def iam_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The IAM config's stacks, synthesized once (bundling skipped: only the templates are read)."""
    return synthesize(IAM_CONFIG, tmp_path_factory.mktemp("cdk-iam"))


@pytest.fixture(scope="module")
def moto_iam() -> Iterator[FaultInjector]:
    """moto in-process with the shared AWS-fidelity patches, fake credentials, for one module."""
    with fake_credentials(REGION), mock_aws(), aws_faults() as injector:
        yield injector


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """List every distinct AWS operation the IAM scenarios covered (set by the coverage test)."""
    lines = config.stash.get(COVERAGE_KEY, None)
    if lines:
        terminalreporter.section("AWS operations proven allowed by IAM")
        for line in lines:
            terminalreporter.write_line(line)
