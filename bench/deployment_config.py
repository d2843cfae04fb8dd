"""What swr deploys, read from the synthesized CloudFormation template (`python app.py`).

The target group's health check, its deregistration delay and the switcher's reserved concurrency
are configuration, not AWS behaviour. The benchmarks read them from the template the CDK app
synthesizes from the default config (cdk.json), so the modeled recovery uses exactly what a deploy
would create; the latency model carries no copy of them.

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
from pathlib import Path
from typing import Any

from bench.results_io import REPO_ROOT

#: Set by `python -m bench.run_all`: a directory holding an already synthesized cloud assembly.
CDK_OUT_ENV = "SWR_BENCH_CDK_OUT"
SYNTH_TIMEOUT_SECONDS = 300
TARGET_GROUP_TYPE = "AWS::ElasticLoadBalancingV2::TargetGroup"
FUNCTION_TYPE = "AWS::Lambda::Function"
#: Target-group protocols of a Network Load Balancer; any other protocol is an ALB's.
NLB_PROTOCOLS = frozenset({"TCP", "UDP", "TCP_UDP", "TLS"})
DEREGISTRATION_DELAY_KEY = "deregistration_delay.timeout_seconds"


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


@dataclass(frozen=True)
class DeployedConfig:
    """The deployed figures the benchmarks use: per load-balancer type, and the switcher's pool."""

    target_groups: dict[str, TargetGroupHealth]
    reserved_concurrency: int
    origin: str

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
    names = []
    for name, template in templates:
        names.append(name)
        for logical_id, resource in template.get("Resources", {}).items():
            props = resource.get("Properties", {})
            where = f"{name}:{logical_id}"
            if resource.get("Type") == FUNCTION_TYPE and "ReservedConcurrentExecutions" in props:
                concurrency.add(int(props["ReservedConcurrentExecutions"]))
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
            )
    if not concurrency and default_concurrency is not None:
        concurrency = {default_concurrency}
    if len(concurrency) != 1:
        raise DeployedConfigError(
            f"expected one reserved concurrency for the switcher function, found {sorted(concurrency)}"
        )
    return DeployedConfig(
        target_groups=groups, reserved_concurrency=concurrency.pop(), origin=", ".join(sorted(names))
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


def load_deployed(*, default_concurrency: int | None = None) -> DeployedConfig:
    """The deployed figures: from SWR_BENCH_CDK_OUT if `make bench` synthesized already, else synthesize.
    `default_concurrency`: the pool size to use when the template reserves no concurrency (None: error)."""
    shared = os.environ.get(CDK_OUT_ENV)
    if shared:
        return from_templates(_read_assembly(Path(shared)), default_concurrency=default_concurrency)
    with tempfile.TemporaryDirectory(prefix="swr-bench-synth-") as outdir:
        synthesize(Path(outdir))
        return from_templates(_read_assembly(Path(outdir)), default_concurrency=default_concurrency)
