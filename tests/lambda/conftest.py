"""Fixtures of the switcher's moto tests: fake credentials, a moto world, a Lambda context."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from moto import mock_aws  # noqa: E402

from swr_local.emulator import REGION, fake_credentials  # noqa: E402
from swr_local.lambda_runtime import LambdaContext  # noqa: E402
from tests.helpers.aws_faults import FaultInjector, aws_faults  # noqa: E402
from tests.helpers.world import World, build_world  # noqa: E402


@pytest.fixture(scope="module")
def aws_credentials() -> Iterator[None]:
    """Fake credentials and an explicit region, so nothing can reach a real account."""
    with fake_credentials(REGION):
        yield


@pytest.fixture(scope="module")
def moto_module(aws_credentials: None) -> Iterator[FaultInjector]:
    """moto in-process for a whole test module (starting/stopping it per test costs ~1 s); every test
    builds its own world (own VPC, table, topic), so tests do not see each other's resources."""
    with mock_aws(), aws_faults() as injector:
        yield injector


@pytest.fixture
def faults(moto_module: FaultInjector) -> Iterator[FaultInjector]:
    """The shared fault helper (ClientToken idempotency, atomic writes), cleared of other tests' faults."""
    moto_module.faults.clear()
    yield moto_module
    moto_module.faults.clear()


@pytest.fixture
def world(faults: FaultInjector) -> World:
    """A fresh VPC world in moto, with no node yet."""
    return build_world()


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context with 900 s left."""
    return LambdaContext(timeout_seconds=900)
