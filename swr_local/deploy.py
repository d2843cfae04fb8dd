"""Deploy a synthesized cloud assembly into a local emulator's CloudFormation (what `cdk deploy` does).

Local only: the caller must pass an `AwsTarget` whose endpoint is on this machine.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from switcher import contract

from swr_cli.aws import AwsTarget
from swr_local import gaps
from swr_local.assembly import Assembly, StackArtifact
from swr_local.errors import LocalRunError
from swr_local.lambda_runtime import DeployedFunction, response_inbox, run_custom_resource_create

#: What `cdk bootstrap` (modern template) writes into the version parameter.
BOOTSTRAP_VERSION = 21

Progress = Callable[[str], None]


class DeployError(LocalRunError):
    """A stack or an asset could not be deployed."""


@dataclass
class DeployedStack:
    name: str
    stack_id: str
    template: dict[str, Any]
    outputs: dict[str, str]
    #: logical id -> (physical id, resource type)
    resources: dict[str, tuple[str, str]]
    custom_resources: list[tuple[gaps.StrippedCustomResource, dict[str, Any]]] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    def physical_ids(self) -> dict[str, str]:
        return {logical: physical for logical, (physical, _) in self.resources.items()}


def _substitute(value: str, account_id: str, region: str) -> str:
    return (
        value.replace("${AWS::AccountId}", account_id)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def _zip_directory(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


def publish_assets(stack: StackArtifact, target: AwsTarget, account_id: str) -> int:
    """Upload the stack's file assets to the buckets its asset manifest names. Returns how many."""
    if not stack.asset_manifest:
        return 0
    s3 = target.client("s3")
    count = 0
    for asset_hash, asset in stack.asset_manifest.get("files", {}).items():
        source = stack.asset_dir / asset["source"]["path"]
        if asset["source"].get("packaging") == "zip" and source.is_dir():
            body = _zip_directory(source)
        elif source.is_file():
            body = source.read_bytes()
        else:
            raise DeployError(f"asset {asset_hash} of {stack.name}: no file or directory at {source}")
        for destination in asset["destinations"].values():
            bucket = _substitute(destination["bucketName"], account_id, target.region)
            key = _substitute(destination["objectKey"], account_id, target.region)
            region = _substitute(destination.get("region", target.region), account_id, target.region)
            create: dict[str, Any] = {"Bucket": bucket}
            if region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                s3.create_bucket(**create)
            except ClientError as err:
                if err.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            count += 1
    if stack.asset_manifest.get("dockerImages"):
        raise DeployError(f"{stack.name} has Docker image assets, which the local deploy cannot build")
    return count


def ensure_bootstrap_parameter(stack: StackArtifact, target: AwsTarget) -> None:
    """Create the bootstrap version parameter the template's CheckBootstrapVersion rule reads."""
    names = {stack.bootstrap_parameter} if stack.bootstrap_parameter else set()
    param = stack.template.get("Parameters", {}).get("BootstrapVersion", {})
    if str(param.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
        names.add(param["Default"])
    version = max(BOOTSTRAP_VERSION, stack.bootstrap_version or 0)
    ssm = target.client("ssm")
    for name in names:
        ssm.put_parameter(Name=name, Value=str(version), Type="String", Overwrite=True)


def _resolve(value: Any, physical_ids: dict[str, str]) -> Any:
    """Resolve the Ref/GetAtt forms that appear in security group rules."""
    if isinstance(value, dict) and "Ref" in value:
        return physical_ids[value["Ref"]]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical, attr = value["Fn::GetAtt"]
        if attr == "GroupId":
            return physical_ids[logical]
        raise DeployError(f"cannot resolve Fn::GetAtt {logical}.{attr} in a security group rule")
    if isinstance(value, dict):
        return {k: _resolve(v, physical_ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, physical_ids) for v in value]
    return value


def deploy_stack(
    stack: StackArtifact, target: AwsTarget, account_id: str, progress: Progress
) -> DeployedStack:
    """Create one stack (custom resources stripped, see swr_local.gaps) and correct moto's gaps after it."""
    ensure_bootstrap_parameter(stack, target)
    assets = publish_assets(stack, target, account_id)
    if assets:
        progress(f"{stack.name}: published {assets} asset(s)")
    template, stripped = gaps.strip_custom_resources(stack.template)
    cfn = target.client("cloudformation")
    try:
        with gaps.patched_cloudformation():
            stack_id = cfn.create_stack(
                StackName=stack.name,
                TemplateBody=json.dumps(template),
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )["StackId"]
    except ClientError as err:
        raise DeployError(f"create_stack {stack.name}: {err}") from err
    described = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(
            f"stack {stack.name} ended {described['StackStatus']}: {described.get('StackStatusReason', '')}"
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    resources = {
        r["LogicalResourceId"]: (r.get("PhysicalResourceId", ""), r["ResourceType"])
        for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]
        if "LogicalResourceId" in r  # moto lists resource types it does not model without ids
    }
    not_emulated = Counter(
        body["Type"]
        for logical, body in template.get("Resources", {}).items()
        if logical not in resources and body["Type"] != "AWS::CDK::Metadata"
    )
    deployed = DeployedStack(
        name=stack.name,
        stack_id=stack_id,
        template=template,
        outputs=outputs,
        resources=resources,
        custom_resources=[
            (item, item.resolve(outputs))
            for item in stripped
            if item.resource_type == contract.NODE_RESOURCE_TYPE
        ],
    )
    physical = deployed.physical_ids()
    ec2 = target.client("ec2")
    egress = {k: _resolve(v, physical) for k, v in gaps.declared_egress(template).items()}
    fixed_groups = gaps.fix_security_group_egress(template, egress, physical, ec2)
    if fixed_groups:
        deployed.fixes.append(f"egress of {len(fixed_groups)} security group(s) set to the declared rules")
    for item in stripped:
        if item.resource_type == gaps.STANDALONE_EGRESS:
            gaps.authorize_standalone_egress(item.resolve(outputs), ec2)
            deployed.fixes.append(f"standalone egress {item.logical_id} authorized")
        elif item.resource_type == gaps.RESTRICT_DEFAULT_SG:
            deployed.fixes.append(gaps.restrict_default_security_group(item.resolve(outputs), ec2))
    message = f"{stack.name}: {len(resources)} resources created"
    if deployed.fixes:
        message += f"; corrected: {'; '.join(deployed.fixes)}"
    if not_emulated:
        message += "; not modelled by the emulator: " + ", ".join(
            f"{kind} x{count}" for kind, count in sorted(not_emulated.items())
        )
    progress(message)
    return deployed


def deploy_assembly(
    assembly: Assembly, target: AwsTarget, account_id: str, progress: Progress
) -> list[DeployedStack]:
    """Deploy every stack of the assembly, dependencies first."""
    if not target.is_local:
        raise DeployError("the local deploy only runs against an emulator on 127.0.0.1; use `cdk deploy`")
    deployed = []
    for stack in assembly.stacks:
        region = target.region if stack.region.startswith("unknown") else stack.region
        deployed.append(deploy_stack(stack, AwsTarget(region, target.endpoint_url), account_id, progress))
    return deployed


def provision_nodes(deployed: list[DeployedStack], target: AwsTarget) -> int:
    """Send each stripped `Custom::SwrNode` the Create request CloudFormation would send, to the deployed
    switcher's handler in-process (moto cannot run it). Returns how many nodes were provisioned."""
    count = 0
    with response_inbox() as inbox:
        for stack in deployed:
            for item, props in stack.custom_resources:
                function = DeployedFunction.describe(target, props["ServiceToken"])
                run_custom_resource_create(
                    function,
                    target,
                    inbox,
                    stack_id=stack.stack_id,
                    logical_id=item.logical_id,
                    resource_type=item.resource_type,
                    properties=props,
                )
                count += 1
    return count
