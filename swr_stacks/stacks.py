"""Thin stacks: one per region (state table, notice topic) and one per VPC (everything else)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from swr_stacks.config import SwrConfig, VpcConfig
from swr_stacks.state import SwrRegion
from swr_stacks.vpc import add_vpc_resources


class RegionalStack(Stack):
    """The switchers' shared state table and notice topic of one region."""

    def __init__(self, scope: Construct, id_: str, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        # "Default" is left out of logical ids: the table and topic keep the ids they had as the
        # stack's own children (tests/infra/test_resource_ids.py), so deployed ones are not replaced.
        self.swr_region = SwrRegion(self, "Default")


class VpcStack(Stack):
    """A VPC's network, monitor logs, switcher, reconcile schedule, alarms, nodes and dashboard; tagged
    `swr:vpc` = its name."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_config: VpcConfig,
        config: SwrConfig,
        regional: RegionalStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.resources = add_vpc_resources(
            self,
            vpc_config=vpc_config,
            config=config,
            table=regional.swr_region.table,
            topic=regional.swr_region.topic,
        )
