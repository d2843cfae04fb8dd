"""P6's harness: the reconciler in the AZ-loss run reads the alarms on the modeled clock (it can neither see
a healthy node as silent nor miss a lost one), is invoked with the stack's own event, and the report
states what the events and the reconciler each did."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws
from switcher import contract
from switcher.reconcile import ALARM_RAISED, reconcile
from switcher.settings import Settings

from bench.deployment_config import SWITCHER_HANDLER, from_templates
from bench.harness import EPOCH_BASE
from bench.latency_model import LatencyModel
from bench.model_clock import ScaledClock
from bench.p3_mass_stop import TIMED_OUT, Invocation, MassStopRun
from bench.p6_az_loss import (
    ALARM_RETURN_S,
    ALARM_TO_SILENT_S,
    ModeledAlarms,
    reconcile_event,
)
from swr_local.emulator import REGION, fake_credentials
from tests.helpers.world import World, build_world


@pytest.fixture
def world() -> Iterator[World]:
    with fake_credentials(REGION), mock_aws():
        yield build_world()


def _monitor_alarm(world: World, node_id: int) -> str:
    return contract.monitor_alarm_name(world.settings.vpc_name, node_id)


def test_a_healthy_node_is_never_seen_silent_whatever_moto_stamps_on_its_alarm(world: World) -> None:
    """moto stamps alarm states with the wall clock; the run's clock is modeled (EPOCH_BASE + t). An alarm
    moto shows INSUFFICIENT_DATA would read as days of silence: the bench's view keeps it out."""
    world.provision(1)
    world.clients.cloudwatch.set_alarm_state(
        AlarmName=_monitor_alarm(world, 1), StateValue=contract.ALARM_SILENT_STATE, StateReason="moto"
    )
    modeled_now = time.time() - EPOCH_BASE + 86_400  # the modeled clock a day past the wall clock
    raised: list[Any] = []
    ModeledAlarms(lambda: modeled_now, lambda *args: raised.append(args)).attach(world.clients.cloudwatch)
    report = reconcile(clients=world.clients, settings=world.settings, now=lambda: EPOCH_BASE + modeled_now)
    assert report.actions == [] and raised == []
    assert world.node(1).state == "ACTIVE"


def test_the_reconciler_raises_a_lost_nodes_alarm_on_the_modeled_clock_and_its_event_follows(
    world: World,
) -> None:
    instance_id = world.provision(1)
    clock = [0.0]
    raised: list[tuple[int, str, float]] = []
    alarms = ModeledAlarms(lambda: clock[0], lambda s, name, at: raised.append((s.node_id, name, at)))
    alarms.attach(world.clients.cloudwatch)
    alarms.go_silent(_monitor_alarm(world, 1), 1, instance_id, ALARM_TO_SILENT_S)

    def sweep_at(t: float) -> list[str]:
        clock[0] = t
        report = reconcile(clients=world.clients, settings=world.settings, now=lambda: EPOCH_BASE + t)
        return [a["outcome"] for a in report.actions]

    bound = ALARM_TO_SILENT_S + world.settings.silent_after_seconds
    assert sweep_at(bound - 1) == []
    assert sweep_at(bound + 1) == [ALARM_RAISED]
    assert raised == [(1, _monitor_alarm(world, 1), bound + 1)]  # the alarm event CloudWatch sends
    # At its next evaluation the alarm is INSUFFICIENT_DATA again, stamped anew: the silence restarts.
    assert sweep_at(bound + 1 + ALARM_RETURN_S + 1) == []
    alarm = world.clients.cloudwatch.describe_alarms(AlarmNames=[_monitor_alarm(world, 1)])["MetricAlarms"][0]
    assert alarm["StateValue"] == contract.ALARM_SILENT_STATE
    assert alarm["StateUpdatedTimestamp"].timestamp() == pytest.approx(
        EPOCH_BASE + bound + 1 + ALARM_RETURN_S
    )
    assert len(raised) == 1


def test_the_reconcile_invocation_is_the_event_the_stacks_schedule_sends() -> None:
    from swr_stacks.reconcile import reconcile_event as scheduled

    assert reconcile_event() == scheduled()


def test_the_switchers_timeout_is_read_from_the_synthesized_template() -> None:
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": SWITCHER_HANDLER,
                    "Timeout": 900,
                    "ReservedConcurrentExecutions": 7,
                },
            },
            "Helper": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": "index.handler", "Timeout": 30},
            },
        }
    }
    assert from_templates([("swr.template.json", template)]).function_timeout_seconds == 900


def _loss(
    nodes: int, silent: int, switched: int, *, finished: bool, lost_az: str | None = "us-east-1a"
) -> dict:
    return {
        "nodes": nodes,
        "lost_az": lost_az,
        "silent_nodes": silent,
        "concurrency": 10,
        "audit": {"switched": switched, "double_replacements": 0, "lost_nodes": 0},
        "fence_kinds": {"network-fenced": switched},
        "nacl_rules_in_place": 2,
        "nacl_rule_cidrs": ["10.0.0.0/24"],
        "capacity_refusals": 1,
        "lambda_async_retries": 3,
        "first_switch_done_s": 700.0,
        "all_recovered_s": 1500.0 if finished else None,
        "dispatch_end_modeled_s": 1520.0 if finished else 7200.0,
        "bound": {"bound_max_s": 800.0},
        "detection_s": 330,
        "time_scale": 0.05,
        "finished": finished,
        "horizon_s": 7200.0,
        "closed_by": {"event": switched - 2, "reconciler": 2},
        "reconcile": {
            "runs": 25,
            "runs_timed_out": 0,
            "alarms_raised": silent,
            "switch_actions": {"resume SUCCEEDED": 2},
            "resumes": 2,
            "node_deferrals": 0,
            "node_errors": 0,
            "run_duration_max_s": 40.0,
            "run_duration_median_s": 20.0,
        },
        "invocations_timed_out": 0,
        "invocations_failed_after_all_retries": [],
    }


def _p6(**settings: Any) -> dict[str, Any]:
    return {
        "run": {
            "command": "python -m bench.p6_az_loss",
            "finished_at": "now",
            "git_commit": "x",
            "machine": "m",
        },
        "settings": {
            "silent_after_seconds": 300,
            "fence_timeout_seconds": 300,
            "reconcile_interval_seconds": 60,
            "capacity_refusal_rate": 0.3,
            "nacl_rules_per_direction": 20,
            "function_timeout_seconds": 900,
            "horizon_seconds": 7200.0,
            "reconciler_in_run": True,
            **settings,
        },
        "az_losses": [_loss(50, 17, 17, finished=True), _loss(200, 67, 60, finished=False)],
        "single_silent_node": _loss(3, 1, 1, finished=True, lost_az=None),
    }


def test_the_p6_report_says_who_switched_each_node_and_whether_the_run_recovered_them_all() -> None:
    from bench.report import p6_section

    text = "\n".join(p6_section(_p6()))
    assert "does not run the reconciler" not in text
    assert "| 50 | 17 | 17 (15 / 2) |" in text and "| 1500.0 s |" in text
    assert "**not recovered** by 7200 s" in text
    assert "- N = 200: **not finished**: 7 of 67 nodes not recovered" in text
    assert (
        "25 reconcile runs" in text
        and "closed by an alarm event's invocation 15, by a reconcile run 2" in text
    )


def test_the_p6_report_still_renders_results_written_before_the_reconciler_ran() -> None:
    from bench.report import p6_section

    legacy = copy.deepcopy(_p6())
    del legacy["settings"]["reconciler_in_run"]
    for o in [*legacy["az_losses"], legacy["single_silent_node"]]:
        for key in ("finished", "horizon_s", "closed_by", "reconcile", "invocations_timed_out"):
            del o[key]
    text = "\n".join(p6_section(legacy))
    assert "The benchmark does not run the reconciler" in text


def test_the_readme_carries_the_az_loss_recovery_once_the_reconciler_is_in_the_run() -> None:
    from bench.report import _p6_readme_rows

    rows = _p6_readme_rows(_p6())
    assert len(rows) == 2
    assert "17/17 switched (15 by their alarm events, 2 by the reconciler)" in rows[0]
    assert rows[0].endswith("all recovered: 1500.0 s | every node recovered, 0 double, 0 lost: met |")
    assert "**not recovered** by 7200 s" in rows[1] and rows[1].endswith("**not met** |")
    assert _p6_readme_rows(_p6(reconciler_in_run=False)) == []


class _Invocations(MassStopRun):
    """P3's pool without moto: each invocation sleeps the modeled time it is given, then returns."""

    def __init__(self, timeout_s: float | None) -> None:
        settings = Settings(table_name="t", topic_arn="arn", blackhole_sg_id="sg", vpc_name="v", vpc_id="vpc")
        deployed = SimpleNamespace(world=SimpleNamespace(settings=settings))
        super().__init__(deployed, LatencyModel.load(), concurrency=1, seed=1)  # type: ignore[arg-type]
        self.clock = ScaledClock(1e-4)
        self.timeout_s = timeout_s
        self._environments = [object()]

    def handle(self, invocation: Invocation, clients: Any, remaining_ms: Any) -> tuple[str, str, str | None]:
        self.clock.sleep(invocation.event["runs_s"])
        return invocation.event["outcome"], "", None


def test_an_invocation_past_the_functions_timeout_is_retried_and_a_waiting_switch_is_not() -> None:
    run = _Invocations(timeout_s=900)
    run._push(Invocation(0.0, {"runs_s": 901, "outcome": "SUCCEEDED"}, 1, "alarm"))
    run._push(Invocation(0.0, {"runs_s": 10, "outcome": "WAITING"}, 2, "alarm"))
    run.dispatch()
    by_node = {n: [(o.attempt, o.outcome) for o in run.outcomes if o.node_id == n] for n in (1, 2)}
    assert by_node[1] == [(0, TIMED_OUT), (1, TIMED_OUT), (2, TIMED_OUT)]  # Lambda's two retries
    assert by_node[2] == [(0, "WAITING")]
    assert run.errors == ["node 1 alarm: ran past its 900 s timeout"]


def test_without_a_modeled_timeout_p3s_invocations_run_as_long_as_they_take() -> None:
    run = _Invocations(timeout_s=None)
    run._push(Invocation(0.0, {"runs_s": 5000, "outcome": "SUCCEEDED"}, 1, "alarm"))
    run.dispatch()
    assert [(o.attempt, o.outcome) for o in run.outcomes] == [(0, "SUCCEEDED")]


def test_the_p6_report_says_why_fences_stayed_unconfirmed_when_per_address_rules_fill_the_quota() -> None:
    from bench.report import p6_section

    p6 = _p6()
    p6["az_losses"][1]["nacl_rule_cidrs"] = [f"10.0.0.{i}/32" for i in range(4, 23)]
    assert "At N = 200 the run ended with 19 per-address deny rules" in "\n".join(p6_section(p6))
    assert "per-address deny rules per direction and no whole-subnet rule" not in "\n".join(p6_section(_p6()))
