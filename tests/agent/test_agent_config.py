"""CloudWatch agent config, user data and AMI recipe: schema-level checks and names from the contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from agent_helpers import AGENT_DIR, run_shellcheck
from switcher import contract
from swr_agent.cwagent import (
    AGENT_CONFIG_PATH,
    AGENT_CTL_PATH,
    DEFAULT_CONFIG_FILE,
    DEFAULT_MONITOR_PROCESS,
    DEFAULT_VPC_NAME,
    render_agent_config,
    render_agent_config_json,
)
from swr_agent.userdata import MONITOR_LOG_MOUNT, USER_DATA_MOUNT, render_user_data

NODE = {
    "node_id": 3,
    "vpc_name": "prod",
    "region": "eu-west-1",
    "logs_file_system_id": "fs-0aaa",
    "logs_access_point_id": "fsap-0bbb",
    "data_file_system_id": "fs-0ccc",
}


def test_committed_default_config_equals_the_rendering():
    rendered = render_agent_config_json(vpc_name=DEFAULT_VPC_NAME, monitor_process=DEFAULT_MONITOR_PROCESS)
    assert DEFAULT_CONFIG_FILE.read_text(encoding="utf-8") == rendered, (
        "regenerate with: .venv/bin/python -m swr_agent.cwagent"
    )


@pytest.mark.parametrize("monitor_process", sorted(contract.MONITOR_PROCESS_PATTERNS))
def test_procstat_selects_the_configured_monitor_process_every_10_seconds(monitor_process):
    config = json.loads(render_agent_config_json(vpc_name="prod", monitor_process=monitor_process))
    [procstat] = config["metrics"]["metrics_collected"]["procstat"]

    assert procstat[contract.MONITOR_SELECTOR_KEY] == contract.MONITOR_PROCESS_PATTERNS[monitor_process]
    assert {"exe", "pid_file", "pattern"} & procstat.keys() == {contract.MONITOR_SELECTOR_KEY}
    assert procstat["metrics_collection_interval"] == contract.MONITOR_INTERVAL_SECONDS == 10
    assert procstat["measurement"] == ["pid_count"]


def test_metric_and_dimensions_are_the_ones_the_monitor_alarm_uses():
    config = render_agent_config(vpc_name="prod", monitor_process="swr-monitor")
    metrics = config["metrics"]
    [procstat] = metrics["metrics_collected"]["procstat"]
    # The agent names the metric procstat_lookup_<measurement> in the configured namespace.
    assert f"procstat_lookup_{procstat['measurement'][0]}" == contract.MONITOR_METRIC_NAME
    assert metrics["namespace"] == contract.MONITOR_METRIC_NAMESPACE
    # Dimensions the agent publishes: InstanceId (append_dimensions), the selector key, pid_finder.
    assert metrics["append_dimensions"] == {"InstanceId": "${aws:InstanceId}"}
    assert "pid_finder" not in procstat or procstat["pid_finder"] == contract.MONITOR_PID_FINDER
    assert "aggregation_dimensions" not in metrics, "aggregation would publish other dimension sets"


def test_memory_and_disk_metrics_are_collected():
    collected = render_agent_config(vpc_name="prod", monitor_process="rms")["metrics"]["metrics_collected"]
    assert "mem_used_percent" in collected["mem"]["measurement"]
    assert "used_percent" in collected["disk"]["measurement"]


@pytest.mark.parametrize("monitor_process", sorted(contract.MONITOR_PROCESS_PATTERNS))
def test_logs_from_the_efs_mount_go_to_the_vpc_log_group_per_instance(monitor_process):
    config = render_agent_config(vpc_name="prod", monitor_process=monitor_process)
    collect = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert collect
    for entry in collect:
        assert entry["file_path"].startswith(MONITOR_LOG_MOUNT + "/")
        assert entry["log_group_name"] == contract.monitor_log_group_name("prod") == "/swr/prod/monitor"
        assert "{instance_id}" in entry["log_stream_name"]
    assert {Path(e["file_path"]).name for e in collect} >= {"faultscript.log"}


def test_unknown_monitor_process_is_refused_by_name():
    with pytest.raises(ValueError, match="'pacemaker'"):
        render_agent_config(vpc_name="prod", monitor_process="pacemaker")


def _heredoc(script: str, marker: str) -> str:
    match = re.search(rf"<<'{marker}'\n(.*?)\n{marker}\n", script, re.S)
    assert match, f"no {marker} heredoc"
    return match.group(1)


def test_user_data_mounts_both_efs_with_tls_netdev_and_the_node_access_point():
    script = render_user_data(**NODE)
    assert f"add_mount 'fs-0aaa' '{MONITOR_LOG_MOUNT}' '_netdev,tls,iam,accesspoint=fsap-0bbb'" in script
    assert "data_fs_id='fs-0ccc'" in script and f"'{USER_DATA_MOUNT}' '_netdev,tls,iam'" in script
    assert "SWR_NODE_ID=3\n" in _heredoc(script, "SWR_ENV")
    assert "SWR_SHUTDOWN_BEHAVIOR=stop\n" in _heredoc(script, "SWR_ENV")


def test_user_data_writes_the_vpc_agent_config_and_starts_the_agent():
    script = render_user_data(**NODE)
    written = json.loads(_heredoc(script, "SWR_CWAGENT"))
    assert written == render_agent_config(vpc_name="prod", monitor_process="swr-monitor")
    assert f"cat > '{AGENT_CONFIG_PATH}'" in script
    assert f"'{AGENT_CTL_PATH}' -a fetch-config -m ec2 -c 'file:{AGENT_CONFIG_PATH}' -s" in script


def test_user_data_starts_swr_monitor_only_when_it_is_the_monitor():
    assert "start_swr_monitor='yes'" in render_user_data(**NODE)
    with_rms = render_user_data(**NODE, monitor_process="rms")
    assert "start_swr_monitor='no'" in with_rms
    assert (
        json.loads(_heredoc(with_rms, "SWR_CWAGENT"))["metrics"]["metrics_collected"]["procstat"][0][
            contract.MONITOR_SELECTOR_KEY
        ]
        == contract.MONITOR_PROCESS_PATTERNS["rms"]
    )


def test_user_data_passes_cdk_tokens_through_untouched():
    token = "${Token[TOKEN.123]}"
    script = render_user_data(
        **{**NODE, "vpc_name": token, "logs_file_system_id": token, "data_file_system_id": None}
    )
    assert f"add_mount '{token}'" in script
    assert f'"/swr/{token}/monitor"' in script
    assert "data_fs_id=''" in script


def test_user_data_refuses_an_unknown_shutdown_behaviour():
    with pytest.raises(ValueError, match="'hibernate'"):
        render_user_data(**NODE, shutdown_behavior="hibernate")


@pytest.mark.parametrize("variant", [{}, {"monitor_process": "rms", "data_file_system_id": None}])
def test_rendered_user_data_is_shellcheck_clean(tmp_path, variant):
    script = tmp_path / "user-data.sh"
    script.write_text(render_user_data(**{**NODE, **variant}))
    run_shellcheck(script)


def test_imagebuilder_component_parses_and_installs_files_that_exist():
    component = yaml.safe_load((AGENT_DIR / "imagebuilder-component.yaml").read_text())
    assert component["schemaVersion"] == 1.0
    phases = {phase["name"]: phase["steps"] for phase in component["phases"]}
    assert set(phases) == {"build", "validate"}
    actions = [step["action"] for steps in phases.values() for step in steps]
    assert set(actions) <= {"S3Download", "ExecuteBash"}
    commands = " ".join(
        c for step in phases["build"] if step["action"] == "ExecuteBash" for c in step["inputs"]["commands"]
    )
    referenced = re.findall(r"agent_config/([\w.-]+)", commands)
    assert "install.sh" in referenced
    for name in referenced:
        assert (AGENT_DIR / name).is_file(), name


def test_install_script_installs_every_on_instance_file_that_exists():
    install = (AGENT_DIR / "install.sh").read_text()
    sources = set(re.findall(r'"\$src_dir/([\w.-]+)"', install))
    assert sources >= {
        "swr_monitor.py",
        "swr-faultscript",
        "swr-monitor.service",
        "monitor.conf.example",
        "amazon-cloudwatch-agent.json",
    }
    for name in sources:
        assert (AGENT_DIR / name).is_file(), name
    for package in ("amazon-cloudwatch-agent", "amazon-efs-utils"):
        assert package in install
    assert "systemctl enable amazon-cloudwatch-agent" in install


def test_systemd_unit_restarts_always_and_runs_the_installed_monitor():
    unit = (AGENT_DIR / "swr-monitor.service").read_text()
    assert "\nRestart=always\n" in unit
    assert "\nExecStart=/usr/local/bin/swr-monitor --config /etc/swr/monitor.conf\n" in unit
    assert "\nEnvironmentFile=/etc/swr/node.env\n" in unit
    assert "\nWantedBy=multi-user.target\n" in unit
