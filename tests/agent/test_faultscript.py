"""swr-faultscript in a temp root, with fake `aws`, `shutdown`, `curl` and `logger` first on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from agent_helpers import AGENT_DIR, read_events, run_shellcheck, write_executable

FAULTSCRIPT = AGENT_DIR / "swr-faultscript"
INSTANCE_ID = "i-0123456789abcdef0"


class Root:
    """A temp root: node.env, state dir, log dir and recording fakes of the commands the script runs."""

    def __init__(self, base: Path, *, behaviour: str = "stop") -> None:
        self.base = base
        self.bin = base / "bin"
        self.bin.mkdir()
        self.logs = base / "efs"
        self.node_env = base / "node.env"
        self.node_env.write_text(
            f"SWR_NODE_ID=3\nSWR_VPC_NAME=prod\nSWR_REGION=eu-west-1\n"
            f"SWR_SHUTDOWN_BEHAVIOR={behaviour}\nSWR_LOG_DIR={self.logs}\n"
        )
        for name in ("aws", "shutdown", "logger"):
            exit_var = f"FAKE_{name.upper()}_EXIT"
            write_executable(
                self.bin / name, f'echo "$*" >> "{base}/{name}.calls"\nexit "${{{exit_var}:-0}}"\n'
            )
        write_executable(
            self.bin / "curl",
            f'echo "$*" >> "{base}/curl.calls"\n'
            '[ "${FAKE_CURL_EXIT:-0}" = 0 ] || exit "$FAKE_CURL_EXIT"\n'
            'case "$*" in\n'
            "  *api/token*) echo TOKEN ;;\n"
            f"  *meta-data/instance-id*) printf %s {INSTANCE_ID} ;;\n"
            "  *meta-data/placement/region*) printf %s eu-west-1 ;;\n"
            "  *) exit 22 ;;\n"
            "esac\n",
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "SWR_NODE_ENV": str(self.node_env),
            "SWR_STATE_DIR": str(self.base / "run"),
            **env,
        }
        return subprocess.run(
            [str(FAULTSCRIPT), *args], env=environment, capture_output=True, text=True, timeout=10
        )

    def calls(self, name: str) -> list[str]:
        path = self.base / f"{name}.calls"
        return path.read_text().splitlines() if path.exists() else []

    def log(self) -> list[dict]:
        return read_events(self.logs / "3" / "faultscript.log")


@pytest.fixture
def root(tmp_path: Path) -> Root:
    return Root(tmp_path)


def assert_never_terminates(root: Root) -> None:
    for call in root.calls("aws"):
        assert "terminate" not in call
    for call in root.calls("shutdown"):
        assert call.startswith("-h "), "shutdown must halt (stop), never reboot or anything else"


def test_stops_itself_with_stop_instances_and_logs_why(root):
    result = root.run("web", "GET /health: status 503")

    assert result.returncode == 0, result.stderr
    assert root.calls("aws") == [
        f"ec2 stop-instances --region eu-west-1 --instance-ids {INSTANCE_ID} --output text"
    ]
    assert root.calls("shutdown") == []
    assert any("X-aws-ec2-metadata-token: TOKEN" in call for call in root.calls("curl")), "must use IMDSv2"
    fault, stopped = root.log()
    assert fault["event"] == "fault" and stopped["event"] == "stop_requested"
    assert (fault["resource"], fault["reason"], fault["instance_id"]) == (
        "web",
        "GET /health: status 503",
        INSTANCE_ID,
    )
    assert fault["time"].endswith("Z")
    assert_never_terminates(root)


def test_falls_back_to_os_shutdown_when_behaviour_is_stop(root):
    result = root.run("db", "exited", FAKE_AWS_EXIT="255")

    assert result.returncode == 0, result.stderr
    assert len(root.calls("aws")) == 1
    assert root.calls("shutdown") == ["-h now swr: db failed"]
    assert root.log()[-1]["event"] == "stop_requested"
    assert "OS shutdown" in root.log()[-1]["detail"]
    assert_never_terminates(root)


def test_refuses_os_shutdown_when_behaviour_would_terminate(tmp_path):
    root = Root(tmp_path, behaviour="terminate")
    result = root.run("db", "exited", FAKE_AWS_EXIT="255")

    assert result.returncode == 2
    assert root.calls("shutdown") == [], "an OS shutdown would terminate this instance"
    assert "FAILED to stop" in result.stderr
    assert root.log()[-1]["event"] == "stop_failed"
    assert "could terminate" in root.log()[-1]["detail"]


def test_fails_loudly_when_both_ways_fail(root):
    result = root.run("db", "exited", FAKE_AWS_EXIT="255", FAKE_SHUTDOWN_EXIT="1")

    assert result.returncode == 2
    assert len(root.calls("aws")) == 1 and len(root.calls("shutdown")) == 1
    failed = root.log()[-1]
    assert failed["event"] == "stop_failed"
    assert "StopInstances failed" in failed["detail"] and "OS shutdown failed" in failed["detail"]
    assert "FAILED to stop this instance" in result.stderr
    assert not (root.base / "run" / "stop-requested").exists(), "a failed stop must be retried next call"


def test_without_imds_it_uses_the_os_shutdown_only(root):
    result = root.run("db", "exited", FAKE_CURL_EXIT="7")

    assert result.returncode == 0
    assert root.calls("aws") == []
    assert root.calls("shutdown") == ["-h now swr: db failed"]
    assert "no instance id from IMDSv2" in root.log()[-1]["detail"]


def test_idempotent_when_called_twice(root):
    first = root.run("web", "down")
    second = root.run("web", "down again")

    assert first.returncode == 0 and second.returncode == 0
    assert len(root.calls("aws")) == 1, "the second call must not ask to stop again"
    assert [e["event"] for e in root.log()] == ["fault", "stop_requested", "already_stopping"]
    assert "StopInstances" in root.log()[-1]["detail"]


def test_called_by_rms_without_arguments_names_the_application(root):
    result = root.run(HV_APPLICATION="app1")

    assert result.returncode == 0
    assert (root.log()[0]["resource"], root.log()[0]["reason"]) == ("app1", "fault reported by RMS")


def test_reason_with_quotes_and_newlines_stays_one_valid_json_line(root):
    reason = 'said "no"\nand \\ left\ttab'
    assert root.run("web", reason).returncode == 0
    lines = (root.logs / "3" / "faultscript.log").read_text().splitlines()
    assert len(lines) == 2
    assert root.log()[0]["reason"] == 'said "no" and \\ left tab'


def test_unwritable_log_dir_is_reported_but_still_stops(root):
    root.logs.write_text("a file where the EFS mount should be")
    result = root.run("web", "down")

    assert result.returncode == 0
    assert len(root.calls("aws")) == 1
    assert f"cannot write {root.logs}/3/faultscript.log" in result.stderr
    assert any('"event":"stop_requested"' in call for call in root.calls("logger"))


def test_bad_usage_is_refused():
    result = subprocess.run(
        [str(FAULTSCRIPT), "a", "b", "c"], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 64 and "usage" in result.stderr


@pytest.mark.parametrize("script", ["swr-faultscript", "install.sh"])
def test_shell_scripts_are_shellcheck_clean(script):
    run_shellcheck(AGENT_DIR / script)
