"""The dashboard and the alarms read the metrics the switcher writes: same names, same dimension SET.

CloudWatch identifies a metric by namespace, name and its exact set of dimensions ("Dimensions", Amazon
CloudWatch concepts, CloudWatch User Guide): a widget or an alarm whose dimension set differs from what
the switcher emits reads an empty metric and never fires. Compared as sets, because EMF and the
dashboard list the same keys in different orders.
"""

from __future__ import annotations

import contextlib
import io
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
from tests.helpers.aws_faults import aws_faults
from tests.helpers.world import REGION, build_world

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


def _emitted(stdout: str) -> dict[str, set[frozenset[str]]]:
    """Metric name -> the dimension sets of every EMF directive that carried it (CloudWatch's view)."""
    sets: dict[str, set[frozenset[str]]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == contract.METRICS_NAMESPACE
            for metric in directive["Metrics"]:
                for dimension_set in directive["Dimensions"]:
                    sets.setdefault(metric["Name"], set()).add(frozenset(dimension_set))
    return sets


@pytest.fixture(scope="module")
def emitted() -> Iterator[dict[str, set[frozenset[str]]]]:
    """Every metric the switcher emits, with its dimension sets, from the handler's own output: a switch,
    a flap-guard hold, a failed switch and a scheduled reconcile run that repairs drift."""
    captured = io.StringIO()
    with (
        fake_credentials(REGION),
        mock_aws(),
        aws_faults() as injector,
        pytest.MonkeyPatch.context() as monkeypatch,
        contextlib.redirect_stdout(captured),
    ):
        world = build_world()
        world.as_function(monkeypatch)
        monkeypatch.setenv(contract.ENV_FLAP_MAX_SWITCHES, "1")

        def fail(instance_id: str) -> dict:
            world.clients.ec2.stop_instances(InstanceIds=[instance_id])
            return handler.lambda_handler(world.event("ec2_state_stopping", instance_id), LambdaContext())

        assert fail(world.provision(1))["outcome"] == "SUCCEEDED"
        assert fail(world.node(1).current_instance_id or "")["outcome"] == "HELD"  # the flap guard

        doomed = world.provision(2)
        injector.fail_in_subnets(set(world.subnets.values()))  # no AZ can launch its replacement
        assert fail(doomed)["outcome"] == "FAILED"
        injector.faults.clear()

        drifted = world.provision(3)
        world.clients.elbv2.deregister_targets(
            TargetGroupArn=world.target_group_for(3),
            Targets=[{"Id": world.instance(drifted)["PrivateIpAddress"]}],
        )
        handler.lambda_handler(reconcile_event(), LambdaContext())  # exactly the Input the schedule sends
    # Powertools prints the EMF blobs with print(): they are in the redirected stdout.
    yield _emitted(captured.getvalue())


@pytest.mark.parametrize(
    "name",
    [
        contract.METRIC_SWITCH_COUNT,
        contract.METRIC_SWITCH_DURATION,
        contract.METRIC_SWITCH_FAILED,
        contract.METRIC_NODES_HELD,
        contract.METRIC_DRIFT_REPAIRED,
        contract.METRIC_RECONCILE_HEARTBEAT,
        contract.METRIC_RECONCILE_NODES_FAILED,
        contract.METRIC_RECONCILE_NODES_HELD,
        contract.METRIC_RECONCILE_NODES_SWITCHING_OVERDUE,
    ],
)
def test_the_switcher_emits_each_metric_with_exactly_the_contract_dimension_set(emitted, name) -> None:
    assert emitted.get(name), f"{name} not emitted"
    assert emitted[name] == {CONTRACT_KEYS}, (name, [sorted(s) for s in emitted[name]])


@pytest.mark.parametrize("reader", [_dashboard_metrics, _alarm_metrics], ids=["dashboard", "alarms"])
def test_the_stacks_read_each_switcher_metric_with_a_dimension_set_the_switcher_emits_it_with(
    multi_app, emitted, reader
) -> None:
    """The dashboard's and the alarms' dimension sets against what the handler printed, as sets: no
    contract in between, so a widget that reads a dimension set nobody writes fails here."""
    for vpc_name, template in _vpc_templates(multi_app):
        for namespace, name, dimensions in reader(template):
            if namespace != contract.METRICS_NAMESPACE:
                continue
            assert name in emitted, f"{vpc_name}: {name} is read but the scenarios never saw it emitted"
            assert frozenset(dimensions) in emitted[name], (vpc_name, name, sorted(dimensions))
