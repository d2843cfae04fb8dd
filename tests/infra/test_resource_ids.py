"""Deployed stacks keep their resources: every logical id and type stays what the snapshot recorded.

CloudFormation replaces a resource whose logical id changes (a new load balancer DNS name, new
security groups, a new empty data EFS while the old one is retained). A refactoring of the constructs
(construct ids, nesting) must therefore leave the logical ids alone. The snapshot
(``data/resource_ids.json``) was taken from the code before the node constructs were split; after an
intended change of the resources (one added or removed, not renamed) regenerate it with
``.venv/bin/python -m tests.infra.test_resource_ids`` and review its diff.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).with_name("data") / "resource_ids.json"


def resource_ids(raw: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Stack name → {logical id: resource type} of a synthesized app."""
    return {
        stack: {logical_id: r["Type"] for logical_id, r in sorted(template["Resources"].items())}
        for stack, template in sorted(raw.items())
    }


@pytest.mark.parametrize("app_fixture", ["default_app", "multi_app"])
def test_logical_ids_and_types_are_those_of_the_snapshot(request, app_fixture):
    app = request.getfixturevalue(app_fixture)
    expected = json.loads(SNAPSHOT.read_text())[app_fixture]
    actual = resource_ids(app.raw)
    assert sorted(actual) == sorted(expected), "stacks differ"
    for stack, resources in expected.items():
        missing = sorted(set(resources) - set(actual[stack]))
        added = sorted(set(actual[stack]) - set(resources))
        retyped = sorted(k for k in set(resources) & set(actual[stack]) if resources[k] != actual[stack][k])
        assert (missing, added, retyped) == ([], [], []), stack


def _write_snapshot() -> None:
    from swr_stacks.config import load_config_file, parse_config
    from tests.infra.conftest import REPO, TEST_CONFIG, _synth

    context = json.loads((REPO / "cdk.json").read_text())["context"]
    configs = {
        "default_app": parse_config(context["swr:defaults"]),
        "multi_app": load_config_file(TEST_CONFIG),
    }
    snapshot = {
        name: resource_ids(_synth(config, Path(tempfile.mkdtemp(prefix="swr-snapshot-"))).raw)
        for name, config in configs.items()
    }
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)


if __name__ == "__main__":
    _write_snapshot()
