"""Where the CLI talks to: a region and, optionally, an endpoint (a local emulator)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

#: Hosts that count as "local": an endpoint there is an emulator, never a real account.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_CACHE_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, str, str | None, str | None, str | None], Any] = {}
_SESSIONS: dict[tuple[str, str | None, str | None, str | None], boto3.session.Session] = {}

_RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """True when endpoint_url points at this machine (an emulator such as moto)."""
    if not endpoint_url:
        return False
    return (urlparse(endpoint_url).hostname or "") in LOCAL_HOSTS


@dataclass(frozen=True)
class AwsTarget:
    """A region and an optional endpoint URL; hands out boto3 clients for it."""

    region: str
    endpoint_url: str | None = None
    _session: Any = field(default=None, compare=False, repr=False)
    #: A named profile of the shared config/credentials files (--profile); None: boto3's default chain.
    profile: str | None = None

    @classmethod
    def from_args(cls, region: str | None, endpoint_url: str | None, profile: str | None = None) -> AwsTarget:
        """Region from --region, AWS_REGION, AWS_DEFAULT_REGION or the profile; endpoint from --endpoint-url
        or AWS_ENDPOINT_URL (which boto3 itself also honours). An unknown profile raises botocore's
        ProfileNotFound."""
        resolved_region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if profile:
            boto3.session.Session(profile_name=profile)  # ProfileNotFound now, not at the first call
        if not resolved_region:
            session_region = boto3.session.Session(profile_name=profile).region_name
            if not session_region:
                raise ValueError("no AWS region: pass --region or set AWS_REGION")
            resolved_region = session_region
        return cls(
            region=resolved_region,
            endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
            profile=profile,
        )

    def has_credentials(self) -> bool:
        """True when boto3's credential chain (with the profile) finds credentials; no AWS call."""
        return self._boto_session().get_credentials() is not None

    def _boto_session(self) -> boto3.session.Session:
        if self._session is not None:
            return self._session
        key = (self.region, self.endpoint_url, os.environ.get("AWS_ACCESS_KEY_ID"), self.profile)
        with _CACHE_LOCK:
            return _SESSIONS.setdefault(key, boto3.session.Session(profile_name=self.profile))

    @property
    def is_local(self) -> bool:
        return is_local_endpoint(self.endpoint_url)

    def client(self, service: str) -> Any:
        """A client of `service` for this region and endpoint, created once per process and reused
        (creating a botocore client loads its service model: ~0.1-0.3 s each)."""
        factory: Any
        if self._session is not None:
            factory = self._session.client
            return factory(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=_RETRY_CONFIG
            )
        # Keyed on the credentials in the environment too: a local run swaps in fake ones.
        key = (service, self.region, self.endpoint_url, os.environ.get("AWS_ACCESS_KEY_ID"), self.profile)
        session = self._boto_session()
        with _CACHE_LOCK:
            if key not in _CLIENTS:
                factory = session.client
                _CLIENTS[key] = factory(
                    service, region_name=self.region, endpoint_url=self.endpoint_url, config=_RETRY_CONFIG
                )
            return _CLIENTS[key]
