"""The spec's "how many of each", per scope, in the synthesized templates."""

from __future__ import annotations

from aws_cdk.assertions import Match
from switcher import contract

from swr_stacks.app_builder import regional_stack_name, vpc_stack_name


def _count(template, resource_type: str) -> int:
    return len(template.find_resources(resource_type))


def test_test_config_has_two_regions_of_two_vpcs_of_three_nodes(multi_app):
    shape = [(r.name, [len(v.nodes) for v in r.vpcs]) for r in multi_app.config.regions]
    assert shape == [("eu-west-1", [3, 3]), ("us-east-1", [3, 3])]
    assert len(multi_app.templates) == 2 + 4


def test_one_state_table_per_region_and_none_elsewhere(multi_app):
    for region in multi_app.config.regions:
        regional = multi_app.templates[regional_stack_name(region.name)]
        regional.resource_count_is("AWS::DynamoDB::Table", 1)
        regional.resource_count_is("AWS::SNS::Topic", 1)
        for vpc in region.vpcs:
            multi_app.templates[vpc_stack_name(region.name, vpc.name)].resource_count_is(
                "AWS::DynamoDB::Table", 0
            )


def test_per_vpc_one_blackhole_one_switcher_two_rules(multi_app):
    for region in multi_app.config.regions:
        for vpc in region.vpcs:
            template = multi_app.templates[vpc_stack_name(region.name, vpc.name)]
            blackholes = template.find_resources(
                "AWS::EC2::SecurityGroup",
                {"Properties": {"GroupDescription": Match.string_like_regexp("^swr blackhole")}},
            )
            assert len(blackholes) == 1
            switchers = template.find_resources(
                "AWS::Lambda::Function", {"Properties": {"Handler": "switcher.handler.lambda_handler"}}
            )
            assert len(switchers) == 1
            assert _count(template, "AWS::Events::Rule") == 2
            # The reconcile schedule is EventBridge Scheduler's, not a third rule.
            assert _count(template, "AWS::Scheduler::Schedule") == 1
            assert _count(template, "AWS::CloudWatch::Dashboard") == 1
            assert _count(template, "AWS::Logs::LogGroup") >= 1


def test_per_node_one_lb_one_user_data_efs_one_launch_template(multi_app):
    for region in multi_app.config.regions:
        for vpc in region.vpcs:
            template = multi_app.templates[vpc_stack_name(region.name, vpc.name)]
            nodes = len(vpc.nodes)
            assert _count(template, "AWS::ElasticLoadBalancingV2::LoadBalancer") == nodes
            assert _count(template, "AWS::ElasticLoadBalancingV2::TargetGroup") == nodes
            assert _count(template, "AWS::EC2::LaunchTemplate") == nodes
            # One user-data EFS per node plus the VPC's shared monitor-log EFS.
            assert _count(template, "AWS::EFS::FileSystem") == nodes + 1
            assert _count(template, "AWS::EFS::AccessPoint") == nodes
            assert _count(template, contract.NODE_RESOURCE_TYPE) == nodes
            # A mount target in every target AZ, for each file system.
            assert _count(template, "AWS::EFS::MountTarget") == (nodes + 1) * len(vpc.availability_zones)


def test_no_instances_and_no_node_alarms_in_any_template(multi_app, default_app):
    # The switcher owns the node instance and its alarms: CloudFormation must not.
    node_namespaces = {contract.MONITOR_METRIC_NAMESPACE, contract.STATUS_METRIC_NAMESPACE}
    for app in (multi_app, default_app):
        for name, template in app.templates.items():
            assert _count(template, "AWS::EC2::Instance") == 0, name
            assert _count(template, "AWS::AutoScaling::AutoScalingGroup") == 0, name
            alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
            assert not [a for a in alarms if a["Properties"].get("Namespace") in node_namespaces], name


def test_six_stack_alarms_per_vpc_and_none_in_the_regional_stacks(multi_app):
    for region in multi_app.config.regions:
        multi_app.templates[regional_stack_name(region.name)].resource_count_is("AWS::CloudWatch::Alarm", 0)
        for vpc in region.vpcs:
            template = multi_app.templates[vpc_stack_name(region.name, vpc.name)]
            assert _count(template, "AWS::CloudWatch::Alarm") == 6


def test_default_config_is_one_vpc_over_three_azs_with_an_nlb_and_an_alb_node(default_app):
    (region,) = default_app.config.regions
    (vpc,) = region.vpcs
    assert len(vpc.availability_zones) == 3
    assert sorted(n.lb for n in vpc.nodes) == ["alb", "nlb"]
    template = default_app.templates[vpc_stack_name(region.name, vpc.name)]
    lbs = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert sorted(lb["Properties"]["Type"] for lb in lbs.values()) == ["application", "network"]
    assert _count(template, "AWS::Events::Rule") == 2
