"""cdk-nag 3.x acknowledgements: one rule finding, one construct, one real reason."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct``."""
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def finding_resource(scope: IConstruct, arn: str) -> str:
    """An IAM resource as cdk-nag spells it in a finding id (``Ref`` → ``<AWS::Region>`` and so on)."""
    return _render(Stack.of(scope).resolve(arn))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_render(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag resource")


def acknowledge_wildcard_resources(policy: IConstruct, arns: list[str], reason: str) -> None:
    """Acknowledge ``AwsSolutions-IAM5`` for each wildcard ARN of ``policy`` with the same reason."""
    for arn in arns:
        acknowledge(policy, f"AwsSolutions-IAM5[Resource::{finding_resource(policy, arn)}]", reason)
