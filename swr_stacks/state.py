"""Regional constructs: the switcher's state table and the notice topic."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct
from switcher import contract

from swr_stacks.alarms import STACK_ALARM_PREFIX


class StateTable(Construct):
    """The DynamoDB table holding every node's state record and switch history of a region."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=contract.TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=contract.TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            # Switches are rare and bursty: on-demand costs nothing while idle and never throttles a burst.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=contract.TTL_ATTRIBUTE,
            # The table is the record of which instance is each node: keep it if the stack goes.
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,
        )


class NoticeTopic(Construct):
    """The SNS topic on which switchers publish switch results and held nodes, and the stack alarms
    their state changes (KMS-encrypted)."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="swr notice topic encryption",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        self._let_stack_alarms_publish(stack)

    def _let_stack_alarms_publish(self, stack: Stack) -> None:
        # CloudWatch publishes an alarm action as the service principal: the topic policy must allow it
        # (the policy CDK writes for enforce_ssl replaces SNS's default one), and the key policy must let
        # it use the topic's key, or the notification is dropped and only the alarm history says so
        # ("Enable compatibility between event sources from AWS services and encrypted topics", "Key
        # management", Amazon SNS Developer Guide; aws/aws-cdk issue 11121). Only this account's swr
        # stack alarms, by name prefix.
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{STACK_ALARM_PREFIX}*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="StackAlarmsPublish",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="StackAlarmsUseKey",
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=conditions,
            )
        )


class SwrRegion(Construct):
    """What the switchers of one region share: the state table (``table``) and notice topic (``topic``)."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        self.state = StateTable(self, "State")
        self.notices = NoticeTopic(self, "Notices")
        self.table = self.state.table
        self.topic = self.notices.topic
