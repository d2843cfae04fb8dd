"""The figures of the default swr deployment that the benchmarks must match (from cdk.json).

The load balancer's health check and the switcher's reserved concurrency are configuration, not
AWS behaviour: the benchmarks take them from the default config the CDK app synthesizes, through
the stacks' own validator, so a changed default changes the modeled recovery time too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.latency_model import LatencyModel, with_override
from bench.results_io import REPO_ROOT
from swr_stacks.config import parse_config

CDK_JSON = REPO_ROOT / "cdk.json"
DEFAULTS_CONTEXT_KEY = "swr:defaults"


@dataclass(frozen=True)
class HealthCheckDefaults:
    lb: str
    node_id: int
    interval_seconds: int
    healthy_threshold: int


@dataclass(frozen=True)
class DeploymentDefaults:
    reserved_concurrency: int
    health_checks: dict[str, HealthCheckDefaults]


def load_defaults() -> DeploymentDefaults:
    """Parse cdk.json's default config with the stacks' validator; first node of each lb type."""
    raw = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"][DEFAULTS_CONTEXT_KEY]
    config = parse_config(raw)
    checks: dict[str, HealthCheckDefaults] = {}
    for region in config.regions:
        for vpc in region.vpcs:
            for node in vpc.nodes:
                if node.lb not in checks:
                    hc = node.health_check
                    checks[node.lb] = HealthCheckDefaults(
                        lb=node.lb,
                        node_id=node.node_id,
                        interval_seconds=hc.interval_seconds,
                        healthy_threshold=hc.healthy_threshold,
                    )
    return DeploymentDefaults(reserved_concurrency=config.switcher_reserved_concurrency, health_checks=checks)


def model_for_default_deployment(model: LatencyModel, defaults: DeploymentDefaults) -> LatencyModel:
    """The model with the health-check figures replaced by the default deployment's settings."""
    for lb, hc in defaults.health_checks.items():
        source = f"swr default config (cdk.json {DEFAULTS_CONTEXT_KEY}, node {hc.node_id}, {lb})"
        model = with_override(model, f"load_balancer.{lb}.health_check_interval", hc.interval_seconds, source)
        model = with_override(model, f"load_balancer.{lb}.healthy_threshold", hc.healthy_threshold, source)
    return model
