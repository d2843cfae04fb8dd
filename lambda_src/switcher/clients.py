"""The boto3 clients the switcher uses, bundled so tests and harnesses can point them anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config


@dataclass(frozen=True)
class Clients:
    """One client per service; built by `make_clients` (lazily, at the first invocation, never at import)."""

    ec2: Any
    elbv2: Any
    cloudwatch: Any
    dynamodb: Any
    sns: Any
    events: Any


def retry_config(mode: str = "adaptive", max_attempts: int = 10) -> Config:
    """botocore retry config: throttling (RequestLimitExceeded, Throttling) is retried with backoff."""
    retries: Any = {"mode": mode, "max_attempts": max_attempts}
    return Config(retries=retries)


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

    def client(service: str) -> Any:
        factory: Any = session.client
        return factory(service, region_name=region_name, endpoint_url=endpoint_url, config=cfg)

    return Clients(
        ec2=client("ec2"),
        elbv2=client("elbv2"),
        cloudwatch=client("cloudwatch"),
        dynamodb=client("dynamodb"),
        sns=client("sns"),
        events=client("events"),
    )
