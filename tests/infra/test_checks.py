"""Whole-app checks: cdk-nag finds nothing unacknowledged, cfn-lint finds no error, app.py synthesizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

REPO = Path(__file__).resolve().parents[2]

#: Acceptance: both ways of synthesizing the default config take at most this long, offline.


@pytest.mark.parametrize("app_fixture", ["default_app", "multi_app"])
def test_cdk_nag_reports_no_unacknowledged_finding(request, app_fixture):
    app = request.getfixturevalue(app_fixture)
    # cdk-nag 3.x reports through CDK policy validation: a finding would have failed app.synth();
    # the report written next to the templates must list no violation either.
    reports = app.validation_report().get("pluginReports", [])
    violations = [v for report in reports for v in report.get("violations", [])]
    assert violations == []


@pytest.mark.parametrize("app_fixture", ["default_app", "multi_app"])
def test_cfn_lint_finds_no_error_in_any_template(request, app_fixture):
    app = request.getfixturevalue(app_fixture)
    errors = []
    for name, template in app.raw.items():
        region = template.get("_region") or _region_of(name, app)
        matches = lint_file(app.outdir / f"{name}.template.json", ManualArgs(regions=[region]))
        # Warnings (hard-coded AZs, which config gives on purpose) are not errors.
        errors += [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def _region_of(stack_name: str, app) -> str:
    return next(r.name for r in app.config.regions if stack_name.startswith(f"swr-{r.name}"))


def test_python3_app_py_synthesizes_the_default_config_offline(tmp_path):
    # Offline and account-less: no AWS credentials, no region, outputs into tmp via CDK_OUTDIR.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CDK_OUTDIR=str(tmp_path), AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = sorted(k for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack")
    assert stacks == ["swr-eu-west-1", "swr-eu-west-1-demo"]
    # How long it takes is measured by bench/p4_cost.py (synth time), not asserted here.


def test_a_bad_config_file_fails_synth_with_every_error_its_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "regions:\n- name: eu-west-1\n  vpcs:\n  - name: a\n    cidr: 10.0.0.0/16\n"
        "    availability_zones: [eu-west-1a, eu-west-1b]\n"
        "    nodes:\n"
        "    - {id: 1, ami: ami-0123456789abcdef0, instance_type: t3.small, lb: elb}\n"
        "    - {id: 2, ami: ami-0123456789abcdef0, instance_type: m6i.lrage, lb: nlb}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import sys, app; sys.argv[:] = ['app.py']; app.main()"],
        cwd=REPO,
        env={
            **os.environ,
            "CDK_OUTDIR": str(tmp_path / "out"),
            "CDK_CONTEXT_JSON": json.dumps({"swr:config": str(bad)}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-2:] == [
        f"swr config error: {bad}:8: regions[0].vpcs[0].nodes[0].lb: "
        "unknown load balancer kind 'elb' (expected nlb|alb)",
        # an instance type EC2 does not have fails synth too (botocore's EC2 model, offline)
        f"swr config error: {bad}:9: regions[0].vpcs[0].nodes[1].instance_type: "
        "unknown instance type 'm6i.lrage' (did you mean 'm6i.large'?)",
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cdk_json_runs_app_py_and_keeps_the_defaults():
    cdk_json = json.loads(Path(REPO / "cdk.json").read_text())
    assert cdk_json["app"] == "python3 app.py"
    assert "swr:defaults" in cdk_json["context"]
