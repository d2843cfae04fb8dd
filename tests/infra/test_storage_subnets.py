"""The EFS mount targets are in subnets of their own, so the switcher's network fence can be claimed.

The network fence (docs/fencing.md) refuses when a mount target is in the failed node's own subnet:
traffic inside one subnet crosses no network ACL. The nodes are launched only into subnets tagged
``contract.TAG_SUBNET``; the mount targets must therefore be in subnets without that tag.
"""

from __future__ import annotations

import ipaddress

from switcher import contract

from swr_stacks.app_builder import vpc_stack_name

TAG = {"Key": contract.TAG_SUBNET, "Value": contract.TAG_SUBNET_VALUE}


def _of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _vpc_stacks(app):
    for region in app.config.regions:
        for vpc in region.vpcs:
            yield vpc, app.raw[vpc_stack_name(region.name, vpc.name)]


def _mount_target_subnets(template: dict) -> list:
    return [m["Properties"]["SubnetId"] for m in _of_type(template, "AWS::EFS::MountTarget").values()]


def test_default_mount_targets_are_in_untagged_subnets_of_their_own(default_app):
    ((vpc, template),) = _vpc_stacks(default_app)
    subnets = _of_type(template, "AWS::EC2::Subnet")
    node_subnets = {k for k, s in subnets.items() if TAG in s["Properties"].get("Tags", [])}
    used = _mount_target_subnets(template)
    # The monitor-log EFS and each node's data EFS, one mount target per zone each.
    assert len(used) == len(vpc.availability_zones) * (1 + sum(n.user_data_efs for n in vpc.nodes))
    storage = {ref["Ref"] for ref in used}
    assert storage and not storage & node_subnets
    assert len(storage) == len(vpc.availability_zones)
    for subnet_id in storage:
        props = subnets[subnet_id]["Properties"]
        assert TAG not in props.get("Tags", []) and props["MapPublicIpOnLaunch"] is False
    # Each file system has its mount targets in every zone, one per storage subnet.
    azs = sorted(subnets[s]["Properties"]["AvailabilityZone"] for s in storage)
    assert azs == sorted(vpc.availability_zones)


def test_subnet_cidrs_stay_where_deployed_stacks_have_them(default_app, multi_app):
    """Private /24s first, then Public's (reserved when unused), then Storage's: a changed CIDR would
    replace the subnet and everything in it, so the node and public subnets keep the CIDRs of stacks
    deployed before the storage subnets existed, and adding public subnets later moves no storage one."""
    for app in (default_app, multi_app):
        for vpc, template in _vpc_stacks(app):
            if vpc.existing is not None:
                continue
            n = len(vpc.availability_zones)
            slots = [str(b) for b in ipaddress.ip_network(vpc.cidr).subnets(new_prefix=24)]
            by_kind: dict[str, list[str]] = {"private": [], "public": [], "storage": []}
            for s in _of_type(template, "AWS::EC2::Subnet").values():
                props = s["Properties"]
                kind = (
                    "private"
                    if TAG in props.get("Tags", [])
                    else "public"
                    if props["MapPublicIpOnLaunch"]
                    else "storage"
                )
                by_kind[kind].append(props["CidrBlock"])
            assert sorted(by_kind["private"]) == sorted(slots[:n])
            assert sorted(by_kind["public"]) == (
                sorted(slots[n : 2 * n]) if vpc.needs_public_subnets or vpc.nat_gateway else []
            )
            assert sorted(by_kind["storage"]) == (
                sorted(slots[2 * n : 3 * n]) if vpc.mount_targets_in_own_subnets else []
            )


def test_each_vpc_of_the_test_config_places_its_mount_targets_as_configured(multi_app):
    seen = set()
    for vpc, template in _vpc_stacks(multi_app):
        used = _mount_target_subnets(template)
        assert used
        if vpc.existing is not None:
            expected = set(
                vpc.existing.storage_subnet_ids
                if vpc.mount_targets_in_own_subnets
                else vpc.existing.private_subnet_ids
            )
            assert set(used) == expected
        else:
            subnets = _of_type(template, "AWS::EC2::Subnet")
            tagged = {k for k, s in subnets.items() if TAG in s["Properties"].get("Tags", [])}
            in_node_subnets = {ref["Ref"] for ref in used} <= tagged
            assert in_node_subnets != vpc.mount_targets_in_own_subnets
            assert len(subnets) == len(vpc.availability_zones) * (
                1 + (vpc.needs_public_subnets or vpc.nat_gateway) + vpc.mount_targets_in_own_subnets
            )
        seen.add((vpc.existing is not None, vpc.mount_targets_in_own_subnets))
    # The test config covers a new VPC with and without storage subnets and an imported one with them.
    assert {(False, True), (False, False), (True, True)} <= seen


def test_nodes_reach_the_mount_targets_across_subnets(default_app):
    """Security groups are not bound to subnets: the mount targets' groups admit NFS from the node
    group by group id, wherever the node is (an SG rule that references a group matches the
    interfaces carrying it, "Security group rules", Amazon VPC User Guide)."""
    ((vpc, template),) = _vpc_stacks(default_app)
    groups = _of_type(template, "AWS::EC2::SecurityGroup")
    node_groups = {k for k, g in groups.items() if g["Properties"]["GroupDescription"].endswith("traffic")}
    ingress = list(_of_type(template, "AWS::EC2::SecurityGroupIngress").values())
    for mount_target in _of_type(template, "AWS::EFS::MountTarget").values():
        (sg,) = mount_target["Properties"]["SecurityGroups"]
        sources = {
            r["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
            for r in ingress
            if r["Properties"].get("GroupId") == sg and r["Properties"]["FromPort"] == 2049
        }
        assert sources and sources <= node_groups
    assert len(node_groups) == len(vpc.nodes)


def test_storage_subnets_have_their_own_network_acl_that_allows_all_above_swr_rules(default_app):
    """The fence's deny rules (1-99) then cut the source from the mount targets' subnets only."""
    ((_vpc, template),) = _vpc_stacks(default_app)
    storage = {ref["Ref"] for ref in _mount_target_subnets(template)}
    (acl_id,) = _of_type(template, "AWS::EC2::NetworkAcl")
    associated = {
        a["Properties"]["SubnetId"]["Ref"]
        for a in _of_type(template, "AWS::EC2::SubnetNetworkAclAssociation").values()
        if a["Properties"]["NetworkAclId"] == {"Ref": acl_id}
    }
    assert associated == storage
    entries = [e["Properties"] for e in _of_type(template, "AWS::EC2::NetworkAclEntry").values()]
    assert sorted(
        (e["Egress"], e["RuleNumber"], e["Protocol"], e["RuleAction"], e["CidrBlock"]) for e in entries
    ) == [(False, 100, -1, "allow", "0.0.0.0/0"), (True, 100, -1, "allow", "0.0.0.0/0")]
