"""The recoveries P1 compares, on the same latency model and the same failure injections.

Each peer turns one run (one seed, one failure case, one load-balancer type) into an RTO, or into
"no recovery" with the reason. All of them replay the same fault: the failure is drawn first from
`Sampler(model, seed)` exactly as the switcher's run drew it (`rto_model.detect`).

* swr, vendor order: the real switcher on moto (bench/single_switch.py); only AWS's timing is modeled.
* Auto Scaling group, min = max = 1 over the same AZs, behind the same load balancer, EC2 + ELB
  health checks (Amazon EC2 Auto Scaling User Guide, "Health checks for instances in an Auto Scaling
  group": a non-running instance is an immediate failure at the next periodic check, an impaired
  status check waits "a few minutes", an ELB-unhealthy instance is marked on the next periodic
  check; a health-check replacement terminates the instance while launching the new one). It
  registers an instance target, which ELBv2 accepts only once the instance runs (RegisterTargets).
* EC2 automatic recovery (Amazon EC2 User Guide, "Recover your instance"): acts on
  StatusCheckFailed_System only, migrates the instance in its AZ and keeps its instance id and
  private IP, so the target stays registered and no registration delay applies.
* swr with pre-registered targets (`targets: preregistered`): the real switcher on moto, on nodes with
  one standby interface per AZ whose address was registered at deploy time (switcher.standby). The
  replacement is launched on its AZ's interface, so no target is registered during the switch: the
  harness models the load balancer's registration delay only for targets registered during a switch,
  a pre-registered one only waits for its (steady-phase) health checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.deployment_config import TargetGroupHealth
from bench.latency_model import LatencyModel, Sampler
from bench.rto_model import detect, readiness_sampler, replacement_ready, unhealthy_time

MEASURED = "switcher measured on moto, AWS timing modeled"
MODELED = "modeled from the cited AWS docs (no code of ours runs)"


@dataclass(frozen=True)
class PeerInput:
    """Everything a peer needs for one run."""

    case: str
    lb: str
    seed: int
    model: LatencyModel
    health: TargetGroupHealth
    #: The switcher's runs of this seed, by order ("vendor", "swr"): single_switch.SwitchRun.
    runs: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """RTO in modeled seconds, or None with the reason this peer does not recover from the case."""

    rto: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Peer:
    key: str
    title: str
    evidence: str
    recover: Callable[[PeerInput], Outcome]


def switcher_order(order: str) -> Callable[[PeerInput], Outcome]:
    """The measured switcher run of `order` for this seed."""

    def recover(inp: PeerInput) -> Outcome:
        return Outcome(float(inp.runs[order].rto[inp.lb]))

    return recover


def _next_tick(at: float, *, phase: float, period: float) -> float:
    """The first periodic check (phase + k * period) at or after `at`."""
    return phase + period * max(0, math.ceil((at - phase) / period))


def auto_scaling_group(inp: PeerInput) -> Outcome:
    """An Auto Scaling group of one instance with EC2 and ELB health checks (see module docstring)."""
    sampler = Sampler(inp.model, inp.seed)
    found = detect(inp.case, sampler)  # replays the switcher run's failure
    if inp.case == "monitor_death":
        return Outcome(
            None,
            "no signal: the application still serves and no Auto Scaling health check watches the monitor",
        )
    health = inp.health
    period = sampler.draw("auto_scaling.health_check_period")
    phase = period * sampler.fraction()
    interval = float(health.interval_seconds)
    # ELB path: the application (app fault) or the instance (status check) stops answering at t = 0.
    elb_unhealthy = unhealthy_time(
        fault_at=0.0,
        phase=interval * sampler.fraction(),
        interval=interval,
        threshold=health.unhealthy_threshold,
    )
    signals = [elb_unhealthy]
    if inp.case == "app_fault":
        # EC2 path: the FaultScript's stop makes the instance non-running, an immediate failure.
        assert found.source_stopping_at is not None
        signals.append(found.source_stopping_at)
    else:
        # EC2 path: an impaired status check is acted on only after "a few minutes".
        signals.append(found.detected_at + sampler.draw("auto_scaling.impaired_status_wait"))
    marked = _next_tick(min(signals), phase=phase, period=period)
    # Terminate and launch: the launch starts as the unhealthy instance is terminated.
    launch_call = marked + sampler.draw("auto_scaling.replacement_launch_start")
    launched = launch_call + sampler.draw_api("ec2", "RunInstances")
    running = launched + sampler.draw("instance_transition.pending_to_running")
    registered = running + sampler.draw("auto_scaling.register_after_running")
    ready = replacement_ready(
        launched_at=launched,
        running_at=running,
        registered_at=registered,
        lb=inp.lb,
        health=health,
        sampler=readiness_sampler(inp.model, inp.seed),
    )
    return Outcome(ready.healthy_at)


def ec2_automatic_recovery(inp: PeerInput) -> Outcome:
    """A StatusCheckFailed_System alarm with the recover action (see module docstring)."""
    sampler = Sampler(inp.model, inp.seed)
    found = detect(inp.case, sampler)  # same 1-minute status metric and alarm evaluation as swr's
    if inp.case != "status_check":
        return Outcome(
            None,
            "does not apply: recovery acts on system status check failures only "
            "(a stopped instance or a dead monitor is not one)",
        )
    restarted = (
        found.detected_at
        + sampler.draw("ec2_recovery.recover_action_start")
        + sampler.draw("ec2_recovery.migration_reboot")
    )
    running = restarted + sampler.draw("instance_transition.pending_to_running")
    ready = replacement_ready(
        launched_at=restarted,
        running_at=running,
        registered_at=None,  # same private IP: the target never left the target group
        lb=inp.lb,
        health=inp.health,
        sampler=readiness_sampler(inp.model, inp.seed),
    )
    return Outcome(ready.healthy_at)


PEERS: tuple[Peer, ...] = (
    Peer("swr", "swr (registers the IP at launch)", MEASURED, switcher_order("swr")),
    Peer(
        "vendor", "vendor order (terminate first, register once running)", MEASURED, switcher_order("vendor")
    ),
    Peer("asg", "Auto Scaling group, min = max = 1, EC2 + ELB health checks", MODELED, auto_scaling_group),
    Peer(
        "ec2_recovery",
        "EC2 automatic recovery (system status check failure only)",
        MODELED,
        ec2_automatic_recovery,
    ),
    Peer(
        "swr_preregistered",
        "swr with pre-registered targets (launches on a standby address)",
        MEASURED,
        switcher_order("swr_preregistered"),
    ),
)
REFERENCE = "swr"
