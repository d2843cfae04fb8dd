"""The node can mount and write both of its EFS the way its user data does, and nothing more.

EFS authorises an IAM-authenticated NFS client (`-o tls,iam`) with its role's identity policy and the
file-system policy: an allow in either suffices, a deny in either wins, and as soon as a file-system
policy exists EFS's default "full access" policy no longer applies. Without `ClientRootAccess` root is
squashed to a non-root user, and a new file system's root directory belongs to uid 0 with mode 755
(Amazon EFS user guide: "Using IAM to control file system data access",
https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html; "Network File System (NFS)
level users, groups, and permissions",
https://docs.aws.amazon.com/efs/latest/ug/accessing-fs-nfs-permissions.html). An access point that
enforces a non-root user replaces root by that user ("Working with access points",
https://docs.aws.amazon.com/efs/latest/ug/efs-access-points.html). moto evaluates none of this, so the
decision is made here on the synthesized templates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from swr_stacks.app_builder import vpc_stack_name

ROOT_MOUNT = ("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite")
ROOT_ACCESS = "elasticfilesystem:ClientRootAccess"


def _refs(value: Any) -> set[str]:
    """Logical ids a template value references (Ref / Fn::GetAtt)."""
    if isinstance(value, dict):
        found = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
        if isinstance(value.get("Fn::GetAtt"), list):
            found.add(value["Fn::GetAtt"][0])
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def _flatten(value: Any) -> str:
    """A Fn::Join/Fn::Base64 user data as text, references written as ${LogicalId}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Base64" in value:
            return _flatten(value["Fn::Base64"])
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(_flatten(p) for p in parts)
        (ref,) = _refs(value) or {"?"}
        return "${" + ref + "}"
    raise TypeError(value)


@dataclass(frozen=True)
class Mount:
    """One EFS mount of the user data (done as root)."""

    file_system: str  # logical id
    options: tuple[str, ...]
    access_point: str | None  # logical id


def _mounts(user_data: str) -> list[Mount]:
    mounts = []
    for fs, opts in re.findall(r"add_mount '\$\{(\w+)\}' '[^']+' '([^']+)'", user_data):
        mounts.append(Mount(fs, tuple(opts.split(",")), None))
    (data_fs,) = re.findall(r"data_fs_id='([^']*)'", user_data)
    for opts in re.findall(r"add_mount \"\$data_fs_id\" '[^']+' '([^']+)'", user_data):
        if data_fs:
            mounts.append(Mount(data_fs.strip("${}"), tuple(opts.split(",")), None))
    return [
        Mount(
            m.file_system,
            m.options,
            next((o.split("=", 1)[1].strip("${}") for o in m.options if o.startswith("accesspoint=")), None),
        )
        for m in mounts
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions_hold(conditions: dict[str, Any], context: dict[str, Any]) -> bool:
    for operator, pairs in conditions.items():
        assert operator in ("Bool", "StringEquals"), f"evaluator does not know {operator}"
        for key, expected in pairs.items():
            if key not in context:
                return False
            actual = context[key]
            if isinstance(actual, tuple):  # ("ref", logical id): a token of the template
                if actual[1] not in _refs(expected):
                    return False
            elif str(expected).lower() != str(actual).lower():
                return False
    return True


def _action_matches(patterns: Any, action: str) -> bool:
    return any(
        p == "*" or p == action or (p.endswith("*") and action.startswith(p[:-1])) for p in _as_list(patterns)
    )


@dataclass
class Policies:
    template: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        return [
            s
            for p in self.resources("AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]

    def fs_statements(self, fs: str) -> list[dict[str, Any]]:
        policy = self.template["Resources"][fs]["Properties"].get("FileSystemPolicy")
        assert policy is not None, "without a file-system policy EFS grants everyone full access"
        return policy["Statement"]

    def allowed(self, role: str, fs: str, action: str, context: dict[str, Any]) -> bool:
        """IAM evaluation for one NFS client action (same account: an allow in either policy suffices)."""
        identity = [
            s
            for s in self.role_statements(role)
            if _action_matches(s["Action"], action)
            and any(r == "*" or fs in _refs(r) for r in _as_list(s["Resource"]))
        ]
        resource = [
            s
            for s in self.fs_statements(fs)
            if _action_matches(s["Action"], action)
            and (s["Principal"] in ("*", {"AWS": "*"}) or role in _refs(s["Principal"]))
        ]
        applicable = [s for s in identity + resource if _conditions_hold(s.get("Condition", {}), context)]
        if any(s["Effect"] == "Deny" for s in applicable):
            return False
        return any(s["Effect"] == "Allow" for s in applicable)


def _nodes(template: dict[str, Any]) -> list[tuple[str, list[Mount]]]:
    """(role logical id, mounts of its user data) for every node of a VPC stack."""
    policies = Policies(template)
    profiles = policies.resources("AWS::IAM::InstanceProfile")
    nodes = []
    for lt in policies.resources("AWS::EC2::LaunchTemplate").values():
        data = lt["Properties"]["LaunchTemplateData"]
        (profile,) = _refs(data["IamInstanceProfile"])
        (role,) = _refs(profiles[profile]["Properties"]["Roles"])
        nodes.append((role, _mounts(_flatten(data["UserData"]))))
    return nodes


def _context(mount: Mount) -> dict[str, Any]:
    """What EFS sees for this mount: TLS (`tls`), a mount target, the access point if any."""
    assert "tls" in mount.options and "iam" in mount.options, mount
    context: dict[str, Any] = {
        "aws:SecureTransport": "true",
        "elasticfilesystem:AccessedViaMountTarget": "true",
    }
    if mount.access_point:
        context["elasticfilesystem:AccessPointArn"] = ("ref", mount.access_point)
    return context


def _needs_root(template: dict[str, Any], mount: Mount) -> bool:
    """Root (uid 0) writes at the mount point unless an access point makes it the directory's owner."""
    if mount.access_point is None:
        return True  # the file system's root directory: uid 0, mode 755
    props = template["Resources"][mount.access_point]["Properties"]
    user, created = props["PosixUser"], props["RootDirectory"]["CreationInfo"]
    assert user["Uid"] != "0", "an access point enforcing uid 0 itself needs ClientRootAccess"
    assert created["OwnerUid"] == user["Uid"], "the access point's user must own its directory"
    assert int(created["Permissions"][0]) & 2, "the owner must be able to write the directory"
    return False


@pytest.mark.parametrize("app_fixture", ["default_app", "default_app_without_flags", "multi_app"])
def test_each_node_can_mount_and_write_both_efs_as_its_user_data_does(request, app_fixture):
    app = request.getfixturevalue(app_fixture)
    for region in app.config.regions:
        for vpc in region.vpcs:
            template = app.raw[vpc_stack_name(region.name, vpc.name)]
            policies = Policies(template)
            nodes = _nodes(template)
            assert len(nodes) == len(vpc.nodes)
            for (role, mounts), node in zip(
                sorted(nodes), sorted(vpc.nodes, key=lambda n: n.node_id), strict=True
            ):
                assert len(mounts) == (2 if node.user_data_efs else 1), mounts
                for mount in mounts:
                    context = _context(mount)
                    needed = [*ROOT_MOUNT, *([ROOT_ACCESS] if _needs_root(template, mount) else [])]
                    refused = [a for a in needed if not policies.allowed(role, mount.file_system, a, context)]
                    assert refused == [], f"{vpc.name}: {role} cannot {refused} on {mount}"
                    # Plain NFS (no `tls`) is refused whatever the role may do.
                    plain = {**context, "aws:SecureTransport": "false"}
                    assert not policies.allowed(role, mount.file_system, ROOT_MOUNT[0], plain)


@pytest.mark.parametrize("app_fixture", ["default_app", "default_app_without_flags", "multi_app"])
def test_no_node_reaches_another_nodes_files_and_no_policy_grants_to_everyone(request, app_fixture):
    app = request.getfixturevalue(app_fixture)
    for region in app.config.regions:
        for vpc in region.vpcs:
            template = app.raw[vpc_stack_name(region.name, vpc.name)]
            policies = Policies(template)
            for fs in policies.resources("AWS::EFS::FileSystem"):
                for statement in policies.fs_statements(fs):
                    # Root and write access come from each node's own role, never from "everyone".
                    if statement["Effect"] == "Allow":
                        assert statement["Principal"] not in ("*", {"AWS": "*"}), json.dumps(statement)
            nodes = _nodes(template)
            for role, _ in nodes:
                for other_role, other_mounts in nodes:
                    if other_role == role:
                        continue
                    for mount in other_mounts:
                        for action in (*ROOT_MOUNT, ROOT_ACCESS):
                            assert not policies.allowed(role, mount.file_system, action, _context(mount)), (
                                f"{role} may {action} on {other_role}'s {mount}"
                            )
