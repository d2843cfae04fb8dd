"""Where a VPC's on-instance monitors write: the monitor-log EFS and the monitor log group."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct
from switcher import contract

#: POSIX identity the node's monitor writes its log directory as (the access point enforces it).
MONITOR_LOG_UID = "1000"
MONITOR_LOG_GID = "1000"


class SecureFileSystem(efs.FileSystem):
    """An encrypted EFS file system with a mount target in every selected subnet, TLS enforced.

    Its policy only denies plain NFS. Because a file-system policy exists, EFS's default policy (full
    access for every client) no longer applies: an NFS client gets exactly what its IAM role grants
    (``elasticfilesystem:ClientMount``/``ClientWrite``/``ClientRootAccess``) and an anonymous client
    (no ``iam`` mount option) gets nothing; without ``ClientRootAccess`` root is squashed to a
    non-root user (Amazon EFS user guide: "Using IAM to control file system data access",
    https://docs.aws.amazon.com/efs/latest/ug/iam-access-control-nfs-efs.html, and "Network File System
    (NFS) level users, groups, and permissions",
    https://docs.aws.amazon.com/efs/latest/ug/accessing-fs-nfs-permissions.html). So each node role
    carries the client actions it needs on its own file systems (NodeRole).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network_vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(
            scope,
            id_,
            vpc=network_vpc,
            vpc_subnets=subnets,
            security_group=security_group,
            encrypted=True,
            # Survives a switch by design: the data must also survive an accidental stack deletion.
            removal_policy=RemovalPolicy.RETAIN,
            enable_automatic_backups=True,
            # CDK's name for "add no statement of your own": with the feature flag
            # @aws-cdk/aws-efs:denyAnonymousAccess (cdk.json) the CDK would otherwise add one granting
            # ClientRootAccess and ClientWrite to every principal, and without the flag none, so the
            # deployed access would depend on how the app is synthesized. Anonymous clients stay refused:
            # the policy below exists and allows nothing (see the docstring).
            allow_anonymous_access=True,
        )
        # Mounts use amazon-efs-utils with `tls`: refuse any unencrypted client.
        self.add_to_resource_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["*"],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )


class MonitorLogs(Construct):
    """The shared monitor-log EFS (one access point per node) and the VPC's monitor log group."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc_name: str,
        network_vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self,
            "EfsSg",
            vpc=network_vpc,
            description="swr monitor-log EFS: NFS from nodes",
            allow_all_outbound=False,
        )
        self.file_system = SecureFileSystem(
            self, "FileSystem", network_vpc=network_vpc, subnets=subnets, security_group=self.security_group
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=contract.monitor_log_group_name(vpc_name),
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def add_node_access_point(self, *, node_id: int) -> efs.AccessPoint:
        """The node's own directory `/<node_id>` on the monitor-log EFS (kept across switches).

        The access point replaces every NFS user of the node (root included) by MONITOR_LOG_UID, and
        EFS creates the directory owned by that user on first mount (creation info): the node writes
        as the owner and needs no ClientRootAccess, which EFS requires only when the enforced uid or
        gid is 0 (Amazon EFS user guide, "Working with access points",
        https://docs.aws.amazon.com/efs/latest/ug/efs-access-points.html).
        """
        return self.file_system.add_access_point(
            f"AccessPoint{node_id}",
            path=f"/{node_id}",
            posix_user=efs.PosixUser(uid=MONITOR_LOG_UID, gid=MONITOR_LOG_GID),
            create_acl=efs.Acl(owner_uid=MONITOR_LOG_UID, owner_gid=MONITOR_LOG_GID, permissions="750"),
        )
