"""A moto world deployed from the synthesized templates, with every AWS request checked against IAM.

`build_iam_world(deployment)` builds the switcher tests' world (tests/helpers/world.py) and makes it
the synthesized VPC's: node 1's launch template is created from the template's own data (its tags,
its instance profile, now holding the node role), the notice topic is KMS-encrypted like the real one,
and the template's resources are bound to the world's ids, so the role policies resolve to the values
the requests carry. While a principal is active, `IamWorld` records each call's authorizations
(tests/helpers/iam_requests.py), computed from the state AWS would see at that moment.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from switcher import contract

from swr_local.world import each_client
from tests.helpers.iam_policy import Decision, Request, Statement, evaluate
from tests.helpers.iam_requests import (
    Authorization,
    StateView,
    authorizations,
    check_against_sar,
    sar_arn,
    to_request,
)
from tests.helpers.iam_templates import ACCOUNT, Deployment
from tests.helpers.world import AZS, REGION, World, build_world
from tests.helpers.world import session as shared_session

SWITCHER_HANDLER = "switcher.handler.lambda_handler"
#: Where the IAM coverage test leaves the operations it covered, for the end of the pytest output (one
#: module defines it: conftest and test modules may be imported under two names).
COVERAGE_KEY = pytest.StashKey[list[str]]()
#: The VPC and (by default) node of the synthesized config that the world stands for.
VPC_NAME = "prod"
NODE_ID = "1"


@dataclass(frozen=True)
class Recorded:
    """One call and what AWS authorizes for it."""

    principal: str
    service: str
    operation: str
    requests: tuple[Request, ...]
    problems: tuple[str, ...]  # rule errors and disagreements with the Service Authorization Reference


@dataclass
class IamWorld:
    """The world, the deployment it stands for, the principals' policies and the recorded requests."""

    world: World
    deployment: Deployment
    vpc_stack: str
    switcher_role: str  # logical id
    node_role: str  # logical id
    switcher_arn: str
    node_arn: str
    view: StateView
    user_data: str
    node_target_group: str  # logical id of node 1's target group
    recorded: list[Recorded] = field(default_factory=list)
    _principal: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- recording ------------------------------------------------------------------------------

    @contextmanager
    def acting_as(self, principal: str) -> Iterator[None]:
        """Record the calls made inside the block as `principal`'s."""
        self._principal.append(principal)
        try:
            yield
        finally:
            self._principal.pop()

    def switcher(self) -> Any:
        """Record the calls inside the block as the switcher's (its Lambda role)."""
        return self.acting_as(self.switcher_arn)

    def _on_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self._principal:
            return  # the test harness setting up or inspecting the world
        service, operation = model.service_model.service_name, model.name
        self.record(self._principal[-1], service, operation, params)

    def record(self, principal: str, service: str, operation: str, params: dict[str, Any]) -> None:
        """Turn one call into its authorizations now (the state AWS sees is the state before the call)."""
        try:
            auths = authorizations(service, operation, params, self.view)
            problems = check_against_sar(operation, auths)
        except Exception as err:  # a missing rule or a rule that cannot read the call: a test failure
            auths, problems = [], [f"{service}:{operation}: {type(err).__name__}: {err}"]
        self.add(principal, service, operation, auths, problems)

    def add(
        self,
        principal: str,
        service: str,
        operation: str,
        auths: list[Authorization],
        problems: list[str] = (),
    ) -> None:
        """Record authorizations that do not come from a boto3 call (on-instance pieces, Lambda itself)."""
        problems = [*problems, *check_against_sar(operation, auths)] if not problems else list(problems)
        requests = tuple(to_request(a, principal=principal, region=REGION, origin=operation) for a in auths)
        with self._lock:
            self.recorded.append(Recorded(principal, service, operation, requests, tuple(problems)))

    def tag_target_group(self, arn: str) -> None:
        """Give a target group the tags the stack gives node 1's (CloudFormation tags what it creates)."""
        tags = self.deployment.resolve(
            self.deployment.resource(self.vpc_stack, self.node_target_group)["Properties"].get("Tags", []),
            self.vpc_stack,
        )
        self.world.clients.elbv2.add_tags(ResourceArns=[arn], Tags=tags)

    # --- policies -------------------------------------------------------------------------------

    def identity(self, principal: str) -> list[Statement]:
        """The principal's statements, from the synthesized templates."""
        role = {self.switcher_arn: self.switcher_role, self.node_arn: self.node_role}[principal]
        return self.deployment.role_statements(self.vpc_stack, role)

    def resource_policies(self) -> dict[str, list[Statement]]:
        """Resource ARN -> its resource policy: EFS file systems, the notice topic, the DLQ."""
        d, stack = self.deployment, self.vpc_stack
        out: dict[str, list[Statement]] = {}
        for logical, _ in d.resources(stack, "AWS::EFS::FileSystem"):
            out[d.resolve({"Fn::GetAtt": [logical, "Arn"]}, stack)] = d.resource_policy(
                stack, logical, "FileSystemPolicy"
            )
        topic = self.world.settings.topic_arn
        out[topic] = d.attached_policy(stack, "AWS::SNS::TopicPolicy", "Topics", topic)
        for logical, _ in d.resources(stack, "AWS::SQS::Queue"):
            queue_url = d.resolve({"Ref": logical}, stack)
            out[d.resolve({"Fn::GetAtt": [logical, "Arn"]}, stack)] = d.attached_policy(
                stack, "AWS::SQS::QueuePolicy", "Queues", queue_url
            )
        return out

    def decisions(self, recorded: list[Recorded] | None = None) -> list[Decision]:
        """Every recorded request, evaluated against the synthesized policies."""
        identities = {p: self.identity(p) for p in (self.switcher_arn, self.node_arn)}
        resource_policies = self.resource_policies()
        return [
            evaluate(request, identities[request.principal], resource_policies.get(request.resource, []))
            for item in (self.recorded if recorded is None else recorded)
            for request in item.requests
        ]

    # --- on-instance pieces and the Lambda runtime ------------------------------------------------

    def record_node_agent(self, instance_id: str) -> None:
        """The node's own calls, as documented for each piece, with the values of its user data."""
        node, view = self.node_arn, self.view
        agent = json.loads(_between(self.user_data, "<<'SWR_CWAGENT'\n", "\nSWR_CWAGENT"))
        # The FaultScript stops its own instance: `aws ec2 stop-instances --instance-ids <self>`.
        self.record(node, "ec2", "StopInstances", {"InstanceIds": [instance_id]})
        # CloudWatch agent ("Create IAM roles to use with the CloudWatch agent": PutMetricData,
        # ec2:DescribeTags for the instance's dimensions, logs:CreateLogStream, PutLogEvents and
        # DescribeLogStreams).
        namespace = agent["metrics"]["namespace"]
        self.add(
            node,
            "cloudwatch",
            "PutMetricData",
            [Authorization("cloudwatch:PutMetricData", "", "*", {"cloudwatch:namespace": namespace})],
        )
        self.record(node, "ec2", "DescribeTags", {})
        for collected in agent["logs"]["logs_collected"]["files"]["collect_list"]:
            group = collected["log_group_name"]
            stream = collected["log_stream_name"].replace("{instance_id}", instance_id)
            stream_arn = view.arn("logs", "log-stream", group, stream)
            self.add(
                node,
                "logs",
                "CreateLogStream",
                [Authorization("logs:CreateLogStream", "log-stream", stream_arn)],
            )
            self.add(
                node, "logs", "PutLogEvents", [Authorization("logs:PutLogEvents", "log-stream", stream_arn)]
            )
            group_arn = view.arn("logs", "log-group", group)
            self.add(
                node,
                "logs",
                "DescribeLogStreams",
                [Authorization("logs:DescribeLogStreams", "log-group", group_arn)],
            )
        # EFS mounts with the `iam` option ("Using IAM to control access to file systems"): ClientMount
        # to mount, ClientWrite to write; through an access point its ARN is in the request context.
        for fs_id, options in re.findall(r"add_mount '(fs-[0-9a-f]+)' '[^']*' '([^']*)'", self.user_data):
            self._efs_mount(fs_id, options)
        data_fs = re.search(r"data_fs_id='(fs-[0-9a-f]+)'", self.user_data)
        if data_fs:
            options = re.search(r"add_mount \"\$data_fs_id\" '[^']*' '([^']*)'", self.user_data)
            self._efs_mount(data_fs.group(1), options.group(1) if options else "")

    def _efs_mount(self, fs_id: str, options: str) -> None:
        if "iam" not in options.split(","):
            return  # without `iam` the mount is not authorized by IAM
        # A node mounts through its VPC's mount target (efs-utils resolves the mount target's address), so
        # EFS sets elasticfilesystem:AccessedViaMountTarget to true ("Using IAM to control access to file
        # systems", condition keys for clients).
        context: dict[str, Any] = {"elasticfilesystem:AccessedViaMountTarget": "true"}
        actions = ["ClientMount", "ClientWrite"]
        access_point = re.search(r"accesspoint=(fsap-[0-9a-f]+)", options)
        if access_point:
            context["elasticfilesystem:AccessPointArn"] = self.view.arn(
                "elasticfilesystem", "access-point", access_point.group(1)
            )
        else:
            # Without an access point the user data (root) and the application use the file system as
            # root: the root directory of a new file system is owned by uid 0, mode 755, and without
            # ClientRootAccess EFS squashes root to nfsnobody (same page, "root squashing").
            actions.append("ClientRootAccess")
        arn = self.view.arn("elasticfilesystem", "file-system", fs_id)
        auths = [Authorization(f"elasticfilesystem:{a}", "file-system", arn, context) for a in actions]
        self.add(self.node_arn, "elasticfilesystem", "MountWithIam", auths)

    def record_lambda_runtime(self) -> None:
        """What Lambda itself does with the switcher's role (AWS Lambda Developer Guide, "Lambda execution
        role": CloudWatch Logs; "Capturing records of asynchronous invocations": sqs:SendMessage to the
        DLQ; "Visualize Lambda function invocations using AWS X-Ray": PutTraceSegments and
        PutTelemetryRecords)."""
        d, stack, view = self.deployment, self.vpc_stack, self.view
        (function,) = [
            r
            for _, r in d.resources(stack, "AWS::Lambda::Function")
            if r["Properties"].get("Handler") == SWITCHER_HANDLER
        ]
        group = d.resolve(function["Properties"]["LoggingConfig"]["LogGroup"], stack)
        stream = view.arn("logs", "log-stream", group, "2025/01/01/[$LATEST]0123456789abcdef")
        self.add(
            self.switcher_arn,
            "logs",
            "CreateLogStream",
            [Authorization("logs:CreateLogStream", "log-stream", stream)],
        )
        self.add(
            self.switcher_arn,
            "logs",
            "PutLogEvents",
            [Authorization("logs:PutLogEvents", "log-stream", stream)],
        )
        queue_arn = d.resolve(function["Properties"]["DeadLetterConfig"]["TargetArn"], stack)
        self.add(
            self.switcher_arn, "sqs", "SendMessage", [Authorization("sqs:SendMessage", "queue", queue_arn)]
        )
        self.add(
            self.switcher_arn, "xray", "PutTraceSegments", [Authorization("xray:PutTraceSegments", "", "*")]
        )
        self.add(
            self.switcher_arn,
            "xray",
            "PutTelemetryRecords",
            [Authorization("xray:PutTelemetryRecords", "", "*")],
        )


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def _single_ref(value: Any) -> str:
    (logical,) = value.values() if "Ref" in value else [value["Fn::GetAtt"][0]]
    return str(logical)


def build_iam_world(
    templates: dict[str, dict[str, Any]], *, order: str = "swr", node_id: str = NODE_ID
) -> IamWorld:
    """Build the switcher world and bind the synthesized VPC stack's resources (of node `node_id`) to it.

    A node with pre-registered targets gets its standby interfaces in the world (swr_local.world), bound
    to the template's, so the policy's interface ARNs resolve to them."""
    deployment = Deployment(templates=templates, region=REGION)
    (vpc_stack,) = [name for name in templates if name.endswith(f"-{VPC_NAME}")]
    d = deployment
    (props,) = [
        r["Properties"]
        for _, r in d.resources(vpc_stack, contract.NODE_RESOURCE_TYPE)
        if r["Properties"][contract.PROP_NODE_ID] == node_id
    ]
    preregistered = props.get(contract.PROP_TARGETS) == contract.TARGETS_PREREGISTERED
    # EFS mount targets in subnets of their own: the layout under which the network fence is claimed.
    world = build_world(
        vpc_name=VPC_NAME,
        order=order,
        standby_nodes=(int(node_id),) if preregistered else (),
        efs_subnets=True,
    )
    session = shared_session()
    (regional,) = [name for name in templates if name != vpc_stack]

    # The switcher: its environment names the resources each setting is.
    (function,) = [
        r
        for _, r in d.resources(vpc_stack, "AWS::Lambda::Function")
        if r["Properties"].get("Handler") == SWITCHER_HANDLER
    ]
    env = function["Properties"]["Environment"]["Variables"]
    assert env[contract.ENV_VPC_NAME] == VPC_NAME
    d.bind(vpc_stack, _single_ref(env[contract.ENV_VPC_ID]), Ref=world.vpc_id)
    d.bind(vpc_stack, _single_ref(env[contract.ENV_BLACKHOLE_SG_ID]), GroupId=world.blackhole_sg)
    exports = {
        o["Export"]["Name"]: _single_ref(o["Value"]) for o in templates[regional].get("Outputs", {}).values()
    }
    table = exports[env[contract.ENV_TABLE_NAME]["Fn::ImportValue"]]
    table_arn = world.clients.dynamodb.describe_table(TableName=world.settings.table_name)["Table"][
        "TableArn"
    ]
    d.bind(regional, table, Ref=world.settings.table_name, Arn=table_arn)
    topic = exports[env[contract.ENV_TOPIC_ARN]["Fn::ImportValue"]]
    d.bind(regional, topic, Ref=world.settings.topic_arn)
    # The notice topic is encrypted with the regional stack's key, as deployed.
    key_logical = _single_ref(d.resource(regional, topic)["Properties"]["KmsMasterKeyId"])
    key_arn = session.client("kms").create_key(Description="swr notice topic")["KeyMetadata"]["Arn"]
    world.clients.sns.set_topic_attributes(
        TopicArn=world.settings.topic_arn, AttributeName="KmsMasterKeyId", AttributeValue=key_arn
    )
    d.bind(regional, key_logical, Arn=key_arn)
    switcher_role = _single_ref(function["Properties"]["Role"])
    switcher_arn = f"arn:aws:iam::{ACCOUNT}:role/swr-{VPC_NAME}-switcher"
    d.bind(vpc_stack, switcher_role, Arn=switcher_arn)

    # The node: its provisioning properties name its launch template and target group.
    template_logical = _single_ref(props[contract.PROP_LAUNCH_TEMPLATE_ID])
    target_group = _single_ref(props[contract.PROP_TARGET_GROUP_ARN])
    target_group_arn = world.target_group_for(int(node_id))
    d.bind(vpc_stack, target_group, Ref=target_group_arn)
    if preregistered:
        # Its standby interfaces, in the order of the tagged subnets (one per AZ of the config).
        interfaces = [
            logical
            for logical, r in d.resources(vpc_stack, "AWS::EC2::NetworkInterface")
            if {"Key": contract.TAG_STANDBY_NODE, "Value": node_id} in r["Properties"].get("Tags", [])
        ]
        standby = world.standby_interfaces[int(node_id)]
        for logical, az in zip(sorted(interfaces), AZS, strict=True):
            d.bind(vpc_stack, logical, Ref=standby[az])
    lt = d.resource(vpc_stack, template_logical)["Properties"]
    data = lt["LaunchTemplateData"]
    profile_logical = _single_ref(data["IamInstanceProfile"]["Arn"])
    (role_ref,) = d.resource(vpc_stack, profile_logical)["Properties"]["Roles"]
    node_role = _single_ref(role_ref)
    iam = session.client("iam")
    node_arn = iam.create_role(
        RoleName=f"swr-{VPC_NAME}-node-{node_id}-{world.launch_template_id}",
        AssumeRolePolicyDocument=json.dumps(
            d.resource(vpc_stack, node_role)["Properties"]["AssumeRolePolicyDocument"]
        ),
    )["Role"]["Arn"]
    profile_name = world.profile_arn.rsplit("/", 1)[-1]
    iam.add_role_to_instance_profile(InstanceProfileName=profile_name, RoleName=node_arn.rsplit("/", 1)[-1])
    d.bind(vpc_stack, node_role, Arn=node_arn)
    d.bind(vpc_stack, profile_logical, Arn=world.profile_arn)
    for group in data.get("SecurityGroupIds", []):
        d.bind(vpc_stack, _single_ref(group), GroupId=world.app_sg)
    resolved = d.resolve(data, vpc_stack)
    user_data = resolved.pop("UserData")
    resolved["UserData"] = base64.b64encode(user_data.encode()).decode()
    template_id = world.clients.ec2.create_launch_template(
        LaunchTemplateName=f"swr-{VPC_NAME}-{node_id}-{world.launch_template_id}",
        LaunchTemplateData=resolved,
        TagSpecifications=d.resolve(lt.get("TagSpecifications", []), vpc_stack),
    )["LaunchTemplate"]["LaunchTemplateId"]
    d.bind(vpc_stack, template_logical, Ref=template_id, LatestVersionNumber="1")
    world = replace(
        world, **{"standby_launch_template_id" if preregistered else "launch_template_id": template_id}
    )

    view = StateView(
        ec2=session.client("ec2"),
        elbv2=session.client("elbv2"),
        iam=iam,
        sns=session.client("sns"),
        region=REGION,
        account=ACCOUNT,
    )
    iam_world = IamWorld(
        world=world,
        deployment=deployment,
        vpc_stack=vpc_stack,
        switcher_role=switcher_role,
        node_role=node_role,
        switcher_arn=switcher_arn,
        node_arn=node_arn,
        view=view,
        user_data=user_data,
        node_target_group=target_group,
    )
    iam_world.tag_target_group(target_group_arn)
    for client in each_client(world.clients):
        client.meta.events.register("before-parameter-build", iam_world._on_call)
    return iam_world


__all__ = ["IamWorld", "Recorded", "build_iam_world", "sar_arn"]
