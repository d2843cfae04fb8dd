"""Build the whole swr app from a validated configuration (used by app.py and the tests)."""

from __future__ import annotations

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from swr_stacks.config import SwrConfig
from swr_stacks.stacks import RegionalStack, VpcStack

STACK_PREFIX = "swr"


def regional_stack_name(region: str) -> str:
    """Name of a region's stack, e.g. ``swr-eu-west-1``."""
    return f"{STACK_PREFIX}-{region}"


def vpc_stack_name(region: str, vpc_name: str) -> str:
    """Name of a VPC's stack, e.g. ``swr-eu-west-1-prod``."""
    return f"{STACK_PREFIX}-{region}-{vpc_name}"


def build_app(app: App, config: SwrConfig) -> dict[str, list[str]]:
    """Add every stack of ``config`` to ``app`` and the cdk-nag checks; returns region → stack names."""
    stacks: dict[str, list[str]] = {}
    for region in config.regions:
        # Region only, no account: synth stays offline and account-agnostic (no lookups anywhere).
        env = Environment(region=region.name)
        regional = RegionalStack(
            app, regional_stack_name(region.name), env=env, description="swr: state and notices"
        )
        stacks[region.name] = [regional.stack_name]
        for vpc in region.vpcs:
            stack = VpcStack(
                app,
                vpc_stack_name(region.name, vpc.name),
                vpc_config=vpc,
                config=config,
                regional=regional,
                env=env,
                description=f"swr: VPC {vpc.name} (switcher, nodes)",
            )
            stacks[region.name].append(stack.stack_name)
    # cdk-nag 3.x runs as a policy-validation plugin: any unacknowledged finding fails the synth.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
