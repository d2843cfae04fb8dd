"""Global options, exit codes, `--output json` documents and the offline-first `swr validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swr_cli import main as cli_main
from swr_cli.exitcodes import ExitCode
from swr_cli.main import build_parser
from tests.helpers.aws_faults import fast_retries

from .cli_helpers import REPO

COMMANDS = {
    "validate": [],
    "status": [],
    "history": ["1"],
    "drill": ["1", "--fault", "app"],
    "hold": ["1"],
    "resume": ["1"],
    "demo": [],
}
GLOBAL = [
    "--profile",
    "ops",
    "--region",
    "eu-west-2",
    "--endpoint-url",
    "http://127.0.0.1:5",
    "--output",
    "json",
]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("where", ["after", "before"])
def test_every_command_takes_the_global_options_before_or_after_it(command: str, where: str) -> None:
    argv = (
        [command, *COMMANDS[command], *GLOBAL] if where == "after" else [*GLOBAL, command, *COMMANDS[command]]
    )
    args = build_parser().parse_args(argv)
    assert (args.profile, args.region, args.endpoint_url, args.output) == (
        "ops",
        "eu-west-2",
        "http://127.0.0.1:5",
        "json",
    )


def test_version_and_bad_option_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == ExitCode.OK
    assert capsys.readouterr().out.strip() == "swr 0.1.0"
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["status", "--output", "yaml"])
    assert exited.value.code == ExitCode.USAGE
    assert "argument --output: invalid choice: 'yaml'" in capsys.readouterr().err


def test_exit_codes_are_distinct_and_documented() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    doc = (REPO / "docs" / "cli.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | `{code.name}` |" in doc, code


def _no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without AWS credentials: no env keys, no shared files, no instance role."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _write(tmp_path: Path, config: dict[str, Any], name: str = "swr.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config, indent=2) if name.endswith(".json") else config["__yaml__"])
    return str(path)


def test_validate_without_credentials_says_the_config_is_valid_and_the_live_checks_skipped(
    swr, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_credentials(monkeypatch, tmp_path)
    result = swr("validate", "--region", "eu-west-1")
    assert result.code == ExitCode.LIVE_SKIPPED, result.out
    assert "✔ │ config is valid" in result.out
    assert "offline checks passed; live checks skipped: no AWS credentials found" in " ".join(
        result.out.split()
    )
    assert "Unable to locate credentials" not in result.out
    document = json.loads(swr("validate", "--region", "eu-west-1", "--output", "json").out)
    assert document["exit_code"] == ExitCode.LIVE_SKIPPED
    assert document["config"] == {
        "source": "swr:defaults in cdk.json",
        "valid": True,
        "errors": [],
        "warnings": [],
    }
    assert document["live"]["status"] == "skipped" and document["live"]["checks"] == []


BAD_YAML = """\
regions:
  - name: eu-west-9
    vpcs:
      - name: demo
        cidr: 10.0.0.0/16
        availability_zones: [eu-west-9a, eu-west-9b]
        nodes:
          - {id: 1, ami: ami-0123456789abcdef0, instance_type: m6i.lrage, lb: nlb}
          - {id: 2, ami: ami-0123456789abcdef0, instance_type: t3.small, lb: nlb, intance_type: x}
"""


def test_validate_reports_every_config_error_with_file_line_and_suggestion_before_anything_live(
    swr, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_credentials(monkeypatch, tmp_path)  # the config result does not wait for credentials
    path = _write(tmp_path, {"__yaml__": BAD_YAML}, "swr.yaml")
    result = swr("validate", "--config", path)
    assert result.code == ExitCode.FAILED, result.out
    flat = " ".join(result.out.replace("│", " ").split())
    assert f"{path}:2: regions[0].name: unknown region name 'eu-west-9' (did you mean 'eu-west-" in flat
    assert (
        f"{path}:8: regions[0].vpcs[0].nodes[0].instance_type: unknown instance type 'm6i.lrage' "
        "(did you mean 'm6i.large'?)"
    ) in flat
    assert f"{path}:9: regions[0].vpcs[0].nodes[1]: unknown key(s) 'intance_type'" in flat
    assert "did you mean 'instance_type'?" in flat
    assert "3 config error(s); live checks not run" in flat
    document = json.loads(swr("validate", "--config", path, "--output", "json").out)
    assert [(e["file"], e["line"], e["path"]) for e in document["config"]["errors"]] == [
        (path, 2, "regions[0].name"),
        (path, 8, "regions[0].vpcs[0].nodes[0].instance_type"),
        (path, 9, "regions[0].vpcs[0].nodes[1]"),
    ]
    assert document["live"] == {"status": "not_run", "reason": "the config is invalid", "checks": []}


def test_validate_json_lists_the_live_checks(deployment, swr) -> None:
    result = swr("validate", *deployment.args, "--output", "json")
    document = json.loads(result.out)  # stdout holds the document alone
    assert result.code == document["exit_code"] == ExitCode.OK
    assert document["ok"] is True and document["live"]["status"] == "passed"
    assert {"name", "ok", "detail"} == set(document["live"]["checks"][0])
    assert all(c["ok"] for c in document["live"]["checks"])


def test_status_history_hold_resume_json_documents(deployment, swr) -> None:
    status = json.loads(swr("status", *deployment.args, "--output", "json").out)
    assert status["command"] == "status" and status["exit_code"] == 0
    assert status["region"] == deployment.target.region
    node = next(n for n in status["nodes"] if n["node_id"] == 2)
    assert set(node) == {
        "vpc",
        "node_id",
        "state",
        "hold_reason",
        "instance_id",
        "availability_zone",
        "last_switch",
        "switches_in_window",
        "flap_max_switches",
        "flap_window_seconds",
    }
    held = json.loads(swr("hold", "2", "--reason", "patching", *deployment.args, "--output", "json").out)
    assert (held["state"], held["hold_reason"], held["exit_code"]) == ("HOLD", "patching", 0)
    resumed = json.loads(swr("resume", "2", *deployment.args, "--output", "json").out)
    assert (resumed["state"], resumed["instance_id"]) == ("ACTIVE", node["instance_id"])
    history = json.loads(swr("history", "2", *deployment.args, "--output", "json").out)
    assert (history["vpc"], history["node_id"]) == (node["vpc"], 2)
    assert isinstance(history["switches"], list)


def test_drill_json_document_and_the_switch_in_history(deployment, swr) -> None:
    result = swr("drill", "2", "--fault", "monitor", "--timeout", "60", *deployment.args, "--output", "json")
    document = json.loads(result.out)  # the live progress went to stderr
    assert result.code == document["exit_code"] == ExitCode.OK, result.out
    assert document["ok"] is True and all(c["ok"] for c in document["checks"])
    switch = document["switch"]
    assert switch["outcome"] == "SUCCEEDED" and switch["node_id"] == 2
    assert switch["timeline"][0]["phase"] == "detected" and switch["rto_seconds"] >= 0
    history = json.loads(swr("history", "2", *deployment.args, "--output", "json").out)
    assert history["switches"][0]["switch_id"] == switch["switch_id"]


def test_refusals_failures_and_aws_errors_have_their_own_codes_and_json(deployment, swr) -> None:
    region, endpoint = deployment.target.region, deployment.target.endpoint_url
    assert endpoint
    real = endpoint.replace("//127.0.0.1:", "//127.1:")  # not a host the CLI counts as local
    refused = swr(
        "drill", "1", "--fault", "app", "--region", region, "--endpoint-url", real, "--output", "json"
    )
    assert refused.code == ExitCode.REFUSED
    assert json.loads(refused.out)["error"]["kind"] == "refused"
    failed = swr("history", "99", *deployment.args, "--output", "json")
    assert failed.code == ExitCode.FAILED
    assert json.loads(failed.out)["error"] == {"kind": "failed", "message": "node 99 has no record"} or (
        "node 99 has no record" in json.loads(failed.out)["error"]["message"]
    )
    with fast_retries():  # nothing listens on port 1: botocore retries, then gives up
        unreachable = swr("status", "--region", region, "--endpoint-url", "http://127.0.0.1:1")
    assert unreachable.code == ExitCode.AWS_ERROR, unreachable.out
    assert "AWS error:" in unreachable.out


def test_no_credentials_and_an_unknown_profile(swr, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_credentials(monkeypatch, tmp_path)
    result = swr("status", "--region", "eu-west-1")
    assert result.code == ExitCode.AWS_ERROR
    assert "Unable to locate credentials (set AWS_PROFILE or pass --profile" in " ".join(result.out.split())
    result = swr("status", "--region", "eu-west-1", "--profile", "nosuch")
    assert result.code == ExitCode.USAGE
    assert "The config profile (nosuch) could not be found" in result.out


def test_demo_takes_the_global_options_and_says_they_do_not_apply(
    swr, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[int | None] = []

    def run_demo(console: Any, *, node_id: int | None = None) -> int:  # the demo itself: tests/e2e
        ran.append(node_id)
        return 0

    monkeypatch.setattr("swr_local.cli.demo", run_demo)
    result = swr("demo", "--region", "eu-west-2", "--node", "2")
    assert result.code == ExitCode.OK and ran == [2]
    assert "note: --region not used: the demo deploys the default config into its own emulator" in result.out
    assert json.loads(swr("demo", "--output", "json").out) == {"command": "demo", "exit_code": 0, "ok": True}
    assert cli_main.cmd_demo  # the command is wired
