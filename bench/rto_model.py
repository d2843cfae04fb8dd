"""The parts of a recovery that happen outside the switcher, as modeled time (pure functions).

Before the switcher: fault -> detection -> EventBridge delivery -> Lambda cold start.
After it: the replacement boots and starts the application, the load balancer starts health checks
after its registration delay, and the target is healthy after `healthy_threshold` passing checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from bench.latency_model import LatencyModel
from bench.latency_model import Sampler as LatencySampler

#: The failure cases of P1 (seed: case 1 app fault, case 2 monitor death; plus an impaired instance).
CASES = ("app_fault", "monitor_death", "status_check")
CASE_TITLES = {
    "app_fault": "app fault (FaultScript stops the instance)",
    "monitor_death": "monitor death (procstat alarm)",
    "status_check": "status check failed (instance still running)",
}


class Sampler(Protocol):
    """Draws figures of the latency model from the run's seeded random stream."""

    def draw(self, path: str) -> float: ...

    def fraction(self) -> float:
        """A uniform number in [0, 1): where in a periodic cycle a fault happens to fall."""
        ...


class MonitorCheck(Protocol):
    """The on-instance monitor's check as a node gets it (bench.deployment_config.MonitorCheck)."""

    @property
    def interval_seconds(self) -> float: ...

    @property
    def threshold(self) -> int: ...


@dataclass(frozen=True)
class Detection:
    """When the failure becomes an event, and what the source instance is doing by then."""

    detected_at: float
    #: Modeled time the FaultScript's stop made the instance `stopping` (None: it keeps running).
    source_stopping_at: float | None
    delivered_at: float
    switcher_starts_at: float
    #: Modeled time the monitor confirmed the failure and called the FaultScript (app fault only).
    confirmed_at: float | None = None


def detect(case: str, sampler: Sampler, monitor: MonitorCheck | None = None) -> Detection:
    """Model fault -> detection -> delivery -> cold start for one failure case (fault at t = 0).

    `monitor`: the on-instance monitor's check (app fault only; default: what a node gets,
    bench.deployment_config.monitor_check()).
    """
    stopping_at: float | None = None
    confirmed: float | None = None
    if case == "app_fault":
        # The monitor's first check after the fault fails, `threshold` failed checks in a row confirm
        # it (swr-monitor: consecutive failures, one check every `interval`), then the FaultScript
        # stops the instance; the EC2 rule reacts to `stopping`, so detection is the moment the stop
        # call took effect.
        if monitor is None:
            from bench.deployment_config import monitor_check

            monitor = monitor_check()
        interval = float(monitor.interval_seconds)
        confirmed = interval * sampler.fraction() + interval * (monitor.threshold - 1)
        stopping_at = confirmed + sampler.draw("detection.faultscript_to_stop_call")
        detected = stopping_at
    elif case == "monitor_death":
        # procstat reports pid_count 0 at its next collection; the 10 s alarm evaluates on its next
        # period boundary, plus the delay before data is available.
        sample = sampler.draw("detection.procstat_collection_interval") * sampler.fraction()
        period = sampler.draw("detection.alarm_period")
        datapoints = sampler.draw("detection.alarm_datapoints_to_alarm")
        evaluated = sample + period * sampler.fraction() + period * (datapoints - 1)
        detected = evaluated + sampler.draw("detection.alarm_evaluation_delay")
    elif case == "status_check":
        # StatusCheckFailed is a 1-minute metric: the breach shows at the end of the current minute.
        detected = sampler.draw("detection.status_check_failure_onset") + sampler.draw(
            "detection.alarm_evaluation_delay"
        )
    else:
        raise ValueError(f"unknown case {case!r}: expected one of {', '.join(CASES)}")
    delivered = detected + sampler.draw("delivery.eventbridge_delivery")
    return Detection(
        detected_at=detected,
        source_stopping_at=stopping_at,
        delivered_at=delivered,
        switcher_starts_at=delivered + sampler.draw("delivery.lambda_cold_start"),
        confirmed_at=confirmed,
    )


#: Offset of the random stream the after-switch figures (boot, app start, registration delay, health
#: check phase) are drawn from. It depends on the seed only, not on how many AWS calls a recovery made
#: before, so every order and peer of one seed gets the same boot and the same registration delay:
#: their RTOs differ by what they do, not by which draws they happened to get.
READINESS_STREAM = 5_000_000


def readiness_sampler(model: LatencyModel, seed: int) -> LatencySampler:
    """A fresh stream for `replacement_ready` of run `seed` (call once per load-balancer type)."""
    return LatencySampler(model, seed + READINESS_STREAM)


@dataclass(frozen=True)
class Readiness:
    """When the replacement serves: application up, health checks start, target healthy."""

    app_up_at: float
    health_checks_start_at: float
    healthy_at: float


class HealthCheck(Protocol):
    """A target group's health check as deployed (bench.deployment_config.TargetGroupHealth)."""

    @property
    def interval_seconds(self) -> int: ...

    @property
    def healthy_threshold(self) -> int: ...


def replacement_ready(
    *,
    launched_at: float,
    running_at: float,
    registered_at: float | None,
    lb: str,
    health: HealthCheck,
    sampler: Sampler,
) -> Readiness:
    """Model boot + app start and the target group's health checks (lb = "nlb" or "alb").

    `registered_at` None: the target was registered long before (same address), so its health checks
    already run at a steady phase and no registration delay applies.
    """
    booted = max(launched_at + sampler.draw("replacement_ready.launch_to_ssh_answering"), running_at)
    app_up = booted + sampler.draw("replacement_ready.app_start_after_boot")
    interval = float(health.interval_seconds)
    if registered_at is None:
        checks_start = -interval * sampler.fraction()
    else:
        checks_start = registered_at + sampler.draw(f"load_balancer.{lb}.registration_delay")
    healthy = healthy_time(
        checks_start=checks_start, app_up=app_up, interval=interval, threshold=health.healthy_threshold
    )
    return Readiness(app_up_at=app_up, health_checks_start_at=checks_start, healthy_at=healthy)


def healthy_time(*, checks_start: float, app_up: float, interval: float, threshold: int) -> float:
    """When the target turns healthy: checks run at checks_start + k * interval; the first one at or
    after app_up passes, and `threshold` consecutive passes make it healthy."""
    first_pass = checks_start + interval * max(0, math.ceil((app_up - checks_start) / interval))
    return first_pass + interval * (threshold - 1)


def unhealthy_time(*, fault_at: float, phase: float, interval: float, threshold: int) -> float:
    """When the load balancer marks a failed target unhealthy: checks at phase + k * interval
    (phase in [0, interval)); the first one after the fault fails, `threshold` failures in a row."""
    first_fail = phase + interval * max(0, math.ceil((fault_at - phase) / interval))
    return first_fail + interval * (threshold - 1)
