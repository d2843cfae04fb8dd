"""Regional constructs: the switcher's state table and the notice topic."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct
from switcher import contract


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
    """The SNS topic on which switchers publish switch results and held nodes (KMS-encrypted)."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self,
            "Key",
            description="swr notice topic encryption",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
