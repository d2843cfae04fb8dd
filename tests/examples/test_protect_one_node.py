"""examples/protect_one_node: one node protected inside a platform team's own CDK app.

Synthesized once (as `cdk synth --app "python3 examples/protect_one_node/app.py"` does, with the
repository's cdk.json feature flags): cdk-nag and cfn-lint find nothing, nothing is looked up, the
existing VPC is imported (not created) and the one node gets everything swr gives a node.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from aws_cdk import App
from cfnlint.api import ManualArgs, lint_file
from switcher import contract

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "protect_one_node" / "app.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protect_one_node_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory):
    example = _example()
    outdir = tmp_path_factory.mktemp("example")
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    flags = {k: v for k, v in context.items() if not k.startswith("swr:")}
    app = App(outdir=str(outdir), context=flags)
    stack = example.build(app)
    assembly = app.synth()
    return example, outdir, assembly, assembly.get_stack_by_name(stack.stack_name).template


def _of_type(template: dict, resource_type: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == resource_type]


def test_cdk_nag_reports_no_unacknowledged_finding(synthesized):
    _, outdir, _, _ = synthesized
    # build() registers cdk-nag as a policy-validation plugin: a finding would have failed app.synth(),
    # and the report written next to the template must list no violation either.
    report = json.loads((outdir / "validation-report.json").read_text())
    assert [v for r in report.get("pluginReports", []) for v in r.get("violations", [])] == []


def test_cfn_lint_finds_no_error(synthesized):
    example, outdir, _, _ = synthesized
    matches = lint_file(outdir / f"{example.STACK_NAME}.template.json", ManualArgs(regions=[example.REGION]))
    assert [str(m) for m in matches if m.rule.id.startswith("E")] == []


def test_the_existing_vpc_is_imported_by_its_ids_without_a_lookup(synthesized):
    example, outdir, _, template = synthesized
    # No context lookup pending (a lookup would need an account and AWS calls at synth).
    assert "missing" not in json.loads((outdir / "manifest.json").read_text())
    assert _of_type(template, "AWS::EC2::VPC") == []
    assert _of_type(template, "AWS::EC2::Subnet") == []
    (switcher,) = [
        f
        for f in _of_type(template, "AWS::Lambda::Function")
        if f["Properties"].get("Handler") == "switcher.handler.lambda_handler"
    ]
    assert switcher["Properties"]["Environment"]["Variables"][contract.ENV_VPC_ID] == example.VPC_ID
    (flow_log,) = _of_type(template, "AWS::EC2::FlowLog")
    assert flow_log["Properties"]["ResourceId"] == example.VPC_ID
    mount_target_subnets = {m["Properties"]["SubnetId"] for m in _of_type(template, "AWS::EFS::MountTarget")}
    assert mount_target_subnets == set(example.PRIVATE_SUBNET_IDS)


def test_the_one_node_gets_a_load_balancer_launch_template_and_its_provisioning(synthesized):
    _, _, _, template = synthesized
    assert len(_of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")) == 1
    (launch_template,) = _of_type(template, "AWS::EC2::LaunchTemplate")
    tags = {
        t["Key"]: t["Value"]
        for spec in launch_template["Properties"]["LaunchTemplateData"]["TagSpecifications"]
        if spec["ResourceType"] == "instance"
        for t in spec["Tags"]
    }
    # The switcher may launch only from templates tagged with its VPC (its IAM policy's condition).
    assert tags[contract.TAG_VPC] == "orders"
    (provisioning,) = _of_type(template, contract.NODE_RESOURCE_TYPE)
    assert provisioning["Properties"][contract.PROP_NODE_ID] == "1"
    assert len(_of_type(template, "AWS::DynamoDB::Table")) == 1
    assert len(_of_type(template, "AWS::SNS::Topic")) == 1
    # The team's client group reaches the node's load balancer on its listener port.
    (clients,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::EC2::SecurityGroup" and k.startswith("OrderServiceClients")
    ]
    (egress,) = [
        e
        for e in _of_type(template, "AWS::EC2::SecurityGroupEgress")
        if e["Properties"]["GroupId"] == {"Fn::GetAtt": [clients, "GroupId"]}
    ]
    assert egress["Properties"]["FromPort"] == egress["Properties"]["ToPort"] == 5432
