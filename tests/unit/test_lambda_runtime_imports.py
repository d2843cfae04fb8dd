"""The Lambda asset runs without the type stubs: the boto3-stubs are a dev extra, never bundled, so the
switcher may name their types for the type checker only (under TYPE_CHECKING)."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.conftest import REPO_ROOT

#: Imports every switcher module and builds its clients in an interpreter where no stub package can be
#: imported, as in the Lambda runtime; prints the stub modules that got loaded all the same.
_IMPORT_WITHOUT_STUBS = """
import importlib, importlib.abc, pkgutil, sys

STUBS = ("mypy_boto3", "boto3_stubs", "botocore_stubs")


class NoStubs(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith(STUBS):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, NoStubs())
sys.path.insert(0, "lambda_src")
import switcher

for module in pkgutil.iter_modules(switcher.__path__):
    importlib.import_module(f"switcher.{module.name}")
from switcher.clients import make_clients

make_clients(region_name="us-east-1")
print("STUBS-LOADED:", sorted(m for m in sys.modules if m.startswith(STUBS)))
"""


def test_every_switcher_module_imports_and_builds_its_clients_without_the_stubs() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITHOUT_STUBS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("STUBS-LOADED: []")
