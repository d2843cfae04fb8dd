"""A moto server on 127.0.0.1 with a free port, started and always stopped by a context manager."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: moto's default account; the CLI never talks to a real account while a local server runs.
LOCAL_ACCOUNT_ID = "123456789012"

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}


@dataclass(frozen=True)
class LocalServer:
    """Where a running moto server listens."""

    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
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
def fake_credentials() -> Iterator[None]:
    """Fake AWS credentials in the environment for the block, restored afterwards.

    Also hides any profile and config file so that no real credential can leak into a local run.
    """
    keys = [
        *_FAKE_CREDENTIALS,
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ]
    saved = {key: os.environ.get(key) for key in keys}
    try:
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(key, None)
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        os.environ.update(_FAKE_CREDENTIALS)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def moto_server(host: str = "127.0.0.1") -> Iterator[LocalServer]:
    """Run a `ThreadedMotoServer` on host (a free port) for the block; stop it in any case."""
    from moto.server import ThreadedMotoServer

    port = free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    with fake_credentials():
        server.start()
        try:
            yield LocalServer(host=host, port=port)
        finally:
            server.stop()
