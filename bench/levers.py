"""Latency levers of the app-fault recovery behind an NLB with a pre-registered target, measured one at
a time and all adopted together (part of P1).

With a pre-registered target nothing registers during a switch, so the RTO is: detection (the
on-instance monitor), event delivery and cold start, the switcher up to RunInstances, the replacement's
boot and application start, then the target group's health checks. Each lever shortens one of them:

* (a) NLB health check every 5 s, healthy after 2 (the target group's; read from the synthesized
  template for the adopted row);
* (b) the switcher's waiter delay (the fence's wait-stopped polls every `waiter_delay_seconds`):
  measured, the real switcher runs with each delay;
* (c) the on-instance monitor's check interval (the failure is confirmed after `threshold`
  consecutive failed checks; read from the shipped monitor configuration for the adopted row);
* (d) launch during the fence with a gated start: RunInstances right after the blackhole + stop
  request instead of after the stop is confirmed; the replacement boots, then waits for the gate
  (opened once the fence is confirmed) before it mounts the shared EFS and starts the application;
* (e) the FaultScript also signals the switcher directly (PutEvents) instead of only stopping the
  instance and letting EC2's state-change event trigger the switch.

(b) is measured with the real switcher on moto; (a), (c), (d) and (e) are counterfactuals computed from
the same run's phase timings and the same seeded draws (pure functions below), so every row of one seed
shares its boot, app start and health-check phase and rows differ by the lever only.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

from switcher.phases import Phase
from switcher.settings import Settings

from bench.deployment_config import DeployedConfig, MonitorCheck, monitor_check
from bench.latency_model import LatencyModel, Sampler
from bench.rto_model import detect, healthy_time, readiness_sampler
from bench.single_switch import PHASE_LABELS, SwitchRun, SwitchRunner
from bench.stats import median_interval

CASE = "app_fault"
LB = "nlb"
#: Random stream of the lever-only draws (PutEvents round trip, gate propagation), apart from the
#: switcher's and the readiness draws so that a lever never shifts another figure's draw.
LEVER_STREAM = 9_000_000
TARGET_RTO_S = 45.0


@dataclass(frozen=True)
class Health:
    """A target-group health check (bench.rto_model.HealthCheck)."""

    interval_seconds: int
    healthy_threshold: int


@dataclass(frozen=True)
class Monitor:
    """An on-instance monitor check (bench.rto_model.MonitorCheck)."""

    interval_seconds: float
    threshold: int


@dataclass(frozen=True)
class LeverSet:
    """One combination of levers."""

    health: Health
    waiter_delay_seconds: float
    monitor: Monitor
    gated_start: bool = False
    direct_signal: bool = False


#: Every lever off: the values swr shipped before the levers were measured (NLB health check 10 s x 2,
#: waiter 5 s, monitor check every 10 s with 3 failures to confirm, launch after the fence, no direct
#: signal). The table's reference row.
LEVERS_OFF = LeverSet(
    health=Health(interval_seconds=10, healthy_threshold=2),
    waiter_delay_seconds=5.0,
    monitor=Monitor(interval_seconds=10.0, threshold=3),
)


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    levers: LeverSet
    #: What the row is: "reference", "lever" or "adopted".
    kind: str


def adopted(deployed: DeployedConfig, monitor: MonitorCheck) -> LeverSet:
    """The levers as the product ships them: health check from the synthesized template, waiter delay
    from the switcher's settings default, monitor check from the shipped configuration. The gated start
    and the direct signal are not shipped (see docs/design.md)."""
    health = deployed.health(LB)
    return LeverSet(
        health=Health(health.interval_seconds, health.healthy_threshold),
        waiter_delay_seconds=_default_waiter_delay(),
        monitor=Monitor(monitor.interval_seconds, monitor.threshold),
    )


def _default_waiter_delay() -> float:
    """The switcher's production default (Settings), the one the deployed function runs with."""
    default = next(f.default for f in fields(Settings) if f.name == "waiter_delay_seconds")
    return float(default)  # type: ignore[arg-type]


def rows(deployed: DeployedConfig, monitor: MonitorCheck) -> list[Row]:
    """The table's rows: every lever off, each lever alone, all adopted, and every lever at once."""
    off = LEVERS_OFF
    every = LeverSet(
        health=Health(5, 2),
        waiter_delay_seconds=1.0,
        monitor=Monitor(2.0, off.monitor.threshold),
        gated_start=True,
        direct_signal=True,
    )
    return [
        Row("off", "every lever off (10 s x 2 HC, waiter 5 s, monitor 10 s x 3)", off, "reference"),
        Row("hc_5x2", "(a) NLB health check 5 s x 2", replace(off, health=Health(5, 2)), "lever"),
        Row("waiter_2", "(b) waiter delay 2 s", replace(off, waiter_delay_seconds=2.0), "lever"),
        Row("waiter_1", "(b) waiter delay 1 s", replace(off, waiter_delay_seconds=1.0), "lever"),
        Row(
            "monitor_5",
            "(c) monitor check every 5 s (x 3)",
            replace(off, monitor=Monitor(5.0, off.monitor.threshold)),
            "lever",
        ),
        Row(
            "monitor_2",
            "(c) monitor check every 2 s (x 3)",
            replace(off, monitor=Monitor(2.0, off.monitor.threshold)),
            "lever",
        ),
        Row("gated", "(d) launch during the fence, gated start", replace(off, gated_start=True), "lever"),
        Row(
            "direct",
            "(e) FaultScript signals the switcher directly",
            replace(off, direct_signal=True),
            "lever",
        ),
        Row("adopted", "all adopted (as shipped)", adopted(deployed, monitor), "adopted"),
        Row("every", "every lever at its fastest (incl. not adopted)", every, "lever"),
    ]


def waiter_delays(table_rows: list[Row]) -> list[float]:
    """The waiter delays the rows need measured (one switcher run per seed and delay)."""
    return sorted({row.levers.waiter_delay_seconds for row in table_rows})


# --- the counterfactual RTO of one run (pure) ------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    """What a lever computation reads from one measured run (modeled seconds since the fault)."""

    switcher_starts_at: float
    stop_request_end: float
    fence_confirmed_at: float
    launch_call_start: float
    launched_at: float
    running_at: float


def timings(run: SwitchRun) -> Timings:
    """The phase timings of one measured switcher run."""
    fence_label = PHASE_LABELS[Phase.FENCE.value]
    fence_end = next(end for label, _, end in run.phases if label == fence_label)
    stops = [c for c in run.calls if c["operation"] == "ec2.StopInstances"]
    launches = [c for c in run.calls if c["operation"] == "ec2.RunInstances"]
    if not stops or not launches:
        raise ValueError(f"run {run.seed}: no StopInstances or RunInstances call recorded")
    running = run.running_at
    return Timings(
        switcher_starts_at=run.phases[1][2],
        stop_request_end=max(c["end"] for c in stops),
        fence_confirmed_at=fence_end,
        launch_call_start=max(c["start"] for c in launches),
        launched_at=max(c["end"] for c in launches),
        running_at=float(running) if running is not None else max(c["end"] for c in launches),
    )


@dataclass(frozen=True)
class Outcome:
    """The RTO of one run under one lever set, and what it was made of."""

    rto: float
    detected_at: float
    launched_at: float
    app_up_at: float
    gate_wait: float


def recovery(
    t: Timings, levers: LeverSet, *, model: LatencyModel, seed: int, reference_monitor: MonitorCheck
) -> Outcome:
    """The pre-registered recovery of one measured run with `levers` applied (see module docstring).

    `t` comes from a run measured with `levers.waiter_delay_seconds` and `reference_monitor`; the other
    levers shift it: a faster monitor or a direct signal starts the switcher earlier by the same
    amount (everything inside the switcher is relative to its start), a gated start sends RunInstances
    as soon as the stop request returns.
    """
    measured = detect(CASE, Sampler(model, seed), reference_monitor)
    wanted = detect(CASE, Sampler(model, seed), levers.monitor)
    lever_draws = Sampler(model, seed + LEVER_STREAM)
    put_events = lever_draws.draw_api("events", "PutEvents")
    gate_propagation = lever_draws.draw("replacement_ready.gate_tag_propagation")
    assert measured.confirmed_at is not None and wanted.confirmed_at is not None
    shift = wanted.switcher_starts_at - measured.switcher_starts_at
    if levers.direct_signal:
        # The FaultScript's PutEvents goes out as the failure is confirmed, before its stop call; the
        # signal then takes the same EventBridge delivery as EC2's event (no figure for either).
        direct_event_at = wanted.confirmed_at + put_events
        shift -= wanted.detected_at - direct_event_at
    launch_call = t.launch_call_start + shift
    fence_confirmed = t.fence_confirmed_at + shift
    if levers.gated_start:
        # RunInstances right after the stop request (its record write included): the wait-stopped span
        # no longer precedes the launch.
        launch_call -= max(0.0, t.fence_confirmed_at - t.stop_request_end)
    launch_shift = launch_call - t.launch_call_start
    launched = t.launched_at + launch_shift
    running = t.running_at + launch_shift
    ready = readiness_sampler(model, seed)  # the same draws as every peer of this seed
    booted = max(launched + ready.draw("replacement_ready.launch_to_ssh_answering"), running)
    gate_open = fence_confirmed + gate_propagation if levers.gated_start else float("-inf")
    start_app = max(booted, gate_open)
    app_up = start_app + ready.draw("replacement_ready.app_start_after_boot")
    interval = float(levers.health.interval_seconds)
    healthy = healthy_time(
        checks_start=-interval * ready.fraction(),
        app_up=app_up,
        interval=interval,
        threshold=levers.health.healthy_threshold,
    )
    return Outcome(
        rto=healthy,
        detected_at=wanted.detected_at if not levers.direct_signal else direct_event_at,
        launched_at=launched,
        app_up_at=app_up,
        gate_wait=start_app - booted,
    )


# --- measuring and aggregating ---------------------------------------------------------------------

#: The product the lever table measures: swr with pre-registered targets (bench.single_switch variants).
LEVER_VARIANT = "swr_preregistered"


def measure(
    runner: SwitchRunner, *, seeds: list[int], delays: list[float], next_node: Iterator[int]
) -> dict[float, dict[int, SwitchRun]]:
    """Run the real switcher (pre-registered targets, swr order, app fault) once per seed and waiter delay."""
    runs: dict[float, dict[int, SwitchRun]] = {}
    for delay in delays:
        runs[delay] = {
            seed: runner.run(
                node_id=next(next_node), case=CASE, order=LEVER_VARIANT, seed=seed, waiter_delay_seconds=delay
            )
            for seed in seeds
        }
    return runs


def table(
    runs: dict[float, dict[int, SwitchRun]],
    table_rows: list[Row],
    *,
    model: LatencyModel,
    reference_monitor: MonitorCheck,
) -> dict[str, Any]:
    """Per row: the RTO median with its 90 % bootstrap interval and the median gain over the reference
    row, plus the pieces of the adopted row's RTO (what dominates what is left)."""
    outcomes: dict[str, list[Outcome]] = {}
    for row in table_rows:
        by_seed = runs[row.levers.waiter_delay_seconds]
        outcomes[row.key] = [
            recovery(timings(run), row.levers, model=model, seed=seed, reference_monitor=reference_monitor)
            for seed, run in sorted(by_seed.items())
        ]
    reference = outcomes[table_rows[0].key]
    result_rows = []
    for row in table_rows:
        values = [o.rto for o in outcomes[row.key]]
        gains = [ref.rto - value for ref, value in zip(reference, values, strict=True)]
        # The app-up gain is continuous; the RTO gain is not: the target turns healthy on the health
        # check's grid, so a lever worth 2 s gains a whole interval in some runs and nothing in others
        # (its median is 0 or one interval; its mean is the expected gain).
        app_up_gains = [
            ref.app_up_at - o.app_up_at for ref, o in zip(reference, outcomes[row.key], strict=True)
        ]
        result_rows.append(
            {
                "key": row.key,
                "title": row.title,
                "kind": row.kind,
                "levers": _levers_dict(row.levers),
                "runs": len(values),
                "rto_median": median_interval(values).as_dict(),
                "gain_median_s": median_interval(gains).as_dict(),
                "gain_mean_s": statistics.fmean(gains),
                "app_up_gain_median_s": median_interval(app_up_gains).as_dict(),
                "gate_wait_median_s": statistics.median(o.gate_wait for o in outcomes[row.key]),
            }
        )
    return {
        "case": CASE,
        "lb": LB,
        "target_rto_s": TARGET_RTO_S,
        "rows": result_rows,
        "adopted_pieces_median_s": pieces(outcomes["adopted"]),
    }


#: The consecutive pieces of a recovery (they add up to its RTO).
PIECES: dict[str, Callable[[Outcome], float]] = {
    "fault -> detected (monitor confirms, FaultScript stops)": lambda o: o.detected_at,
    "detected -> RunInstances returned (delivery, cold start, switcher, launch call)": lambda o: (
        o.launched_at - o.detected_at
    ),
    "launched -> app up (boot + app start)": lambda o: o.app_up_at - o.launched_at,
    "app up -> healthy (health checks)": lambda o: o.rto - o.app_up_at,
}


def pieces(outcomes: list[Outcome]) -> dict[str, float]:
    """The RTO cut into consecutive pieces, median of each: what dominates what is left."""
    return {name: statistics.median(piece(o) for o in outcomes) for name, piece in PIECES.items()}


#: The fastest health check a target group accepts: HealthCheckIntervalSeconds "The range is 5-300",
#: HealthyThresholdCount "The range is 2-10" (Elastic Load Balancing API Reference, CreateTargetGroup).
FASTEST_HEALTH = Health(interval_seconds=5, healthy_threshold=2)


def fresh_launch_floor(figure_range: Callable[[str], tuple[float, float]]) -> dict[str, float]:
    """The median RTO of ANY recovery that launches a new instance (app fault, pre-registered target) if
    every step the recovery itself controls took no time: the monitor confirms the failure at once, the
    function is warm, the fence overlaps the boot (a gated start), the switcher's own calls are free; what
    is left is AWS's part (the FaultScript's stop call, event delivery, RunInstances, the boot) and the
    application's start, then the fastest health check a target group allows. Every remaining figure is a
    symmetric uniform draw, and so is the health check's phase, so the median of the sum is the sum of the
    midpoints (exact, not an estimate). `figure_range`: a model figure's (low, high). The pieces, in
    modeled seconds."""

    def midpoint(path: str) -> float:
        low, high = figure_range(path)
        return (low + high) / 2

    health = FASTEST_HEALTH
    return {
        "FaultScript's stop call (monitor confirmation taken as instant)": midpoint(
            "detection.faultscript_to_stop_call"
        ),
        "EventBridge delivery (warm function: no cold start)": midpoint("delivery.eventbridge_delivery"),
        "RunInstances call (fence overlapped with the boot)": midpoint("api_round_trip.ec2.RunInstances"),
        "launch -> SSH answering (boot)": midpoint("replacement_ready.launch_to_ssh_answering"),
        "application start": midpoint("replacement_ready.app_start_after_boot"),
        f"health checks at the fastest allowed ({health.interval_seconds} s x {health.healthy_threshold})": (
            health.interval_seconds / 2 + health.interval_seconds * (health.healthy_threshold - 1)
        ),
    }


def _levers_dict(levers: LeverSet) -> dict[str, Any]:
    return {
        "health_check": f"{levers.health.interval_seconds} s x {levers.health.healthy_threshold}",
        "waiter_delay_s": levers.waiter_delay_seconds,
        "monitor": f"{levers.monitor.interval_seconds:g} s x {levers.monitor.threshold}",
        "gated_start": levers.gated_start,
        "direct_signal": levers.direct_signal,
    }


def run_levers(
    runner: SwitchRunner,
    *,
    model: LatencyModel,
    deployed: DeployedConfig,
    seeds: list[int],
    next_node: Iterator[int],
) -> dict[str, Any]:
    """Measure what the lever table needs and build it (P1 calls this inside its deployment)."""
    monitor = monitor_check()
    table_rows = rows(deployed, monitor)
    runs = measure(runner, seeds=seeds, delays=waiter_delays(table_rows), next_node=next_node)
    return table(runs, table_rows, model=model, reference_monitor=monitor)


def runs_needed(deployed: DeployedConfig, seeds: int) -> int:
    """How many switcher runs (hence nodes) the lever table needs for `seeds` seeds."""
    return seeds * len(waiter_delays(rows(deployed, monitor_check())))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The lever table alone (P1 builds the same table with its own runs): prints it, writes nothing."""
    import argparse

    from bench.deployment_config import load_deployed
    from bench.harness import deployment

    parser = argparse.ArgumentParser(description="P1's lever table alone")
    parser.add_argument("--runs", type=int, default=5, help="seeds (default 5)")
    args = parser.parse_args(argv)
    model, deployed = LatencyModel.load(), load_deployed()
    seeds = [20_000 + index * 10 for index in range(args.runs)]  # P1's app-fault seeds
    node_ids = list(range(1, runs_needed(deployed, len(seeds)) + 1))
    with deployment(node_ids, deployed.health(LB)) as world:
        result = run_levers(
            SwitchRunner(world, model, deployed),
            model=model,
            deployed=deployed,
            seeds=seeds,
            next_node=iter(node_ids),
        )
    for row in result["rows"]:
        rto, app = row["rto_median"], row["app_up_gain_median_s"]
        print(
            f"{row['key']:10s} RTO {rto['value']:.1f} [{rto['low']:.1f}-{rto['high']:.1f}] s, "
            f"gain mean {row['gain_mean_s']:.1f} s, "
            f"app up earlier {app['value']:.1f} [{app['low']:.1f}-{app['high']:.1f}] s"
        )
    print(result["adopted_pieces_median_s"])
    return result


if __name__ == "__main__":
    main()
