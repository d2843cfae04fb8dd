"""The fence of a switch: stop the source, and cut it off the network when its stop does not complete.

Phase STOP_SENT puts the blackhole group on the source and sends a forced stop. Phase FENCE waits for
`stopped` in the invocation only for the inline wait (STOP_SENT's recorded time +
`fence_inline_wait_seconds`, capped by the fence deadline = STOP_SENT + `fence_timeout_seconds`): a
forced stop that has not completed by then is stuck, and holding an invocation for it would queue every
other switch of a lost Availability Zone behind it. The switch is then parked until the deadline
(`FenceStillPending`; store.park_owned) and resumed by the source's `stopped` event or, at the deadline,
by the next reconcile run (decide.decide); a resumed switch past its inline window looks at the source
once, without a waiter. Past the deadline (an impaired Availability Zone may never finish the stop) the
fence escalates to network ACLs: a deny rule for the source's address (or, when every live instance of
its subnet is being fenced or found silent by swr's detection, for the whole subnet) in both directions,
in the network ACL of every subnet of the VPC that holds an EFS mount target. In an AZ loss every node of
the lost subnet is silent by the time the first deadline passes, so the first network fence is already
the whole-subnet rule, whether or not the other switches have sent their stops yet.

Why there: a network ACL rule matches the REMOTE address of a packet crossing the subnet's boundary (an
inbound rule the source address of a packet entering the subnet, an outbound rule the destination of a
packet leaving it: "Network ACL rules", Amazon VPC User Guide; NetworkAclEntry.Egress, "applied to traffic
leaving the subnet", Amazon EC2 API Reference). A deny for the source's address in its OWN subnet's ACL
matches none of its packets; in the mount-target subnet's ACL it matches all of them, both ways.
Why a network ACL: a security-group change does not cut established connections (security groups are
stateful and keep tracked flows: "Security group connection tracking", Amazon EC2 User Guide), while
network ACLs are stateless and evaluate every packet ("Control subnet traffic with network ACLs", Amazon
VPC User Guide), and changing one is a regional API call. Traffic between two addresses of one subnet
never crosses that subnet's network ACL, so the network fence is only claimed when the source's subnet
holds no EFS mount target, and never when the VPC shows none at all (docs/fencing.md). Quota: 20 rules
per network ACL and direction by default, adjustable to 40 ("Amazon VPC quotas", network ACLs); the
default deny rule does not count. swr uses only rule numbers contract.NACL_RULE_FIRST..NACL_RULE_LAST and
never touches any other rule.

If no fence can be confirmed, `FenceUnconfirmed` is raised: nothing is launched, the switch keeps the
node, parked and due at once, so the next event about its source or the next reconcile run tries again.
"""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, WaiterError

from switcher import aws, contract
from switcher.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client

#: States in which the source cannot run anything any more: the fence holds.
STOPPED_STATES = frozenset({"stopped", "terminated"})
#: EFS names the network interface of a mount target so ("Creating and managing mount targets", Amazon EFS
#: User Guide: the interface EFS creates in the subnet carries the mount target's description).
EFS_MOUNT_TARGET_DESCRIPTION = "EFS mount target for *"
#: "Error codes for the Amazon EC2 API": a rule number taken in that direction / the rule quota reached.
ENTRY_EXISTS = "NetworkAclEntryAlreadyExists"
ENTRY_LIMIT = "NetworkAclEntryLimitExceeded"
#: The rule to replace is gone (the same page: the specified network ACL entry does not exist).
ENTRY_NOT_FOUND = "InvalidNetworkAclEntry.NotFound"
#: Another switch may take a free rule number between our read and our write: read again this often.
#: After a collision the next number is drawn at random among the free ones, so that the switches of a
#: lost subnet (up to the function's concurrency at once) stop colliding on the lowest free number.
RULE_RACE_ATTEMPTS = 10
#: Time the escalation needs after the wait (a few EC2 calls); kept out of the wait's budget.
ESCALATION_RESERVE_SECONDS = 60


class FenceUnconfirmed(Exception):
    """No fence of the source could be confirmed: nothing may be launched; the switch waits."""


class FenceStillPending(Exception):
    """The stop was sent and has not completed within the inline wait, and the fence deadline has not
    passed: the switch is parked until `deadline` (epoch seconds) rather than holding its invocation."""

    def __init__(self, message: str, *, deadline: float, source_state: str) -> None:
        super().__init__(message)
        self.deadline = deadline
        self.source_state = source_state


@dataclass(frozen=True)
class AclRules:
    """swr's deny rules in one network ACL: for which CIDR(s), under which rule numbers."""

    network_acl_id: str
    cidr: str
    ingress_rule: int
    egress_rule: int


@dataclass(frozen=True)
class NetworkFence:
    """The deny rules that fence a source: its subnet, the CIDR(s) denied, the mount-target subnets whose
    network ACLs carry the rules, and the rules in each of those ACLs."""

    subnet_id: str
    cidr: str
    mount_target_subnets: tuple[str, ...]
    acls: tuple[AclRules, ...]

    def as_dict(self) -> dict[str, Any]:
        """As stored on the switch record."""
        return asdict(self)


def _server_error(err: ClientError) -> bool:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500


def send_stop(ec2: EC2Client, instance_id: str, *, current_state: str, blackhole_sg_id: str) -> None:
    """Blackhole group on the source, then a forced stop (both are repeatable).

    A server error (5xx) of either call is logged and passed over: in an impaired AZ they may never
    succeed, and the fence deadline then leads to the network fence instead of an endless retry.
    """
    if current_state in aws.GONE_STATES:
        return
    try:
        ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[blackhole_sg_id])
    except ClientError as err:
        if not _server_error(err):
            raise
        logger.warning("blackhole group not applied", extra={"error_code": aws.error_code(err)})
    if current_state == "stopped":
        return
    try:
        ec2.stop_instances(InstanceIds=[instance_id], Force=True)
    except ClientError as err:
        if not _server_error(err):
            raise
        logger.warning("forced stop not accepted", extra={"error_code": aws.error_code(err)})


def wait_budget(
    *, deadline: float, now: float, remaining_seconds: float | None, delay: float, max_attempts: int
) -> int:
    """How many waiter polls fit before the fence deadline and within the invocation (0: none).

    botocore's waiter polls at once, then sleeps `delay` before each further poll: N polls span
    (N - 1) x delay, so covering `budget` seconds takes budget / delay polls plus the first one."""
    budget = deadline - now
    if remaining_seconds is not None:
        budget = min(budget, remaining_seconds - ESCALATION_RESERVE_SECONDS)
    if budget <= 0:
        return 0
    return max(1, min(max_attempts, math.ceil(budget / max(delay, 1e-6)) + 1))


def wait_stopped(ec2: EC2Client, instance_id: str, *, delay: float, attempts: int) -> str:
    """Wait (botocore's `instance_stopped` waiter) up to `attempts` polls; the state seen last."""
    if attempts > 0:
        try:
            ec2.get_waiter("instance_stopped").wait(
                InstanceIds=[instance_id], WaiterConfig=aws.waiter_config(delay, attempts)
            )
            return "stopped"
        except WaiterError:
            pass  # timed out, or a failure state such as `terminated`: look
    described = aws.describe_instance(ec2, instance_id)
    return str(described["State"]["Name"]) if described else "terminated"


# --- the network fence -------------------------------------------------------------------------------


def _ours(entry: Mapping[str, Any]) -> bool:
    return contract.NACL_RULE_FIRST <= int(entry["RuleNumber"]) <= contract.NACL_RULE_LAST


def _denies(entry: Mapping[str, Any], covering: Iterable[str]) -> bool:
    return (
        _ours(entry)
        and entry.get("RuleAction") == "deny"
        and str(entry.get("Protocol")) == "-1"
        and entry.get("CidrBlock") in set(covering)
    )


def plan_rules(
    entries: Sequence[Mapping[str, Any]],
    *,
    cidr: str,
    covering: Iterable[str],
    choose: Callable[[list[int]], int] = min,
) -> dict[bool, tuple[int, bool]] | str:
    """Per direction (egress: bool) the rule number to use and whether it must be created; or why not.

    An swr deny rule already covering the source (its /32, or its whole subnet) is reused; otherwise a
    number of swr's range free in that direction (`choose`: the lowest, by default). No free number: the
    reason (a str).
    """
    covering = {cidr, *covering}
    plan: dict[bool, tuple[int, bool]] = {}
    for egress in (False, True):
        side = [e for e in entries if bool(e.get("Egress")) is egress]
        existing = next((e for e in side if _denies(e, covering)), None)
        if existing is not None:
            plan[egress] = (int(existing["RuleNumber"]), False)
            continue
        used = {int(e["RuleNumber"]) for e in side}
        free = [n for n in range(contract.NACL_RULE_FIRST, contract.NACL_RULE_LAST + 1) if n not in used]
        if not free:
            direction = "egress" if egress else "ingress"
            return (
                f"no free {direction} rule number in swr's range {contract.NACL_RULE_FIRST}-"
                f"{contract.NACL_RULE_LAST} of the network ACL"
            )
        plan[egress] = (choose(free), True)
    return plan


def mount_target_subnets(ec2: EC2Client, vpc_id: str) -> dict[str, list[str]]:
    """Subnet -> the network interfaces of the EFS mount targets in it, for every subnet of the VPC."""
    found: dict[str, list[str]] = {}
    pages = ec2.get_paginator("describe_network_interfaces").paginate(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "description", "Values": [EFS_MOUNT_TARGET_DESCRIPTION]},
        ]
    )
    for page in pages:
        for interface in page.get("NetworkInterfaces", []):
            found.setdefault(str(interface["SubnetId"]), []).append(str(interface["NetworkInterfaceId"]))
    return found


def fence_subnets(source_subnet: str, mount_targets: Mapping[str, Sequence[str]]) -> list[str] | str:
    """The subnets whose network ACLs must carry the deny rules (every subnet of the VPC that holds an EFS
    mount target: the remote end of the source's NFS traffic), or why no network fence can be claimed."""
    own = mount_targets.get(source_subnet)
    if own:
        return (
            f"subnet {source_subnet} holds EFS mount target interface(s) {', '.join(own)}: traffic inside a "
            "subnet never crosses its network ACL, so a network fence would not cut the shared data"
        )
    if not mount_targets:
        return (
            "no EFS mount target interface in the VPC: no network ACL is known to stand between the source "
            "and the shared data"
        )
    return sorted(mount_targets)


def _acls_of(ec2: EC2Client, subnet_ids: Sequence[str]) -> dict[str, list[str]]:
    """Network ACL id -> those of `subnet_ids` associated with it (a subnet has exactly one)."""
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": list(subnet_ids)}]
    ).get("NetworkAcls", [])
    by_acl: dict[str, list[str]] = {}
    for acl in acls:
        for association in acl.get("Associations", []):
            if association.get("SubnetId") in subnet_ids:
                by_acl.setdefault(str(acl["NetworkAclId"]), []).append(str(association["SubnetId"]))
    missing = set(subnet_ids) - {s for subnets in by_acl.values() for s in subnets}
    if missing:
        raise FenceUnconfirmed(f"subnet(s) {', '.join(sorted(missing))} have no network ACL association")
    return by_acl


def _subnet(ec2: EC2Client, subnet_id: str) -> dict[str, Any]:
    return dict(ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0])


def _entries(ec2: EC2Client, acl_id: str) -> list[dict[str, Any]]:
    acls = ec2.describe_network_acls(NetworkAclIds=[acl_id]).get("NetworkAcls", [])
    if not acls:
        raise FenceUnconfirmed(f"network ACL {acl_id} is gone")
    return [dict(e) for e in acls[0].get("Entries", [])]


def subnet_all_fenced(
    instances: Iterable[Mapping[str, Any]], blackhole_sg_id: str, silent: Collection[str] = ()
) -> bool:
    """True if every instance of the subnet that is not gone carries the blackhole group (being fenced) or
    is in `silent` (swr's own detection found it silent: its switch, hence its fence, is coming): one rule
    for the whole subnet then cuts nothing that should still talk."""
    alive = [i for i in instances if (i.get("State") or {}).get("Name") not in aws.GONE_STATES]
    return bool(alive) and all(
        aws.is_fenced(i, blackhole_sg_id) or i.get("InstanceId") in silent for i in alive
    )


#: DescribeAlarms takes at most 100 alarm names per call (CloudWatch API Reference, DescribeAlarms).
ALARM_NAMES_PER_CALL = 100


def silent_nodes(
    cloudwatch: CloudWatchClient,
    instances: Iterable[Mapping[str, Any]],
    *,
    vpc_name: str,
    silent_after_seconds: float,
    now: float,
) -> set[str]:
    """The instances of `instances` that are the watched instance of one of this VPC's nodes whose monitor
    alarm is in ALARM (the monitor died or the reconciler raised it: a switch is coming) or has been
    INSUFFICIENT_DATA for at least `silent_after_seconds` (docs/detection.md: the node is silent, and its
    switch is coming). One DescribeAlarms per 100 nodes. Instances of other VPCs or of no node never are."""
    watched: dict[str, str] = {}
    for instance in instances:
        tags = aws.tags_of(instance)
        node_id = tags.get(contract.TAG_NODE_ID)
        if node_id and tags.get(contract.TAG_VPC) == vpc_name and instance.get("InstanceId"):
            watched[contract.monitor_alarm_name(vpc_name, int(node_id))] = str(instance["InstanceId"])
    names = sorted(watched)
    silent: set[str] = set()
    for first in range(0, len(names), ALARM_NAMES_PER_CALL):
        chunk = names[first : first + ALARM_NAMES_PER_CALL]
        found = cloudwatch.describe_alarms(AlarmNames=chunk, AlarmTypes=["MetricAlarm"])
        for alarm in found.get("MetricAlarms", []):
            instance_id = watched.get(str(alarm.get("AlarmName")))
            if instance_id is None or aws.alarm_instance(dict(alarm)) != instance_id:
                continue
            seconds = aws.silent_for(dict(alarm), instance_id, now)
            if alarm.get("StateValue") == contract.ALARM_TRIGGER_STATE or (
                seconds is not None and seconds >= silent_after_seconds
            ):
                silent.add(instance_id)
    return silent


def _subnet_instances(ec2: EC2Client, subnet_id: str) -> list[dict[str, Any]]:
    paginator = ec2.get_paginator("describe_instances")
    return [
        dict(instance)
        for page in paginator.paginate(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]


def covered_rule(entries: Sequence[Mapping[str, Any]], *, cidr: str, egress: bool) -> int | None:
    """The number of an swr deny rule in that direction whose CIDR lies inside `cidr` and is not `cidr`
    (a per-address rule of the subnet `cidr` denies whole): the wider rule makes it redundant, so it may be
    rewritten in place when the ACL has no room for one more rule. None if there is none."""
    wider = ipaddress.ip_network(cidr, strict=False)
    for entry in sorted(entries, key=lambda e: int(e["RuleNumber"])):
        narrow_cidr = str(entry.get("CidrBlock") or "")
        if bool(entry.get("Egress")) is not egress or not narrow_cidr or narrow_cidr == cidr:
            continue
        if not _denies(entry, [narrow_cidr]):
            continue
        narrow = ipaddress.ip_network(narrow_cidr, strict=False)
        if narrow.version == wider.version and narrow.subnet_of(wider):  # type: ignore[arg-type]
            return int(entry["RuleNumber"])
    return None


def _deny_entry(acl_id: str, number: int, *, egress: bool, cidr: str) -> dict[str, Any]:
    """The parameters of swr's deny rule (all protocols) for CreateNetworkAclEntry/ReplaceNetworkAclEntry."""
    return {
        "NetworkAclId": acl_id,
        "RuleNumber": number,
        "Protocol": "-1",
        "RuleAction": "deny",
        "Egress": egress,
        "CidrBlock": cidr,
    }


def _widen_in_place(
    ec2: EC2Client, acl_id: str, entries: Sequence[Mapping[str, Any]], *, cidr: str, egress: bool, why: str
) -> None:
    """No room for the rule denying `cidr` (the rule quota, 20 per direction by default, or no free number
    of swr's range): rewrite an swr rule that `cidr` covers into it instead (ReplaceNetworkAclEntry, "Replaces
    an entry (rule) in a network ACL", Amazon EC2 API Reference). One call changes the rule in place, so
    the address it denied is never without a deny (the wider CIDR covers it). Raises FenceUnconfirmed when
    no swr rule lies inside `cidr` (a per-address fence never widens anything)."""
    number = covered_rule(entries, cidr=cidr, egress=egress)
    if number is None:
        raise FenceUnconfirmed(f"network ACL {acl_id}: {why}")
    ec2.replace_network_acl_entry(**_deny_entry(acl_id, number, egress=egress, cidr=cidr))
    logger.warning(
        "network fence widened in place", extra={"network_acl_id": acl_id, "rule": number, "cidr": cidr}
    )


def _deny_in(ec2: EC2Client, acl_id: str, *, cidr: str, covering: tuple[str, ...]) -> AclRules:
    """Deny `cidr` in one network ACL, both directions (or reuse an swr deny covering the source), and
    confirm the rules are there. A whole-subnet rule that finds no room takes the place of a per-address
    rule of that subnet (`_widen_in_place`): a lost subnet's first per-address rules must never keep its
    whole-subnet rule out. Raises FenceUnconfirmed with the reason when that cannot be done."""
    choose: Callable[[list[int]], int] = min
    for _ in range(RULE_RACE_ATTEMPTS):
        entries = _entries(ec2, acl_id)
        plan = plan_rules(entries, cidr=cidr, covering=covering, choose=choose)
        try:
            if isinstance(plan, str):
                for egress in (False, True):
                    side = [e for e in entries if bool(e.get("Egress")) is egress]
                    if not any(_denies(e, {cidr, *covering}) for e in side):
                        _widen_in_place(ec2, acl_id, entries, cidr=cidr, egress=egress, why=plan)
            else:
                for egress, (number, create) in plan.items():
                    if not create:
                        continue
                    try:
                        ec2.create_network_acl_entry(**_deny_entry(acl_id, number, egress=egress, cidr=cidr))
                    except ClientError as err:
                        if aws.error_code(err) != ENTRY_LIMIT:
                            raise
                        _widen_in_place(
                            ec2,
                            acl_id,
                            entries,
                            cidr=cidr,
                            egress=egress,
                            why="at its rules quota (20 per direction by default)",
                        )
        except ClientError as err:
            if aws.error_code(err) in (ENTRY_EXISTS, ENTRY_NOT_FOUND):
                # Another switch took that number, or the sweep removed the rule we meant to widen,
                # meanwhile: read again.
                choose = random.choice
                continue
            raise
        # Confirm with the same coverage the plan used: a rule for the whole subnet, created by another
        # switch, fences this source as well as its own /32 would.
        entries = _entries(ec2, acl_id)
        confirmed = plan_rules(entries, cidr=cidr, covering=covering)
        if isinstance(confirmed, dict) and not any(create for _, create in confirmed.values()):
            rules = {egress: number for egress, (number, _) in confirmed.items()}
            held = {
                str(e["CidrBlock"])
                for e in entries
                if (bool(e.get("Egress")), int(e["RuleNumber"]))
                in ((False, rules[False]), (True, rules[True]))
            }
            return AclRules(
                acl_id, ",".join(sorted(held)), ingress_rule=rules[False], egress_rule=rules[True]
            )
    raise FenceUnconfirmed(f"network ACL {acl_id}: rule numbers kept being taken")


def network_fence(
    ec2: EC2Client,
    source: Mapping[str, Any],
    *,
    blackhole_sg_id: str,
    silent_of: Callable[[list[dict[str, Any]]], Collection[str]] = lambda _: (),
) -> NetworkFence:
    """Deny the source's address (or its whole subnet) in the network ACL of every subnet of the VPC that
    holds an EFS mount target, both directions, and confirm the rules are on every one of them. Raises
    FenceUnconfirmed with the reason when that cannot be done.

    The whole subnet is denied when every live instance of it is being fenced (blackhole group) or is
    silent (`silent_of`: those of the subnet's instances swr's detection found silent, `silent_nodes`):
    in an AZ loss the nodes whose switches have not sent their stops yet would otherwise each need a rule
    of their own, and a lost subnet of more nodes than the quota would never be fenced whole."""
    subnet_id, ip = source.get("SubnetId"), aws.private_ip(dict(source))
    if not subnet_id or not ip:
        raise FenceUnconfirmed(f"source {source.get('InstanceId')} has no subnet or private address")
    subnet = _subnet(ec2, subnet_id)
    targets = fence_subnets(subnet_id, mount_target_subnets(ec2, str(subnet["VpcId"])))
    if isinstance(targets, str):
        raise FenceUnconfirmed(targets)
    subnet_cidr, own = str(subnet["CidrBlock"]), f"{ip}/32"
    instances = _subnet_instances(ec2, subnet_id)
    not_blackholed = [i for i in instances if not aws.is_fenced(i, blackhole_sg_id)]
    # The alarms are read only when an instance of the subnet is not yet blackholed.
    silent = silent_of(not_blackholed) if not_blackholed else ()
    whole = subnet_all_fenced(instances, blackhole_sg_id, silent)
    cidr = subnet_cidr if whole else own
    # One ACL may serve several mount-target subnets: one pair of rules each. A rule written in one ACL
    # before another fails stays (it denies a source being fenced); the reconciler's sweep removes it.
    acls = tuple(
        _deny_in(ec2, acl_id, cidr=cidr, covering=(own, subnet_cidr))
        for acl_id in sorted(_acls_of(ec2, targets))
    )
    held = sorted({c for rules in acls for c in rules.cidr.split(",")})
    return NetworkFence(subnet_id, ",".join(held), mount_target_subnets=tuple(targets), acls=acls)


def deny_cidrs(ec2: EC2Client, vpc_id: str) -> list[str]:
    """The CIDRs swr's deny rules hold in the VPC's network ACLs (1 DescribeNetworkAcls): where no
    replacement may go while they stand (placement.fenced_subnets)."""
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get("NetworkAcls", [])
    return sorted(
        {
            str(e["CidrBlock"])
            for a in acls
            for e in a.get("Entries", [])
            if e.get("CidrBlock") and _denies(e, [e["CidrBlock"]])
        }
    )


# --- removing rules no longer needed -----------------------------------------------------------------


def rule_needed(cidr: str, instances: Iterable[Mapping[str, Any]], serving: set[str]) -> bool:
    """An swr deny rule is needed while an instance in its CIDR is not gone and is not the current
    instance of an ACTIVE node (`serving`): that is a fenced source (or one whose state EC2 cannot tell)."""
    network = ipaddress.ip_network(cidr, strict=False)
    for instance in instances:
        if (instance.get("State") or {}).get("Name") in ("terminated",):
            continue
        ip = instance.get("PrivateIpAddress")
        if ip and ipaddress.ip_address(ip) in network and instance.get("InstanceId") not in serving:
            return True
    return False


def sweep_network_fences(ec2: EC2Client, vpc_id: str, *, serving: set[str]) -> list[str]:
    """Delete swr's deny rules of the VPC's network ACLs that fence nothing any more (their sources are
    terminated, or a wider swr rule of the same ACL and direction covers them); the rules of other owners
    are never read as ours. Returns what was removed."""
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get("NetworkAcls", [])
    ours = [
        (a["NetworkAclId"], e)
        for a in acls
        for e in a.get("Entries", [])
        if _denies(e, [e.get("CidrBlock", "")])
    ]
    if not ours:
        return []
    paginator = ec2.get_paginator("describe_instances")
    instances = [
        i
        for page in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    removed = []
    for acl_id, entry in ours:
        same_side = [e for a, e in ours if a == acl_id and bool(e.get("Egress")) is bool(entry.get("Egress"))]
        # A rule another swr rule of the same ACL and direction covers (a per-address rule of a subnet
        # denied whole) denies nothing more: it goes, and frees its place under the quota.
        redundant = any(
            covered_rule([entry], cidr=str(other["CidrBlock"]), egress=bool(entry.get("Egress"))) is not None
            for other in same_side
            if other is not entry
        )
        if not redundant and rule_needed(str(entry["CidrBlock"]), instances, serving):
            continue
        ec2.delete_network_acl_entry(
            NetworkAclId=acl_id, RuleNumber=int(entry["RuleNumber"]), Egress=bool(entry["Egress"])
        )
        removed.append(f"{acl_id} rule {entry['RuleNumber']} ({'egress' if entry['Egress'] else 'ingress'})")
    return removed
