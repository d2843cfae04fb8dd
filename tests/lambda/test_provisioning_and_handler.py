"""The Lambda entry point: node custom resource (create/update/delete, with the response PUT to
CloudFormation's URL) and EventBridge events, with the environment validated at entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from switcher import contract, handler, provision, state
from switcher.settings import SettingsError

from swr_local.lambda_runtime import response_inbox
from tests.helpers.world import World


@pytest.fixture
def cfn_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for CloudFormation's pre-signed response URL on 127.0.0.1; collects the PUT bodies."""
    with response_inbox() as inbox:
        yield inbox.url_for("response"), inbox.responses


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The switcher's environment as the stacks set it, for this world; clients rebuilt lazily."""
    world.as_function(monkeypatch)
    return world


def _request(world: World, request_type: str, url: str, node_id: int = 1, **extra: Any) -> dict[str, Any]:
    return world.cfn_request(request_type, node_id, ResponseURL=url, **extra)


def test_create_launches_the_first_instance_registers_it_creates_alarms_and_answers_success(
    env: World, cfn_endpoint, lambda_context
) -> None:
    world, (url, received) = env, cfn_endpoint
    handler.lambda_handler(_request(world, "Create", url), lambda_context)

    (response,) = received
    assert response["Status"] == "SUCCESS", response.get("Reason")
    assert response["PhysicalResourceId"] == "swr-node-prod-1"
    instance_id = response["Data"]["InstanceId"]
    instance = world.instance(instance_id)
    assert instance["State"]["Name"] == "running"
    assert instance["SubnetId"] in world.subnets.values()
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert (tags[contract.TAG_NODE_ID], tags[contract.TAG_VPC]) == ("1", "prod")
    assert world.targets() == {instance_id}
    assert set(world.alarm_instances(1).values()) == {instance_id}
    monitor = world.clients.cloudwatch.describe_alarms(AlarmNames=[contract.monitor_alarm_name("prod", 1)])
    alarm = monitor["MetricAlarms"][0]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Period"]) == (
        contract.MONITOR_METRIC_NAMESPACE,
        contract.MONITOR_METRIC_NAME,
        contract.MONITOR_INTERVAL_SECONDS,
    )
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "InstanceId": instance_id,
        contract.MONITOR_SELECTOR_KEY: contract.MONITOR_PROCESS_PATTERNS["swr-monitor"],
        "pid_finder": contract.MONITOR_PID_FINDER,
    }
    assert alarm["TreatMissingData"] == "missing"
    alarm_tags = world.clients.cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert {"Key": contract.TAG_VPC, "Value": "prod"} in alarm_tags
    node = world.node(1)
    assert (node.state, node.current_instance_id) == (state.ACTIVE, instance_id)
    assert node.config == state.NodeConfig(
        world.launch_template_id, "1", world.target_group_arn, "swr-monitor"
    )


def test_create_adopts_a_live_tagged_instance_instead_of_launching(
    env: World, cfn_endpoint, lambda_context
) -> None:
    world, (url, received) = env, cfn_endpoint
    legacy = world.launch_by_hand(node_tag="1", subnet_id=world.subnets["us-east-1c"])
    world.calls.clear()
    handler.lambda_handler(_request(world, "Create", url), lambda_context)
    assert received[0]["Status"] == "SUCCESS"
    assert received[0]["Data"]["InstanceId"] == legacy
    assert world.calls.named("RunInstances") == []
    assert world.node(1).current_instance_id == legacy


def test_update_stores_the_config_for_the_next_switch_and_follows_a_new_target_group(
    env: World, cfn_endpoint, lambda_context
) -> None:
    world, (url, received) = env, cfn_endpoint
    first = world.provision(1)
    new_tg = world.new_target_group()
    new_version = world.clients.ec2.create_launch_template_version(
        LaunchTemplateId=world.launch_template_id, LaunchTemplateData={"InstanceType": "t3.medium"}
    )["LaunchTemplateVersion"]["VersionNumber"]
    request = _request(world, "Update", url)
    request["OldResourceProperties"] = dict(request["ResourceProperties"])
    request["ResourceProperties"].update(TargetGroupArn=new_tg, LaunchTemplateVersion=str(new_version))
    handler.lambda_handler(request, lambda_context)

    assert received[0]["Status"] == "SUCCESS", received[0].get("Reason")
    assert received[0]["PhysicalResourceId"] == "swr-node-prod-1"
    assert world.targets(new_tg) == {first}
    assert world.targets() == set()
    assert world.node(1).config.launch_template_version == str(new_version)  # type: ignore[union-attr]

    world.clients.ec2.stop_instances(InstanceIds=[first])
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", first))
    assert result.outcome == "SUCCEEDED"
    (launch,) = world.calls.named("RunInstances")
    assert launch.params["LaunchTemplate"]["Version"] == str(new_version)


def test_delete_terminates_deregisters_removes_alarms_and_keeps_the_history(
    env: World, cfn_endpoint, lambda_context
) -> None:
    world, (url, received) = env, cfn_endpoint
    first = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[first])
    current = world.run(world.event("ec2_state_stopping", first)).replacement_instance_id
    assert current is not None

    handler.lambda_handler(_request(world, "Delete", url), lambda_context)
    assert received[0]["Status"] == "SUCCESS", received[0].get("Reason")
    assert world.state_of(current) == "terminated"
    assert world.targets() == set()
    assert world.alarm_instances(1) == {}
    assert world.node(1).state == state.DELETED
    assert len(world.switches(1)) == 1


@pytest.mark.parametrize(
    ("prop", "value", "named"),
    [
        (contract.PROP_NODE_ID, "one", contract.PROP_NODE_ID),
        (contract.PROP_MONITOR_PROCESS, "nagios", contract.PROP_MONITOR_PROCESS),
        (contract.PROP_VPC_NAME, "staging", contract.PROP_VPC_NAME),
        (contract.PROP_TARGET_GROUP_ARN, "", contract.PROP_TARGET_GROUP_ARN),
    ],
)
def test_invalid_properties_fail_the_resource_with_a_reason_naming_them(
    env: World, cfn_endpoint, lambda_context, prop: str, value: str, named: str
) -> None:
    world, (url, received) = env, cfn_endpoint
    request = _request(world, "Create", url)
    request["ResourceProperties"][prop] = value
    world.calls.clear()
    handler.lambda_handler(request, lambda_context)
    (response,) = received
    assert response["Status"] == "FAILED" and named in response["Reason"]
    assert response["PhysicalResourceId"]
    assert world.calls.named("RunInstances") == []

    # CloudFormation then rolls back with a Delete of that resource: it must succeed, not hang the stack.
    rollback = _request(world, "Delete", url, PhysicalResourceId=response["PhysicalResourceId"])
    rollback["ResourceProperties"] = request["ResourceProperties"]
    handler.lambda_handler(rollback, lambda_context)
    assert received[1]["Status"] == "SUCCESS"


def test_missing_environment_still_answers_cloudformation(
    world: World, cfn_endpoint, lambda_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = cfn_endpoint
    monkeypatch.delenv(contract.ENV_TABLE_NAME, raising=False)
    handler.lambda_handler(_request(world, "Create", url), lambda_context)
    assert received[0]["Status"] == "FAILED" and contract.ENV_TABLE_NAME in received[0]["Reason"]


def test_eventbridge_event_through_the_handler_switches_the_node_and_emits_metrics(
    env: World, lambda_context, capfd: pytest.CaptureFixture[str]
) -> None:
    world = env
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    capfd.readouterr()
    result = handler.lambda_handler(world.event("ec2_state_stopping", source), lambda_context)
    assert result["outcome"] == "SUCCEEDED" and result["source_instance_id"] == source
    assert world.node(1).current_instance_id == result["replacement_instance_id"]

    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    (blob,) = [line for line in lines if "_aws" in line]
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == contract.METRICS_NAMESPACE
    assert blob[contract.METRICS_VPC_DIMENSION] == "prod" and blob["service"] == contract.METRICS_SERVICE
    names = {m["Name"] for m in directive["Metrics"]}
    assert {contract.METRIC_SWITCH_COUNT, contract.METRIC_SWITCH_DURATION} <= names
    assert contract.METRIC_PHASE_DURATION_PREFIX + "launched" in names
    assert blob[contract.METRIC_SWITCH_COUNT] in (1, 1.0, [1], [1.0])
    # JSON logs of the invocation carry the switch id as the correlation id.
    assert handler.logger.get_correlation_id() == result["switch_id"]


def test_eventbridge_event_with_missing_environment_names_the_variables(
    world: World, lambda_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in (contract.ENV_TABLE_NAME, contract.ENV_VPC_ID):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SettingsError, match=f"{contract.ENV_TABLE_NAME}.*{contract.ENV_VPC_ID}"):
        handler.lambda_handler(world.event("ec2_state_stopping", "i-0123456789abcdef0"), lambda_context)


def test_an_update_keeps_the_physical_id_so_cloudformation_does_not_replace_the_node(
    env: World, cfn_endpoint, lambda_context
) -> None:
    # AWS: a different PhysicalResourceId in the answer to an Update makes CloudFormation treat the update
    # as a replacement and send a Delete for the old id ("Update request for CloudFormation custom
    # resources", CloudFormation User Guide). The test carries the ids as CloudFormation does.
    world, (url, received) = env, cfn_endpoint
    create = _request(world, "Create", url)
    assert "PhysicalResourceId" not in create  # CloudFormation sends none with a Create
    handler.lambda_handler(create, lambda_context)
    created = received.pop()
    assert created["Status"] == "SUCCESS", created.get("Reason")
    instance = created["Data"]["InstanceId"]
    new_version = world.clients.ec2.create_launch_template_version(
        LaunchTemplateId=world.launch_template_id, LaunchTemplateData={"InstanceType": "t3.medium"}
    )["LaunchTemplateVersion"]["VersionNumber"]
    world.calls.clear()

    update = _request(world, "Update", url, PhysicalResourceId=created["PhysicalResourceId"])
    update["OldResourceProperties"] = dict(update["ResourceProperties"])
    update["ResourceProperties"]["LaunchTemplateVersion"] = str(new_version)
    handler.lambda_handler(update, lambda_context)
    (updated,) = received
    assert updated["Status"] == "SUCCESS", updated.get("Reason")
    if updated["PhysicalResourceId"] != created["PhysicalResourceId"]:
        # What CloudFormation does next with a replaced custom resource.
        delete = _request(world, "Delete", url, PhysicalResourceId=created["PhysicalResourceId"])
        handler.lambda_handler(delete, lambda_context)
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert updated["Data"]["InstanceId"] == instance
    assert world.calls.named("RunInstances") == [] and world.calls.named("TerminateInstances") == []
    assert world.state_of(instance) == "running"
    node = world.node(1)
    assert (node.state, node.current_instance_id) == (state.ACTIVE, instance)
    assert node.config is not None and node.config.launch_template_version == str(new_version)


def test_delete_answers_only_once_the_instance_is_terminated(env: World, faults) -> None:
    # AWS: an instance passes through `shutting-down` with its network interface still attached;
    # CloudFormation deletes the node's security group and subnets right after the Delete answer.
    world = env
    instance = world.provision(1)
    request = world.cfn_request("Delete", 1, ResponseURL="http://127.0.0.1:1/unused")
    with faults.terminating_slowly(describes=3):
        provision.delete_node(request, clients=world.clients, settings=world.settings, now=world.now)
        assert world.state_of(instance) == "terminated"
    assert world.node(1).state == state.DELETED


def test_delete_gives_up_within_its_bound_and_says_which_instance_is_left(env: World, faults) -> None:
    world = env
    instance = world.provision(1)
    request = world.cfn_request("Delete", 1, ResponseURL="http://127.0.0.1:1/unused")
    with faults.terminating_slowly(describes=10**6):
        with pytest.raises(RuntimeError, match=f"instance\\(s\\) {instance} not terminated"):
            provision.delete_node(request, clients=world.clients, settings=world.settings, now=world.now)
        assert world.state_of(instance) == "shutting-down"
        # The record is DELETED at once (a switch in progress stops at its next lease check), and
        # CloudFormation's next Delete (the operator's retry) still waits for the shutting-down instance.
        assert world.node(1).state == state.DELETED
        with pytest.raises(RuntimeError, match=f"instance\\(s\\) {instance} not terminated"):
            provision.delete_node(request, clients=world.clients, settings=world.settings, now=world.now)
    # The bound: never more than DELETE_WAIT_SECONDS, well within the 900 s Lambda timeout.
    assert provision.DELETE_WAIT_SECONDS < 900
