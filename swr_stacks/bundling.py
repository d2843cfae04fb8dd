"""Bundle the switcher Lambda code locally: no Docker, no network at synth.

The asset is the directory ``lambda_src/switcher`` plus the pure-Python runtime dependencies that the
Lambda Python runtime lacks, copied from the current virtualenv (boto3 and jmespath are in the runtime).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

#: Top-level modules/packages copied next to the switcher package.
RUNTIME_DEPENDENCIES = ("aws_lambda_powertools", "typing_extensions")
#: Only the required fallback of ``BundlingOptions``; local bundling always succeeds, so it is never pulled.
FALLBACK_IMAGE = "public.ecr.aws/sam/build-python3.12"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _module_source(name: str) -> Path:
    """The installed file (single module) or directory (package) of a top-level module."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"switcher bundling: runtime dependency {name!r} is not installed in this Python")
    origin = Path(spec.origin)
    return origin.parent if spec.submodule_search_locations else origin


@jsii.implements(ILocalBundling)
class SwitcherLocalBundling:
    """Copy the switcher package and its runtime dependencies into the asset output directory."""

    def __init__(self, *, source_dir: Path, package: str = "switcher") -> None:
        self._package_dir = source_dir / package
        self._package = package

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Called by the CDK at synth; returns True so the Docker fallback is never used.

        jsii passes the bundling options positionally; they are not needed to copy files.
        """
        out = Path(output_dir)
        shutil.copytree(self._package_dir, out / self._package, ignore=_IGNORE, dirs_exist_ok=True)
        for name in RUNTIME_DEPENDENCIES:
            source = _module_source(name)
            if source.is_dir():
                shutil.copytree(source, out / source.name, ignore=_IGNORE, dirs_exist_ok=True)
            else:
                shutil.copy2(source, out / source.name)
        return True


def switcher_bundling(source_dir: Path) -> BundlingOptions:
    """Bundling options for ``lambda_.Code.from_asset(source_dir, bundling=...)``."""
    return BundlingOptions(
        image=DockerImage.from_registry(FALLBACK_IMAGE),
        local=SwitcherLocalBundling(source_dir=source_dir),
    )
