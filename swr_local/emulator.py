"""The one moto launcher: a server on 127.0.0.1 (a free port) with fake credentials, always stopped.

`swr demo`, the CLI tests, the switcher's server tests and the benchmarks all start moto through
`moto_server`: in this process (a `ThreadedMotoServer`, so that `swr_local.gaps` and the tests' fault
helpers can bend moto where it differs from AWS) or in a process of its own (the benchmarks: the server
then uses the second core instead of competing for this process's GIL).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

#: moto's default account; nothing here ever talks to a real account.
LOCAL_ACCOUNT_ID = "123456789012"
#: The region of the worlds built on the emulator (tests, benchmarks).
REGION = "us-east-1"
HOST = "127.0.0.1"

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}
#: Hidden while fake credentials are in force, so that no real credential can leak into a local run.
_REAL_CREDENTIAL_SOURCES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
_CONFIG_FILES = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@dataclass(frozen=True)
class LocalServer:
    """Where a running moto server listens."""

    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (None: remove) these environment variables for the block; restore every one afterwards."""
    saved = {key: os.environ.get(key) for key in values}

    def apply(settings: Mapping[str, str | None]) -> None:
        for key, value in settings.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    apply(values)
    try:
        yield
    finally:
        apply(saved)


def fake_credentials(region: str | None = None) -> AbstractContextManager[None]:
    """Fake AWS credentials (and `region` as AWS_DEFAULT_REGION, if given) in the environment for the
    block, every profile and config file hidden; the environment is restored afterwards."""
    fake: dict[str, str | None] = {**FAKE_CREDENTIALS, **dict.fromkeys(_CONFIG_FILES, os.devnull)}
    fake.update(dict.fromkeys(_REAL_CREDENTIAL_SOURCES))
    if region is not None:
        fake["AWS_DEFAULT_REGION"] = region
    return environment(fake)


def _wait_open(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited early with code {process.returncode}")
        if port_is_open(HOST, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"moto server did not listen on {HOST}:{port} within {timeout} s")


@contextmanager
def _server_process(port: int, timeout: float) -> Iterator[None]:
    process = subprocess.Popen(
        # moto's server with swr_local.gaps applied (swr_local/moto_server.py).
        [sys.executable, "-m", "swr_local.moto_server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_open(port, process, timeout)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(
    *, own_process: bool = False, region: str | None = None, timeout: float = 30.0
) -> Iterator[LocalServer]:
    """Run moto on 127.0.0.1 (a free port) with fake credentials for the block; stop it in any case.

    own_process: moto's server in a child process instead of a `ThreadedMotoServer` here (patches of moto
    made in this process do not reach it then). Either way moto runs with `swr_local.gaps`'s network-interface
    gaps applied (the child: `swr_local.moto_server`)."""
    from swr_local.gaps import network_interface_gaps

    with fake_credentials(region), network_interface_gaps():
        port = free_port(HOST)
        if own_process:
            with _server_process(port, timeout):
                yield LocalServer(host=HOST, port=port)
            return
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        server.start()
        try:
            yield LocalServer(host=HOST, port=port)
        finally:
            server.stop()
