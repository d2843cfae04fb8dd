"""Migration from the vendor product without retagging: an instance that carries only the node id tag and
the vendor's own instance profile is adopted under swr's tag-scoped IAM policy (emulated by the fault
helper, since moto evaluates no IAM), and everything swr launches is tagged, volume and interface too."""

from __future__ import annotations

from typing import Any

import boto3
from switcher import contract, provision, state

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.world import REGION, World

_profiles = iter(range(10**6))


def _vendor_instance(world: World, node_id: int, *, az: str = "us-east-1b") -> tuple[str, str]:
    """An instance as the vendor product left it: node id tag only, the vendor's instance profile."""
    iam = boto3.client("iam", region_name=REGION)
    vendor_profile = iam.create_instance_profile(InstanceProfileName=f"vendor-pclswr-{next(_profiles)}")[
        "InstanceProfile"
    ]["Arn"]
    instance_id = world.launch_by_hand(
        node_tag=str(node_id),
        subnet_id=world.subnets[az],
        security_group_ids=[world.app_sg],
        instance_profile_arn=vendor_profile,
    )
    assert contract.TAG_VPC not in {t["Key"] for t in world.instance(instance_id).get("Tags", [])}
    return instance_id, vendor_profile


def _configured_node(world: World, node_id: int) -> None:
    node = state.new_node(
        "prod", node_id, state.NodeConfig(world.launch_template_id, "1", world.target_group_arn), world.now()
    )
    state.save_node(world.clients.dynamodb, world.settings.table_name, node, expected_version=None)


def _ec2_mutations(world: World) -> list[tuple[str, dict[str, Any]]]:
    return [(c.operation, c.params) for c in world.calls.mutating() if c.service == "ec2"]


def _adoption_tag(instance_id: str) -> tuple[str, dict[str, Any]]:
    return (
        "CreateTags",
        {"Resources": [instance_id], "Tags": [{"Key": contract.TAG_VPC, "Value": "prod"}]},
    )


def test_the_switcher_tags_an_adopted_vendor_instance_first_and_gives_the_replacement_the_nodes_profile(
    world: World, faults: FaultInjector
) -> None:
    _configured_node(world, 5)
    legacy, vendor_profile = _vendor_instance(world, 5)
    world.clients.ec2.stop_instances(InstanceIds=[legacy])
    faults.enforce_swr_policy("prod", world.profile_arn)
    world.calls.clear()

    result = world.run(world.event("ec2_state_stopping", legacy, 5))

    assert result.outcome == "SUCCEEDED" and result.source_instance_id == legacy
    mutations = _ec2_mutations(world)
    # The one narrowly scoped tag comes before the fence, the stop, the launch and the terminate.
    assert mutations[0] == _adoption_tag(legacy)
    assert [op for op, _ in mutations].count("CreateTags") == 1
    assert world.state_of(legacy) == "terminated"
    assert result.replacement_instance_id is not None
    replacement = world.instance(result.replacement_instance_id)
    assert replacement["IamInstanceProfile"]["Arn"] == world.profile_arn
    (launch,) = world.calls.named("RunInstances")
    assert "IamInstanceProfile" not in launch.params
    (switch,) = world.switches(5)
    assert switch.snapshot is not None and switch.snapshot.iam_instance_profile_arn == vendor_profile


def test_provisioning_adopts_a_vendor_instance_tagging_it_first_then_it_switches_under_the_policy(
    world: World, faults: FaultInjector
) -> None:
    legacy, _ = _vendor_instance(world, 1, az="us-east-1c")
    faults.enforce_swr_policy("prod", world.profile_arn)
    world.calls.clear()

    _, data = provision.handle(
        world.cfn_request("Create", 1), clients=world.clients, settings=world.settings, now=world.now
    )

    assert data["InstanceId"] == legacy
    assert world.calls.mutating()[0].operation == "CreateTags"  # before the node record is even written
    assert _ec2_mutations(world) == [_adoption_tag(legacy)]
    tags = {t["Key"]: t["Value"] for t in world.instance(legacy)["Tags"]}
    assert tags == {contract.TAG_NODE_ID: "1", contract.TAG_VPC: "prod"}
    assert world.node(1).current_instance_id == legacy

    world.clients.ec2.stop_instances(InstanceIds=[legacy])  # the vendor's FaultScript, still installed
    result = world.run(world.event("ec2_state_stopping", legacy))
    assert result.outcome == "SUCCEEDED"
    assert world.state_of(legacy) == "terminated"
    assert world.node_instances(1)[0]["IamInstanceProfile"]["Arn"] == world.profile_arn


def _resource_tags(world: World, instance_id: str) -> list[dict[str, str]]:
    """Tags of the instance, each of its volumes and each of its network interfaces."""
    instance = world.instance(instance_id)
    ec2 = world.clients.ec2
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    eni_ids = [n["NetworkInterfaceId"] for n in instance["NetworkInterfaces"]]
    assert volume_ids and eni_ids
    volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]
    return [
        {t["Key"]: t["Value"] for t in resource.get("Tags", resource.get("TagSet", []))}
        for resource in [instance, *volumes, *enis]
    ]


def test_every_resource_a_launch_creates_carries_the_vpc_and_node_tags(world: World) -> None:
    first = world.provision(1)
    for tags in _resource_tags(world, first):
        assert (tags.get(contract.TAG_VPC), tags.get(contract.TAG_NODE_ID)) == ("prod", "1"), tags

    world.clients.ec2.stop_instances(InstanceIds=[first])
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", first))
    assert result.outcome == "SUCCEEDED" and result.replacement_instance_id is not None
    (switch,) = world.switches(1)
    for tags in _resource_tags(world, result.replacement_instance_id):
        assert tags.get(contract.TAG_VPC) == "prod", tags
        assert (tags.get(contract.TAG_NODE_ID), tags.get(contract.TAG_SWITCH_ID)) == ("1", switch.switch_id)
    (launch,) = world.calls.named("RunInstances")
    kinds = {spec["ResourceType"] for spec in launch.params["TagSpecifications"]}
    assert kinds == {"instance", "volume", "network-interface"}
