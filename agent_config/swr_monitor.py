#!/usr/bin/env python3
"""swr-monitor: run a node's health checks; on a confirmed failure call the FaultScript once.

A small daemon for nodes without PRIMECLUSTER RMS. Python stdlib only, one file: install.sh copies
it to /usr/local/bin/swr-monitor and systemd runs it (swr-monitor.service, Restart=always). The
CloudWatch agent watches this process; if it dies, the node's monitor alarm fires.

It runs on the node's system python3, which is Python 3.9 on both supported distributions (Amazon
Linux 2023 and RHEL 9): it must not use anything newer. ``make lint`` checks that with vermin.

Configuration (INI-like, ``/etc/swr/monitor.conf``; see monitor.conf.example)::

    [monitor]
    grace = 60                # seconds after start-up during which failures do not count
    [check:web]
    type = http               # process | tcp | http | command
    url = http://127.0.0.1:8080/health
    interval = 5              # seconds between attempts
    timeout = 3               # an attempt taking longer is a failure (and a command is killed)
    threshold = 3             # consecutive failures that confirm a failure

Every state change is one JSON line in ``<log_dir>/<node_id>/monitor.log`` (and on stderr, i.e. the
journal). A bad line in the configuration fails start-up with a message naming the file and line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "/etc/swr/monitor.conf"
DEFAULT_LOG_DIR = "/var/log/swr"
DEFAULT_FAULTSCRIPT = "/usr/local/sbin/swr-faultscript"
LOG_FILE_NAME = "monitor.log"
CHECK_TYPES = ("process", "tcp", "http", "command")

MONITOR_KEYS = {"node_id", "log_dir", "faultscript", "faultscript_timeout", "grace"}
COMMON_CHECK_KEYS = {"type", "interval", "timeout", "threshold"}
TYPE_KEYS = {
    "process": {"name", "pidfile"},
    "tcp": {"host", "port"},
    "http": {"url", "expect_status"},
    "command": {"command", "expect_exit"},
}
#: A check every 5 s, 3 failures in a row: a failure is confirmed 10-15 s after it starts (was 20-30 s
#: at 10 s), about when the load balancer's own 5 s x 2 check marks the target unhealthy. Detection is
#: the largest piece of a recovery swr controls (bench P1, lever table: 10 s -> 5 s saves ~10 s of RTO).
#: Shorter still (2 s: 4-6 s) would fail over a whole instance on a pause of a few seconds.
CHECK_DEFAULTS = {"interval": 5.0, "timeout": 5.0, "threshold": 3}
#: Extra time an attempt may take beyond its timeout before the loop gives up on it as hung.
HANG_SLACK_SECONDS = 1.0


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the file and line."""


@dataclass(frozen=True)
class CheckConfig:
    """One health check as declared in the configuration."""

    name: str
    type: str
    interval: float
    timeout: float
    threshold: int
    params: dict[str, str]


@dataclass(frozen=True)
class MonitorConfig:
    """The monitor's settings and its checks."""

    node_id: str
    log_dir: Path
    faultscript: str
    faultscript_timeout: float
    grace: float
    checks: tuple[CheckConfig, ...]

    @property
    def log_file(self) -> Path:
        """The node's monitor log on the monitor-log EFS."""
        return self.log_dir / self.node_id / LOG_FILE_NAME


# --- configuration --------------------------------------------------------------------------------


def _parse_lines(text: str, source: str) -> list[tuple[str, dict[str, tuple[str, int]], int]]:
    """Split the file into sections of ``key -> (value, line number)``; reject malformed lines."""
    sections: list[tuple[str, dict[str, tuple[str, int]], int]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{source}:{number}"
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(f"{where}: malformed section header {raw.strip()!r}")
            name = line[1:-1].strip()
            if name in seen:
                raise ConfigError(f"{where}: section [{name}] declared twice")
            seen.add(name)
            sections.append((name, {}, number))
            continue
        if "=" not in line:
            raise ConfigError(f"{where}: expected 'key = value', got {raw.strip()!r}")
        if not sections:
            raise ConfigError(f"{where}: {raw.strip()!r} is outside any [section]")
        key, value = (part.strip() for part in line.split("=", 1))
        # An inline comment needs whitespace before '#', so URLs with fragments stay intact.
        value = value.split(" #", 1)[0].strip()
        entries = sections[-1][1]
        if key in entries:
            raise ConfigError(f"{where}: key {key!r} repeated in [{sections[-1][0]}]")
        entries[key] = (value, number)
    return sections


def _number(value: str, where: str, key: str, *, integer: bool = False, minimum: float = 0.0) -> float:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: {key} must be {kind}, got {value!r}") from None
    if number <= minimum:
        raise ConfigError(f"{where}: {key} must be greater than {minimum:g}, got {value!r}")
    return number


def parse_config(text: str, source: str = "<config>", env: dict[str, str] | None = None) -> MonitorConfig:
    """Parse and validate a configuration; node id and log dir default to SWR_NODE_ID / SWR_LOG_DIR."""
    env = dict(os.environ) if env is None else env
    monitor: dict[str, tuple[str, int]] = {}
    checks: list[CheckConfig] = []
    for section, entries, header_line in _parse_lines(text, source):
        if section == "monitor":
            for key, (_, number) in entries.items():
                if key not in MONITOR_KEYS:
                    raise ConfigError(
                        f"{source}:{number}: unknown key {key!r} in [monitor] (known: {sorted(MONITOR_KEYS)})"
                    )
            monitor = entries
        elif section.startswith("check:") and section[len("check:") :].strip():
            checks.append(_parse_check(section[len("check:") :].strip(), entries, source, header_line))
        else:
            raise ConfigError(
                f"{source}:{header_line}: unknown section [{section}] (expected [monitor] or [check:NAME])"
            )
    if not checks:
        raise ConfigError(f"{source}: no [check:NAME] section: nothing to monitor")

    def setting(key: str, fallback: str) -> tuple[str, str]:
        if key in monitor:
            value, number = monitor[key]
            return value, f"{source}:{number}"
        return fallback, source

    node_id, _ = setting("node_id", env.get("SWR_NODE_ID", ""))
    if not node_id or "/" in node_id or node_id in {".", ".."}:
        raise ConfigError(f"{source}: node_id {node_id!r} is not usable (set it in [monitor] or SWR_NODE_ID)")
    log_dir, _ = setting("log_dir", env.get("SWR_LOG_DIR", DEFAULT_LOG_DIR))
    faultscript, _ = setting("faultscript", DEFAULT_FAULTSCRIPT)
    fs_timeout, fs_where = setting("faultscript_timeout", "120")
    grace, grace_where = setting("grace", "60")
    return MonitorConfig(
        node_id=node_id,
        log_dir=Path(log_dir),
        faultscript=faultscript,
        faultscript_timeout=_number(fs_timeout, fs_where, "faultscript_timeout"),
        grace=_number(grace, grace_where, "grace", minimum=-1e-9),
        checks=tuple(checks),
    )


def _parse_check(name: str, entries: dict[str, tuple[str, int]], source: str, header: int) -> CheckConfig:
    if "type" not in entries:
        raise ConfigError(
            f"{source}:{header}: [check:{name}] has no 'type' (one of {', '.join(CHECK_TYPES)})"
        )
    check_type, type_line = entries["type"]
    if check_type not in CHECK_TYPES:
        raise ConfigError(
            f"{source}:{type_line}: unknown check type {check_type!r} (one of {', '.join(CHECK_TYPES)})"
        )
    allowed = COMMON_CHECK_KEYS | TYPE_KEYS[check_type]
    params: dict[str, str] = {}
    for key, (value, number) in entries.items():
        if key not in allowed:
            raise ConfigError(
                f"{source}:{number}: unknown key {key!r} for a {check_type} check (known: {sorted(allowed)})"
            )
        if key not in COMMON_CHECK_KEYS:
            params[key] = value
    numbers: dict[str, float] = {}
    for key, default in CHECK_DEFAULTS.items():
        if key in entries:
            value, number = entries[key]
            numbers[key] = _number(value, f"{source}:{number}", key, integer=key == "threshold")
        else:
            numbers[key] = default
    where = f"{source}:{header}"
    _validate_params(check_type, params, entries, source, where)
    return CheckConfig(
        name=name,
        type=check_type,
        interval=numbers["interval"],
        timeout=numbers["timeout"],
        threshold=int(numbers["threshold"]),
        params=params,
    )


def _validate_params(
    check_type: str, params: dict[str, str], entries: dict[str, tuple[str, int]], source: str, where: str
) -> None:
    def line_of(key: str) -> str:
        return f"{source}:{entries[key][1]}"

    if check_type == "process" and len(params) != 1:
        raise ConfigError(f"{where}: a process check needs exactly one of 'name' or 'pidfile'")
    if check_type == "tcp":
        for key in ("host", "port"):
            if key not in params:
                raise ConfigError(f"{where}: a tcp check needs {key!r}")
        port = params["port"]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{line_of('port')}: port must be 1-65535, got {port!r}")
    if check_type == "http":
        url = params.get("url", "")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{line_of('url') if 'url' in params else where}: url must be http(s)://, got {url!r}"
            )
        for status in params.get("expect_status", "200").split(","):
            if not status.strip().isdigit():
                raise ConfigError(f"{line_of('expect_status')}: expect_status must list status codes")
    if check_type == "command":
        if not params.get("command"):
            raise ConfigError(f"{where}: a command check needs 'command'")
        try:
            shlex.split(params["command"])
        except ValueError as error:
            raise ConfigError(f"{line_of('command')}: cannot split command: {error}") from None
        if not params.get("expect_exit", "0").lstrip("-").isdigit():
            raise ConfigError(f"{line_of('expect_exit')}: expect_exit must be an integer")


def load_config(path: str | Path, env: dict[str, str] | None = None) -> MonitorConfig:
    """Read and validate the configuration file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    return parse_config(text, str(path), env)


# --- checks (each returns None when healthy, else the reason) -------------------------------------


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The state follows the parenthesised command name, which may itself contain ')'.
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


def check_process(params: dict[str, str], timeout: float) -> str | None:
    """Healthy when a live process has this name (/proc/PID/comm) or the pidfile's pid is alive."""
    if "pidfile" in params:
        try:
            pid = int(Path(params["pidfile"]).read_text(encoding="ascii").strip())
        except (OSError, ValueError) as error:
            return f"pidfile {params['pidfile']}: {error}"
        return None if _process_alive(pid) else f"process {pid} from {params['pidfile']} is not running"
    name = params["name"]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if comm == name[:15] and _process_alive(int(entry.name)):  # the kernel keeps 15 chars
            return None
    return f"no running process named {name!r}"


def check_tcp(params: dict[str, str], timeout: float) -> str | None:
    """Healthy when a TCP connection to host:port is accepted within the timeout."""
    try:
        with socket.create_connection((params["host"], int(params["port"])), timeout=timeout):
            return None
    except OSError as error:
        return f"tcp {params['host']}:{params['port']}: {error}"


def check_http(params: dict[str, str], timeout: float) -> str | None:
    """Healthy when a GET of the url answers one of the expected status codes."""
    expected = {int(code) for code in params.get("expect_status", "200").split(",")}
    request = urllib.request.Request(params["url"], method="GET")  # noqa: S310 - scheme validated
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        return f"GET {params['url']}: {error}"
    return (
        None if status in expected else f"GET {params['url']}: status {status}, expected {sorted(expected)}"
    )


def check_command(params: dict[str, str], timeout: float) -> str | None:
    """Healthy when the command exits with the expected code; killed (whole group) at the timeout."""
    argv = shlex.split(params["command"])
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so the kill reaches its children too
        )
    except OSError as error:
        return f"command {argv[0]!r}: {error}"
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return f"command timed out after {timeout:g}s and was killed"
    expected = int(params.get("expect_exit", "0"))
    return None if code == expected else f"command exited {code}, expected {expected}"


CHECKS: dict[str, Callable[[dict[str, str], float], str | None]] = {
    "process": check_process,
    "tcp": check_tcp,
    "http": check_http,
    "command": check_command,
}


def run_with_timeout(check: CheckConfig) -> str | None:
    """Run one attempt; an attempt still running after its timeout (plus slack) counts as failed.

    Commands kill themselves at the timeout; the thread bound guards against a check that hangs
    somewhere else (a stuck DNS lookup, an NFS read of a pidfile) so the loop never hangs with it.
    """
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            outcome.append(CHECKS[check.type](check.params, check.timeout))
        except Exception as error:  # noqa: BLE001 - a broken check is a failed check, never a crash
            outcome.append(f"check raised {type(error).__name__}: {error}")

    worker = threading.Thread(target=attempt, name=f"attempt-{check.name}", daemon=True)
    worker.start()
    worker.join(check.timeout + HANG_SLACK_SECONDS)
    if worker.is_alive() or not outcome:
        return f"check hung for more than {check.timeout:g}s"
    return outcome[0]


# --- the daemon -----------------------------------------------------------------------------------


class EventLog:
    """JSON lines to the node's log file and stderr; a missing directory is created or reported."""

    def __init__(self, path: Path, node_id: str) -> None:
        self.path = path
        self.node_id = node_id
        self._lock = threading.Lock()
        self._reported_unwritable = False

    def write(self, event: str, **fields: Any) -> None:
        """Record one event; never raises (the monitor must not be the thing that fails)."""
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "source": "swr-monitor",
            "node_id": self.node_id,
            "event": event,
            **fields,
        }
        line = json.dumps(record, default=str)
        with self._lock:
            print(line, file=sys.stderr, flush=True)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as log:
                    log.write(line + "\n")
                self._reported_unwritable = False
            except OSError as error:
                if not self._reported_unwritable:
                    self._reported_unwritable = True
                    print(f"swr-monitor: cannot write {self.path}: {error}", file=sys.stderr, flush=True)


@dataclass
class CheckState:
    """Run-time state of one check: consecutive failures and whether its episode is confirmed."""

    config: CheckConfig
    failures: int = 0
    confirmed: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)


class Monitor:
    """Runs every check in its own thread; calls the FaultScript once per confirmed failure episode."""

    def __init__(self, config: MonitorConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.log = EventLog(config.log_file, config.node_id)
        self.states = [CheckState(check) for check in config.checks]
        self.stopping = threading.Event()
        self.started_at = 0.0
        self._faultscript_lock = threading.Lock()

    def in_grace(self) -> bool:
        """True during the start-up grace period, when failures are logged but do not count."""
        return self.clock() - self.started_at < self.config.grace

    def start(self) -> None:
        """Start one thread per check."""
        self.started_at = self.clock()
        self.log.write(
            "monitor_started",
            grace_seconds=self.config.grace,
            checks=[{"name": c.name, "type": c.type, "threshold": c.threshold} for c in self.config.checks],
        )
        for state in self.states:
            state.thread = threading.Thread(
                target=self._loop, args=(state,), name=state.config.name, daemon=True
            )
            state.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every check loop to finish and wait for them."""
        self.stopping.set()
        for state in self.states:
            if state.thread is not None:
                state.thread.join(timeout)
        self.log.write("monitor_stopped")

    def _loop(self, state: CheckState) -> None:
        check = state.config
        while not self.stopping.is_set():
            began = self.clock()
            reason = run_with_timeout(check)
            if self.stopping.is_set():
                break
            self._record(state, reason)
            self.stopping.wait(max(0.0, check.interval - (self.clock() - began)))

    def _record(self, state: CheckState, reason: str | None) -> None:
        check = state.config
        if reason is None:
            if state.failures or state.confirmed:
                self.log.write("check_recovered", check=check.name, after_failures=state.failures)
            state.failures = 0
            state.confirmed = False
            return
        if self.in_grace():
            self.log.write("check_failed_in_grace", check=check.name, reason=reason)
            return
        if state.confirmed:
            return  # the episode is already handled; one FaultScript call per episode
        state.failures += 1
        self.log.write(
            "check_failed",
            check=check.name,
            reason=reason,
            failures=state.failures,
            threshold=check.threshold,
        )
        if state.failures >= check.threshold:
            state.confirmed = True
            self.log.write("failure_confirmed", check=check.name, reason=reason, failures=state.failures)
            self.call_faultscript(check.name, reason)

    def call_faultscript(self, resource: str, reason: str) -> int | None:
        """Run the FaultScript with the failed check and the reason; log and return its exit code."""
        argv = [self.config.faultscript, resource, reason]
        with self._faultscript_lock:
            try:
                completed = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=self.config.faultscript_timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                self.log.write("faultscript_failed", check=resource, command=argv, error=str(error))
                return None
        event = "faultscript_called" if completed.returncode == 0 else "faultscript_failed"
        self.log.write(
            event,
            check=resource,
            command=argv,
            exit_code=completed.returncode,
            stderr=completed.stderr.strip()[-2000:],
        )
        return completed.returncode


def main(argv: list[str] | None = None) -> int:
    """Command line: ``swr-monitor [--config PATH] [--check-config]``."""
    parser = argparse.ArgumentParser(
        prog="swr-monitor", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--config", default=os.environ.get("SWR_MONITOR_CONFIG", DEFAULT_CONFIG))
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"swr-monitor: bad configuration: {error}", file=sys.stderr)
        return 78  # EX_CONFIG
    if args.check_config:
        print(f"swr-monitor: {args.config} is valid ({len(config.checks)} checks)")
        return 0
    monitor = Monitor(config)
    signal.signal(signal.SIGTERM, lambda *_: monitor.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: monitor.stopping.set())
    monitor.start()
    monitor.stopping.wait()
    monitor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
