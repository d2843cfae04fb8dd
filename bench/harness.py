"""Drive the real switcher (`switcher.switch.run_event`) against moto with the latency model applied.

A `Deployment` is one moto server with the stable resources built (swr_local/world.py) and nodes
provisioned through the switcher's own custom-resource path (`switcher.provision.handle`), adopting
instances placed round-robin over the AZs. Events are shaped like EventBridge delivers them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from switcher import contract, provision
from switcher.clients import Clients, make_clients, retry_config
from switcher.observability import logger, metrics
from switcher.settings import Settings
from switcher.switch import SwitchResult, run_event

from bench.aws_model import ModeledAws
from bench.deployment_config import TargetGroupHealth
from swr_local import events
from swr_local.emulator import REGION, moto_server
from swr_local.world import AZS, World, build_world, each_client

#: Modeled time 0 of every run maps to this epoch (timelines are epoch-based ISO strings).
EPOCH_BASE = 1_800_000_000.0


def iso_to_modeled(value: str) -> float:
    """A timeline timestamp (ISO, UTC) back to modeled seconds since the fault."""
    return datetime.fromisoformat(value).timestamp() - EPOCH_BASE


def modeled_to_iso(modeled: float) -> str:
    return datetime.fromtimestamp(EPOCH_BASE + modeled, tz=UTC).isoformat().replace("+00:00", "Z")


def settings_for(world: World, order: str) -> Settings:
    """The switcher's settings as the stacks would set them; everything else at its production default."""
    return replace(world.settings, switch_order=order)


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
    for client in each_client(clients):
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
        {"Key": contract.TAG_VPC, "Value": world.settings.vpc_name},
    ]
    placement: dict[str, Any] = {
        "LaunchTemplate": {"LaunchTemplateId": world.launch_template_id, "Version": "$Latest"},
        "SubnetId": world.subnets[az],
    }
    if node_id in world.standby_interfaces:
        # Pre-registered targets: the node runs on its AZ's standby interface, as the switcher puts it.
        interface = world.standby_interfaces[node_id][az]
        placement = {
            "LaunchTemplate": {"LaunchTemplateId": world.standby_launch_template_id, "Version": "$Latest"},
            "NetworkInterfaces": [
                {"DeviceIndex": 0, "NetworkInterfaceId": interface, "DeleteOnTermination": False}
            ],
        }
    response = clients.ec2.run_instances(
        **placement, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
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
            "ResourceProperties": world.node_props(
                node_id, **{contract.PROP_LAUNCH_TEMPLATE_VERSION: "$Latest"}
            ),
        }
        _, data = provision.handle(event, clients=clients, settings=settings, now=lambda: EPOCH_BASE + now)
        if data.get("InstanceId") != instance_id:
            raise RuntimeError(f"node {node_id}: provisioning did not adopt {instance_id}: {data}")
        deployment.nodes[node_id] = Node(node_id=node_id, instance_id=instance_id, az=az)


def health_check_options(health: TargetGroupHealth) -> dict[str, int]:
    """create_target_group arguments that give a target group the synthesized template's health check."""
    options = {
        "HealthCheckIntervalSeconds": health.interval_seconds,
        "HealthyThresholdCount": health.healthy_threshold,
        "UnhealthyThresholdCount": health.unhealthy_threshold,
    }
    if health.timeout_seconds is not None:
        options["HealthCheckTimeoutSeconds"] = health.timeout_seconds
    return options


@contextmanager
def deployment(
    node_ids: list[int],
    health: TargetGroupHealth,
    *,
    standby_nodes: tuple[int, ...] = (),
    efs_subnets: bool = False,
) -> Iterator[Deployment]:
    """A moto server with the world built and `node_ids` provisioned; stopped afterwards.

    standby_nodes: nodes (among `node_ids`) with pre-registered targets, each running on its AZ's standby
    interface; efs_subnets: EFS mount targets in subnets of their own (where the network fence puts its
    rules)."""
    # The switcher logs JSON lines at INFO; in a benchmark they are noise. Its EMF metrics are never
    # printed here: `invoke` drops them after each invocation, as the Lambda decorator would flush them.
    logger.setLevel(logging.ERROR)
    with moto_server(own_process=True, region=REGION) as server:
        endpoint_url = server.endpoint_url
        clients = plain_clients(endpoint_url)
        world = build_world(
            endpoint_url=endpoint_url,
            clients=clients,
            vpc_name="bench",
            node_ids=node_ids,
            target_group_options=health_check_options(health),
            standby_nodes=standby_nodes,
            efs_subnets=efs_subnets,
        )
        built = Deployment(endpoint_url=endpoint_url, world=world, clients=clients)
        provision_nodes(built, node_ids, now=-3600.0)
        yield built


def invoke(
    event: dict[str, Any],
    *,
    clients: Clients,
    settings: Settings,
    now: Any,
    remaining_ms: Callable[[], int] | None = None,
) -> SwitchResult:
    """One handler invocation: `run_event`, then drop the buffered metrics as the Lambda's
    `log_metrics` decorator does after each invocation (here they are not published). `remaining_ms`:
    the invocation's remaining time, as the handler passes the Lambda context's."""
    try:
        return run_event(event, clients=clients, settings=settings, now=now, remaining_ms=remaining_ms)
    finally:
        metrics.clear_metrics()


# --- events as EventBridge delivers them (swr_local.events), at modeled times ------------------------
def ec2_state_event(instance_id: str, instance_state: str, at: float) -> dict[str, Any]:
    return events.ec2_state_change(instance_id, instance_state, time=modeled_to_iso(at))


def alarm_event(alarm_name: str, instance_id: str, at: float, *, status_check: bool) -> dict[str, Any]:
    alarm = events.node_alarm(alarm_name, instance_id, status_check=status_check)
    return events.alarm_state_change(alarm, time=modeled_to_iso(at))
