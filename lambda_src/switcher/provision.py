"""Provisioning of a node through its CloudFormation custom resource `Custom::SwrNode`.

Who owns what: docs/design.md.

CloudFormation owns the stable parts; the switcher owns the node's instance and alarms, so the first
instance is launched here through the same adapters a switch uses. Node config lives in the node's
DynamoDB record (the properties of the custom resource), not in the Lambda environment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from switcher import aws, contract, placement, standby, state
from switcher.clients import Clients
from switcher.observability import logger
from switcher.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client


class PropertyError(ValueError):
    """A property of the node custom resource is missing or invalid (the message names it)."""


@dataclass(frozen=True)
class NodeProperties:
    """The validated properties of a `Custom::SwrNode` resource."""

    node_id: int
    vpc_name: str
    config: state.NodeConfig

    @property
    def physical_id(self) -> str:
        """PhysicalResourceId, stable across updates of the same node."""
        return physical_id(self.vpc_name, self.node_id)


def physical_id(vpc_name: str, node_id: int) -> str:
    """The custom resource's PhysicalResourceId: `swr-node-<vpc>-<node_id>`."""
    return f"swr-node-{vpc_name}-{node_id}"


#: The request types CloudFormation sends to a custom resource.
REQUEST_TYPES = ("Create", "Update", "Delete")


def parse_properties(props: Any) -> NodeProperties:
    """Validate the custom resource's properties, naming the bad one."""
    if not isinstance(props, Mapping):
        raise PropertyError(f"ResourceProperties is a {type(props).__name__}, not an object")
    required = (
        contract.PROP_NODE_ID,
        contract.PROP_VPC_NAME,
        contract.PROP_LAUNCH_TEMPLATE_ID,
        contract.PROP_LAUNCH_TEMPLATE_VERSION,
        contract.PROP_TARGET_GROUP_ARN,
    )
    missing = [name for name in required if not _text(props.get(name))]
    if missing:
        raise PropertyError(f"missing property(ies): {', '.join(missing)}")
    raw_id = props[contract.PROP_NODE_ID]
    node_id = contract.parse_node_id(_text(raw_id))
    if node_id is None:
        raise PropertyError(
            f"{contract.PROP_NODE_ID}={raw_id!r}: expected a canonical decimal integer (ASCII digits, "
            "no leading zero)"
        )
    monitor = props.get(contract.PROP_MONITOR_PROCESS)
    monitor_process = "swr-monitor" if monitor is None or monitor == "" else _text(monitor)
    raw_targets = props.get(contract.PROP_TARGETS)
    targets = contract.TARGETS_ON_SWITCH if raw_targets is None or raw_targets == "" else _text(raw_targets)
    try:
        config = state.NodeConfig(
            launch_template_id=_text(props[contract.PROP_LAUNCH_TEMPLATE_ID]),
            launch_template_version=_text(props[contract.PROP_LAUNCH_TEMPLATE_VERSION]),
            target_group_arn=_text(props[contract.PROP_TARGET_GROUP_ARN]),
            monitor_process=monitor_process,
            targets=targets,
        )
    except ValueError as err:
        raise PropertyError(str(err)) from None
    return NodeProperties(node_id=node_id, vpc_name=_text(props[contract.PROP_VPC_NAME]), config=config)


def _text(value: Any) -> str:
    """A property as CloudFormation passes it: a string (numbers arrive as strings); '' for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


def handle(
    event: Mapping[str, Any], *, clients: Clients, settings: Settings, now: Callable[[], float]
) -> tuple[str, dict[str, str]]:
    """Carry out a Create/Update/Delete request; returns (PhysicalResourceId, Data). Raises on failure.

    The request is validated (type, properties, VPC) before any AWS call.
    """
    request = event.get("RequestType")
    if request not in REQUEST_TYPES:
        raise PropertyError(f"RequestType={request!r}: expected one of {', '.join(REQUEST_TYPES)}")
    if request == "Delete":
        return delete_node(event, clients=clients, settings=settings, now=now)
    props = parse_properties(event.get("ResourceProperties"))
    if props.vpc_name != settings.vpc_name:
        raise PropertyError(
            f"{contract.PROP_VPC_NAME}={props.vpc_name!r}: this switcher serves VPC {settings.vpc_name!r}"
        )
    if request == "Create" or props.physical_id != event.get("PhysicalResourceId"):
        # A changed node id or VPC is a new node: CloudFormation deletes the old one after this succeeds.
        return props.physical_id, create_node(
            props, clients=clients, settings=settings, now=now, token_seed=event
        )
    return props.physical_id, update_node(
        props, _old_properties(event), clients=clients, settings=settings, now=now
    )


def _old_properties(event: Mapping[str, Any]) -> NodeProperties | None:
    try:
        return parse_properties(event.get("OldResourceProperties"))
    except PropertyError:
        return None


def create_node(
    props: NodeProperties,
    *,
    clients: Clients,
    settings: Settings,
    now: Callable[[], float],
    token_seed: Mapping[str, Any],
) -> dict[str, str]:
    """Adopt the node's live tagged instance (tagging it first) or launch the first one; record the node.

    An adopted instance (e.g. one of the vendor product, which only carries the node id tag) is tagged
    `swr:vpc` before any other change: swr's IAM policy acts only on instances carrying that tag.
    """
    ddb, table = clients.dynamodb, settings.table_name
    live = aws.live_node_instances(clients.ec2, settings.vpc_id, props.node_id)
    if len(live) > 1:
        ids = ", ".join(sorted(i["InstanceId"] for i in live))
        raise PropertyError(f"node {props.node_id}: several live instances carry its tag ({ids}); keep one")
    if live:
        aws.tag_for_adoption(clients.ec2, live[0], settings.vpc_name)
    existing = state.get_node(ddb, table, settings.vpc_name, props.node_id)
    if existing is None:
        node = state.save_node(
            ddb,
            table,
            state.new_node(settings.vpc_name, props.node_id, props.config, now()),
            expected_version=None,
        )
    else:
        node = state.save_node(
            ddb, table, state.with_config(existing, props.config, now()), expected_version=existing.version
        )

    if live:
        instance = live[0]
        logger.info(
            "adopting existing instance",
            extra={"node_id": props.node_id, "instance_id": instance["InstanceId"]},
        )
    else:
        instance = _launch_first(props, clients=clients, settings=settings, token_seed=token_seed)
        aws.wait_running(
            clients.ec2,
            instance["InstanceId"],
            waiter=aws.waiter_config(settings.waiter_delay_seconds, settings.waiter_max_attempts),
        )
    instance_id = instance["InstanceId"]
    az = instance.get("Placement", {}).get("AvailabilityZone")
    point_node_targets(clients, settings, props.node_id, props.config, ip=aws.private_ip(instance))
    aws.put_node_alarms(
        clients.cloudwatch,
        vpc_name=settings.vpc_name,
        node_id=props.node_id,
        instance_id=instance_id,
        monitor_process=props.config.monitor_process,
    )
    state.save_node(
        ddb, table, state.with_current(node, instance_id, az, now()), expected_version=node.version
    )
    return {"InstanceId": instance_id, "AvailabilityZone": az or ""}


def point_node_targets(
    clients: Clients, settings: Settings, node_id: int, config: state.NodeConfig, *, ip: str
) -> None:
    """Make the node's target group hold `ip` and, with pre-registered targets, its standby addresses.

    With pre-registered targets an adopted instance (e.g. of the vendor product) keeps its own interface:
    its address is registered beside the standby addresses, and deregistered by its first switch, which
    moves the node onto a standby interface.
    """
    if config.preregistered:
        interfaces = standby.standby_interfaces(clients.ec2, settings.vpc_id, node_id)
        standby.settle_targets(
            clients.elbv2, config.target_group_arn, keep=standby.addresses(interfaces) | {ip}
        )
    else:
        aws.point_target_group(clients.elbv2, config.target_group_arn, ip=ip)


def _launch_first(
    props: NodeProperties, *, clients: Clients, settings: Settings, token_seed: Mapping[str, Any]
) -> dict[str, Any]:
    candidates = placement.rank_candidates(
        aws.tagged_subnets(clients.ec2, settings.vpc_id), source_az=None, failures_by_az={}
    )
    if not candidates:
        raise PropertyError(f"VPC {settings.vpc_id} has no subnet tagged {contract.TAG_SUBNET}")
    # Same request → same token: a redelivered Create gets the same instance back.
    seed = f"{token_seed.get('StackId', '')}/{token_seed.get('RequestId', '')}/{props.node_id}"
    token_base = "swr-prov-" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    tags = {contract.TAG_VPC: settings.vpc_name, contract.TAG_NODE_ID: str(props.node_id)}
    refused: list[str] = []
    standbys = (
        standby.standby_interfaces(clients.ec2, settings.vpc_id, props.node_id)
        if props.config.preregistered
        else []
    )
    for candidate in candidates:
        # Pre-registered targets: the first instance, too, runs on its AZ's standby interface (the stack
        # registered its address); a subnet without a free one gets an interface of its own.
        interface = standby.in_subnet(standbys, candidate.subnet_id)
        interface_id = (
            interface["NetworkInterfaceId"] if interface and interface["Status"] == "available" else None
        )
        try:
            return aws.launch_first(
                clients.ec2,
                launch_template_id=props.config.launch_template_id,
                launch_template_version=props.config.launch_template_version,
                subnet_id=candidate.subnet_id,
                tags=tags,
                client_token=placement.client_token(token_base, candidate.az),
                network_interface_id=interface_id,
            )
        except ClientError as err:
            if aws.error_code(err) not in placement.CAPACITY_ERROR_CODES:
                raise
            refused.append(f"{candidate.az}: {aws.error_code(err)}")
    raise RuntimeError(f"node {props.node_id}: no AZ could launch the first instance ({'; '.join(refused)})")


def update_node(
    props: NodeProperties,
    old: NodeProperties | None,
    *,
    clients: Clients,
    settings: Settings,
    now: Callable[[], float],
) -> dict[str, str]:
    """Store the new config (the launch template applies at the next switch); follow a target-group or
    monitor change at once. During a switch the config is stored as pending and applied when the switch
    closes: changing the node under a switch would either stop it or leave its replacement behind the
    old target group while the new one holds the terminated source."""
    ddb, table = clients.dynamodb, settings.table_name
    for _ in range(state.TRANSACT_ATTEMPTS):
        node = state.get_node(ddb, table, settings.vpc_name, props.node_id)
        if node is None:
            raise PropertyError(f"node {props.node_id} has no record to update")
        try:
            if node.state == state.SWITCHING:
                state.save_node(
                    ddb,
                    table,
                    state.with_pending_config(node, props.config, now()),
                    expected_version=node.version,
                )
                logger.info(
                    "config stored as pending: it applies when the switch in progress closes",
                    extra={"node_id": props.node_id, "switch_id": node.switch_id},
                )
                return {
                    "InstanceId": node.current_instance_id or "",
                    "AvailabilityZone": node.current_az or "",
                }
            saved = state.save_node(
                ddb, table, state.with_config(node, props.config, now()), expected_version=node.version
            )
        except state.ConflictError:
            continue  # a switch claimed it or wrote meanwhile: look again
        # The AWS side matches the stored config (a pending one never got its AWS side done).
        retired = {old.config.target_group_arn} if old is not None else set()
        follow_config_change(
            clients, settings, saved, old=node.config, new=props.config, retired_target_groups=retired
        )
        return {"InstanceId": saved.current_instance_id or "", "AvailabilityZone": saved.current_az or ""}
    raise RuntimeError(f"node {props.node_id} kept changing during the update: CloudFormation may retry")


def follow_config_change(
    clients: Clients,
    settings: Settings,
    node: state.NodeRecord,
    *,
    old: state.NodeConfig | None,
    new: state.NodeConfig,
    retired_target_groups: set[str] | frozenset[str] = frozenset(),
) -> None:
    """The AWS side of a config change for the node's current instance: its target group and alarms."""
    current = node.current_instance_id
    if not current or old is None:
        return
    if old.target_group_arn != new.target_group_arn or old.targets != new.targets:
        instance = aws.describe_instance(clients.ec2, current) or {"InstanceId": current}
        point_node_targets(clients, settings, node.node_id, new, ip=aws.private_ip(instance))
    for arn in sorted({old.target_group_arn, *retired_target_groups} - {new.target_group_arn}):
        clear_quietly(clients.elbv2, arn)
    if old.monitor_process != new.monitor_process:
        aws.put_node_alarms(
            clients.cloudwatch,
            vpc_name=settings.vpc_name,
            node_id=node.node_id,
            instance_id=current,
            monitor_process=new.monitor_process,
        )


def apply_pending_config(
    clients: Clients, settings: Settings, node: state.NodeRecord, *, now: Callable[[], float]
) -> state.NodeRecord:
    """Apply a config an Update stored during a switch (after the close; or by the reconciler if the
    invocation that closed the switch ended first). Raises ConflictError if the node changed meanwhile."""
    if node.pending_config is None:
        return node
    follow_config_change(clients, settings, node, old=node.config, new=node.pending_config)
    applied = state.save_node(
        clients.dynamodb, settings.table_name, state.apply_pending(node, now()), expected_version=node.version
    )
    logger.info("pending config applied", extra={"node_id": node.node_id})
    return applied


#: The longest a Delete waits for the node's instances to terminate: well below the 900 s Lambda
#: timeout, so the switcher still answers CloudFormation (a killed invocation answers nothing).
DELETE_WAIT_SECONDS = 600
#: botocore's `instance_terminated` without its failure acceptors: an instance terminated while it was
#: stopping may still read `stopping` for a moment (DescribeInstances is eventually consistent), and
#: that must not end the wait.
_TERMINATED_WAITER = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "Terminated": {
                "operation": "DescribeInstances",
                "delay": 5,
                "maxAttempts": 120,
                "acceptors": [
                    {
                        "matcher": "pathAll",
                        "argument": "Reservations[].Instances[].State.Name",
                        "expected": "terminated",
                        "state": "success",
                    }
                ],
            }
        },
    }
)


def delete_node(
    event: Mapping[str, Any], *, clients: Clients, settings: Settings, now: Callable[[], float]
) -> tuple[str, dict[str, str]]:
    """Mark the record deleted (first: a switch in progress loses the node at its next lease check and
    stops), then terminate the node's instance(s), delete its alarms and deregister it."""
    physical = str(event.get("PhysicalResourceId", ""))
    try:
        props = parse_properties(event.get("ResourceProperties"))
    except PropertyError as err:
        # A Create that failed validation created nothing: its rollback Delete must not fail too.
        logger.info("delete of an invalid node resource: nothing to remove", extra={"error": str(err)})
        return physical, {}
    if props.vpc_name != settings.vpc_name or physical != props.physical_id:
        logger.info("delete of a resource this switcher never provisioned", extra={"physical_id": physical})
        return physical, {}
    node = _mark_deleted(clients, settings, props.node_id, now)
    # Shutting-down instances too: a retried Delete (after the wait below ran out) waits for them again.
    instance_ids = {
        i["InstanceId"]
        for i in aws.live_node_instances(
            clients.ec2, settings.vpc_id, props.node_id, states=(*aws.LIVE_STATES, "shutting-down")
        )
    }
    if node is not None and node.current_instance_id:
        instance_ids.add(node.current_instance_id)
    clear_quietly(clients.elbv2, props.config.target_group_arn)
    known = [i for i in sorted(instance_ids) if aws.describe_instance(clients.ec2, i) is not None]
    for instance_id in known:
        aws.terminate_once(clients.ec2, instance_id, wait=False, waiter={})
    aws.delete_node_alarms(clients.cloudwatch, vpc_name=settings.vpc_name, node_id=props.node_id)
    # CloudFormation deletes the node's security group and subnets next: while an instance is shutting
    # down its network interface is still attached and EC2 refuses those deletes (DependencyViolation:
    # a security group or subnet in use by a network interface cannot be deleted, Amazon VPC user
    # guide, "Delete a security group" / "Delete a subnet"). So answer only once every instance is
    # terminated, within a bound that leaves time to answer.
    if known:
        delay = settings.waiter_delay_seconds
        attempts = max(1, min(settings.waiter_max_attempts, int(DELETE_WAIT_SECONDS // max(delay, 0.001))))
        waiter = create_waiter_with_client("Terminated", _TERMINATED_WAITER, clients.ec2)
        try:
            waiter.wait(InstanceIds=known, WaiterConfig=aws.waiter_config(delay, attempts))
        except WaiterError:
            raise RuntimeError(
                f"node {props.node_id}: instance(s) {', '.join(known)} not terminated after "
                f"{delay * attempts:.0f} s; delete the stack again once they are"
            ) from None
    return physical, {}


def _mark_deleted(
    clients: Clients, settings: Settings, node_id: int, now: Callable[[], float]
) -> state.NodeRecord | None:
    """Write DELETED (a switch in progress is recorded CANCELLED with it); returns the node as it was."""
    ddb, table = clients.dynamodb, settings.table_name
    for _ in range(state.TRANSACT_ATTEMPTS):
        node = state.get_node(ddb, table, settings.vpc_name, node_id)
        if node is None:
            return None
        deleted = state.mark_deleted(node, now())
        try:
            switch = None
            if node.state == state.SWITCHING and node.switch_sk:
                switch = state.get_switch(ddb, table, settings.vpc_name, node_id, node.switch_sk)
            if switch is not None:
                switch.outcome = state.SWITCH_CANCELLED
                switch.error = "the node was deleted (Custom::SwrNode Delete) during the switch"
                state.save_node_and_switch(ddb, table, deleted, switch, expected_version=node.version)
            else:
                state.save_node(ddb, table, deleted, expected_version=node.version)
        except state.ConflictError:
            continue
        return node
    raise RuntimeError(f"node {node_id} kept changing during the delete: CloudFormation may retry")


def clear_quietly(elbv2: ElasticLoadBalancingv2Client, target_group_arn: str) -> None:
    """Empty the node's target group; one already deleted (stack teardown order) is not an error."""
    try:
        aws.clear_target_group(elbv2, target_group_arn)
    except ClientError as err:
        if aws.error_code(err) != "TargetGroupNotFound":
            raise
