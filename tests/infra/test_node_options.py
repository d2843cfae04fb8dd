"""Node options that the shared test configs do not exercise: a node without a user-data EFS."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import App, Environment
from switcher import contract

from swr_stacks.config import parse_config
from swr_stacks.stacks import RegionalStack, VpcStack

REPO = Path(__file__).resolve().parents[2]


def test_node_without_user_data_efs_gets_no_data_file_system_or_permission(tmp_path):
    raw = json.loads((REPO / "cdk.json").read_text())["context"]["swr:defaults"]
    raw["regions"][0]["vpcs"][0]["nodes"] = [
        raw["regions"][0]["vpcs"][0]["nodes"][0] | {"user_data_efs": False}
    ]
    config = parse_config(raw)
    region, vpc = config.regions[0], config.regions[0].vpcs[0]
    # No cdk-nag plugin here: this synth checks only the shape (the whole app is nag-checked elsewhere).
    app = App(outdir=str(tmp_path))
    env = Environment(region=region.name)
    regional = RegionalStack(app, "r", env=env)
    VpcStack(app, "v", vpc_config=vpc, config=config, regional=regional, env=env)
    template = app.synth().get_stack_by_name("v").template
    resources = template["Resources"].values()
    file_systems = [r for r in resources if r["Type"] == "AWS::EFS::FileSystem"]
    assert len(file_systems) == 1  # only the VPC's monitor-log EFS
    (launch_template,) = [r for r in resources if r["Type"] == "AWS::EC2::LaunchTemplate"]
    user_data = json.dumps(launch_template["Properties"]["LaunchTemplateData"]["UserData"])
    assert "accesspoint=" in user_data  # the monitor-log EFS is still mounted
    node_policies = [
        s
        for r in resources
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") in {"DataEfs", "MonitorLogEfs"}
    ]
    assert [s["Sid"] for s in node_policies] == ["MonitorLogEfs"]
    (node,) = [r for r in resources if r["Type"] == contract.NODE_RESOURCE_TYPE]
    assert node["Properties"][contract.PROP_NODE_ID] == "1"
