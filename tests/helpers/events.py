"""The one loader of the real-shaped events in tests/events/*.json."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
_SAMPLE_INSTANCE = "i-0123456789abcdef0"


@cache
def _raw(name: str) -> str:
    return (EVENTS_DIR / f"{name}.json").read_text()


def load_event(
    name: str, *, instance_id: str | None = None, vpc: str = "prod", node_id: int = 1
) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json, retargeted at an instance, VPC and node id.

    The samples name instance i-0123456789abcdef0 and node 1 of VPC `prod`; alarm names follow contract.py.
    """
    text = _raw(name)
    if instance_id is not None:
        text = text.replace(_SAMPLE_INSTANCE, instance_id)
    text = text.replace("swr-prod-1-", f"swr-{vpc}-{node_id}-")
    return copy.deepcopy(json.loads(text))
