"""Fixtures of the switcher's moto tests: fake credentials, a moto world, a Lambda context."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from moto import mock_aws  # noqa: E402

from tests.helpers.aws_faults import FaultInjector, aws_faults  # noqa: E402
from tests.helpers.world import FAKE_CREDENTIALS, World, build_world  # noqa: E402


@pytest.fixture(scope="module")
def aws_credentials() -> Iterator[None]:
    """Fake credentials and an explicit region, so nothing can reach a real account."""
    with pytest.MonkeyPatch.context() as patch:
        for var, value in FAKE_CREDENTIALS.items():
            patch.setenv(var, value)
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


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context the handler and Powertools use."""

    function_name: str = "swr-prod-switcher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:swr-prod-switcher"
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        """Time left in the invocation."""
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context with 900 s left."""
    return FakeLambdaContext()
