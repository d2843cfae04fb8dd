"""Pre-registered targets against moto: a switch registers nothing, the replacement serves on the standby
address of its AZ, and the interface a terminated source leaves behind serves the next switch back."""

from __future__ import annotations

from typing import Any

from switcher import contract
from switcher.reconcile import reconcile

from tests.helpers.aws_faults import FaultInjector
from tests.helpers.world import AZS, World, build_world

NODE = 1


def _interface(world: World, interface_id: str) -> dict[str, Any]:
    found = world.clients.ec2.describe_network_interfaces(NetworkInterfaceIds=[interface_id])
    return dict(found["NetworkInterfaces"][0])


def _registered(world: World) -> set[str]:
    health = world.clients.elbv2.describe_target_health(TargetGroupArn=world.target_group_for(NODE))
    return {d["Target"]["Id"] for d in health["TargetHealthDescriptions"]}


def _switch(world: World, source: str) -> str:
    world.clients.ec2.stop_instances(InstanceIds=[source])  # what the FaultScript does
    world.calls.clear()
    result = world.run(world.event("ec2_state_stopping", source, node_id=NODE))
    assert result.outcome == "SUCCEEDED", result
    assert result.replacement_instance_id is not None
    return result.replacement_instance_id


def test_a_switch_with_preregistered_targets_registers_nothing_and_serves_on_the_standby_address(
    faults: FaultInjector,
) -> None:
    world = build_world(standby_nodes=(NODE,))
    standby = world.standby_interfaces[NODE]
    address = {az: _interface(world, eni)["PrivateIpAddress"] for az, eni in standby.items()}
    # Deploy time: every standby address is a target, health-checked long before any failure.
    assert _registered(world) == set(address.values())

    source = world.provision(NODE)
    old = world.instance(source)
    old_az = old["Placement"]["AvailabilityZone"]
    assert old["PrivateIpAddress"] == address[old_az]  # the first instance, too, runs on its standby address

    replacement = _switch(world, source)

    operations = [c.operation for c in world.calls.calls]
    assert "RegisterTargets" not in operations and "DeregisterTargets" not in operations
    new = world.instance(replacement)
    new_az = new["Placement"]["AvailabilityZone"]
    assert new_az != old_az
    assert new["PrivateIpAddress"] == address[new_az]
    assert [i["NetworkInterfaceId"] for i in new["NetworkInterfaces"]] == [standby[new_az]]
    assert [g["GroupId"] for g in new["SecurityGroups"]] == [world.app_sg]
    (launch,) = world.calls.named("RunInstances")
    assert "SubnetId" not in launch.params and "SecurityGroupIds" not in launch.params
    assert launch.params["NetworkInterfaces"] == [
        {"DeviceIndex": 0, "NetworkInterfaceId": standby[new_az], "DeleteOnTermination": False}
    ]
    (switch,) = world.switches(NODE)
    assert switch.replacement_interface_id == standby[new_az]
    assert _registered(world) == set(address.values())  # the same targets as at deploy time
    assert world.state_of(source) == "terminated"
    # The terminated source's interface is detached and kept, but the fence left the blackhole group on it.
    left = _interface(world, standby[old_az])
    assert left["Status"] == "available"
    assert [g["GroupId"] for g in left["Groups"]] == [world.blackhole_sg]

    # Back to the first AZ (the third one refuses): the same interface serves again, unfenced.
    (third,) = set(AZS) - {old_az, new_az}
    faults.fail_in_subnets({world.subnets[third]})
    world.advance(60)
    back = _switch(world, replacement)

    operations = [c.operation for c in world.calls.calls]
    assert "RegisterTargets" not in operations and "DeregisterTargets" not in operations
    again = world.instance(back)
    assert again["Placement"]["AvailabilityZone"] == old_az
    assert again["PrivateIpAddress"] == address[old_az]
    assert [g["GroupId"] for g in again["SecurityGroups"]] == [world.app_sg]
    assert [g["GroupId"] for g in _interface(world, standby[old_az])["Groups"]] == [world.app_sg]
    assert _registered(world) == set(address.values())
    assert world.node(NODE).current_instance_id == back
    tags = {t["Key"]: t["Value"] for t in _interface(world, standby[old_az]).get("TagSet", [])}
    assert tags[contract.TAG_STANDBY_NODE] == str(NODE)


def test_a_standby_address_removed_by_hand_is_registered_again_and_a_missing_interface_falls_back(
    faults: FaultInjector,
) -> None:
    world = build_world(standby_nodes=(NODE,))
    standby = world.standby_interfaces[NODE]
    address = {az: _interface(world, eni)["PrivateIpAddress"] for az, eni in standby.items()}
    source = world.provision(NODE)
    old_az = world.instance(source)["Placement"]["AvailabilityZone"]
    bare, refusing = sorted(set(AZS) - {old_az})

    # Drift: a standby address deregistered by hand. The reconciler registers it again.
    world.clients.elbv2.deregister_targets(
        TargetGroupArn=world.target_group_for(NODE), Targets=[{"Id": address[bare]}]
    )
    report = reconcile(clients=world.clients, settings=world.settings, now=world.now)
    assert [r["node_id"] for r in report.repairs] == [NODE], report
    assert _registered(world) == set(address.values())

    # The only AZ that takes the replacement has lost its standby interface: it gets one of its own,
    # registered during the switch (on_switch behaviour), and the gone interface's address leaves the group.
    world.clients.ec2.delete_network_interface(NetworkInterfaceId=standby[bare])
    faults.fail_in_subnets({world.subnets[refusing]})
    replacement = _switch(world, source)

    new = world.instance(replacement)
    assert new["Placement"]["AvailabilityZone"] == bare
    assert new["PrivateIpAddress"] != address[bare]
    (register,) = world.calls.named("RegisterTargets")
    assert register.params["Targets"] == [{"Id": new["PrivateIpAddress"]}]
    assert _registered(world) == {address[old_az], address[refusing], new["PrivateIpAddress"]}
    (switch,) = world.switches(NODE)
    assert switch.replacement_interface_id is None
