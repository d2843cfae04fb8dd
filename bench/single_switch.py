"""One modeled recovery: fault -> detection -> the real switcher on moto -> replacement healthy.

Shared by P1 (recovery time), P2 (switcher overhead) and P4 (memory of a switch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from switcher import contract
from switcher.phases import CLAIMED, Phase, plan
from switcher.switch import SUCCEEDED

from bench.aws_model import ModeledAws, Transition
from bench.deployment_config import DeployedConfig
from bench.harness import (
    EPOCH_BASE,
    Deployment,
    alarm_event,
    ec2_state_event,
    invoke,
    iso_to_modeled,
    modeled_clients,
    settings_for,
)
from bench.latency_model import LatencyModel, Sampler
from bench.model_clock import VirtualClock
from bench.rto_model import detect, readiness_sampler, replacement_ready

LB_TYPES = ("nlb", "alb")
#: What P1 runs: the variant (the key of a run) -> the switch order the switcher runs it with. The
#: pre-registered variant is the same switcher in the same order on nodes with standby interfaces
#: (switcher.standby): no target is registered during its switch, so no registration delay applies.
VARIANT_ORDER = {"vendor": "vendor", "swr": "swr", "swr_preregistered": "swr"}
PREREGISTERED_VARIANTS = frozenset({"swr_preregistered"})

#: Labels of the recorded switcher phases (timeline key -> what the interval ending there did).
PHASE_LABELS = {
    CLAIMED: "claim (resolve + conditional write)",
    Phase.SNAPSHOT.value: "snapshot source",
    Phase.STOP_SENT.value: "send stop (blackhole SG + forced stop)",
    Phase.FENCE.value: "fence confirmed (wait stopped, or network fence)",
    Phase.TERMINATE_SOURCE.value: "terminate source",
    Phase.LAUNCH.value: "launch replacement (RunInstances)",
    Phase.WAIT_RUNNING.value: "wait running",
    Phase.MOVE_TRAFFIC.value: "move traffic (register/deregister)",
    Phase.MOVE_ALARMS.value: "move alarms",
    Phase.CLOSE.value: "close (notice + record)",
}


@dataclass
class SwitchRun:
    """What one modeled recovery measured (all times in modeled seconds since the fault)."""

    case: str
    order: str
    seed: int
    outcome: str
    #: (phase key, start, end) in the order they happened, outside and inside the switcher.
    phases: list[tuple[str, float, float]]
    #: Per lb type: RTO = when the replacement is healthy in the target group.
    rto: dict[str, float]
    readiness: dict[str, dict[str, float]]
    calls: list[dict[str, Any]]
    switcher_modeled_s: float
    switcher_real_busy_s: float
    switcher_modeled_waits_s: float
    #: When the replacement reached `running` (modeled).
    running_at: float | None = None


class SwitchRunner:
    """Runs single switches on one deployment, reusing one set of hooked clients per order."""

    def __init__(self, deployment: Deployment, model: LatencyModel, deployed: DeployedConfig) -> None:
        self.deployment = deployment
        self.model = model
        self.deployed = deployed
        placeholder = Sampler(model, seed=0)
        self.modeled = ModeledAws(placeholder, VirtualClock(model.time_scale))
        self._clients: dict[str, Any] = {}

    def _clients_for(self, order: str) -> Any:
        if order not in self._clients:
            settings = settings_for(self.deployment.world, VARIANT_ORDER[order])
            self._clients[order] = modeled_clients(self.deployment.endpoint_url, self.modeled, settings)
        return self._clients[order]

    def run(
        self, *, node_id: int, case: str, order: str, seed: int, waiter_delay_seconds: float | None = None
    ) -> SwitchRun:
        """Fail node `node_id` as `case` says and let the switcher (variant `order`: VARIANT_ORDER)
        recover it.

        `waiter_delay_seconds`: run the switcher with another waiter delay than its default (the
        lever table measures the delay); None: the production default.
        """
        node = self.deployment.nodes[node_id]
        world = self.deployment.world
        sampler = Sampler(self.model, seed)
        detection = detect(case, sampler)
        if case == "app_fault":
            # The FaultScript's stop: moto stops at once; the model keeps it `stopping` for the OS shutdown.
            self.deployment.clients.ec2.stop_instances(InstanceIds=[node.instance_id])
        clock = VirtualClock(self.model.time_scale, start_at=detection.switcher_starts_at)
        self.modeled.start_run(sampler, clock)
        if case == "app_fault":
            assert detection.source_stopping_at is not None
            shutdown_end = detection.source_stopping_at + sampler.draw(
                "instance_transition.os_shutdown_on_stop"
            )
            self.modeled.set_transition(node.instance_id, Transition("stopping", shutdown_end, "stopped"))
            event = ec2_state_event(node.instance_id, "stopping", detection.source_stopping_at)
        else:
            status = case == "status_check"
            name = (contract.status_alarm_name if status else contract.monitor_alarm_name)(
                world.settings.vpc_name, node_id
            )
            event = alarm_event(name, node.instance_id, detection.detected_at, status_check=status)

        settings = settings_for(world, VARIANT_ORDER[order])
        if waiter_delay_seconds is not None:
            settings = replace(settings, waiter_delay_seconds=waiter_delay_seconds)
        with self.modeled.patched_sleeps():
            clients = self._clients_for(order)
            result = invoke(event, clients=clients, settings=settings, now=lambda: EPOCH_BASE + clock.now())
        ended = clock.now()
        if result.outcome != SUCCEEDED:
            raise RuntimeError(f"node {node_id} ({case}, {order}): switch {result.outcome}: {result.reason}")

        timeline = {key: iso_to_modeled(value) for key, value in result.timeline.items()}
        phases: list[tuple[str, float, float]] = [
            ("detection", 0.0, detection.detected_at),
            ("event delivery + Lambda cold start", detection.detected_at, detection.switcher_starts_at),
        ]
        previous = detection.switcher_starts_at
        for key in [CLAIMED, *(phase.value for phase in plan(VARIANT_ORDER[order]))]:
            end = timeline[key]
            phases.append((PHASE_LABELS[key], previous, end))
            previous = end

        calls = [
            {"operation": f"{c.service}.{c.operation}", "start": c.start, "end": c.end}
            for c in self.modeled.calls
        ]
        launched_at = _last_end(calls, "ec2.RunInstances")
        # Pre-registered: no registration during the switch (None: health checks already run at a steady
        # phase). Were one made (a fallback), its delay would be modeled like any other.
        registered_at = (
            _last_end_or_none(calls, "elbv2.RegisterTargets")
            if order in PREREGISTERED_VARIANTS
            else _last_end(calls, "elbv2.RegisterTargets")
        )
        replacement = self.modeled.transition_of(result.replacement_instance_id or "")
        running_at = replacement.until if replacement else timeline[Phase.WAIT_RUNNING.value]
        readiness, rto = {}, {}
        for lb in LB_TYPES:
            ready = replacement_ready(
                launched_at=launched_at,
                running_at=running_at,
                registered_at=registered_at,
                lb=lb,
                health=self.deployed.health(lb),
                sampler=readiness_sampler(self.model, seed),
            )
            readiness[lb] = {
                "app_up_at": ready.app_up_at,
                "health_checks_start_at": ready.health_checks_start_at,
                "healthy_at": ready.healthy_at,
            }
            rto[lb] = ready.healthy_at
        return SwitchRun(
            case=case,
            order=order,
            seed=seed,
            outcome=result.outcome,
            phases=phases,
            rto=rto,
            readiness=readiness,
            calls=calls,
            switcher_modeled_s=ended - detection.switcher_starts_at,
            switcher_real_busy_s=clock.real_busy_total,
            switcher_modeled_waits_s=clock.modeled_sleep_total,
            running_at=running_at,
        )


def _last_end_or_none(calls: list[dict[str, Any]], operation: str) -> float | None:
    ends = [c["end"] for c in calls if c["operation"] == operation]
    return max(ends) if ends else None


def _last_end(calls: list[dict[str, Any]], operation: str) -> float:
    ends = [c["end"] for c in calls if c["operation"] == operation]
    if not ends:
        raise RuntimeError(f"the switch made no {operation} call")
    return max(ends)
