"""What swr deploys, read from the synthesized CloudFormation template (`python app.py`) and the
on-instance monitor's shipped configuration.

The target group's health check, its deregistration delay and the switcher's reserved concurrency
are configuration, not AWS behaviour. The benchmarks read them from the template the CDK app
synthesizes from the default config (cdk.json), so the modeled recovery uses exactly what a deploy
would create; the latency model carries no copy of them.

The on-instance monitor's check interval and failure threshold are configuration too: they are read
from the configuration every node gets (agent_config/monitor.conf.example, which install.sh copies to
/etc/swr/monitor.conf), parsed by swr-monitor's own parser.

`make bench` synthesizes once and hands the directory to every benchmark (SWR_BENCH_CDK_OUT); a
benchmark run alone synthesizes into a temporary directory itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from switcher import handler as switcher_handler

from bench.results_io import REPO_ROOT

#: Set by `python -m bench.run_all`: a directory holding an already synthesized cloud assembly.
CDK_OUT_ENV = "SWR_BENCH_CDK_OUT"
SYNTH_TIMEOUT_SECONDS = 300
TARGET_GROUP_TYPE = "AWS::ElasticLoadBalancingV2::TargetGroup"
FUNCTION_TYPE = "AWS::Lambda::Function"
#: Target-group protocols of a Network Load Balancer; any other protocol is an ALB's.
NLB_PROTOCOLS = frozenset({"TCP", "UDP", "TCP_UDP", "TLS"})
DEREGISTRATION_DELAY_KEY = "deregistration_delay.timeout_seconds"
#: The switcher function is the one whose handler is the switcher's entry point.
SWITCHER_HANDLER = f"{switcher_handler.__name__}.{switcher_handler.lambda_handler.__name__}"
#: A function's timeout when `Timeout` is absent ("Configure Lambda function timeout", AWS Lambda Developer
#: Guide: the default is 3 seconds).
LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3


#: The monitor configuration a node gets unless its operator writes another one.
MONITOR_CONFIG_PATH = REPO_ROOT / "agent_config" / "monitor.conf.example"


class DeployedConfigError(ValueError):
    """The synthesized template lacks a value the benchmarks need (they never guess one)."""


@dataclass(frozen=True)
class TargetGroupHealth:
    """A target group's health check and deregistration delay as synthesized."""

    lb: str
    logical_id: str
    interval_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int
    deregistration_delay_seconds: int
    #: None: not set in the template (AWS's default for the protocol applies).
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class DeployedConfig:
    """The deployed figures the benchmarks use: per load-balancer type, and the switcher's pool."""

    target_groups: dict[str, TargetGroupHealth]
    reserved_concurrency: int
    origin: str
    #: The switcher function's timeout (s); None: the templates hold no switcher function.
    function_timeout_seconds: int | None = None

    def health(self, lb: str) -> TargetGroupHealth:
        """The target group of the first node behind a load balancer of type `lb` ("nlb"/"alb")."""
        try:
            return self.target_groups[lb]
        except KeyError:
            raise DeployedConfigError(f"the synthesized template has no {lb} target group") from None

    def as_dict(self) -> dict[str, Any]:
        """For the results files."""
        return {
            "origin": self.origin,
            "reserved_concurrency": self.reserved_concurrency,
            "function_timeout_seconds": self.function_timeout_seconds,
            "target_groups": {lb: vars(tg) for lb, tg in self.target_groups.items()},
        }


def _required_int(props: dict[str, Any], key: str, where: str) -> int:
    if key not in props:
        # Absent means "AWS's default", which differs by protocol and load balancer: refuse to guess.
        raise DeployedConfigError(f"{where}: {key} is not set in the template")
    return int(props[key])


def from_templates(
    templates: Iterable[tuple[str, dict[str, Any]]], *, default_concurrency: int | None = None
) -> DeployedConfig:
    """Extract the figures from synthesized templates ((name, template) pairs), first of each lb type."""
    groups: dict[str, TargetGroupHealth] = {}
    concurrency: set[int] = set()
    timeouts: set[int] = set()
    names = []
    for name, template in templates:
        names.append(name)
        for logical_id, resource in template.get("Resources", {}).items():
            props = resource.get("Properties", {})
            where = f"{name}:{logical_id}"
            if resource.get("Type") == FUNCTION_TYPE and "ReservedConcurrentExecutions" in props:
                concurrency.add(int(props["ReservedConcurrentExecutions"]))
            if resource.get("Type") == FUNCTION_TYPE and props.get("Handler") == SWITCHER_HANDLER:
                timeouts.add(int(props.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_SECONDS)))
            if resource.get("Type") != TARGET_GROUP_TYPE:
                continue
            lb = "nlb" if props.get("Protocol") in NLB_PROTOCOLS else "alb"
            if lb in groups:
                continue
            attributes = {a["Key"]: a["Value"] for a in props.get("TargetGroupAttributes", [])}
            if DEREGISTRATION_DELAY_KEY not in attributes:
                raise DeployedConfigError(f"{where}: {DEREGISTRATION_DELAY_KEY} is not set in the template")
            groups[lb] = TargetGroupHealth(
                lb=lb,
                logical_id=logical_id,
                interval_seconds=_required_int(props, "HealthCheckIntervalSeconds", where),
                healthy_threshold=_required_int(props, "HealthyThresholdCount", where),
                unhealthy_threshold=_required_int(props, "UnhealthyThresholdCount", where),
                deregistration_delay_seconds=int(attributes[DEREGISTRATION_DELAY_KEY]),
                timeout_seconds=(
                    int(props["HealthCheckTimeoutSeconds"]) if "HealthCheckTimeoutSeconds" in props else None
                ),
            )
    if not concurrency and default_concurrency is not None:
        concurrency = {default_concurrency}
    if len(concurrency) != 1:
        raise DeployedConfigError(
            f"expected one reserved concurrency for the switcher function, found {sorted(concurrency)}"
        )
    if len(timeouts) > 1:
        raise DeployedConfigError(f"expected one timeout for the switcher function, found {sorted(timeouts)}")
    return DeployedConfig(
        target_groups=groups,
        reserved_concurrency=concurrency.pop(),
        origin=", ".join(sorted(names)),
        function_timeout_seconds=timeouts.pop() if timeouts else None,
    )


def _read_assembly(outdir: Path) -> list[tuple[str, dict[str, Any]]]:
    templates = [
        (path.name, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(outdir.glob("*.template.json"))
    ]
    if not templates:
        raise DeployedConfigError(f"{outdir} holds no synthesized template")
    return templates


def synthesize(outdir: Path) -> None:
    """`python app.py` (the default config in cdk.json, offline) into `outdir`."""
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise DeployedConfigError(f"python app.py failed ({done.returncode}): {done.stderr[-1500:]}")


#: The stacks reserve no concurrency by default: the switcher then draws on the account's unreserved pool,
#: which a new account may have as low as 10 ("Lambda quotas", AWS Lambda Developer Guide). The benchmarks
#: size their pool at that floor (an assumption on the safe side: a default account has 1,000).
UNRESERVED_POOL_FLOOR = 10


def load_deployed(*, default_concurrency: int | None = UNRESERVED_POOL_FLOOR) -> DeployedConfig:
    """The deployed figures: from SWR_BENCH_CDK_OUT if `make bench` synthesized already, else synthesize.
    `default_concurrency`: the pool size to use when the template reserves no concurrency (None: error)."""
    shared = os.environ.get(CDK_OUT_ENV)
    if shared:
        return from_templates(_read_assembly(Path(shared)), default_concurrency=default_concurrency)
    with tempfile.TemporaryDirectory(prefix="swr-bench-synth-") as outdir:
        synthesize(Path(outdir))
        return from_templates(_read_assembly(Path(outdir)), default_concurrency=default_concurrency)


@dataclass(frozen=True)
class MonitorCheck:
    """The on-instance monitor's check: one attempt every `interval_seconds`, `threshold` consecutive
    failures confirm a failure (swr-monitor's semantics)."""

    interval_seconds: float
    threshold: int
    origin: str


@cache
def monitor_check(path: Path = MONITOR_CONFIG_PATH) -> MonitorCheck:
    """The first check of the shipped monitor configuration (every check of it shares the cadence)."""
    from swr_agent import swr_monitor

    config = swr_monitor.parse_config(
        path.read_text(encoding="utf-8"), source=str(path), env={"SWR_NODE_ID": "bench"}
    )
    cadences = {(check.interval, check.threshold) for check in config.checks}
    if len(cadences) != 1:
        raise DeployedConfigError(f"{path}: checks with different cadences {sorted(cadences)}: pick one")
    interval, threshold = cadences.pop()
    return MonitorCheck(interval_seconds=interval, threshold=threshold, origin=path.name)
