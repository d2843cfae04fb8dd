"""Placement while a network fence stands: no replacement goes into a subnet that swr's whole-subnet deny
rule cuts off the shared data (the subnet of an Availability Zone being lost, switcher.fence)."""

from __future__ import annotations

from switcher import contract

from tests.helpers.world import World


def _deny(world: World, cidr: str, rule: int = contract.NACL_RULE_FIRST) -> None:
    """An swr whole-subnet deny rule, as the network fence writes it, in the VPC's default network ACL."""
    acl = world.clients.ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [world.vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"][0]["NetworkAclId"]
    for egress in (False, True):
        world.clients.ec2.create_network_acl_entry(
            NetworkAclId=acl, RuleNumber=rule, Protocol="-1", RuleAction="deny", Egress=egress, CidrBlock=cidr
        )


def _cidr(world: World, subnet_id: str) -> str:
    return str(world.clients.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["CidrBlock"])


def _switch(world: World) -> tuple[dict, dict]:
    source = world.provision(1)
    world.clients.ec2.stop_instances(InstanceIds=[source])
    result = world.run(world.event("ec2_state_stopping", source))
    assert result.outcome == "SUCCEEDED", result
    assert result.replacement_instance_id is not None
    return world.instance(source), world.instance(result.replacement_instance_id)


def test_a_replacement_never_lands_in_a_subnet_under_a_whole_subnet_fence(world: World) -> None:
    first_choice = sorted(world.subnets)[1]  # the source is in the first AZ; the next AZ by name comes first
    _deny(world, _cidr(world, world.subnets[first_choice]))

    old, new = _switch(world)

    assert old["Placement"]["AvailabilityZone"] == sorted(world.subnets)[0]
    assert new["Placement"]["AvailabilityZone"] not in (old["Placement"]["AvailabilityZone"], first_choice)
    (switch,) = world.switches(1)
    assert [c.subnet_id for c in switch.candidates] == [world.subnets[sorted(world.subnets)[2]]]


def test_a_per_address_fence_rule_does_not_take_a_subnet_out_of_placement(world: World) -> None:
    first_choice = sorted(world.subnets)[1]
    network = _cidr(world, world.subnets[first_choice])
    _deny(world, network.split("/")[0].rsplit(".", 1)[0] + ".77/32")  # one fenced source's address

    _, new = _switch(world)

    assert new["Placement"]["AvailabilityZone"] == first_choice
