"""swr-monitor against real local things: a process, a TCP listener and an HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import AGENT_DIR, read_events, wait_for, write_executable
from swr_agent import swr_monitor
from swr_agent.swr_monitor import ConfigError, Monitor, check_command, parse_config

INTERVAL = 0.03


@pytest.fixture
def fault_calls(tmp_path: Path) -> Path:
    """A fake FaultScript recording each call's arguments as one line."""
    calls = tmp_path / "fault-calls"
    write_executable(tmp_path / "fake-faultscript", f'printf "%s|%s\\n" "$1" "$2" >> "{calls}"\n')
    return calls


def call_lines(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def config_text(tmp_path: Path, checks: str, grace: float = 0.0) -> str:
    return (
        f"[monitor]\nnode_id = 7\nlog_dir = {tmp_path / 'logs'}\n"
        f"faultscript = {tmp_path / 'fake-faultscript'}\nfaultscript_timeout = 5\ngrace = {grace}\n\n{checks}"
    )


@pytest.fixture
def run_monitor(tmp_path: Path) -> Iterator:
    started: list[Monitor] = []

    def start(checks: str, grace: float = 0.0) -> Monitor:
        monitor = Monitor(parse_config(config_text(tmp_path, checks, grace), env={}))
        monitor.start()
        started.append(monitor)
        return monitor

    yield start
    for monitor in started:
        monitor.stop()


def events(monitor: Monitor, name: str) -> list[dict]:
    return [e for e in read_events(monitor.config.log_file) if e["event"] == name]


def test_tcp_listener_stopped_is_confirmed_after_exactly_threshold_failures(run_monitor, fault_calls):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    monitor = run_monitor(
        f"[check:tcp]\ntype = tcp\nhost = 127.0.0.1\nport = {port}\n"
        f"interval = {INTERVAL}\ntimeout = 0.5\nthreshold = 3\n"
    )
    time.sleep(INTERVAL * 5)
    assert events(monitor, "check_failed") == [], "a listening port must count as healthy"

    listener.close()
    assert wait_for(lambda: len(call_lines(fault_calls)) == 1)
    time.sleep(INTERVAL * 8)  # the failure goes on: still one FaultScript call for this episode

    assert [e["failures"] for e in events(monitor, "check_failed")] == [1, 2, 3]
    [confirmed] = events(monitor, "failure_confirmed")
    assert confirmed["failures"] == 3 and confirmed["check"] == "tcp"
    assert call_lines(fault_calls) == [f"tcp|{confirmed['reason']}"]
    assert f"127.0.0.1:{port}" in confirmed["reason"]
    [called] = events(monitor, "faultscript_called")
    assert called["exit_code"] == 0


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


def test_http_one_faultscript_call_per_failure_episode(run_monitor, fault_calls):
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    monitor = run_monitor(
        f"[check:web]\ntype = http\nurl = {url}\nexpect_status = 200,204\n"
        f"interval = {INTERVAL}\ntimeout = 1\nthreshold = 2\n"
    )
    try:
        time.sleep(INTERVAL * 4)
        assert call_lines(fault_calls) == []

        handler.status = 503  # first episode: the app answers but is unhealthy
        assert wait_for(lambda: len(call_lines(fault_calls)) == 1)
        assert "status 503" in call_lines(fault_calls)[0]

        handler.status = 204  # recovers ...
        assert wait_for(lambda: len(events(monitor, "check_recovered")) == 1)
        assert len(call_lines(fault_calls)) == 1
    finally:
        server.shutdown()  # ... and then the server is gone: a second episode
        server.server_close()
    assert wait_for(lambda: len(call_lines(fault_calls)) == 2)
    time.sleep(INTERVAL * 6)
    assert len(call_lines(fault_calls)) == 2
    assert [e["failures"] for e in events(monitor, "failure_confirmed")] == [2, 2]


def test_process_by_name_and_pidfile_detected_when_killed(run_monitor, fault_calls, tmp_path):
    # A copy of sleep under a unique name, so no other process on the machine matches it.
    binary = tmp_path / f"swrt{os.getpid() % 100000}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "30"])
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(f"{process.pid}\n")
    monitor = run_monitor(
        f"[check:by-name]\ntype = process\nname = {binary.name}\ninterval = {INTERVAL}\nthreshold = 2\n"
        f"[check:by-pidfile]\ntype = process\npidfile = {pidfile}\ninterval = {INTERVAL}\nthreshold = 2\n"
    )
    try:
        time.sleep(INTERVAL * 4)
        assert events(monitor, "check_failed") == []
        process.kill()  # not reaped yet: a zombie must count as dead
        assert wait_for(lambda: len(call_lines(fault_calls)) == 2)
    finally:
        process.kill()
        process.wait()
    assert sorted(line.split("|")[0] for line in call_lines(fault_calls)) == ["by-name", "by-pidfile"]


def test_no_detection_during_grace_then_threshold_counts_from_grace_end(run_monitor, fault_calls):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: the check fails from the very start
    grace = 0.5
    monitor = run_monitor(
        f"[check:app]\ntype = tcp\nhost = 127.0.0.1\nport = {port}\ninterval = {INTERVAL}\nthreshold = 2\n",
        grace=grace,
    )
    time.sleep(grace * 0.7)
    assert call_lines(fault_calls) == []
    assert events(monitor, "failure_confirmed") == []
    assert len(events(monitor, "check_failed_in_grace")) >= 3

    assert wait_for(lambda: len(call_lines(fault_calls)) == 1)
    assert [e["failures"] for e in events(monitor, "check_failed")] == [1, 2]


def test_hung_command_is_killed_at_its_timeout(tmp_path):
    pidfile = tmp_path / "hung.pid"
    reason = check_command({"command": f"sh -c 'echo $$ > {pidfile}; exec sleep 30'"}, 0.3)

    # The check returned (it did not wait out the 30 s sleep) and the hung command is gone.
    assert reason is not None and "timed out after 0.3s" in reason
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_check_hanging_outside_a_command_is_abandoned_at_timeout(run_monitor, fault_calls, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(swr_monitor, "HANG_SLACK_SECONDS", 0.05)
    monkeypatch.setitem(swr_monitor.CHECKS, "tcp", lambda params, timeout: release.wait(30) and None)
    try:
        monitor = run_monitor(
            "[check:stuck]\ntype = tcp\nhost = 127.0.0.1\nport = 9\n"
            "interval = 0.01\ntimeout = 0.1\nthreshold = 2\n"
        )
        # The fault script ran while the check still hangs (`release` is set only below).
        assert wait_for(lambda: len(call_lines(fault_calls)) == 1)
        assert not release.is_set()
        assert "hung for more than 0.1s" in events(monitor, "failure_confirmed")[0]["reason"]
    finally:
        release.set()


def test_command_check_exit_code(tmp_path):
    assert check_command({"command": "true"}, 1.0) is None
    assert check_command({"command": "sh -c 'exit 3'", "expect_exit": "3"}, 1.0) is None
    assert check_command({"command": "false"}, 1.0) == "command exited 1, expected 0"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "[monitor]\nnode_id = 1\n\n[check:a]\ntype = tcp\nhost = x\nport = 80\nintreval = 3\n",
            8,
            "intreval",
        ),
        ("[check:a]\ntype = tcp\nhost localhost\n", 3, "expected 'key = value'"),
        ("[check:a]\ntype = tcp\nhost = x\nport = 70000\n", 4, "port must be 1-65535"),
        ("[check:a]\ntype = http\nurl = http://x/\ntimeout = soon\n", 4, "timeout must be a number"),
        ("[check:a]\ntype = ping\n", 2, "unknown check type 'ping'"),
        ("[checks]\n", 1, "unknown section [checks]"),
        ("[check:a]\ntype = process\nname = x\nthreshold = 0\n", 4, "threshold must be greater than 0"),
    ],
)
def test_bad_config_line_is_named(text, line, needle):
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "monitor.conf", env={"SWR_NODE_ID": "1"})
    assert f"monitor.conf:{line}:" in str(raised.value)
    assert needle in str(raised.value)


def test_node_id_and_log_dir_come_from_the_node_env_and_example_is_valid(tmp_path):
    example = (AGENT_DIR / "monitor.conf.example").read_text()
    config = parse_config(example, "example", env={"SWR_NODE_ID": "42", "SWR_LOG_DIR": str(tmp_path)})
    assert config.log_file == tmp_path / "42" / "monitor.log"
    assert [c.type for c in config.checks] == ["process"]
    with pytest.raises(ConfigError, match="node_id"):
        parse_config(example, "example", env={})


def test_a_check_confirms_a_failure_within_15_seconds_by_default() -> None:
    """5 s x 3: confirmed 10-15 s after a failure starts (the lever table in bench/RESULTS.md), in the
    parser's defaults and in the example a node is installed with."""
    example = (AGENT_DIR / "monitor.conf.example").read_text()
    shipped = parse_config(example, "example", env={"SWR_NODE_ID": "1"}).checks[0]
    bare = parse_config("[check:x]\ntype = process\nname = x\n", "bare", env={"SWR_NODE_ID": "1"}).checks[0]
    for check in (shipped, bare):
        assert (check.interval, check.threshold) == (5.0, 3)


def test_missing_log_dir_is_created_and_unwritable_one_is_reported(tmp_path, capsys):
    log = swr_monitor.EventLog(tmp_path / "not" / "yet" / "7" / "monitor.log", "7")
    log.write("monitor_started")
    assert read_events(log.path)[0]["event"] == "monitor_started"

    blocker = tmp_path / "file-in-the-way"
    blocker.write_text("")
    broken = swr_monitor.EventLog(blocker / "7" / "monitor.log", "7")
    broken.write("check_failed", check="x")  # must not raise
    assert f"cannot write {blocker / '7' / 'monitor.log'}" in capsys.readouterr().err


def test_runs_as_a_script_calls_faultscript_and_stops_on_sigterm(tmp_path, fault_calls):
    conf = tmp_path / "monitor.conf"
    conf.write_text(
        config_text(tmp_path, f"[check:selftest]\ntype = command\ncommand = false\ninterval = {INTERVAL}\n")
    )
    bad = tmp_path / "bad.conf"
    bad.write_text("[check:x]\ntype = tcp\nport = 1\n")
    script = AGENT_DIR / "swr_monitor.py"

    refused = subprocess.run(
        [sys.executable, str(script), "--config", str(bad)], capture_output=True, text=True
    )
    assert refused.returncode == 78 and f"{bad}:1: a tcp check needs 'host'" in refused.stderr

    daemon = subprocess.Popen(
        [sys.executable, str(script), "--config", str(conf)], stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(lambda: len(call_lines(fault_calls)) == 1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    log = read_events(tmp_path / "logs" / "7" / "monitor.log")
    assert log[0]["event"] == "monitor_started"
    assert log[-1]["event"] == "monitor_stopped"
    assert call_lines(fault_calls) == ["selftest|command exited 1, expected 0"]
