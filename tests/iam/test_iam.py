"""IAM, proven offline: every AWS request of the switcher and of a node, in representative scenarios, is
allowed by the synthesized role policies (and the resource policies that apply); and every operation the
switcher's code can call is exercised by a scenario. moto checks no IAM, so without this the first real
deployment is where a missing permission would show."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from switcher import contract

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.iam_requests import _key_allowed, sar_action
from tests.helpers.iam_templates import Deployment
from tests.helpers.iam_world import COVERAGE_KEY, IamWorld, build_iam_world
from tests.iam.scenarios import SCENARIO_NODE, SCENARIOS

SWITCHER_SOURCE = Path(__file__).resolve().parents[2] / "lambda_src" / "switcher"
#: The switcher's boto3 clients (switcher/clients.py) and their services.
CLIENT_SERVICES = ("ec2", "elbv2", "cloudwatch", "dynamodb", "sns", "events")
#: Global condition keys a policy may use on any action ("AWS global condition context keys").
GLOBAL_CONDITION_KEYS = ("aws:SecureTransport", "aws:SourceArn", "aws:SourceAccount", "aws:PrincipalArn")


@pytest.fixture(scope="module")
def runs(iam_templates: dict[str, dict[str, Any]], moto_iam: FaultInjector) -> dict[str, IamWorld]:
    """Every scenario, each in a fresh world deployed from the synthesized templates."""
    out = {}
    for name, (scenario, order) in SCENARIOS.items():
        moto_iam.faults.clear()
        moto_iam.dying_subnets.clear()
        iw = build_iam_world(iam_templates, order=order, node_id=SCENARIO_NODE.get(name, "1"))
        scenario(iw, moto_iam)
        out[name] = iw
    moto_iam.faults.clear()
    moto_iam.dying_subnets.clear()
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_request_of_the_scenario_is_allowed(runs: dict[str, IamWorld], scenario: str) -> None:
    iw = runs[scenario]
    problems = [p for item in iw.recorded for p in item.problems]
    assert not problems, "requests that could not be mapped to IAM:\n" + "\n".join(problems)
    decisions = iw.decisions()
    assert decisions, f"{scenario} recorded no request"
    denied = [d.explain() for d in decisions if not d.allowed]
    assert not denied, f"{scenario}: {len(denied)} request(s) denied:\n" + "\n".join(sorted(set(denied)))


def _client_operations() -> dict[str, set[str]]:
    """boto3 method name -> the operations (service:Operation) of the switcher's clients it can be."""
    session = botocore.session.get_session()
    methods: dict[str, set[str]] = {}
    for service in CLIENT_SERVICES:
        model = session.get_service_model(service)
        for operation in model.operation_names:
            methods.setdefault(xform_name(operation), set()).add(f"{service}:{operation}")
    return methods


def _waiter_operations(service: str, waiter: str) -> set[str]:
    session = botocore.session.get_session()
    model = session.get_waiter_model(service)
    config = model.get_waiter(xform_name(waiter, "_").replace("_", " ").title().replace(" ", ""))
    return {f"{service}:{config.operation}"}


def switcher_operations() -> set[str]:
    """Every AWS operation the switcher's code can call, read from its source (AST): client method
    calls, paginators and waiters of the services its clients talk to."""
    methods = _client_operations()
    found: set[str] = set()
    for path in sorted(SWITCHER_SOURCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            literal = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if name == "get_paginator" and isinstance(literal, str):
                found |= methods[literal]
            elif name == "get_waiter" and isinstance(literal, str):
                found |= _waiter_operations("ec2", literal)
            elif name in methods and name not in ("get_paginator", "get_waiter"):
                found |= methods[name]
    return found


def test_every_operation_the_switcher_can_call_is_exercised_by_a_scenario(
    runs: dict[str, IamWorld], request: pytest.FixtureRequest
) -> None:
    recorded = {
        f"{item.service}:{item.operation}"
        for iw in runs.values()
        for item in iw.recorded
        if item.principal == iw.switcher_arn and item.service in CLIENT_SERVICES
    }
    static = switcher_operations()
    # A method name shared by several services (e.g. describe_tags) is covered by any of them.
    by_name: dict[str, set[str]] = {}
    for op in static:
        by_name.setdefault(op.split(":", 1)[1], set()).add(op)
    uncovered = sorted(name for name, ops in by_name.items() if not ops & recorded)
    assert not uncovered, f"operations the switcher can call but no IAM scenario exercises: {uncovered}"
    lines = [f"switcher: {op}" for op in sorted(recorded)]
    lines += sorted(
        {
            f"{'node' if item.principal == iw.node_arn else 'lambda'}: {item.service}:{item.operation}"
            for iw in runs.values()
            for item in iw.recorded
            if not (item.principal == iw.switcher_arn and item.service in CLIENT_SERVICES)
        }
    )
    request.config.stash[COVERAGE_KEY] = lines
    assert len(recorded) >= len(by_name)


def test_the_static_scan_finds_the_operations_in_the_code() -> None:
    # The scan must see what the code plainly calls, or the coverage test above would prove nothing.
    static = switcher_operations()
    assert {
        "ec2:RunInstances",
        "ec2:DescribeSubnets",
        "cloudwatch:PutMetricAlarm",
        "dynamodb:TransactWriteItems",
    } <= static
    assert "ec2:DescribeInstanceTypeOfferings" not in static


def test_every_hand_written_switcher_grant_is_used(runs: dict[str, IamWorld]) -> None:
    """Least privilege: each action of the switcher's own (Sid) statements is needed by some request."""
    used = {
        (s.sid, d.request.action.lower())
        for iw in runs.values()
        for d in iw.decisions()
        if d.allowed
        for s in d.deciding
    }
    iw = next(iter(runs.values()))
    unused = sorted(
        f"{s.sid}: {action}"
        for s in iw.identity(iw.switcher_arn)
        if s.sid
        for action in s.actions
        if (s.sid, action.lower()) not in used
    )
    assert not unused, f"granted to the switcher but never needed: {unused}"


def test_every_action_and_condition_key_of_the_policies_exists(runs: dict[str, IamWorld]) -> None:
    """A misspelt action or condition key would silently grant nothing: check them against the
    Service Authorization Reference (tag keys after the `/` are free-form and not checked)."""
    iw = next(iter(runs.values()))
    problems = []
    for principal in (iw.switcher_arn, iw.node_arn):
        for statement in iw.identity(principal):
            allowed: list[str] = list(GLOBAL_CONDITION_KEYS)
            for pattern in statement.actions:
                if "*" in pattern:
                    continue  # kms:GenerateDataKey* (from topic.grant_publish)
                try:
                    entry = sar_action(pattern)
                except Exception as err:
                    problems.append(f"{statement.name}: {err}")
                    continue
                allowed += entry.get("conditionKeys", [])
                for resource_type in entry["resourceTypes"]:
                    allowed += resource_type["conditionKeys"]
            for block in statement.conditions.values():
                for key in block:
                    if not _key_allowed(key, allowed):
                        problems.append(f"{statement.name}: condition key {key} is not one of its actions'")
    assert not problems, "\n".join(problems)


# --- the check fails when the policy is wrong ----------------------------------------------------


def _mutated(iw: IamWorld, edit: Any) -> IamWorld:
    templates = copy.deepcopy(iw.deployment.templates)
    policy = templates[iw.vpc_stack]["Resources"]
    for resource in policy.values():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": iw.switcher_role} in resource["Properties"]["Roles"]
        ):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                edit(statement)
    deployment = Deployment(templates=templates, region=iw.deployment.region, bound=dict(iw.deployment.bound))
    return IamWorld(**{**iw.__dict__, "deployment": deployment})


def _denied(iw: IamWorld) -> list[str]:
    return [d.explain() for d in iw.decisions() if not d.allowed]


def test_removing_tag_resource_from_the_policy_denies_the_tagged_alarm(runs: dict[str, IamWorld]) -> None:
    def drop(statement: dict[str, Any]) -> None:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "cloudwatch:TagResource"] or [
            "cloudwatch:DescribeAlarms"
        ]

    denied = _denied(_mutated(runs["provisioning-create"], drop))
    assert denied and all("cloudwatch:TagResource on arn:aws:cloudwatch:" in d for d in denied), denied


@pytest.mark.parametrize(
    ("right", "wrong", "denied_action"),
    [
        (f"aws:RequestTag/{contract.TAG_VPC}", "aws:RequestTag/swr:vcp", "ec2:RunInstances"),
        (f"ec2:ResourceTag/{contract.TAG_VPC}", "ec2:ResourceTags/swr:vpc", "ec2:StopInstances"),
    ],
)
def test_a_misspelt_condition_key_denies(
    runs: dict[str, IamWorld], right: str, wrong: str, denied_action: str
) -> None:
    def misspell(statement: dict[str, Any]) -> None:
        text = json.dumps(statement)
        statement.clear()
        statement.update(json.loads(text.replace(f'"{right}"', f'"{wrong}"')))

    denied = _denied(_mutated(runs["switch-on-alarm"], misspell))
    assert any(denied_action in d and wrong in d for d in denied), denied
