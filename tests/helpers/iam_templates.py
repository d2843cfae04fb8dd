"""The synthesized templates as a deployment would see them: intrinsics resolved to a world's values.

`Deployment` plays CloudFormation's part for the few resources the IAM tests read: each resource gets
the physical id and attributes CloudFormation would give it (an ARN in the format of the resource's
service), except the resources the test world really created, which are bound to the world's ids.
Only the intrinsic functions swr's templates use are resolved; anything else raises, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import App

from swr_stacks.app_builder import build_app
from swr_stacks.config import parse_config
from tests.helpers.iam_policy import Statement, parse_policy

ACCOUNT = "123456789012"  # moto's default account


def synthesize(config: Mapping[str, Any], outdir: Path) -> dict[str, dict[str, Any]]:
    """Synthesize the app for `config` (a config document); returns stack name -> template.

    Bundling is skipped: the IAM tests read policies, not the Lambda's code asset.
    """
    app = App(outdir=str(outdir), context={"aws:cdk:bundling-stacks": []})
    build_app(app, parse_config(dict(config)))
    return {stack.stack_name: stack.template for stack in app.synth().stacks}


@dataclass
class Deployment:
    """The stacks of one region, 'deployed' into a world: resolves intrinsics to physical values."""

    templates: dict[str, dict[str, Any]]
    region: str
    account: str = ACCOUNT
    #: (stack, logical id) -> {"Ref": ..., attribute: ...}: the world's real resources.
    bound: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    # --- lookup ---------------------------------------------------------------------------------

    def resources(self, stack: str, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, resource) of one type in a stack."""
        for logical, resource in self.templates[stack]["Resources"].items():
            if resource["Type"] == resource_type:
                yield logical, resource

    def resource(self, stack: str, logical: str) -> dict[str, Any]:
        """One resource of a stack."""
        return dict(self.templates[stack]["Resources"][logical])

    def bind(self, stack: str, logical: str, **values: str) -> None:
        """Give a resource the world's physical id (`Ref=`) and attributes (`Arn=`, `GroupId=`...)."""
        if logical not in self.templates[stack]["Resources"]:
            raise KeyError(f"{stack} has no resource {logical}")
        self.bound.setdefault((stack, logical), {}).update(values)

    # --- resolution -----------------------------------------------------------------------------

    def resolve(self, value: Any, stack: str) -> Any:
        """Resolve every intrinsic in `value` as CloudFormation would in `stack`."""
        if isinstance(value, list):
            return [self.resolve(v, stack) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self._ref(stack, arg)
            if fn == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attribute(stack, logical, attribute)
            if fn == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p, stack)) for p in parts)
            if fn == "Fn::Sub":
                return self._sub(arg, stack)
            if fn == "Fn::ImportValue":
                return self._import(self.resolve(arg, stack))
            if fn == "Fn::Base64":
                return self.resolve(arg, stack)  # kept as text: the tests read it
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items, stack)[int(index)]
            if fn.startswith("Fn::") or fn == "Condition":
                raise NotImplementedError(f"{stack}: intrinsic {fn} is not resolved by the IAM tests")
        return {k: self.resolve(v, stack) for k, v in value.items()}

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def _ref(self, stack: str, name: str) -> str:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        bound = self.bound.get((stack, name), {})
        if "Ref" in bound:
            return bound["Ref"]
        resource = self.resource(stack, name)
        kind = resource["Type"]
        # CloudFormation's Ref of these types is an ARN; of the others a generated name or id.
        if kind == "AWS::ElasticLoadBalancingV2::TargetGroup":
            return self.arn("elasticloadbalancing", f"targetgroup/{name[:20]}/0123456789abcdef")
        if kind == "AWS::SNS::Topic":
            return self.arn("sns", f"{stack}-{name}")
        if kind == "AWS::EFS::FileSystem":
            return "fs-" + _hex(name)
        if kind == "AWS::EFS::AccessPoint":
            return "fsap-" + _hex(name, 17)
        if kind == "AWS::Logs::LogGroup":
            return str(resource["Properties"].get("LogGroupName") or f"{stack}-{name}")
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{stack}-{name}"
        return f"{stack}-{name}"

    def _attribute(self, stack: str, logical: str, attribute: str) -> str:
        bound = self.bound.get((stack, logical), {})
        if attribute in bound:
            return bound[attribute]
        kind = self.resource(stack, logical)["Type"]
        ref = self._ref(stack, logical)
        arns = {
            ("AWS::IAM::Role", "Arn"): lambda: f"arn:aws:iam::{self.account}:role/{ref}",
            ("AWS::IAM::InstanceProfile", "Arn"): lambda: (
                f"arn:aws:iam::{self.account}:instance-profile/{ref}"
            ),
            # A log group's Arn attribute ends in ":*" (AWS::Logs::LogGroup return values).
            ("AWS::Logs::LogGroup", "Arn"): lambda: self.arn("logs", f"log-group:{ref}:*"),
            ("AWS::SQS::Queue", "Arn"): lambda: self.arn("sqs", ref.rsplit("/", 1)[-1]),
            ("AWS::EFS::FileSystem", "Arn"): lambda: self.arn("elasticfilesystem", f"file-system/{ref}"),
            ("AWS::EFS::AccessPoint", "Arn"): lambda: self.arn("elasticfilesystem", f"access-point/{ref}"),
            ("AWS::DynamoDB::Table", "Arn"): lambda: self.arn("dynamodb", f"table/{ref}"),
            ("AWS::KMS::Key", "Arn"): lambda: self.arn("kms", f"key/{ref}"),
            ("AWS::Events::Rule", "Arn"): lambda: self.arn("events", f"rule/{ref}"),
            ("AWS::Lambda::Function", "Arn"): lambda: self.arn("lambda", f"function:{ref}"),
            ("AWS::EC2::SecurityGroup", "GroupId"): lambda: "sg-" + _hex(logical),
        }
        if (kind, attribute) not in arns:
            raise NotImplementedError(f"{stack}: Fn::GetAtt {logical}.{attribute} ({kind}) is not modelled")
        return arns[(kind, attribute)]()

    def _sub(self, arg: Any, stack: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        out, rest = "", text
        while "${" in rest:
            before, _, tail = rest.partition("${")
            name, _, rest = tail.partition("}")
            out += before
            if name in variables:
                out += str(self.resolve(variables[name], stack))
            elif "." in name:
                out += self._attribute(stack, *name.split(".", 1))
            else:
                out += self._ref(stack, name)
        return out + rest

    def _import(self, export_name: str) -> str:
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == export_name:
                    return str(self.resolve(output["Value"], stack))
        raise KeyError(f"no stack exports {export_name}")

    def arn(self, service: str, resource: str) -> str:
        """An ARN of this region and account."""
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    # --- policies -------------------------------------------------------------------------------

    def role_statements(self, stack: str, role: str) -> list[Statement]:
        """Every statement granted to a role: its inline policies and each AWS::IAM::Policy naming it."""
        properties = self.resource(stack, role)["Properties"]
        if properties.get("ManagedPolicyArns"):
            raise NotImplementedError(f"{role} has managed policies, which the IAM tests cannot read")
        statements = []
        for inline in properties.get("Policies", []):
            statements += parse_policy(self.resolve(inline["PolicyDocument"], stack), inline["PolicyName"])
        for logical, policy in self.resources(stack, "AWS::IAM::Policy"):
            if {"Ref": role} in policy["Properties"].get("Roles", []):
                statements += parse_policy(
                    self.resolve(policy["Properties"]["PolicyDocument"], stack), logical
                )
        return statements

    def resource_policy(self, stack: str, logical: str, prop: str) -> list[Statement]:
        """A resource policy held in a property of the resource (e.g. an EFS FileSystemPolicy)."""
        document = self.resource(stack, logical)["Properties"].get(prop)
        return parse_policy(self.resolve(document, stack), f"{logical}.{prop}") if document else []

    def attached_policy(self, stack: str, policy_type: str, targets: str, target: str) -> list[Statement]:
        """Resource policies attached by another resource (AWS::SNS::TopicPolicy, AWS::SQS::QueuePolicy)."""
        statements = []
        for stack_name in self.templates:
            for logical, policy in self.resources(stack_name, policy_type):
                if target in [self.resolve(t, stack_name) for t in policy["Properties"][targets]]:
                    document = self.resolve(policy["Properties"]["PolicyDocument"], stack_name)
                    statements += parse_policy(document, logical)
        return statements


def _hex(seed: str, length: int = 8) -> str:
    import hashlib

    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def dump(deployment: Deployment, stack: str) -> str:
    """The stack's template (for failure messages)."""
    return json.dumps(deployment.templates[stack], indent=1)[:2000]
