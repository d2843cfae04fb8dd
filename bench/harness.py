"""Drive the real switcher (`switcher.switch.run_event`) against moto with the latency model applied.

A `Deployment` is one moto server with the stable resources built (bench/world.py) and nodes
provisioned through the switcher's own custom-resource path (`switcher.provision.handle`), adopting
instances placed round-robin over the AZs. Events are shaped like EventBridge delivers them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from switcher import contract, provision
from switcher.clients import Clients, make_clients, retry_config
from switcher.observability import logger, metrics
from switcher.settings import Settings
from switcher.switch import SwitchResult, run_event

from bench.aws_model import ModeledAws
from bench.deployment_config import TargetGroupHealth
from bench.moto_process import REGION, moto_server_process
from bench.world import AZS, World, build_world

#: Modeled time 0 of every run maps to this epoch (timelines are epoch-based ISO strings).
EPOCH_BASE = 1_800_000_000.0


def iso_to_modeled(value: str) -> float:
    """A timeline timestamp (ISO, UTC) back to modeled seconds since the fault."""
    return datetime.fromisoformat(value).timestamp() - EPOCH_BASE


def modeled_to_iso(modeled: float) -> str:
    return datetime.fromtimestamp(EPOCH_BASE + modeled, tz=UTC).isoformat().replace("+00:00", "Z")


def settings_for(world: World, order: str) -> Settings:
    """The switcher's settings as the stacks would set them; everything else at its production default."""
    return Settings(
        table_name=world.table_name,
        topic_arn=world.topic_arn,
        blackhole_sg_id=world.blackhole_sg_id,
        vpc_name=world.vpc_name,
        vpc_id=world.vpc_id,
        switch_order=order,
    )


def plain_clients(endpoint_url: str) -> Clients:
    """Clients with no latency model (building the world, seeding, checking results)."""
    return make_clients(region_name=REGION, endpoint_url=endpoint_url)


def modeled_clients(endpoint_url: str, modeled: ModeledAws, settings: Settings) -> Clients:
    """Clients configured like the Lambda's (same retry mode) with the latency model's hooks attached."""
    clients = make_clients(
        region_name=REGION,
        endpoint_url=endpoint_url,
        config=retry_config(settings.retry_mode, settings.retry_max_attempts),
    )
    for client in (
        clients.ec2,
        clients.elbv2,
        clients.cloudwatch,
        clients.dynamodb,
        clients.sns,
        clients.events,
    ):
        modeled.attach(client)
    return clients


@dataclass
class Node:
    node_id: int
    instance_id: str
    az: str


@dataclass
class Deployment:
    endpoint_url: str
    world: World
    clients: Clients
    nodes: dict[int, Node] = field(default_factory=dict)


def _launch_tagged(clients: Clients, world: World, node_id: int, az: str) -> str:
    """An instance carrying the node's tags in `az`, as an operator's existing node would be."""
    tags = [
        {"Key": contract.TAG_NODE_ID, "Value": str(node_id)},
        {"Key": contract.TAG_VPC, "Value": world.vpc_name},
    ]
    response = clients.ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": world.launch_template_id, "Version": "$Latest"},
        SubnetId=world.subnet_by_az[az],
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return str(response["Instances"][0]["InstanceId"])


def provision_nodes(deployment: Deployment, node_ids: list[int], *, now: float) -> None:
    """Provision nodes through `Custom::SwrNode` Create requests, each adopting an instance in its AZ."""
    world, clients = deployment.world, deployment.clients
    settings = settings_for(world, "swr")
    for index, node_id in enumerate(node_ids):
        az = AZS[index % len(AZS)]
        instance_id = _launch_tagged(clients, world, node_id, az)
        event = {
            "RequestType": "Create",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/swr-bench/1",
            "RequestId": uuid.uuid4().hex,
            "LogicalResourceId": f"Node{node_id}",
            "ResourceType": contract.NODE_RESOURCE_TYPE,
            "ResourceProperties": {
                contract.PROP_NODE_ID: str(node_id),
                contract.PROP_VPC_NAME: world.vpc_name,
                contract.PROP_LAUNCH_TEMPLATE_ID: world.launch_template_id,
                contract.PROP_LAUNCH_TEMPLATE_VERSION: "$Latest",
                contract.PROP_TARGET_GROUP_ARN: world.target_group_by_node[node_id],
                contract.PROP_MONITOR_PROCESS: "swr-monitor",
            },
        }
        _, data = provision.handle(event, clients=clients, settings=settings, now=lambda: EPOCH_BASE + now)
        if data.get("InstanceId") != instance_id:
            raise RuntimeError(f"node {node_id}: provisioning did not adopt {instance_id}: {data}")
        deployment.nodes[node_id] = Node(node_id=node_id, instance_id=instance_id, az=az)


@contextmanager
def deployment(node_ids: list[int], health: TargetGroupHealth) -> Iterator[Deployment]:
    """A moto server with the world built and `node_ids` provisioned; stopped afterwards."""
    # The switcher logs JSON lines at INFO; in a benchmark they are noise. Its EMF metrics are never
    # printed here: `invoke` drops them after each invocation, as the Lambda decorator would flush them.
    logger.setLevel(logging.ERROR)
    with moto_server_process() as endpoint_url:
        clients = plain_clients(endpoint_url)
        world = build_world(
            ec2=clients.ec2,
            elbv2=clients.elbv2,
            dynamodb=clients.dynamodb,
            sns=clients.sns,
            node_ids=node_ids,
            health=health,
        )
        built = Deployment(endpoint_url=endpoint_url, world=world, clients=clients)
        provision_nodes(built, node_ids, now=-3600.0)
        yield built


def invoke(event: dict[str, Any], *, clients: Clients, settings: Settings, now: Any) -> SwitchResult:
    """One handler invocation: `run_event`, then drop the buffered metrics as the Lambda's
    `log_metrics` decorator does after each invocation (here they are not published)."""
    try:
        return run_event(event, clients=clients, settings=settings, now=now)
    finally:
        metrics.clear_metrics()


# --- events as EventBridge delivers them ------------------------------------------------------------
def ec2_state_event(instance_id: str, instance_state: str, at: float) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": contract.EC2_STATE_CHANGE_DETAIL_TYPE,
        "source": contract.EC2_EVENT_SOURCE,
        "account": "123456789012",
        "time": modeled_to_iso(at),
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": instance_state},
    }


def alarm_event(alarm_name: str, instance_id: str, at: float, *, status_check: bool) -> dict[str, Any]:
    if status_check:
        namespace, metric, dimensions = contract.STATUS_METRIC_NAMESPACE, contract.STATUS_METRIC_NAME, {}
    else:
        namespace, metric = contract.MONITOR_METRIC_NAMESPACE, contract.MONITOR_METRIC_NAME
        dimensions = {"pid_finder": contract.MONITOR_PID_FINDER}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": contract.ALARM_STATE_CHANGE_DETAIL_TYPE,
        "source": contract.ALARM_EVENT_SOURCE,
        "account": "123456789012",
        "time": modeled_to_iso(at),
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{alarm_name}"],
        "detail": {
            "alarmName": alarm_name,
            "state": {"value": contract.ALARM_TRIGGER_STATE, "reason": "bench"},
            "previousState": {"value": "OK"},
            "configuration": {
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": namespace,
                                "name": metric,
                                "dimensions": {"InstanceId": instance_id, **dimensions},
                            },
                            "period": 10 if not status_check else 60,
                            "stat": "Minimum" if not status_check else "Maximum",
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }
