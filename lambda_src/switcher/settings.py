"""Switcher settings: read from the environment once per invocation and validated at entry."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from switcher import contract

SWITCH_ORDERS = ("swr", "vendor")

#: How often the switcher's waiters poll DescribeInstances (the fence's wait-stopped, wait-running). 2 s,
#: not botocore's 15 s nor the former 5 s: a forced stop takes seconds, and every poll interval is time
#: the replacement's launch waits (bench P1, lever table: 5 s -> 2 s shortens the fence by ~2 s). The
#: cost is DescribeInstances calls: EC2 throttles each API per account and Region with a token bucket
#: (non-mutating actions such as DescribeHosts: 100 tokens, refilled at 20 per second; "Request throttling
#: for the Amazon EC2 API", Amazon EC2 Developer Guide). A waiter at 2 s spends 0.5 token/s; even ten
#: switches at once (the default reserved concurrency) use 5 of the 20 per second, leaving the account's
#: own tooling three quarters. 1 s would halve the tokens left for ~0.5 s more gain.
WAITER_DELAY_SECONDS = 2.0
#: The longest a waiter may wait (seconds); attempts = this / the delay, well inside the 900 s Lambda timeout.
WAITER_MAX_WAIT_SECONDS = 600


class SettingsError(ValueError):
    """A required environment variable is missing or has a bad value."""


@dataclass(frozen=True)
class Settings:
    """Everything the switch logic needs that is not a client or an event.

    `waiter_delay_seconds`/`waiter_max_attempts` are here (not hard-coded) so a benchmark harness can scale
    the waiters to its latency model; `retry_max_attempts` feeds botocore's retry mode.
    """

    table_name: str
    topic_arn: str
    blackhole_sg_id: str
    vpc_name: str
    vpc_id: str
    switch_order: str = "swr"
    flap_max_switches: int = 3
    flap_window_seconds: int = 3600
    lease_seconds: int = 930
    history_ttl_days: int = 90
    #: How often the VPC's schedule invokes the reconciler (the stacks set both from one value).
    reconcile_interval_seconds: int = 60
    #: A switch older than this is counted by the NodesSwitchingOverdue gauge.
    switch_overdue_seconds: int = 1800
    #: The forced stop's deadline (from the moment it was sent); then the network fence (docs/fencing.md).
    fence_timeout_seconds: int = 300
    #: How long an invocation waits for the forced stop (from the stop) before it parks the switch until
    #: the fence deadline; a stop not done by then is stuck (docs/fencing.md).
    fence_inline_wait_seconds: int = 30
    #: A running node whose monitor metric is silent this long is switched by the reconciler; shorter
    #: silences (a booting instance) are not (docs/detection.md).
    silent_after_seconds: int = 300
    waiter_delay_seconds: float = WAITER_DELAY_SECONDS
    waiter_max_attempts: int = int(WAITER_MAX_WAIT_SECONDS // WAITER_DELAY_SECONDS)
    retry_mode: str = "adaptive"
    retry_max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.switch_order not in SWITCH_ORDERS:
            raise SettingsError(
                f"{contract.ENV_SWITCH_ORDER}={self.switch_order!r}: "
                f"expected one of {', '.join(SWITCH_ORDERS)}"
            )
        for name in (
            "flap_max_switches",
            "flap_window_seconds",
            "lease_seconds",
            "history_ttl_days",
            "reconcile_interval_seconds",
            "switch_overdue_seconds",
            "fence_timeout_seconds",
            "fence_inline_wait_seconds",
            "silent_after_seconds",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}={getattr(self, name)!r}: must be a positive integer")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the Lambda environment, naming every missing or malformed variable."""
        env = os.environ if environ is None else environ
        required = {
            "table_name": contract.ENV_TABLE_NAME,
            "topic_arn": contract.ENV_TOPIC_ARN,
            "blackhole_sg_id": contract.ENV_BLACKHOLE_SG_ID,
            "vpc_name": contract.ENV_VPC_NAME,
            "vpc_id": contract.ENV_VPC_ID,
        }
        missing = [var for var in required.values() if not env.get(var)]
        if missing:
            raise SettingsError(f"missing environment variable(s): {', '.join(missing)}")

        def _int(var: str, default: int) -> int:
            raw = env.get(var)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"{var}={raw!r}: expected an integer") from None

        return cls(
            table_name=env[contract.ENV_TABLE_NAME],
            topic_arn=env[contract.ENV_TOPIC_ARN],
            blackhole_sg_id=env[contract.ENV_BLACKHOLE_SG_ID],
            vpc_name=env[contract.ENV_VPC_NAME],
            vpc_id=env[contract.ENV_VPC_ID],
            switch_order=env.get(contract.ENV_SWITCH_ORDER) or "swr",
            flap_max_switches=_int(contract.ENV_FLAP_MAX_SWITCHES, 3),
            flap_window_seconds=_int(contract.ENV_FLAP_WINDOW_SECONDS, 3600),
            lease_seconds=_int(contract.ENV_LEASE_SECONDS, 930),
            history_ttl_days=_int(contract.ENV_HISTORY_TTL_DAYS, 90),
            reconcile_interval_seconds=_int(contract.ENV_RECONCILE_INTERVAL_SECONDS, 60),
            switch_overdue_seconds=_int(contract.ENV_SWITCH_OVERDUE_SECONDS, 1800),
            fence_timeout_seconds=_int(contract.ENV_FENCE_TIMEOUT_SECONDS, 300),
            fence_inline_wait_seconds=_int(contract.ENV_FENCE_INLINE_WAIT_SECONDS, 30),
            silent_after_seconds=_int(contract.ENV_SILENT_AFTER_SECONDS, 300),
        )
