"""Find the switchers of a region and the nodes they own, from what is deployed."""

from __future__ import annotations

from dataclasses import dataclass

from switcher import contract, state

from swr_cli.aws import AwsTarget


class NotFound(LookupError):
    """A switcher, node or switch the operator named does not exist (the message says which)."""


@dataclass(frozen=True)
class Switcher:
    """One VPC's switcher function and the settings its environment carries."""

    function_name: str
    function_arn: str
    environment: dict[str, str]

    @property
    def vpc_name(self) -> str:
        return self.environment[contract.ENV_VPC_NAME]

    @property
    def vpc_id(self) -> str:
        return self.environment.get(contract.ENV_VPC_ID, "")

    @property
    def table_name(self) -> str:
        return self.environment[contract.ENV_TABLE_NAME]

    @property
    def blackhole_sg_id(self) -> str:
        return self.environment.get(contract.ENV_BLACKHOLE_SG_ID, "")

    @property
    def flap_window_seconds(self) -> int:
        return int(self.environment.get(contract.ENV_FLAP_WINDOW_SECONDS) or 3600)

    @property
    def flap_max_switches(self) -> int:
        return int(self.environment.get(contract.ENV_FLAP_MAX_SWITCHES) or 3)


def find_switchers(target: AwsTarget, vpc_name: str | None = None) -> list[Switcher]:
    """Every Lambda function of the region whose environment names an swr table and VPC."""
    found = []
    for page in target.client("lambda").get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            env = fn.get("Environment", {}).get("Variables", {})
            if contract.ENV_TABLE_NAME in env and contract.ENV_VPC_NAME in env:
                found.append(Switcher(fn["FunctionName"], fn["FunctionArn"], dict(env)))
    if vpc_name is not None:
        found = [s for s in found if s.vpc_name == vpc_name]
    if not found:
        where = f" for VPC {vpc_name!r}" if vpc_name else ""
        raise NotFound(
            f"no swr switcher function{where} in {target.region}"
            + (f" at {target.endpoint_url}" if target.endpoint_url else "")
            + f" (looked for Lambda functions with {contract.ENV_TABLE_NAME} and {contract.ENV_VPC_NAME})"
        )
    return sorted(found, key=lambda s: s.vpc_name)


def find_node(
    target: AwsTarget, node_id: int, vpc_name: str | None = None
) -> tuple[Switcher, state.NodeRecord]:
    """The switcher and record of a node id (unique within a region)."""
    ddb = target.client("dynamodb")
    for switcher in find_switchers(target, vpc_name):
        node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
        if node is not None:
            return switcher, node
    raise NotFound(
        f"node {node_id} has no record in {target.region}" + (f" (VPC {vpc_name})" if vpc_name else "")
    )
