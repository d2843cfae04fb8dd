"""Secure-by-default properties and least privilege, asserted on the synthesized templates."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match
from switcher import contract

from swr_stacks.app_builder import regional_stack_name, vpc_stack_name
from swr_stacks.switcher import DESCRIBE_ACTIONS

MUTATING_PREFIXES = (
    "Run",
    "Create",
    "Stop",
    "Terminate",
    "Modify",
    "Put",
    "Delete",
    "Register",
    "Deregister",
    "Set",
)


def _vpc_stacks(app):
    for region in app.config.regions:
        for vpc in region.vpcs:
            yield region, vpc, app.raw[vpc_stack_name(region.name, vpc.name)]


def _resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _switcher_statements(template: dict) -> list[dict]:
    (function,) = [
        f
        for f in _resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "switcher.handler.lambda_handler"
    ]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, "switcher role has no policy"
    return statements


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def _statement(statements: list[dict], sid: str) -> dict:
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


def test_state_table_is_on_demand_with_pitr_encryption_ttl_and_contract_keys(multi_app):
    for region in multi_app.config.regions:
        multi_app.templates[regional_stack_name(region.name)].has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": contract.TTL_ATTRIBUTE, "Enabled": True},
                "KeySchema": [
                    {"AttributeName": contract.TABLE_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": contract.TABLE_SORT_KEY, "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": Match.array_with(
                    [{"AttributeName": contract.TABLE_PARTITION_KEY, "AttributeType": "S"}]
                ),
            },
        )


def test_notice_topic_is_kms_encrypted_with_a_rotating_key(multi_app):
    template = multi_app.templates[regional_stack_name("eu-west-1")]
    template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.object_like({"Fn::GetAtt": Match.any_value()})}
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_blackhole_sg_has_no_ingress_and_only_the_unusable_dummy_egress(multi_app):
    for _region, _vpc, template in _vpc_stacks(multi_app):
        ((sg_id, sg),) = [
            (k, v)
            for k, v in _resources(template, "AWS::EC2::SecurityGroup").items()
            if v["Properties"]["GroupDescription"].startswith("swr blackhole")
        ]
        assert "SecurityGroupIngress" not in sg["Properties"]
        # What the CDK emits for allow_all_outbound=False: one rule that matches no real traffic.
        assert sg["Properties"]["SecurityGroupEgress"] == [
            {
                "CidrIp": "255.255.255.255/32",
                "Description": "Disallow all traffic",
                "FromPort": 252,
                "IpProtocol": "icmp",
                "ToPort": 86,
            }
        ]
        for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            for rule in _resources(template, kind).values():
                assert rule["Properties"]["GroupId"] != {"Fn::GetAtt": [sg_id, "GroupId"]}
                assert rule["Properties"].get("SourceSecurityGroupId") != {"Fn::GetAtt": [sg_id, "GroupId"]}


def test_switcher_function_settings_and_environment(multi_app):
    cfg = multi_app.config
    for _region, vpc, template in _vpc_stacks(multi_app):
        (function,) = [
            f
            for f in _resources(template, "AWS::Lambda::Function").values()
            if f["Properties"].get("Handler") == "switcher.handler.lambda_handler"
        ]
        props = function["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["Timeout"] == 900
        assert props["ReservedConcurrentExecutions"] == cfg.switcher_reserved_concurrency
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "TargetArn" in props["DeadLetterConfig"]
        env = props["Environment"]["Variables"]
        assert set(env) == {
            contract.ENV_TABLE_NAME,
            contract.ENV_TOPIC_ARN,
            contract.ENV_BLACKHOLE_SG_ID,
            contract.ENV_VPC_NAME,
            contract.ENV_VPC_ID,
            contract.ENV_SWITCH_ORDER,
            contract.ENV_FLAP_MAX_SWITCHES,
            contract.ENV_FLAP_WINDOW_SECONDS,
            contract.ENV_LEASE_SECONDS,
            contract.ENV_HISTORY_TTL_DAYS,
            contract.ENV_RECONCILE_INTERVAL_SECONDS,
            contract.ENV_SWITCH_OVERDUE_SECONDS,
            contract.ENV_FENCE_TIMEOUT_SECONDS,
            contract.ENV_FENCE_INLINE_WAIT_SECONDS,
            contract.ENV_SILENT_AFTER_SECONDS,
        }
        assert env[contract.ENV_FENCE_TIMEOUT_SECONDS] == str(cfg.fence_timeout_seconds)
        assert env[contract.ENV_FENCE_INLINE_WAIT_SECONDS] == str(cfg.fence_inline_wait_seconds)
        assert env[contract.ENV_SILENT_AFTER_SECONDS] == str(cfg.silent_after_seconds)
        assert env[contract.ENV_VPC_NAME] == vpc.name
        assert env[contract.ENV_RECONCILE_INTERVAL_SECONDS] == str(vpc.reconcile.interval_seconds)
        assert env[contract.ENV_SWITCH_OVERDUE_SECONDS] == str(vpc.reconcile.switch_overdue_seconds)
        assert env[contract.ENV_SWITCH_ORDER] == "vendor"
        assert env[contract.ENV_FLAP_MAX_SWITCHES] == "5"
        assert env[contract.ENV_FLAP_WINDOW_SECONDS] == "1800"
        assert env[contract.ENV_LEASE_SECONDS] == str(900 + 30)
        assert env[contract.ENV_HISTORY_TTL_DAYS] == "30"
        # The per-node table is NOT in the environment (4 KB limit): it travels in the custom resources.
        assert len(json.dumps(env)) < 4096
        (invoke,) = _resources(template, "AWS::Lambda::EventInvokeConfig").values()
        assert invoke["Properties"]["MaximumRetryAttempts"] == 2
        assert invoke["Properties"]["MaximumEventAgeInSeconds"] == 3600


def test_dead_letter_queue_is_encrypted_and_ssl_only(multi_app):
    template = multi_app.templates[vpc_stack_name("eu-west-1", "prod")]
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_exactly_the_two_design_rules_with_retry_and_dlq(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        patterns = sorted(
            (json.dumps(r["Properties"]["EventPattern"], sort_keys=True), r["Properties"]["Targets"])
            for r in _resources(template, "AWS::Events::Rule").values()
        )
        assert [json.loads(p) for p, _ in patterns] == sorted(
            [
                {
                    "source": [contract.EC2_EVENT_SOURCE],
                    "detail-type": [contract.EC2_STATE_CHANGE_DETAIL_TYPE],
                    "detail": {"state": list(contract.EC2_TRIGGER_STATES)},
                },
                {
                    "source": [contract.ALARM_EVENT_SOURCE],
                    "detail-type": [contract.ALARM_STATE_CHANGE_DETAIL_TYPE],
                    "detail": {
                        "alarmName": [{"prefix": contract.alarm_prefix(vpc.name)}],
                        "state": {"value": [contract.ALARM_TRIGGER_STATE]},
                    },
                },
            ],
            key=lambda p: json.dumps(p, sort_keys=True),
        )
        for _pattern, rule_targets in patterns:
            (target,) = rule_targets
            assert "DeadLetterConfig" in target
            assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1


def test_launch_template_imdsv2_encrypted_no_public_ip_and_user_data(multi_app):
    template = multi_app.raw[vpc_stack_name("eu-west-1", "prod")]
    templates = _resources(template, "AWS::EC2::LaunchTemplate")
    assert len(templates) == 3
    for lt in templates.values():
        data = lt["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] in (1, 2)
        assert all(m["Ebs"]["Encrypted"] is True for m in data["BlockDeviceMappings"])
        assert "NetworkInterfaces" not in data  # no public IP, and the switcher can choose the subnet
        assert "IamInstanceProfile" in data
        # An OS shutdown (the FaultScript's fallback) must stop the node, never terminate it.
        assert data["InstanceInitiatedShutdownBehavior"] == "stop"
        user_data = json.dumps(data["UserData"])
        assert "SWR_VPC_NAME=prod" in user_data and "accesspoint=" in user_data
        tag_specs = {spec["ResourceType"]: spec["Tags"] for spec in data["TagSpecifications"]}
        assert {"Key": contract.TAG_VPC, "Value": "prod"} in tag_specs["instance"]
    key_names = sorted(
        lt["Properties"]["LaunchTemplateData"].get("KeyName", "-") for lt in templates.values()
    )
    assert key_names == ["-", "-", "ops-key"]


def test_load_balancers_internal_by_default_cross_zone_and_short_draining(multi_app):
    template = multi_app.raw[vpc_stack_name("eu-west-1", "prod")]
    schemes = sorted(
        lb["Properties"]["Scheme"]
        for lb in _resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    )
    assert schemes == ["internal", "internal", "internet-facing"]  # node 2 asks for internet-facing
    for tg in _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup").values():
        # By IP: the switcher registers a replacement while it is still pending.
        assert tg["Properties"]["TargetType"] == "ip"
        attrs = {a["Key"]: a["Value"] for a in tg["Properties"]["TargetGroupAttributes"]}
        assert attrs["deregistration_delay.timeout_seconds"] == "30"
        if tg["Properties"]["Protocol"] == "TCP":  # NLB: the node's rules rely on client addresses
            assert attrs["preserve_client_ip.enabled"] == "true"
    for lb in _resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values():
        if lb["Properties"]["Type"] == "network":
            attrs = {a["Key"]: a["Value"] for a in lb["Properties"]["LoadBalancerAttributes"]}
            assert attrs["load_balancing.cross_zone.enabled"] == "true"


def test_node_admits_the_internet_only_behind_an_internet_facing_lb(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        open_nodes = set()
        for rule_holder in _resources(template, "AWS::EC2::SecurityGroup").values():
            description = rule_holder["Properties"]["GroupDescription"]
            rules = rule_holder["Properties"].get("SecurityGroupIngress", [])
            if any(r.get("CidrIp") == "0.0.0.0/0" for r in rules):
                open_nodes.add(description)
        # Only a load balancer's own group admits the internet; the node admits its load balancer.
        expected = {f"swr node {n.node_id}: {n.lb.upper()} listeners" for n in vpc.nodes if n.internet_facing}
        assert open_nodes == expected


def test_private_subnets_tagged_one_per_az_and_public_only_when_needed(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        subnets = _resources(template, "AWS::EC2::Subnet")
        if vpc.existing is not None:
            assert subnets == {}  # imported by ids, nothing created
            continue
        tagged = [
            s
            for s in subnets.values()
            if {"Key": contract.TAG_SUBNET, "Value": contract.TAG_SUBNET_VALUE} in s["Properties"]["Tags"]
        ]
        assert sorted(s["Properties"]["AvailabilityZone"] for s in tagged) == sorted(vpc.availability_zones)
        assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in tagged)
        public = [s for s in subnets.values() if s["Properties"]["MapPublicIpOnLaunch"]]
        assert len(public) == (
            len(vpc.availability_zones) if vpc.needs_public_subnets or vpc.nat_gateway else 0
        )
        # The rest are the EFS mount targets' own subnets, untagged (tests/infra/test_storage_subnets.py).
        storage = len(subnets) - len(tagged) - len(public)
        assert storage == (len(vpc.availability_zones) if vpc.mount_targets_in_own_subnets else 0)
        assert len(_resources(template, "AWS::EC2::NatGateway")) == (1 if vpc.nat_gateway else 0)
        assert len(_resources(template, "AWS::EC2::FlowLog")) == 1


def test_interface_endpoints_with_https_only_from_the_vpc(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        endpoints = _resources(template, "AWS::EC2::VPCEndpoint").values()
        services = sorted(
            json.dumps(e["Properties"]["ServiceName"]).split(".")[-1].strip('"') for e in endpoints
        )
        assert services == sorted(vpc.endpoints_to_create())
        if vpc.existing is None:  # a new VPC gets them all
            assert services == ["ec2", "elasticfilesystem", "logs", "monitoring"]
        (sg,) = [
            v
            for v in _resources(template, "AWS::EC2::SecurityGroup").values()
            if v["Properties"]["GroupDescription"].startswith("swr interface endpoints")
        ]
        assert sg["Properties"]["SecurityGroupIngress"] == [
            {
                "CidrIp": vpc.cidr,
                "Description": "HTTPS to AWS APIs from the VPC",
                "FromPort": 443,
                "IpProtocol": "tcp",
                "ToPort": 443,
            }
        ]


def test_everything_taggable_in_a_vpc_stack_carries_swr_vpc(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        checked = 0
        for logical_id, resource in template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list):
                assert {"Key": contract.TAG_VPC, "Value": vpc.name} in tags, logical_id
                checked += 1
        assert checked > 20


def test_no_mutating_action_on_star(multi_app):
    for _region, _vpc, template in _vpc_stacks(multi_app):
        for statement in _switcher_statements(template):
            if statement["Resource"] == "*":
                for action in _actions(statement):
                    verb = action.split(":")[1]
                    assert not verb.startswith(MUTATING_PREFIXES) or action.startswith("xray:"), action
                    assert action in DESCRIBE_ACTIONS or action.startswith("xray:"), action


def test_switcher_iam_conditions(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        statements = _switcher_statements(template)
        run = _statement(statements, "RunTaggedInstances")
        assert run["Condition"] == {"StringEquals": {f"aws:RequestTag/{contract.TAG_VPC}": vpc.name}}
        assert sorted(r["Fn::Join"][1][-1] for r in run["Resource"]) == [
            ":instance/*",
            ":network-interface/*",
            ":volume/*",
        ]
        subnet = _statement(statements, "RunInTaggedSubnets")
        assert subnet["Condition"]["StringLike"] == {f"ec2:ResourceTag/{contract.TAG_SUBNET}": "*"}
        assert "ec2:Vpc" in subnet["Condition"]["StringEquals"]
        lt = _statement(statements, "RunFromOwnLaunchTemplates")
        assert lt["Condition"] == {"StringEquals": {f"ec2:ResourceTag/{contract.TAG_VPC}": vpc.name}}
        tags = _statement(statements, "TagOnLaunchOnly")
        assert _actions(tags) == ["ec2:CreateTags"]
        assert tags["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}
        fence = _statement(statements, "FenceAndTerminateOwnInstances")
        assert sorted(_actions(fence)) == [
            "ec2:ModifyInstanceAttribute",
            "ec2:StopInstances",
            "ec2:TerminateInstances",
        ]
        assert fence["Condition"] == {"StringEquals": {f"ec2:ResourceTag/{contract.TAG_VPC}": vpc.name}}
        sgs = _statement(statements, "RunWithVpcSecurityGroups")
        assert "ec2:Vpc" in sgs["Condition"]["StringEquals"]
        # Stop/Terminate/CreateTags are never granted without a condition anywhere in the policy.
        for statement in statements:
            for action in _actions(statement):
                if action in {"ec2:StopInstances", "ec2:TerminateInstances", "ec2:CreateTags"}:
                    assert "Condition" in statement, statement


def test_switcher_passes_only_node_roles_and_touches_only_own_target_groups_and_alarms(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        statements = _switcher_statements(template)
        node_roles = sorted(
            k
            for k, v in _resources(template, "AWS::IAM::Role").items()
            if v["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            == {"Service": "ec2.amazonaws.com"}
        )
        assert len(node_roles) == len(vpc.nodes)
        passing = _statement(statements, "PassNodeRoles")
        assert sorted(r["Fn::GetAtt"][0] for r in passing["Resource"]) == node_roles
        assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
        traffic = _statement(statements, "MoveTraffic")
        assert sorted(r["Ref"] for r in traffic["Resource"]) == sorted(
            _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
        )
        alarms = _statement(statements, "OwnAlarms")
        assert alarms["Resource"]["Fn::Join"][1][-1] == f":alarm:{contract.alarm_prefix(vpc.name)}*"
        notices = _statement(statements, "Notices")
        assert notices["Resource"]["Fn::Join"][1][-1] == ":event-bus/default"
        images = _statement(statements, "RunConfiguredImages")
        resources = images["Resource"] if isinstance(images["Resource"], list) else [images["Resource"]]
        image_arns = [json.dumps(r) for r in resources if "image/" in json.dumps(r)]
        assert len(image_arns) == len({n.ami for n in vpc.nodes})


def test_node_role_is_agent_and_efs_client_only(multi_app):
    template = multi_app.raw[vpc_stack_name("eu-west-1", "prod")]
    for role_id, role in _resources(template, "AWS::IAM::Role").items():
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] != {
            "Service": "ec2.amazonaws.com"
        }:
            continue
        assert "ManagedPolicyArns" not in role["Properties"]
        (policy,) = [
            p
            for p in _resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
        ]
        actions = sorted(
            {a for s in policy["Properties"]["PolicyDocument"]["Statement"] for a in _actions(s)}
        )
        assert actions == [
            "cloudwatch:PutMetricData",
            "ec2:DescribeTags",
            "ec2:DescribeVolumes",
            "ec2:StopInstances",
            "elasticfilesystem:ClientMount",
            "elasticfilesystem:ClientRootAccess",
            "elasticfilesystem:ClientWrite",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
        ]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        metrics = _statement(statements, "AgentMetrics")
        assert metrics["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": contract.MONITOR_METRIC_NAMESPACE}
        }
        assert (
            "elasticfilesystem:AccessPointArn"
            in _statement(statements, "MonitorLogEfs")["Condition"]["StringEquals"]
        )
        # The FaultScript may stop only instances of its own node, never terminate anything.
        stop_self = _statement(statements, "FaultScriptStopSelf")["Condition"]["StringEquals"]
        assert stop_self[f"ec2:ResourceTag/{contract.TAG_VPC}"] == "prod"
        assert stop_self[f"ec2:ResourceTag/{contract.TAG_NODE_ID}"] in {"1", "2", "3"}


def test_node_custom_resource_has_exactly_the_contract_properties_and_waits_for_prerequisites(multi_app):
    template = multi_app.raw[vpc_stack_name("eu-west-1", "prod")]
    resources = _resources(template, contract.NODE_RESOURCE_TYPE)
    assert len(resources) == 3
    for resource in resources.values():
        props = resource["Properties"]
        assert set(props) == {
            "ServiceToken",
            "ServiceTimeout",
            contract.PROP_NODE_ID,
            contract.PROP_VPC_NAME,
            contract.PROP_LAUNCH_TEMPLATE_ID,
            contract.PROP_LAUNCH_TEMPLATE_VERSION,
            contract.PROP_TARGET_GROUP_ARN,
            contract.PROP_MONITOR_PROCESS,
            contract.PROP_TARGETS,
        }
        assert isinstance(props[contract.PROP_NODE_ID], str) and props[contract.PROP_NODE_ID].isdigit()
        assert props[contract.PROP_VPC_NAME] == "prod"
        assert props[contract.PROP_LAUNCH_TEMPLATE_VERSION]["Fn::GetAtt"][1] == "LatestVersionNumber"
        assert props["ServiceToken"]["Fn::GetAtt"][1] == "Arn"
        depends = resource["DependsOn"]
        kinds = {template["Resources"][d]["Type"] for d in depends}
        assert {"AWS::EFS::MountTarget", "AWS::EC2::VPCEndpoint", "AWS::IAM::Policy"} <= kinds
        # Pre-registered targets: the first instance is launched on a standby interface.
        assert "AWS::EC2::NetworkInterface" in kinds
    monitor = sorted(r["Properties"][contract.PROP_MONITOR_PROCESS] for r in resources.values())
    assert monitor == ["rms", "swr-monitor", "swr-monitor"]


def test_monitor_log_group_access_points_and_dashboard(multi_app):
    for _region, vpc, template in _vpc_stacks(multi_app):
        names = [
            g["Properties"].get("LogGroupName") for g in _resources(template, "AWS::Logs::LogGroup").values()
        ]
        assert contract.monitor_log_group_name(vpc.name) in names
        paths = sorted(
            ap["Properties"]["RootDirectory"]["Path"]
            for ap in _resources(template, "AWS::EFS::AccessPoint").values()
        )
        assert paths == sorted(f"/{n.node_id}" for n in vpc.nodes)
        (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        for metric in (
            contract.METRIC_SWITCH_COUNT,
            contract.METRIC_SWITCH_FAILED,
            contract.METRIC_SWITCH_DURATION,
            contract.METRIC_NODES_HELD,
        ):
            assert metric in body
        for node in vpc.nodes:
            assert f"alarm:{contract.monitor_alarm_name(vpc.name, node.node_id)}" in body
            assert f"alarm:{contract.status_alarm_name(vpc.name, node.node_id)}" in body


@pytest.mark.parametrize("kind", ["AWS::EFS::FileSystem"])
def test_file_systems_are_encrypted_and_refuse_plain_nfs(multi_app, kind):
    template = multi_app.raw[vpc_stack_name("us-east-1", "beta")]
    for fs in _resources(template, kind).values():
        assert fs["Properties"]["Encrypted"] is True
        statements = fs["Properties"]["FileSystemPolicy"]["Statement"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in [
            s.get("Condition") for s in statements if s["Effect"] == "Deny"
        ]


def test_node_custom_resource_fails_soon_after_a_killed_switcher_invocation(multi_app):
    # CloudFormation waits ServiceTimeout seconds for an answer (default 3600, template reference
    # "AWS::CloudFormation::CustomResource"). The switcher answers within its invocation, so waiting
    # longer than its timeout plus a minute only delays the failure of a killed invocation.
    template = multi_app.raw[vpc_stack_name("eu-west-1", "prod")]
    (function,) = [
        f
        for f in _resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "switcher.handler.lambda_handler"
    ]
    timeout = function["Properties"]["Timeout"]
    for resource in _resources(template, contract.NODE_RESOURCE_TYPE).values():
        assert int(resource["Properties"]["ServiceTimeout"]) == timeout + 60 < 3600


def test_preregistered_nodes_get_a_tagged_standby_interface_per_az_registered_and_nothing_else(multi_app):
    template = multi_app.raw[vpc_stack_name("eu-west-1", "prod")]  # 3 AZs, 3 nodes, default targets
    resources = template["Resources"]
    interfaces = _resources(template, "AWS::EC2::NetworkInterface")
    granted = [
        s
        for policy in _resources(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "LaunchOnStandbyInterfaces"
    ]
    (launch_on,) = granted
    launchable = sorted(
        part["Ref"]
        for arn in launch_on["Resource"]
        for part in arn["Fn::Join"][1]
        if isinstance(part, dict)
        if part.get("Ref", "").startswith("Node")
    )
    assert launchable == sorted(interfaces)  # exactly the standby interfaces, by ARN
    nodes = _resources(template, contract.NODE_RESOURCE_TYPE).values()
    for node in nodes:
        props = node["Properties"]
        assert props[contract.PROP_TARGETS] == contract.TARGETS_PREREGISTERED
        tag = {"Key": contract.TAG_STANDBY_NODE, "Value": props[contract.PROP_NODE_ID]}
        mine = {k: v["Properties"] for k, v in interfaces.items() if tag in v["Properties"]["Tags"]}
        assert len({json.dumps(p["SubnetId"]) for p in mine.values()}) == len(mine) == 3  # one per AZ
        assert all({"Key": contract.TAG_VPC, "Value": "prod"} in p["Tags"] for p in mine.values())
        group = resources[props[contract.PROP_TARGET_GROUP_ARN]["Ref"]]["Properties"]
        assert sorted(t["Id"]["Fn::GetAtt"] for t in group["Targets"]) == sorted(
            [logical, "PrimaryPrivateIpAddress"] for logical in mine
        )
        data = resources[props[contract.PROP_LAUNCH_TEMPLATE_ID]["Ref"]]["Properties"]["LaunchTemplateData"]
        assert "SecurityGroupIds" not in data  # the interface carries them (EC2 refuses both)
