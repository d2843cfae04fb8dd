"""Clients reach a node only through its load balancer, from the configured client CIDRs.

An NLB keeps the client's address (`preserve_client_ip`), so a node rule naming the VPC CIDR would
drop clients of a peered VPC or on premises. Each load balancer has its own security group: it admits
`client_cidrs` (default: the VPC, or any address when internet-facing) to the listeners, and the node
admits that group, which lets client-preserved traffic through ("Security groups for your Network Load
Balancer", https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html).
An NLB created without a security group can never get one, and health checks obey the group's outbound
rules (same page): the group must exist and allow the node's ports out, whatever the CDK feature flags.
"""

from __future__ import annotations

from typing import Any

import pytest

from swr_stacks.app_builder import vpc_stack_name

APPS = ["default_app", "default_app_without_flags", "multi_app"]


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _group_id(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "GroupId"]}


def _rules(template: dict[str, Any], group: str, direction: str) -> list[dict[str, Any]]:
    """A group's inline rules plus its standalone SecurityGroupIngress/Egress resources."""
    key = "SecurityGroupIngress" if direction == "in" else "SecurityGroupEgress"
    rules = list(template["Resources"][group]["Properties"].get(key, []))
    kind = "AWS::EC2::SecurityGroupIngress" if direction == "in" else "AWS::EC2::SecurityGroupEgress"
    rules += [
        r["Properties"]
        for r in _resources(template, kind).values()
        if r["Properties"]["GroupId"] == _group_id(group)
    ]
    return rules


def _group_by_description(template: dict[str, Any], description: str) -> str:
    (found,) = [
        k
        for k, v in _resources(template, "AWS::EC2::SecurityGroup").items()
        if v["Properties"]["GroupDescription"] == description
    ]
    return found


@pytest.mark.parametrize("app_fixture", APPS)
def test_clients_reach_the_node_only_through_the_load_balancer_group(request, app_fixture):
    app = request.getfixturevalue(app_fixture)
    for region in app.config.regions:
        for vpc in region.vpcs:
            template = app.raw[vpc_stack_name(region.name, vpc.name)]
            balancers = _resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
            for node in vpc.nodes:
                lb_sg = _group_by_description(
                    template, f"swr node {node.node_id}: {node.lb.upper()} listeners"
                )
                node_sg = _group_by_description(template, f"swr node {node.node_id}: application traffic")
                (balancer,) = [
                    b
                    for b in balancers.values()
                    if b["Properties"].get("SecurityGroups") == [_group_id(lb_sg)]
                ]
                assert balancer["Properties"]["Type"] == ("network" if node.lb == "nlb" else "application")
                clients = node.client_cidrs or (("0.0.0.0/0",) if node.internet_facing else (vpc.cidr,))
                listeners = {(r["CidrIp"], r["FromPort"]) for r in _rules(template, lb_sg, "in")}
                assert listeners == {(c, p) for c in clients for p in node.listener_ports}
                ports = {node.target_port, node.health_check.port or node.target_port}
                # Out of the load balancer: only to the node (traffic and health checks).
                out = [r for r in _rules(template, lb_sg, "out") if r.get("CidrIp") != "255.255.255.255/32"]
                assert {(r["DestinationSecurityGroupId"]["Fn::GetAtt"][0], r["FromPort"]) for r in out} == {
                    (node_sg, p) for p in ports
                }
                # Into the node on those ports: the load balancer's group, never an address range.
                inbound = [r for r in _rules(template, node_sg, "in") if r["FromPort"] in ports]
                config_rules = {(r.cidr, r.port) for r in node.ingress}
                for rule in inbound:
                    if "CidrIp" in rule:
                        assert (rule["CidrIp"], rule["FromPort"]) in config_rules, rule
                assert {
                    (r["SourceSecurityGroupId"]["Fn::GetAtt"][0], r["FromPort"])
                    for r in inbound
                    if "SourceSecurityGroupId" in r
                } == {(lb_sg, p) for p in ports}


def test_peered_and_on_premises_client_cidrs_reach_an_internal_nlb(multi_app):
    template = multi_app.raw[vpc_stack_name("eu-west-1", "stage")]
    lb_sg = _group_by_description(template, "swr node 11: NLB listeners")
    cidrs = sorted(r["CidrIp"] for r in _rules(template, lb_sg, "in"))
    assert cidrs == ["10.20.0.0/16", "172.16.0.0/12"]
    tcp_groups = [
        t
        for t in _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
        if t["Properties"]["Protocol"] == "TCP"
    ]
    for tg in tcp_groups:  # the node sees these clients' own addresses
        attrs = {a["Key"]: a["Value"] for a in tg["Properties"]["TargetGroupAttributes"]}
        assert attrs["preserve_client_ip.enabled"] == "true"


def test_a_tcp_health_check_shorter_than_the_default_timeout_gets_a_timeout_under_its_interval(default_app):
    """The NLB default (5 s) is shorter than a TCP check's default timeout (10 s); ELBv2 refuses a timeout
    longer than the interval (moto enforces it too), so the template sets one below the interval."""
    template = default_app.raw[vpc_stack_name("eu-west-1", "demo")]
    groups = _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    tcp = [t["Properties"] for t in groups if t["Properties"]["Protocol"] == "TCP"]
    assert tcp and all(p["HealthCheckIntervalSeconds"] == 5 for p in tcp)
    assert all(p["HealthCheckTimeoutSeconds"] < p["HealthCheckIntervalSeconds"] for p in tcp)
