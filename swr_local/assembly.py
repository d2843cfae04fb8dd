"""Synthesize the CDK app and read the cloud assembly (manifest, templates, asset manifests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swr_cli import PROJECT_ROOT
from swr_local.errors import LocalRunError


class SynthError(LocalRunError):
    """The CDK app failed to synthesize."""


@dataclass(frozen=True)
class StackArtifact:
    """One CloudFormation stack of the assembly."""

    name: str
    environment: str
    template: dict[str, Any]
    asset_manifest: dict[str, Any] | None
    asset_dir: Path
    bootstrap_parameter: str | None
    bootstrap_version: int | None

    @property
    def region(self) -> str:
        return self.environment.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Assembly:
    """The stacks of a cloud assembly, in deployment order (dependencies first)."""

    directory: Path
    stacks: tuple[StackArtifact, ...]


def app_directory() -> Path:
    """Where swr's CDK app is (app.py beside cdk.json): the checkout this package runs from (an editable
    install), else the current directory. A `pip install`ed package holds neither file."""
    for candidate in (PROJECT_ROOT, Path.cwd()):
        if (candidate / "app.py").is_file() and (candidate / "cdk.json").is_file():
            return candidate
    raise SynthError(
        "the local drill synthesizes swr's CDK app (app.py, cdk.json), which an installed package does not "
        f"hold: run it in a checkout of the swr repository (not found in {Path.cwd()})"
    )


def synthesize(outdir: Path, *, app_dir: Path | None = None, timeout: float = 120.0) -> Path:
    """Run `python app.py` with CDK_OUTDIR=outdir (what `cdk synth` does, minus the CLI's start-up);
    app_dir: default `app_directory()`."""
    app_dir = app_dir or app_directory()
    app = app_dir / "app.py"
    if not app.is_file():
        raise SynthError(f"no CDK app at {app}")
    env = dict(os.environ, CDK_OUTDIR=str(outdir), JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    node_bin = app_dir / "node_modules" / ".bin"
    if node_bin.is_dir():
        env["PATH"] = f"{node_bin}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, str(app)],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0 or not (outdir / "manifest.json").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise SynthError(f"synthesis of {app} failed (exit {proc.returncode}):\n{tail}")
    return outdir


def read_assembly(directory: Path) -> Assembly:
    """Read manifest.json and order the stacks so that each comes after the stacks it depends on."""
    manifest = json.loads((directory / "manifest.json").read_text())
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    stack_names = [name for name, art in artifacts.items() if art.get("type") == "aws:cloudformation:stack"]
    if not stack_names:
        raise SynthError(f"the assembly in {directory} has no CloudFormation stack")

    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in path:
            raise SynthError(f"stack dependency cycle: {' -> '.join((*path, name))}")
        for dep in artifacts[name].get("dependencies", []):
            if dep in stack_names:
                visit(dep, (*path, name))
        ordered.append(name)

    for name in stack_names:
        visit(name, ())

    stacks = []
    for name in ordered:
        art = artifacts[name]
        props = art.get("properties", {})
        template = json.loads((directory / props["templateFile"]).read_text())
        asset_manifest = None
        for dep in art.get("dependencies", []):
            dep_art = artifacts.get(dep, {})
            if dep_art.get("type") == "cdk:asset-manifest":
                asset_manifest = json.loads((directory / dep_art["properties"]["file"]).read_text())
        stacks.append(
            StackArtifact(
                name=name,
                environment=art.get("environment", "aws://unknown-account/unknown-region"),
                template=template,
                asset_manifest=asset_manifest,
                asset_dir=directory,
                bootstrap_parameter=props.get("bootstrapStackVersionSsmParameter"),
                bootstrap_version=props.get("requiresBootstrapStackVersion"),
            )
        )
    return Assembly(directory=directory, stacks=tuple(stacks))
