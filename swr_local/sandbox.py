"""`swr local up|down`: the default app deployed into an emulator that keeps running in the background, so
that `swr status`, `history`, `drill`, `hold` and `resume` can be tried without an AWS account.

`up` starts `python -m swr_local.sandbox SANDBOX_DIR` in a session of its own: that process runs moto on
127.0.0.1 (in-process, so that `swr_local.gaps` can correct moto during the deploy), deploys the app,
provisions its nodes, writes `sandbox.json` (endpoint, region, pid) and serves until `down` sends it
SIGTERM. The commands then talk to it like to any endpoint; `swr drill` acts as EventBridge for it, as it
does for every local endpoint. Its moto also answers the lost-AZ control of `swr_local.gaps` (gap 8), so
that `swr drill --fault az` can lose an Availability Zone in this process.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from switcher import state

from swr_cli.aws import AwsTarget
from swr_cli.discovery import find_switchers
from swr_local.assembly import app_directory, read_assembly, synthesize
from swr_local.deploy import deploy_assembly, provision_nodes
from swr_local.emulator import FAKE_CREDENTIALS, LOCAL_ACCOUNT_ID, moto_server
from swr_local.errors import LocalRunError
from swr_local.gaps import lost_availability_zones_control

#: Overrides where the sandbox keeps its state file and log (tests; several sandboxes side by side).
DIR_VARIABLE = "SWR_SANDBOX_DIR"
STATE_FILE = "sandbox.json"
LOG_FILE = "sandbox.log"
#: A guard against a hung start, not an expectation: the first synthesis takes about a minute.
START_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 30.0


class SandboxError(LocalRunError):
    """The sandbox could not be started or stopped (the message says why, and where its log is)."""


@dataclass(frozen=True)
class Sandbox:
    """What `sandbox.json` records about a running sandbox."""

    pid: int
    endpoint_url: str
    region: str
    nodes: list[int]

    def environment(self) -> dict[str, str]:
        """The variables that point `swr` (and any AWS SDK) at the sandbox, with its fake credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }


def sandbox_dir() -> Path:
    """$SWR_SANDBOX_DIR, else $XDG_STATE_HOME/swr/sandbox (~/.local/state/swr/sandbox)."""
    if os.environ.get(DIR_VARIABLE):
        return Path(os.environ[DIR_VARIABLE])
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "swr" / "sandbox"


def _alive(pid: int) -> bool:
    try:
        # A sandbox started by this very process (a test) stays a zombie until reaped: reap it here.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: `up` ran in another process, init reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the pid now
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """True when the process has exited but nobody reaped it yet (e.g. a container without an init)."""
    try:
        # proc(5): the state is the field after the parenthesised command name.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def running(directory: Path) -> Sandbox | None:
    """The sandbox recorded in `directory` if its process still runs (a stale record is removed)."""
    path = directory / STATE_FILE
    try:
        sandbox = Sandbox(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(sandbox.pid):
        return sandbox
    path.unlink(missing_ok=True)
    return None


def up(directory: Path, *, assembly: Path | None = None) -> Sandbox:
    """Start the sandbox in the background (or return the one already running) once its nodes are ACTIVE.

    assembly: a synthesized cloud assembly (cdk.out) to deploy instead of synthesizing the default app."""
    existing = running(directory)
    if existing is not None:
        return existing
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STATE_FILE).unlink(missing_ok=True)
    log = directory / LOG_FILE
    command = [sys.executable, "-m", "swr_local.sandbox", str(directory)]
    if assembly is not None:
        command += ["--assembly", str(assembly)]
    else:
        command += ["--app-dir", str(app_directory())]  # no checkout: said here, not in the log
    with log.open("wb") as sink:
        # A session of its own: the sandbox outlives this command and the terminal's Ctrl-C.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        sandbox = running(directory)
        if sandbox is not None:
            return sandbox
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
            raise SandboxError(f"the sandbox exited with code {process.returncode} (log {log}):\n{tail}")
        time.sleep(0.2)
    process.terminate()
    process.wait(timeout=STOP_TIMEOUT_SECONDS)
    raise SandboxError(f"the sandbox was not ready within {START_TIMEOUT_SECONDS:.0f}s (log {log})")


def down(directory: Path) -> Sandbox | None:
    """Stop the running sandbox (SIGTERM, then wait until its process is gone); None when none runs."""
    sandbox = running(directory)
    if sandbox is None:
        return None
    os.kill(sandbox.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _alive(sandbox.pid):
        if time.monotonic() > deadline:
            os.kill(sandbox.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return sandbox


def describe(console: Console, sandbox: Sandbox, directory: Path, *, started: bool) -> None:
    """Tell the user where the sandbox listens and how to point `swr` at it."""
    verb = "started" if started else "already running"
    console.print(
        f"sandbox {verb}: the default app in an AWS emulator (moto) on {sandbox.endpoint_url}, "
        f"region {sandbox.region}, nodes {', '.join(map(str, sandbox.nodes))} (pid {sandbox.pid})"
    )
    console.print("point swr at it in this shell (fake credentials; no AWS account is used):")
    exports = " ".join(f"{key}={value}" for key, value in sandbox.environment().items())
    console.print(f"  export {exports}", markup=False, soft_wrap=True)
    first = sandbox.nodes[0] if sandbox.nodes else 1
    console.print(
        f"then try: swr status · swr drill {first} --fault app · swr history {first} · "
        f"swr hold {first} · swr resume {first}"
    )
    console.print(
        "durations shown there are emulator time, not AWS recovery times (modeled RTO: bench/RESULTS.md)"
    )
    console.print(f"stop it with: swr local down   [dim](log: {escape(str(directory / LOG_FILE))})[/]")


def serve(directory: Path, *, assembly: Path | None = None, app_dir: Path | None = None) -> None:
    """The sandbox process: moto, the deployed app, `sandbox.json`; serves until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    progress = io.StringIO()
    with lost_availability_zones_control(), moto_server() as server:
        print(f"moto on {server.endpoint_url}", flush=True)
        out = directory / "cdk.out"
        source = assembly if assembly is not None else synthesize(out, app_dir=app_dir)
        stacks = read_assembly(source)
        target = AwsTarget(stacks.stacks[0].region, server.endpoint_url)
        deployed = deploy_assembly(
            stacks, target, LOCAL_ACCOUNT_ID, progress=lambda m: print(m, file=progress)
        )
        provision_nodes(deployed, target)
        ddb = target.client("dynamodb")
        nodes = sorted(
            n.node_id for s in find_switchers(target) for n in state.list_nodes(ddb, s.table_name, s.vpc_name)
        )
        print(progress.getvalue(), f"nodes provisioned: {nodes}", sep="", flush=True)
        sandbox = Sandbox(
            pid=os.getpid(), endpoint_url=server.endpoint_url, region=target.region, nodes=nodes
        )
        ready = directory / f"{STATE_FILE}.tmp"
        ready.write_text(json.dumps(asdict(sandbox)))
        ready.replace(directory / STATE_FILE)  # atomic: `up` never reads half a file
        stop.wait()
        print("stopping", flush=True)
    print("stopped", flush=True)


def main(argv: list[str] | None = None) -> NoReturn:
    """`python -m swr_local.sandbox DIR [--assembly CDK_OUT | --app-dir CHECKOUT]` (what `swr local up`
    starts)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m swr_local.sandbox")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--assembly", type=Path)
    parser.add_argument("--app-dir", type=Path)
    args = parser.parse_args(argv)
    serve(args.directory, assembly=args.assembly, app_dir=args.app_dir)
    # The emulator is stopped and nothing is left to write: skip the interpreter's teardown of moto's
    # in-memory account (measured: about 4 s of `swr local down` on a loaded 2-core machine).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
