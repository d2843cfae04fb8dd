"""Every place where moto (5.2.x) behaves differently from AWS, corrected in one place.

Each function states the gap it closes. Nothing here runs against a real account: the callers only use
these helpers on a local emulator (see `swr_cli.aws.is_local_endpoint`).

1. CloudFormation custom resources backed by a Lambda: moto would invoke the function in Docker. We
   strip them from the template, keep their properties as stack outputs (so CloudFormation itself
   resolves every Ref/GetAtt/ImportValue in them) and then: `Custom::SwrNode` gets the Create request
   sent to the switcher in-process (`swr_local.lambda_runtime`); CDK's `Custom::VpcRestrictDefaultSG` is done
   here (`restrict_default_security_group`: remove every rule of the VPC's default group, as its handler
   does). Standalone `AWS::EC2::SecurityGroupEgress` resources, which moto does not model, are stripped
   the same way and authorized through the EC2 API (`authorize_standalone_egress`).
2. `AWS::ElasticLoadBalancingV2::LoadBalancer.Type`: moto's CloudFormation creates every load balancer
   as an ALB (and then rejects an NLB's TCP listener). Patched in moto while the local deploy runs.
3. `AWS::EC2::SecurityGroup.SecurityGroupEgress`: moto keeps the default allow-all egress rule next to
   the declared rules (the blackhole group's "disallow all" rule must be the only one). Corrected after
   deploy through the EC2 API.
5. `Fn::GetAtt` on `AWS::EFS::FileSystem` (`Arn`, `FileSystemId`): moto's model has no attribute
   lookup (the request fails with a server error). Patched in moto while the local deploy runs.
4. `events:TestEventPattern`: moto answers without a result. We evaluate the pattern with moto's own
   EventBridge pattern matcher, the one its rules use to route events.
6. An existing network interface given to RunInstances (`NetworkInterfaces=[{NetworkInterfaceId}]`, the
   switcher's pre-registered targets): moto places the instance in the region's first AZ instead of the
   interface's, gives the instance no security group, attaches an interface already in use, leaves the
   interface attached after the instance terminates, and `ModifyInstanceAttribute(Groups)` does not
   change the primary interface's groups. `network_interface_gaps` makes moto do what AWS does.
7. CloudFormation `AWS::EC2::NetworkInterface` (the stacks' standby interfaces): moto reads the groups
   from `SecurityGroups` instead of `GroupSet` and ignores `Tags`; `AWS::ElasticLoadBalancingV2::TargetGroup`
   ignores `Targets` (the standby addresses registered at deploy time). Patched in moto while the local
   deploy runs (`patched_cloudformation`), as gaps 2 and 5.
8. An Availability Zone that is lost (power or network): moto stops and terminates every instance at
   once. In a lost AZ the regional EC2 API still answers, but a stop or termination of an instance there
   does not complete: `lost_availability_zones(azs)` leaves such instances `stopping` / `shutting-down`
   (no `stopped`, no `terminated`) for as long as it is active; `lost_availability_zones_control` serves
   the same gap to another process (`swr drill --fault az` against the `swr local up` sandbox or
   `swr_local.moto_server`) on the path LOST_AZ_CONTROL_PATH. A network ACL's rule quota (20 per
   direction by default, "Amazon VPC quotas") is not enforced by moto either: `nacl_rule_quota(n)` answers
   `NetworkAclEntryLimitExceeded` past `n` rules in one direction (the default deny rule does not count).
9. The network interface of an EFS mount target: moto creates it with no description, while EFS describes
   it `EFS mount target for <mount target id>` ("Creating and managing mount targets", Amazon EFS User
   Guide), which is how the switcher's network fence finds the mount targets' subnets.
   `describe_mount_target_interfaces` gives moto's interfaces that description through the EC2 API.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError
from switcher import contract

_OUTPUT_PREFIX = "SwrGapCustomResource"


@dataclass(frozen=True)
class StrippedCustomResource:
    """A custom resource removed from a template, and the stack outputs that carry its properties."""

    logical_id: str
    resource_type: str
    #: property name -> output key (the value is resolved by CloudFormation into that output)
    output_keys: dict[str, str]
    #: properties that are not strings in the template (lists, maps): kept literally, JSON-encoded
    literal_properties: dict[str, Any]

    def resolve(self, outputs: dict[str, str]) -> dict[str, Any]:
        """The resource's properties, as CloudFormation would send them in a Create request."""
        props: dict[str, Any] = dict(self.literal_properties)
        for name, key in self.output_keys.items():
            if key not in outputs:
                raise KeyError(f"stack output {key} (property {name} of {self.logical_id}) is missing")
            props[name] = outputs[key]
        return props


def _references(node: Any, logical_id: str) -> bool:
    if isinstance(node, dict):
        if node.get("Ref") == logical_id:
            return True
        get_att = node.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] == logical_id:
            return True
        if isinstance(get_att, str) and get_att.split(".", 1)[0] == logical_id:
            return True
        return any(_references(value, logical_id) for value in node.values())
    if isinstance(node, list):
        return any(_references(value, logical_id) for value in node)
    if isinstance(node, str):
        return bool(re.search(r"\$\{" + re.escape(logical_id) + r"[.}]", node))
    return False


def _is_scalar_expression(value: Any) -> bool:
    """A string, number or bool, or an intrinsic that yields a string (Ref, GetAtt, Join, Sub, ...)."""
    if isinstance(value, str | int | float | bool):
        return True
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value))
        in {
            "Ref",
            "Fn::GetAtt",
            "Fn::Join",
            "Fn::Sub",
            "Fn::ImportValue",
            "Fn::Select",
            "Fn::If",
            "Fn::FindInMap",
            "Fn::Base64",
        }
    )


#: Resource types the local deploy takes out of the template (see gap 1).
STANDALONE_EGRESS = "AWS::EC2::SecurityGroupEgress"
RESTRICT_DEFAULT_SG = "Custom::VpcRestrictDefaultSG"
HANDLED_CUSTOM_TYPES = (contract.NODE_RESOURCE_TYPE, RESTRICT_DEFAULT_SG)


def _stripped_type(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == STANDALONE_EGRESS


def strip_custom_resources(
    template: dict[str, Any],
) -> tuple[dict[str, Any], list[StrippedCustomResource]]:
    """Gap 1: remove every custom resource (and standalone egress rule), exposing its properties as outputs.

    A custom resource type the local deploy cannot stand in for raises ValueError naming it.

    Raises ValueError (naming the resources) if anything else in the template refers to a stripped
    resource, because that reference could not be honoured without the resource.
    """
    result = copy.deepcopy(template)
    resources: dict[str, Any] = result.get("Resources", {})
    outputs: dict[str, Any] = result.setdefault("Outputs", {})
    stripped: list[StrippedCustomResource] = []
    for index, (logical_id, body) in enumerate(list(resources.items())):
        resource_type = str(body.get("Type"))
        if not _stripped_type(resource_type):
            continue
        if resource_type.startswith("Custom::") and resource_type not in HANDLED_CUSTOM_TYPES:
            raise ValueError(
                f"custom resource {logical_id} ({resource_type}): the local deploy can only stand in for "
                f"{', '.join(HANDLED_CUSTOM_TYPES)}"
            )
        del resources[logical_id]
        output_keys: dict[str, str] = {}
        literals: dict[str, Any] = {}
        for prop_index, (name, value) in enumerate(body.get("Properties", {}).items()):
            if _is_scalar_expression(value):
                key = f"{_OUTPUT_PREFIX}{index}P{prop_index}"
                outputs[key] = {"Value": value if not isinstance(value, int | float | bool) else str(value)}
                output_keys[name] = key
            else:
                literals[name] = value
        stripped.append(StrippedCustomResource(logical_id, resource_type, output_keys, literals))

    for item in stripped:
        for other_id, body in resources.items():
            depends = body.get("DependsOn")
            if isinstance(depends, str) and depends == item.logical_id:
                del body["DependsOn"]
            elif isinstance(depends, list) and item.logical_id in depends:
                body["DependsOn"] = [d for d in depends if d != item.logical_id]
            if _references({k: v for k, v in body.items() if k != "DependsOn"}, item.logical_id):
                raise ValueError(
                    f"resource {other_id} refers to custom resource {item.logical_id}, which the local "
                    "deploy provisions outside CloudFormation"
                )
        for key in [k for k, v in outputs.items() if not k.startswith(_OUTPUT_PREFIX)]:
            if _references(outputs[key], item.logical_id):
                del outputs[key]
    if not outputs:
        del result["Outputs"]
    return result, stripped


@contextmanager
def patched_cloudformation() -> Iterator[None]:
    """Gaps 2, 5 and 7, while active. Gap 2: moto's CloudFormation creates each load balancer with the `Type`
    (network | application | gateway) and `Tags` its template declares (moto 5.2 passes neither: every
    load balancer became an ALB and an NLB's TCP listener was rejected). Gap 5: `Fn::GetAtt` of an EFS
    file system. Patches moto in this process, which is where `ThreadedMotoServer` runs."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.efs.models import FileSystem
    from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup, elbv2_backends

    original_interface = NetworkInterface.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    original_target_group = FakeTargetGroup.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_interface(
        cls: type,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = dict(cloudformation_json["Properties"])
        properties.setdefault("SecurityGroups", properties.get("GroupSet", []))
        interface = original_interface(
            cls,
            resource_name,
            {**cloudformation_json, "Properties": properties},
            account_id,
            region_name,
            **kwargs,
        )
        tags = {t["Key"]: t["Value"] for t in properties.get("Tags", [])}
        if tags:
            ec2_backends[account_id][region_name].create_tags([interface.id], tags)
        return interface

    def create_target_group(
        cls: type,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        group = original_target_group(
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        targets = cloudformation_json["Properties"].get("Targets") or []
        if targets:
            elbv2_backends[account_id][region_name].register_targets(
                group.arn, [{"Id": t["Id"], "Port": t.get("Port", group.port)} for t in targets]
            )
        return group

    def efs_has_attr(cls: type, attr: str) -> bool:
        return attr in ("Arn", "FileSystemId")

    def efs_get_attr(self: Any, attr: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attr == "Arn":
            return self.file_system_arn
        if attr == "FileSystemId":
            return self.file_system_id
        raise UnformattedGetAttTemplateException()

    def create(
        cls: type,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        return elbv2_backends[account_id][region_name].create_load_balancer(
            resource_name,
            properties.get("SecurityGroups"),
            properties.get("Subnets"),
            subnet_mappings=properties.get("SubnetMappings"),
            scheme=properties.get("Scheme", "internet-facing"),
            loadbalancer_type=properties.get("Type", "application"),
            tags=properties.get("Tags"),
        )

    with (
        mock.patch.object(FakeLoadBalancer, "create_from_cloudformation_json", classmethod(create)),
        mock.patch.object(FileSystem, "has_cfn_attr", classmethod(efs_has_attr), create=True),
        mock.patch.object(FileSystem, "get_cfn_attribute", efs_get_attr, create=True),
        mock.patch.object(NetworkInterface, "create_from_cloudformation_json", classmethod(create_interface)),
        mock.patch.object(
            FakeTargetGroup, "create_from_cloudformation_json", classmethod(create_target_group)
        ),
    ):
        yield


def _permission(rule: dict[str, Any]) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": str(rule.get("IpProtocol", "-1"))}
    for src, dst in (("FromPort", "FromPort"), ("ToPort", "ToPort")):
        if src in rule:
            perm[dst] = int(rule[src])
    if "CidrIp" in rule:
        perm["IpRanges"] = [{"CidrIp": rule["CidrIp"]}]
    elif "CidrIpv6" in rule:
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"]}]
    elif "DestinationSecurityGroupId" in rule:
        perm["UserIdGroupPairs"] = [{"GroupId": rule["DestinationSecurityGroupId"]}]
    elif "DestinationPrefixListId" in rule:
        perm["PrefixListIds"] = [{"PrefixListId": rule["DestinationPrefixListId"]}]
    return perm


def _rule_key(perm: dict[str, Any]) -> tuple[Any, ...]:
    return (
        perm.get("IpProtocol"),
        perm.get("FromPort"),
        perm.get("ToPort"),
        tuple(sorted(r["CidrIp"] for r in perm.get("IpRanges", []))),
        tuple(sorted(r["CidrIpv6"] for r in perm.get("Ipv6Ranges", []))),
        tuple(sorted(p["GroupId"] for p in perm.get("UserIdGroupPairs", []))),
        tuple(sorted(p["PrefixListId"] for p in perm.get("PrefixListIds", []))),
    )


def _split(perms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One permission per source (the API may group several sources in one permission)."""
    out = []
    for perm in perms:
        base: dict[str, Any] = {k: perm[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in perm}
        if perm.get("IpProtocol") == "-1":
            base = {"IpProtocol": "-1"}
        for key, item_key in (
            ("IpRanges", "CidrIp"),
            ("Ipv6Ranges", "CidrIpv6"),
            ("UserIdGroupPairs", "GroupId"),
            ("PrefixListIds", "PrefixListId"),
        ):
            for item in perm.get(key, []):
                entry: dict[str, Any] = {**base, key: [{item_key: item[item_key]}]}
                out.append(entry)
    return out


def fix_security_group_egress(
    template: dict[str, Any],
    resolved_egress: dict[str, list[dict[str, Any]]],
    physical_ids: dict[str, str],
    ec2: Any,
) -> list[str]:
    """Gap 3: make the egress rules of each group that declares `SecurityGroupEgress` exactly the declared
    ones (resolved_egress: logical id -> rules with intrinsics resolved). Returns what changed."""
    changed = []
    for logical_id, declared in resolved_egress.items():
        group_id = physical_ids[logical_id]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        wanted = {_rule_key(p): p for p in (_permission(r) for r in declared)}
        actual = {_rule_key(p): p for p in _split(group.get("IpPermissionsEgress", []))}
        extra = [p for k, p in actual.items() if k not in wanted]
        missing = [p for k, p in wanted.items() if k not in actual]
        if extra:
            ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=extra)
        if missing:
            ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=missing)
        if extra or missing:
            changed.append(logical_id)
    return changed


def declared_egress(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Security groups whose template declares `SecurityGroupEgress`, with those rules (unresolved)."""
    return {
        logical_id: body["Properties"]["SecurityGroupEgress"]
        for logical_id, body in template.get("Resources", {}).items()
        if body.get("Type") == "AWS::EC2::SecurityGroup"
        and "SecurityGroupEgress" in body.get("Properties", {})
    }


def event_pattern_matches(events: Any, pattern: str, event: dict[str, Any]) -> bool:
    """Gap 4: `events.test_event_pattern`, falling back to moto's matcher when the API gives no result."""
    response = events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))
    if "Result" in response:
        return bool(response["Result"])
    from moto.events.models import EventPattern, EventPatternParser

    matcher = EventPattern(pattern, EventPatternParser(pattern).parse())
    return matcher.matches_event(event)  # type: ignore[arg-type]


def authorize_standalone_egress(properties: dict[str, Any], ec2: Any) -> str:
    """Gap 1: the rule of a stripped `AWS::EC2::SecurityGroupEgress` (properties resolved), authorized."""
    group_id = properties["GroupId"]
    perm = _permission(properties)
    try:
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[perm])
    except ClientError as err:
        if err.response["Error"]["Code"] != "InvalidPermission.Duplicate":
            raise
    return f"{group_id}: egress {perm['IpProtocol']} {perm.get('FromPort', '')}-{perm.get('ToPort', '')}"


def restrict_default_security_group(properties: dict[str, Any], ec2: Any) -> str:
    """Gap 1: what CDK's `Custom::VpcRestrictDefaultSG` handler does: remove every rule of the default SG."""
    group_id = properties["DefaultSecurityGroupId"]
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    if group.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=group["IpPermissionsEgress"])
    return f"default security group {group_id}: all rules removed"


#: Non-empty while `network_interface_gaps` is patching moto (it may be entered again, nested).
_interface_gaps_active: list[bool] = []

#: EC2's answer to RunInstances on an interface attached to another instance ("Error codes for the Amazon EC2
#: API": InvalidNetworkInterface.InUse, a client error).
INTERFACE_IN_USE = "InvalidNetworkInterface.InUse"


@contextmanager
def network_interface_gaps() -> Iterator[None]:
    """Gap 6, while active (in this process: `mock_aws` or a `ThreadedMotoServer`). AWS behaviour:

    - the instance runs in the interface's subnet and AZ, with the interface's security groups
      ("RunInstances", EC2 API Reference: with NetworkInterfaces the interface brings subnet and groups);
    - an interface attached to another instance cannot be attached (InvalidNetworkInterface.InUse);
    - an existing interface (DeleteOnTermination false: "InstanceNetworkInterfaceSpecification", true only
      for an interface created at launch) is detached when the instance terminates and becomes available;
    - `ModifyInstanceAttribute` with `Groups` replaces the groups of the instance's primary interface
      ("ModifyInstanceAttribute", EC2 API Reference, parameter Groups).
    """
    if _interface_gaps_active:  # nested (e.g. the tests' fault helper inside an emulator): patched once
        yield
        return
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.instances import Instance

    original_run = EC2Backend.run_instances
    original_terminate = Instance.terminate
    original_groups = EC2Backend.modify_instance_security_groups

    def existing_ids(kwargs: dict[str, Any]) -> list[str]:
        return [n["NetworkInterfaceId"] for n in kwargs.get("nics") or [] if n.get("NetworkInterfaceId")]

    def run_instances(backend: Any, *args: Any, **kwargs: Any) -> Any:
        given = existing_ids(kwargs)
        for eni_id in given:
            if backend.get_network_interface(eni_id).status == "in-use":
                raise EC2ClientError(INTERFACE_IN_USE, f"Interface: [{eni_id}] in use.")
        reservation = original_run(backend, *args, **kwargs)
        for instance in reservation.instances:
            for nic in instance.nics.values():
                if nic.id in given:
                    setattr(nic, "swr_existing", True)  # noqa: B010 - moto object, untyped marker
                    if nic.device_index == 0:
                        instance._placement.zone = nic.subnet.availability_zone
                        instance.security_groups = list(nic._group_set)
        return reservation

    def terminate(instance: Any) -> Any:
        existing = [nic for nic in instance.nics.values() if getattr(nic, "swr_existing", False)]
        previous = original_terminate(instance)
        for nic in existing:
            # Detached on the interface's side only: moto's description of the terminated instance reads
            # its address from the interface.
            nic.instance, nic.attachment_id, nic.attach_time, nic.status = None, None, None, "available"
        return previous

    def modify_groups(backend: Any, instance_id: str, new_group_id_list: list[str]) -> Any:
        instance = original_groups(backend, instance_id, new_group_id_list)
        primary = instance.nics.get(0)
        if primary is not None:
            primary._group_set = list(instance.security_groups)
        return instance

    with (
        mock.patch.object(EC2Backend, "run_instances", run_instances),
        mock.patch.object(Instance, "terminate", terminate),
        mock.patch.object(EC2Backend, "modify_instance_security_groups", modify_groups),
    ):
        _interface_gaps_active.append(True)
        try:
            yield
        finally:
            _interface_gaps_active.pop()


class LostZones(set[str]):
    """The lost AZs of gap 8 (a set of AZ names), and the stops and terminations requested in them."""

    def __init__(self, azs: Iterable[str] = ()) -> None:
        super().__init__(azs)
        #: id(instance) -> (instance, "stop" | "terminate"): what completes when its AZ recovers.
        self.pending: dict[int, tuple[Any, str]] = {}

    def recover(self, azs: Iterable[str]) -> list[str]:
        """The AZs come back: take them out of the set and complete what was requested of their instances
        meanwhile (a termination wins over a stop). AWS documents no such timing; the emulator completes
        them at once, so that the drill's world is whole again. Returns the ids of the instances completed."""
        back = set(azs) & self
        self.difference_update(back)
        done = []
        for key, (instance, operation) in list(self.pending.items()):
            if instance.placement.zone not in back:
                continue
            del self.pending[key]
            (instance.terminate if operation == "terminate" else instance.stop)()
            done.append(str(instance.id))
        return sorted(done)


@contextmanager
def lost_availability_zones(azs: Iterable[str]) -> Iterator[LostZones]:
    """Gap 8: while active, a stop or termination of an instance placed in one of `azs` never completes
    (the instance stays `stopping` / `shutting-down`). Yields the set of lost AZs (add to it to lose more;
    `recover` brings AZs back and completes what was requested there)."""
    from moto.ec2.models.instances import Instance

    lost = LostZones(azs)
    original_stop, original_terminate = Instance.stop, Instance.terminate

    def stop(self: Any) -> Any:
        if self.placement.zone not in lost:
            return original_stop(self)
        previous = copy.copy(self._state)
        if self._state.name in ("pending", "running"):
            self._state.name, self._state.code = "stopping", 64
            lost.pending.setdefault(id(self), (self, "stop"))
        return previous

    def terminate(self: Any) -> Any:
        if self.placement.zone not in lost:
            return original_terminate(self)
        previous = copy.copy(self._state)
        if self._state.name != "terminated":
            self._state.name, self._state.code = "shutting-down", 32
            lost.pending[id(self)] = (self, "terminate")
        return previous

    with mock.patch.object(Instance, "stop", stop), mock.patch.object(Instance, "terminate", terminate):
        yield lost


#: Gap 8 for another process: the path (not an AWS API) where `lost_availability_zones_control` answers.
#: GET: {"lost": [az, ...]}; PUT {"lost": [az, ...]}: those AZs are lost from now on, any other recovers.
LOST_AZ_CONTROL_PATH = "/_swr/lost-availability-zones"


def _lost_az_request(lost: LostZones, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Serve one request of the lost-AZ control: the HTTP status and the JSON answer."""
    method = environ.get("REQUEST_METHOD", "GET")
    recovered: list[str] = []
    if method == "PUT":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            wanted = json.loads(environ["wsgi.input"].read(length) or b"{}").get("lost")
        except (ValueError, AttributeError) as err:
            return "400 Bad Request", {"error": f"expected a JSON object {{'lost': [az, ...]}}: {err}"}
        if not isinstance(wanted, list) or not all(isinstance(az, str) and az for az in wanted):
            return "400 Bad Request", {"error": f"'lost': {wanted!r}: expected a list of AZ names"}
        recovered = lost.recover(set(lost) - set(wanted))
        lost.update(wanted)
    elif method != "GET":
        return "405 Method Not Allowed", {"error": f"{method}: expected GET or PUT"}
    return "200 OK", {"lost": sorted(lost), "completed": recovered}


@contextmanager
def lost_availability_zones_control() -> Iterator[LostZones]:
    """Gap 8, steered over HTTP: while active, moto's servers in this process (a `ThreadedMotoServer`, or
    `moto.server.main`) answer LOST_AZ_CONTROL_PATH themselves, before moto routes the request, and the
    lost AZs set there apply to every instance of this process's moto (`lost_availability_zones`). How the
    `swr local up` sandbox and `swr_local.moto_server`, which run moto in a process of their own, lose an AZ
    for `swr drill --fault az`."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original_call = DomainDispatcherApplication.__call__

    with lost_availability_zones(()) as lost:

        def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO") != LOST_AZ_CONTROL_PATH:
                return original_call(self, environ, start_response)
            status, answer = _lost_az_request(lost, environ)
            body = json.dumps(answer).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]

        with mock.patch.object(DomainDispatcherApplication, "__call__", call):
            yield lost


#: The default quota of rules per network ACL and direction ("Amazon VPC quotas": 20, adjustable to 40).
DEFAULT_NACL_RULES_PER_DIRECTION = 20
#: The rule number of a network ACL's default deny rule (`*`), which does not count against the quota.
DEFAULT_DENY_RULE = 32767


@contextmanager
def nacl_rule_quota(limit: int = DEFAULT_NACL_RULES_PER_DIRECTION) -> Iterator[None]:
    """Gap 8: CreateNetworkAclEntry fails with `NetworkAclEntryLimitExceeded` (as EC2 names it in "Error
    codes for the Amazon EC2 API") once a direction of the network ACL holds `limit` rules besides the
    default deny rule (number 32767)."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import EC2Backend

    original = EC2Backend.create_network_acl_entry

    def flag(value: Any) -> bool:
        return value if isinstance(value, bool) else str(value).lower() == "true"

    def create(
        self: Any,
        network_acl_id: str,
        rule_number: Any,
        protocol: str,
        rule_action: str,
        egress: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        acl = self.get_network_acl(network_acl_id)
        same_side = [
            e
            for e in acl.network_acl_entries
            if flag(e.egress) is flag(egress) and int(e.rule_number) != DEFAULT_DENY_RULE
        ]
        if len(same_side) >= limit:
            raise EC2ClientError(
                "NetworkAclEntryLimitExceeded",
                f"The maximum number of network ACL entries ({limit}) has been reached.",
            )
        return original(self, network_acl_id, rule_number, protocol, rule_action, egress, *args, **kwargs)

    with mock.patch.object(EC2Backend, "create_network_acl_entry", create):
        yield


def describe_mount_target_interfaces(efs: Any, ec2: Any, file_system_id: str) -> None:
    """Gap 9: describe the network interface of each mount target of the file system as EFS does."""
    for target in efs.describe_mount_targets(FileSystemId=file_system_id)["MountTargets"]:
        ec2.modify_network_interface_attribute(
            NetworkInterfaceId=target["NetworkInterfaceId"],
            Description={"Value": f"EFS mount target for {target['MountTargetId']}"},
        )
