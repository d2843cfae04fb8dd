"""The boto3 clients the switcher uses, bundled so tests and harnesses can point them anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config

from switcher import placement

if TYPE_CHECKING:
    # The boto3-stubs types (dev extra) exist only for the type checker: the Lambda runtime has no stubs.
    from botocore.config import _RetryDict
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient


@dataclass(frozen=True)
class Clients:
    """One client per service; built by `make_clients` (lazily, at the first invocation, never at import)."""

    ec2: EC2Client
    elbv2: ElasticLoadBalancingv2Client
    cloudwatch: CloudWatchClient
    dynamodb: DynamoDBClient
    sns: SNSClient
    events: EventBridgeClient


def retry_config(mode: str = "adaptive", max_attempts: int = 10) -> Config:
    """botocore retry config: throttling (RequestLimitExceeded, Throttling) is retried with backoff."""
    # `mode` comes from settings as a string; botocore validates it when the client is created.
    return Config(retries=cast("_RetryDict", {"mode": mode, "max_attempts": max_attempts}))


#: botocore emits `needs-retry.<service>.<operation>` after every attempt; the most specific handler is
#: called first and the first non-None answer wins (False: do not retry).
RUN_INSTANCES_NEEDS_RETRY = "needs-retry.ec2.RunInstances"


def no_retry_on_capacity_error(response: Any = None, **_: Any) -> bool | None:
    """needs-retry handler of RunInstances: a capacity error is this AZ's final answer, never retried.

    EC2 sends InsufficientInstanceCapacity as a server error (HTTP 5xx), which botocore's standard and
    adaptive modes retry as transient (`max_attempts` retries, exponential backoff capped at 20 s: up to
    ~45 s with the Lambda's 10) before the switch may try the next AZ. Any other error (throttling above
    all) keeps botocore's retries.
    """
    if response is None:
        return None  # a connection error: botocore decides
    parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
    code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    return False if code in placement.CAPACITY_ERROR_CODES else None


def make_clients(
    *,
    session: boto3.session.Session | None = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> Clients:
    """Create the clients with botocore's retry mode; `endpoint_url` points them at e.g. a moto server."""
    session = session or boto3.session.Session()
    cfg = config or retry_config()

    at, url = region_name, endpoint_url
    ec2 = session.client("ec2", region_name=at, endpoint_url=url, config=cfg)
    # botocore-stubs types event handlers as returning None; needs-retry handlers return their answer.
    ec2.meta.events.register(RUN_INSTANCES_NEEDS_RETRY, no_retry_on_capacity_error)  # type: ignore[arg-type]
    return Clients(
        ec2=ec2,
        elbv2=session.client("elbv2", region_name=at, endpoint_url=url, config=cfg),
        cloudwatch=session.client("cloudwatch", region_name=at, endpoint_url=url, config=cfg),
        dynamodb=session.client("dynamodb", region_name=at, endpoint_url=url, config=cfg),
        sns=session.client("sns", region_name=at, endpoint_url=url, config=cfg),
        events=session.client("events", region_name=at, endpoint_url=url, config=cfg),
    )
