"""CloudWatch agent config, user data and AMI recipe: schema-level checks and names from the contract."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path

import boto3
import pytest
import yaml
from agent_helpers import AGENT_DIR, run_shellcheck
from moto import mock_aws
from switcher import aws as switcher_aws
from switcher import contract
from swr_agent import swr_monitor
from swr_agent.cwagent import (
    AGENT_CONFIG_PATH,
    AGENT_CTL_PATH,
    DEFAULT_CONFIG_FILE,
    DEFAULT_MONITOR_PROCESS,
    DEFAULT_VPC_NAME,
    render_agent_config,
    render_agent_config_json,
)
from swr_agent.paths import MONITOR_LOG_MOUNT
from swr_agent.userdata import USER_DATA_MOUNT, render_user_data

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


#: The pid_finder the agent's config translator sets when a procstat entry names none (cwagent.py's docstring,
#: docs/on-instance.md). The rendered config names none: the dimension value relies on this default.
AGENT_DEFAULT_PID_FINDER = "native"
#: What the agent substitutes for ``${aws:InstanceId}`` in append_dimensions: the instance's own id.
INSTANCE_ID = "i-0123456789abcdef0"


def published_pid_count_metric(config: dict, instance_id: str) -> tuple[str, str, dict[str, str]]:
    """(namespace, metric name, dimensions) the agent publishes the procstat pid count with, per its
    documented behaviour: ``procstat_lookup_<measurement>`` in the config's namespace; dimensions = the
    selector key (exe | pattern | pid_file) with its value, ``pid_finder``, and append_dimensions (which
    also drop ``host``); ``user`` and ``result`` tags are excluded by the agent."""
    metrics = config["metrics"]
    [procstat] = metrics["metrics_collected"]["procstat"]
    [selector] = {"exe", "pattern", "pid_file"} & procstat.keys()
    [measurement] = procstat["measurement"]
    dimensions = {
        selector: procstat[selector],
        "pid_finder": procstat.get("pid_finder", AGENT_DEFAULT_PID_FINDER),
    }
    for name, value in metrics["append_dimensions"].items():
        assert value == "${aws:InstanceId}", f"{name}: only the instance id is substituted here"
        dimensions[name] = instance_id
    return metrics["namespace"], f"procstat_lookup_{measurement}", dimensions


@pytest.mark.parametrize("monitor_process", sorted(contract.MONITOR_PROCESS_PATTERNS))
def test_the_agent_publishes_exactly_the_metric_the_switchers_monitor_alarm_watches(monitor_process):
    config = render_agent_config(vpc_name="prod", monitor_process=monitor_process)
    [procstat] = config["metrics"]["metrics_collected"]["procstat"]
    # The config leaves pid_finder to the agent's default (AGENT_DEFAULT_PID_FINDER): say so explicitly.
    assert "pid_finder" not in procstat
    assert "aggregation_dimensions" not in config["metrics"], "aggregation would publish other dimension sets"
    namespace, metric_name, dimensions = published_pid_count_metric(config, INSTANCE_ID)

    expected = switcher_aws.monitor_alarm_dimensions(INSTANCE_ID, monitor_process)
    assert dimensions == {d["Name"]: d["Value"] for d in expected} and len(expected) == len(dimensions)

    # ... and the alarm the switcher actually creates for the node selects that very metric
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        switcher_aws.put_node_alarms(
            cloudwatch, vpc_name="prod", node_id=3, instance_id=INSTANCE_ID, monitor_process=monitor_process
        )
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[contract.monitor_alarm_name("prod", 3)])[
            "MetricAlarms"
        ]
    assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric_name)
    assert sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]) == sorted(dimensions.items())
    # one datapoint per agent collection interval: the alarm's period is the procstat interval
    assert alarm["Period"] == procstat["metrics_collection_interval"]


#: The agent sends a metric batch at most this long after collecting it when ``metrics.force_flush_interval``
#: is absent (plugins/outputs/cloudwatch: defaultForceFlushInterval = time.Minute).
AGENT_DEFAULT_METRICS_FLUSH_SECONDS = 60


@pytest.mark.parametrize("monitor_process", sorted(contract.MONITOR_PROCESS_PATTERNS))
def test_every_pid_count_datapoint_is_sent_before_the_next_one_is_collected(monitor_process):
    """Left at the agent's 60 s default, the monitor alarm's 10 s datapoints reach CloudWatch a minute
    at a time and the 3 x 10 s alarm fires 60-90 s after the monitor died instead of about 30-50 s."""
    metrics = render_agent_config(vpc_name="prod", monitor_process=monitor_process)["metrics"]
    flush = metrics.get("force_flush_interval", AGENT_DEFAULT_METRICS_FLUSH_SECONDS)
    # the agent's JSON schema: timeIntervalDefinition, an integer number of seconds in 1..172800
    assert isinstance(flush, int) and 1 <= flush <= 172800
    [procstat] = metrics["metrics_collected"]["procstat"]
    assert flush < procstat["metrics_collection_interval"] == contract.MONITOR_INTERVAL_SECONDS


def test_monitor_faultscript_user_data_and_agent_agree_on_the_monitor_log_mount():
    """swr-monitor and the FaultScript write under the monitor-log EFS even without SWR_LOG_DIR, and the
    agent ships what they write from there."""
    faultscript = (AGENT_DIR / "swr-faultscript").read_text(encoding="utf-8")
    default = re.search(r'^log_dir="\$\{SWR_LOG_DIR:-([^}]*)\}/\$node_id"$', faultscript, re.M)
    assert default, "the FaultScript no longer derives log_dir from SWR_LOG_DIR"
    script = render_user_data(**NODE)
    logs_mount = re.search(rf"^add_mount '{NODE['logs_file_system_id']}' '([^']+)'", script, re.M)
    assert logs_mount, "the user data no longer mounts the monitor-log EFS"

    assert swr_monitor.DEFAULT_LOG_DIR == default.group(1) == MONITOR_LOG_MOUNT == logs_mount.group(1)
    assert f"SWR_LOG_DIR={MONITOR_LOG_MOUNT}\n" in _heredoc(script, "SWR_ENV")
    monitor_log = swr_monitor.parse_config("[check:x]\ntype = process\nname = x\n", env={"SWR_NODE_ID": "3"})
    agent = render_agent_config(vpc_name="prod", monitor_process="swr-monitor")
    agent_files = [e["file_path"] for e in agent["logs"]["logs_collected"]["files"]["collect_list"]]
    assert monitor_log.log_file == Path(MONITOR_LOG_MOUNT, "3", "monitor.log")
    assert any(fnmatch(str(monitor_log.log_file), pattern) for pattern in agent_files), agent_files
    assert any(fnmatch(f"{default.group(1)}/3/faultscript.log", pattern) for pattern in agent_files)


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
