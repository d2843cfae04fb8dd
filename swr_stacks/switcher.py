"""The switcher of a VPC: its Lambda function, least-privilege role, DLQ and the two trigger rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from switcher import contract

from swr_stacks.bundling import switcher_bundling
from swr_stacks.config import FlapGuard, Reconcile
from swr_stacks.nag import acknowledge, acknowledge_wildcard_resources


def _lambda_source_dir() -> Path:
    """The checkout's lambda_src: beside this package (an editable install), else in the working directory
    (`python app.py` run in a checkout that swr was `pip install`ed from)."""
    beside = Path(__file__).resolve().parent.parent / "lambda_src"
    return beside if (beside / "switcher").is_dir() else Path.cwd() / "lambda_src"


LAMBDA_SOURCE_DIR = _lambda_source_dir()
HANDLER = "switcher.handler.lambda_handler"
#: A switch waits for the source to stop and the replacement to run: give it Lambda's maximum.
SWITCHER_TIMEOUT = Duration.seconds(900)
#: A claimed switch whose lease expired may be resumed; it must outlive the invocation that holds it.
LEASE_SECONDS = 900 + 30

#: Actions that have no resource-level permissions (IAM service authorization reference), so they
#: can only be granted on "*". All are read-only.
DESCRIBE_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeSubnets",
    # The network fence (switcher/fence.py): the network ACLs of the subnets holding an EFS mount target,
    # found by the mount targets' interfaces (DescribeNetworkInterfaces, below).
    "ec2:DescribeNetworkAcls",
    # The network fence (above) and pre-registered targets (the switcher finds a node's standby interfaces
    # by tag).
    "ec2:DescribeNetworkInterfaces",
    "elasticloadbalancing:DescribeTargetHealth",
    # The reconciler lists the VPC's alarms by name prefix. AWS documents no resource ARN for a prefix
    # query (only that composite alarms need the action on "*", CloudWatch API Reference,
    # DescribeAlarms), so a grant scoped to the swr-<vpc>-* ARNs could deny it: read-only, on "*".
    "cloudwatch:DescribeAlarms",
)


class Switcher(Construct):
    """The VPC's switcher Lambda (one handler for EventBridge events and node custom resources)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_name: str,
        vpc_id: str,
        table: dynamodb.ITable,
        topic: sns.ITopic,
        blackhole_security_group_id: str,
        flap_guard: FlapGuard,
        switch_order: str,
        reserved_concurrency: int,
        history_ttl_days: int,
        log_retention: logs.RetentionDays,
        reconcile: Reconcile,
        fence_timeout_seconds: int = 300,
        fence_inline_wait_seconds: int = 30,
        silent_after_seconds: int = 300,
    ) -> None:
        super().__init__(scope, id_)
        self._vpc_name = vpc_name
        self._vpc_id = vpc_id
        stack = Stack.of(self)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the switcher, of its two EventBridge rules and "
            "of its reconcile schedule.",
        )

        self.log_group = logs.LogGroup(
            self, "LogGroup", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        # An explicit role: the default one would carry the AWS-managed AWSLambdaBasicExecutionRole.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"swr switcher of VPC {vpc_name}",
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(LAMBDA_SOURCE_DIR), bundling=switcher_bundling(LAMBDA_SOURCE_DIR)
            ),
            role=self.role,
            timeout=SWITCHER_TIMEOUT,
            memory_size=256,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=self.dead_letter_queue,
            # Off (0 → None) by default. A reservation keeps switches runnable when other functions
            # exhaust the account's concurrency, but Lambda refuses one that leaves the account fewer
            # than 100 unreserved executions (AWS Lambda developer guide, "Managing Lambda reserved
            # concurrency"), and new accounts start with reduced concurrency quotas ("Lambda quotas");
            # `swr validate` checks the headroom.
            reserved_concurrent_executions=reserved_concurrency or None,
            # An event that failed 2 retries or waited an hour describes a failure that is long handled
            # (or needs an operator): it goes to the DLQ instead of starting a stale switch.
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            environment={
                contract.ENV_TABLE_NAME: table.table_name,
                contract.ENV_TOPIC_ARN: topic.topic_arn,
                contract.ENV_BLACKHOLE_SG_ID: blackhole_security_group_id,
                contract.ENV_VPC_NAME: vpc_name,
                contract.ENV_VPC_ID: vpc_id,
                contract.ENV_SWITCH_ORDER: switch_order,
                contract.ENV_FLAP_MAX_SWITCHES: str(flap_guard.max_switches),
                contract.ENV_FLAP_WINDOW_SECONDS: str(flap_guard.window_seconds),
                contract.ENV_LEASE_SECONDS: str(LEASE_SECONDS),
                contract.ENV_HISTORY_TTL_DAYS: str(history_ttl_days),
                contract.ENV_RECONCILE_INTERVAL_SECONDS: str(reconcile.interval_seconds),
                contract.ENV_SWITCH_OVERDUE_SECONDS: str(reconcile.switch_overdue_seconds),
                contract.ENV_FENCE_TIMEOUT_SECONDS: str(fence_timeout_seconds),
                contract.ENV_FENCE_INLINE_WAIT_SECONDS: str(fence_inline_wait_seconds),
                contract.ENV_SILENT_AFTER_SECONDS: str(silent_after_seconds),
            },
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is the runtime the switcher is tested on; move up deliberately, with the tests.",
        )

        table.grant_read_write_data(self.role)
        topic.grant_publish(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="Notices",
                actions=["events:PutEvents"],
                resources=[stack.format_arn(service="events", resource="event-bus", resource_name="default")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="Describe", actions=list(DESCRIBE_ACTIONS), resources=["*"])
        )
        self._grant_instances(stack, vpc_id)
        self._grant_network_fence(stack, vpc_id)
        self._grant_alarms(stack)
        self._acknowledge_scoped_wildcards(stack)

        self.rules = self._add_trigger_rules()

    # --- least privilege ----------------------------------------------------------------------------

    def _ec2_arn(self, stack: Stack, resource: str, name: str = "*", *, account: str | None = None) -> str:
        return stack.format_arn(service="ec2", resource=resource, resource_name=name, account=account)

    def _grant_instances(self, stack: Stack, vpc_id: str) -> None:
        vpc_tag = {f"aws:RequestTag/{contract.TAG_VPC}": self._vpc_name}
        own_tag = {f"ec2:ResourceTag/{contract.TAG_VPC}": self._vpc_name}
        vpc_arn = self._ec2_arn(stack, "vpc", vpc_id)
        created = [self._ec2_arn(stack, r) for r in ("instance", "volume", "network-interface")]
        # Everything a launch creates carries swr:vpc: the instance, its volume(s) and its primary network
        # interface are each evaluated with their own tag specification ("Actions, resources, and condition
        # keys for Amazon EC2": RunInstances lists aws:RequestTag for all three).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunTaggedInstances",
                actions=["ec2:RunInstances"],
                resources=created,
                conditions={"StringEquals": vpc_tag},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunInTaggedSubnets",
                actions=["ec2:RunInstances"],
                resources=[self._ec2_arn(stack, "subnet")],
                conditions={
                    "StringEquals": {"ec2:Vpc": vpc_arn},
                    "StringLike": {f"ec2:ResourceTag/{contract.TAG_SUBNET}": "*"},
                },
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunFromOwnLaunchTemplates",
                actions=["ec2:RunInstances"],
                resources=[self._ec2_arn(stack, "launch-template")],
                conditions={"StringEquals": own_tag},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunWithVpcSecurityGroups",
                actions=["ec2:RunInstances", "ec2:ModifyInstanceAttribute"],
                resources=[self._ec2_arn(stack, "security-group")],
                conditions={"StringEquals": {"ec2:Vpc": vpc_arn}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TagOnLaunchOnly",
                actions=["ec2:CreateTags"],
                resources=created,
                conditions={"StringEquals": {"ec2:CreateAction": "RunInstances"}},
            )
        )
        # Adoption of an instance launched before swr: it only gets this VPC's swr:vpc tag, and only if it
        # carries a node id and no other VPC's swr:vpc. IAM cannot check an instance's VPC (the instance
        # resource type has no ec2:Vpc key); the switcher checks it before tagging.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TagAdoptedInstances",
                actions=["ec2:CreateTags"],
                resources=created[:1],
                conditions={
                    "StringEquals": vpc_tag,
                    "ForAllValues:StringEquals": {"aws:TagKeys": [contract.TAG_VPC]},
                    "Null": {f"ec2:ResourceTag/{contract.TAG_NODE_ID}": "false"},
                    "StringEqualsIfExists": own_tag,
                },
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="FenceAndTerminateOwnInstances",
                actions=["ec2:StopInstances", "ec2:TerminateInstances", "ec2:ModifyInstanceAttribute"],
                resources=[self._ec2_arn(stack, "instance")],
                conditions={"StringEquals": own_tag},
            )
        )

    def _grant_network_fence(self, stack: Stack, vpc_id: str) -> None:
        """Deny rules in this VPC's network ACLs (the escalated fence) and their removal. Scoped by
        `ec2:Vpc`, which the Service Authorization Reference lists for the network-acl resource of
        CreateNetworkAclEntry/DeleteNetworkAclEntry/ReplaceNetworkAclEntry: an imported VPC's ACLs are not
        the stack's to tag. Replace adds no power Create + Delete do not already give; swr uses it only to
        widen one of its own per-address rules into its subnet's rule when the quota is full
        (switcher.fence), so that the address is never without a deny."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="NetworkFence",
                actions=[
                    "ec2:CreateNetworkAclEntry",
                    "ec2:DeleteNetworkAclEntry",
                    "ec2:ReplaceNetworkAclEntry",
                ],
                resources=[self._ec2_arn(stack, "network-acl")],
                conditions={"StringEquals": {"ec2:Vpc": self._ec2_arn(stack, "vpc", vpc_id)}},
            )
        )

    def _grant_alarms(self, stack: Stack) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnAlarms",
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:SetAlarmState"],
                resources=[self._alarm_arn(stack)],
            )
        )
        # PutMetricAlarm with Tags also needs cloudwatch:TagResource (Amazon CloudWatch API Reference,
        # PutMetricAlarm, parameter Tags); the alarms carry exactly the swr:vpc tag.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TagOwnAlarms",
                actions=["cloudwatch:TagResource"],
                resources=[self._alarm_arn(stack)],
                conditions={
                    "StringEquals": {f"aws:RequestTag/{contract.TAG_VPC}": self._vpc_name},
                    "ForAllValues:StringEquals": {"aws:TagKeys": [contract.TAG_VPC]},
                },
            )
        )

    def _acknowledge_scoped_wildcards(self, stack: Stack) -> None:
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Only read actions that cannot be scoped to a resource: ec2 Describe*, elasticloadbalancing "
            "DescribeTargetHealth, cloudwatch DescribeAlarms by name prefix (the reconciler), and X-Ray "
            "PutTraceSegments/PutTelemetryRecords (tracing).",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "Granted by topic.grant_publish on the notice topic's own key only (SNS encrypts with it).",
        )
        acknowledge_wildcard_resources(
            policy,
            [self._ec2_arn(stack, r) for r in ("instance", "volume", "network-interface")],
            "Instance ids are not known in advance: RunInstances requires the swr:vpc request tag on the "
            "instance, volume and interface; CreateTags only on launch, or only swr:vpc on an untagged "
            "instance carrying a node id (adoption); Stop/Terminate/Modify only where "
            "ec2:ResourceTag/swr:vpc is this VPC.",
        )
        acknowledge_wildcard_resources(
            policy,
            [self._ec2_arn(stack, "subnet")],
            f"Only subnets of this VPC (ec2:Vpc) that carry the {contract.TAG_SUBNET} tag.",
        )
        acknowledge_wildcard_resources(
            policy,
            [self._ec2_arn(stack, "launch-template")],
            "Only launch templates tagged swr:vpc = this VPC (ec2:ResourceTag condition).",
        )
        acknowledge_wildcard_resources(
            policy,
            [self._ec2_arn(stack, "security-group")],
            "Only security groups of this VPC (ec2:Vpc): the node SG at launch, the blackhole SG when "
            "fencing.",
        )
        acknowledge_wildcard_resources(
            policy,
            [self._ec2_arn(stack, "network-acl")],
            "Only network ACLs of this VPC (ec2:Vpc): the network fence adds and removes deny rules in the "
            "rule numbers reserved for swr when a source's stop does not complete.",
        )
        acknowledge_wildcard_resources(
            policy,
            [self._alarm_arn(stack)],
            "The switcher creates and moves the node alarms; only names with this VPC's prefix swr-<vpc>-.",
        )

    def _any_target_group(self, stack: Stack) -> str:
        return stack.format_arn(service="elasticloadbalancing", resource="targetgroup", resource_name="*/*")

    def _alarm_arn(self, stack: Stack) -> str:
        return stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{contract.alarm_prefix(self._vpc_name)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def grant_nodes(
        self,
        *,
        node_roles: Sequence[iam.IRole],
        target_group_arns: Sequence[str],
        amis: Sequence[str],
        key_pairs: Sequence[str],
        standby_interface_arns: Sequence[str] = (),
    ) -> None:
        """Allow exactly the VPC's node roles, target groups, AMIs, key pairs and standby interfaces (once,
        after the nodes)."""
        stack = Stack.of(self)
        if standby_interface_arns:
            self._grant_standby_interfaces(stack, standby_interface_arns)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassNodeRoles",
                actions=["iam:PassRole"],
                resources=[role.role_arn for role in node_roles],
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="MoveTraffic",
                actions=["elasticloadbalancing:RegisterTargets"],
                resources=list(target_group_arns),
            )
        )
        # Deregistering is allowed on any target group of this VPC: a stack update that replaces a node's
        # target group updates this policy BEFORE the node's custom resource, which then empties the old
        # group (no longer in the list above).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DeregisterFromOwnTargetGroups",
                actions=["elasticloadbalancing:DeregisterTargets"],
                resources=[self._any_target_group(stack)],
                conditions={"StringEquals": {f"aws:ResourceTag/{contract.TAG_VPC}": self._vpc_name}},
            )
        )
        acknowledge_wildcard_resources(
            self.role.node.find_child("DefaultPolicy"),
            [self._any_target_group(stack)],
            "Only DeregisterTargets, only on target groups tagged swr:vpc = this VPC (a node's current "
            "group, or its old group after a stack update replaced it).",
        )
        launch_resources = [
            # Public and private AMIs have no account in their ARN.
            stack.format_arn(service="ec2", resource="image", resource_name=ami, account="")
            for ami in sorted(set(amis))
        ]
        launch_resources += [self._ec2_arn(stack, "key-pair", name) for name in sorted(set(key_pairs))]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunConfiguredImages", actions=["ec2:RunInstances"], resources=launch_resources
            )
        )

    def _grant_standby_interfaces(self, stack: Stack, interface_arns: Sequence[str]) -> None:
        """Launch on the nodes' standby interfaces, and give one back its groups (the fence left the
        blackhole group on it), by ARN: for RunInstances the network-interface resource has no
        ec2:ResourceTag key ("Actions, resources, and condition keys for Amazon EC2", RunInstances row:
        network-interface takes aws:RequestTag, ec2:Subnet, ec2:Vpc, ... only), so its tags cannot scope it.
        """
        vpc_arn = self._ec2_arn(stack, "vpc", self._vpc_id)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="LaunchOnStandbyInterfaces",
                actions=["ec2:RunInstances", "ec2:ModifyNetworkInterfaceAttribute"],
                resources=list(interface_arns),
                conditions={"StringEquals": {"ec2:Vpc": vpc_arn}},
            )
        )
        # ModifyNetworkInterfaceAttribute with Groups is also evaluated on each group (same reference,
        # security-group listed for the action); the groups are the source's own, of this VPC.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="StandbyInterfaceGroups",
                actions=["ec2:ModifyNetworkInterfaceAttribute"],
                resources=[self._ec2_arn(stack, "security-group")],
                conditions={"StringEquals": {"ec2:Vpc": vpc_arn}},
            )
        )

    # --- triggers -----------------------------------------------------------------------------------

    def _add_trigger_rules(self) -> list[events.Rule]:
        target = targets.LambdaFunction(
            self.function,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=4,
            max_event_age=Duration.hours(1),
        )
        ec2_rule = events.Rule(
            self,
            "InstanceStopRule",
            description=f"swr {self._vpc_name}: an instance is stopping or stopped",
            event_pattern=events.EventPattern(
                source=[contract.EC2_EVENT_SOURCE],
                detail_type=[contract.EC2_STATE_CHANGE_DETAIL_TYPE],
                detail={"state": list(contract.EC2_TRIGGER_STATES)},
            ),
            targets=[target],
        )
        alarm_rule = events.Rule(
            self,
            "AlarmRule",
            description=f"swr {self._vpc_name}: a node alarm went to ALARM",
            event_pattern=events.EventPattern(
                source=[contract.ALARM_EVENT_SOURCE],
                detail_type=[contract.ALARM_STATE_CHANGE_DETAIL_TYPE],
                detail={
                    "alarmName": events.Match.prefix(contract.alarm_prefix(self._vpc_name)),
                    "state": {"value": [contract.ALARM_TRIGGER_STATE]},
                },
            ),
            targets=[target],
        )
        return [ec2_rule, alarm_rule]
