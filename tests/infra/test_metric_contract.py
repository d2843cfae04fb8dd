"""The dashboard and the alarms read the metrics the switcher writes: same names, same dimension SET.

CloudWatch identifies a metric by namespace, name and its exact set of dimensions ("Dimensions", Amazon
CloudWatch concepts, CloudWatch User Guide): a widget or an alarm whose dimension set differs from what
the switcher emits reads an empty metric and never fires. Compared as sets, because EMF and the
dashboard list the same keys in different orders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from switcher import contract, handler

from swr_local.emulator import fake_credentials
from swr_local.lambda_runtime import LambdaContext
from swr_stacks.app_builder import vpc_stack_name
from swr_stacks.reconcile import reconcile_event
from tests.helpers.aws_faults import FaultInjector, aws_faults
from tests.helpers.world import REGION, World, build_world

CONTRACT_KEYS = frozenset(contract.METRIC_DIMENSIONS)


def _vpc_templates(app) -> Iterator[tuple[str, dict]]:
    for region in app.config.regions:
        for vpc in region.vpcs:
            yield vpc.name, app.raw[vpc_stack_name(region.name, vpc.name)]


def _dashboard_metrics(template: dict) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, name, dimensions) of every metric line of the stack's dashboard."""
    (dashboard,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]
    separator, parts = body["Fn::Join"]
    # Tokens (region, ARNs) only ever stand inside JSON strings: any placeholder text keeps it JSON.
    text = separator.join(part if isinstance(part, str) else "TOKEN" for part in parts)
    found = []
    for widget in json.loads(text)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            fields = [f for f in line if not isinstance(f, dict)]
            assert "." not in fields and "..." not in fields, f"shorthand metric line {line}"
            namespace, name, *pairs = fields
            found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def _alarm_metrics(template: dict) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (
            r["Properties"]["Namespace"],
            r["Properties"]["MetricName"],
            {d["Name"]: d["Value"] for d in r["Properties"].get("Dimensions", [])},
        )
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]


def _expected_dimensions(vpc_name: str) -> dict[str, str]:
    return {"service": contract.METRICS_SERVICE, contract.METRICS_VPC_DIMENSION: vpc_name}


@pytest.mark.parametrize("reader", [_dashboard_metrics, _alarm_metrics], ids=["dashboard", "alarms"])
def test_every_switcher_metric_read_by_the_stacks_has_exactly_the_contract_dimension_set(multi_app, reader):
    for vpc_name, template in _vpc_templates(multi_app):
        swr_metrics = [m for m in reader(template) if m[0] == contract.METRICS_NAMESPACE]
        assert swr_metrics, f"{vpc_name}: no swr metric read at all"
        for _namespace, name, dimensions in swr_metrics:
            assert set(dimensions) == CONTRACT_KEYS, (vpc_name, name, sorted(dimensions))
            assert dimensions == _expected_dimensions(vpc_name), (vpc_name, name)


def test_the_dashboard_graphs_and_the_alarms_watch_the_reconciler_and_switch_metrics(multi_app):
    for vpc_name, template in _vpc_templates(multi_app):
        graphed = {name for ns, name, _ in _dashboard_metrics(template) if ns == contract.METRICS_NAMESPACE}
        watched = {name for ns, name, _ in _alarm_metrics(template) if ns == contract.METRICS_NAMESPACE}
        gauges = {
            contract.METRIC_RECONCILE_HEARTBEAT,
            contract.METRIC_RECONCILE_NODES_FAILED,
            contract.METRIC_RECONCILE_NODES_HELD,
            contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE,
        }
        assert watched == gauges, vpc_name
        switch = {
            contract.METRIC_SWITCH_COUNT,
            contract.METRIC_SWITCH_FAILED,
            contract.METRIC_SWITCH_DURATION,
        }
        events = {contract.METRIC_NODES_HELD, contract.METRIC_DRIFT_REPAIRED}
        assert graphed == gauges | switch | events, vpc_name


# --- what the switcher actually emits -------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_module() -> Iterator[FaultInjector]:
    with fake_credentials(REGION), mock_aws(), aws_faults() as injector:
        yield injector


@pytest.fixture
def deployed(moto_module: FaultInjector, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A moto world with the switcher's environment set as the stacks set it."""
    moto_module.faults.clear()
    world = build_world()
    world.as_function(monkeypatch)
    yield world
    moto_module.faults.clear()


def _emitted(stdout: str) -> dict[str, list[frozenset[str]]]:
    """Metric name -> the dimension sets of every EMF directive that carried it (CloudWatch's view)."""
    sets: dict[str, list[frozenset[str]]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == contract.METRICS_NAMESPACE
            for metric in directive["Metrics"]:
                for dimension_set in directive["Dimensions"]:
                    sets.setdefault(metric["Name"], []).append(frozenset(dimension_set))
    return sets


def _switch_through_the_handler(world: World) -> None:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    handler.lambda_handler(world.event("ec2_state_stopping", source), LambdaContext())


def test_a_switch_emits_switch_count_and_duration_with_exactly_the_contract_dimension_set(
    deployed: World, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    _switch_through_the_handler(deployed)
    emitted = _emitted(capfd.readouterr().out)
    for name in (contract.METRIC_SWITCH_COUNT, contract.METRIC_SWITCH_DURATION):
        assert emitted.get(name), f"{name} not emitted"
        assert set(emitted[name]) == {CONTRACT_KEYS}, (name, [sorted(s) for s in emitted[name]])


def test_a_failed_switch_emits_switch_failed_with_exactly_the_contract_dimension_set(
    deployed: World, moto_module: FaultInjector, capfd: pytest.CaptureFixture[str]
) -> None:
    world = deployed
    moto_module.fail_in_subnets({world.subnets["us-east-1b"], world.subnets["us-east-1c"]})
    capfd.readouterr()
    _switch_through_the_handler(world)
    emitted = _emitted(capfd.readouterr().out)
    assert emitted.get(contract.METRIC_SWITCH_FAILED), "SwitchFailed not emitted"
    sets = emitted[contract.METRIC_SWITCH_FAILED]
    assert set(sets) == {CONTRACT_KEYS}, [sorted(s) for s in sets]


def test_a_reconcile_run_started_by_the_schedule_emits_its_metrics_with_exactly_the_contract_dimension_set(
    deployed: World, capfd: pytest.CaptureFixture[str]
) -> None:
    deployed.provision(1)
    capfd.readouterr()
    # Exactly the Input the VPC's schedule sends.
    handler.lambda_handler(reconcile_event(), LambdaContext())
    emitted = _emitted(capfd.readouterr().out)
    for name in (
        contract.METRIC_RECONCILE_HEARTBEAT,
        contract.METRIC_RECONCILE_NODES_FAILED,
        contract.METRIC_RECONCILE_NODES_HELD,
        contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE,
    ):
        assert emitted.get(name), f"{name} not emitted"
        assert set(emitted[name]) == {CONTRACT_KEYS}, (name, [sorted(s) for s in emitted[name]])
