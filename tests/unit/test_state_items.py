"""The table's item format is a contract with every deployed table: items written by an earlier swr must
still load, and a record loaded from one is written back unchanged (no AWS involved)."""

from __future__ import annotations

import json
from dataclasses import asdict

from switcher import store, transitions
from switcher.models import Candidate, NodeState, Outcome, RecentSwitch, SwitchRecord

TG = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/swr-prod-1/0123456789abcdef"

#: A node item exactly as swr wrote it before the state layer was typed (mid-switch, with a pending config
#: and a flap history whose second entry has no AZ).
NODE_ITEM = {
    "pk": {"S": "NODE#prod"},
    "sk": {"S": "NODE#1"},
    "kind": {"S": "node"},
    "vpc_name": {"S": "prod"},
    "node_id": {"N": "1"},
    "state": {"S": "SWITCHING"},
    "version": {"N": "4"},
    "lease_until": {"N": "1767226532"},
    "recent_switches": {"S": '[{"at": 1767220000, "az": "us-east-1b"}, {"at": 1767221000, "az": null}]'},
    "updated_at": {"S": "2026-01-01T00:00:03.000+00:00"},
    "config": {
        "S": '{"launch_template_id": "lt-0abc", "launch_template_version": "7", '
        f'"target_group_arn": "{TG}", "monitor_process": "swr-monitor"}}'
    },
    "pending_config": {
        "S": '{"launch_template_id": "lt-0abc", "launch_template_version": "8", '
        f'"target_group_arn": "{TG}", "monitor_process": "rms"}}'
    },
    "current_instance_id": {"S": "i-0123456789abcdef0"},
    "current_az": {"S": "us-east-1a"},
    "switch_id": {"S": "swr-1a2b"},
    "switch_sk": {"S": "2026-01-01T00:00:02.000+00:00#swr-1a2b"},
    "lease_owner": {"S": "req-1/n1"},
}

#: A finished switch item as swr wrote it before the state layer was typed: snapshot and candidates are
#: JSON objects inside the `body` string, in this key order.
SWITCH_BODY = (
    '{"switch_id": "swr-1a2b", "vpc_name": "prod", "node_id": 1, '
    '"sk": "2026-01-01T00:00:02.000+00:00#swr-1a2b", '
    '"reason": "instance stopped", "order": "swr", "source_instance_id": "i-0123456789abcdef0", '
    '"source_az": "us-east-1a", "outcome": "SUCCEEDED", "timeline": {"detected": '
    '"2026-01-01T00:00:01.000+00:00", "claimed": "2026-01-01T00:00:02.000+00:00"}, "snapshot": '
    '{"instance_id": "i-0123456789abcdef0", "image_id": "ami-0abc", "instance_type": "m6i.large", '
    '"key_name": "ops", "security_group_ids": ["sg-app"], "tags": {"Name": "app"}, '
    '"iam_instance_profile_arn": "arn:aws:iam::111122223333:instance-profile/app", "subnet_id": "subnet-a", '
    '"az": "us-east-1a"}, "launch_template_id": "lt-0abc", "launch_template_version": "7", "candidates": '
    '[{"az": "us-east-1c", "subnet_id": "subnet-c"}, {"az": "us-east-1b", "subnet_id": "subnet-b"}], '
    '"replacement_instance_id": "i-0fedcba9876543210", "replacement_az": "us-east-1c", '
    '"replacement_subnet_id": "subnet-c", "replacement_private_ip": "10.0.2.10", "az_errors": '
    '{"us-east-1b": "InsufficientInstanceCapacity"}, "error": null, "attempts": 2, '
    '"started_at": 1767225601.5, "expires_at": 1798761600}'
)
SWITCH_ITEM = {
    "pk": {"S": "SWITCH#prod#1"},
    "sk": {"S": "2026-01-01T00:00:02.000+00:00#swr-1a2b"},
    "kind": {"S": "switch"},
    "switch_id": {"S": "swr-1a2b"},
    "outcome": {"S": "SUCCEEDED"},
    "body": {"S": SWITCH_BODY},
    "expires_at": {"N": "1798761600"},
}

#: A switch item written right after the claim: no snapshot, no candidates yet.
CLAIMED_BODY = (
    '{"switch_id": "swr-9", "vpc_name": "prod", "node_id": 2, "sk": "2026-01-01T00:00:05.000+00:00#swr-9", '
    '"reason": "alarm swr-prod-2-monitor", "order": "vendor", "source_instance_id": "i-0aaaaaaaaaaaaaaaa", '
    '"source_az": null, "outcome": "IN_PROGRESS", "timeline": {"detected": "2026-01-01T00:00:04.000+00:00", '
    '"claimed": "2026-01-01T00:00:05.000+00:00"}, "snapshot": null, "launch_template_id": null, '
    '"launch_template_version": null, "candidates": [], "replacement_instance_id": null, "replacement_az": '
    'null, "replacement_subnet_id": null, "replacement_private_ip": null, "az_errors": {}, "error": null, '
    '"attempts": 1, "started_at": 1767225604.0, "expires_at": 1798761600}'
)
CLAIMED_ITEM = {
    "pk": {"S": "SWITCH#prod#2"},
    "sk": {"S": "2026-01-01T00:00:05.000+00:00#swr-9"},
    "kind": {"S": "switch"},
    "switch_id": {"S": "swr-9"},
    "outcome": {"S": "IN_PROGRESS"},
    "body": {"S": CLAIMED_BODY},
    "expires_at": {"N": "1798761600"},
}


def test_a_node_item_of_a_deployed_table_loads_typed_and_is_written_back_unchanged() -> None:
    node = store.node_from_item(NODE_ITEM)
    assert node.state is NodeState.SWITCHING
    assert node.recent_switches == (RecentSwitch(1767220000, "us-east-1b"), RecentSwitch(1767221000, None))
    assert node.config is not None and node.config.launch_template_version == "7"
    assert node.pending_config is not None and node.pending_config.monitor_process == "rms"
    assert (node.lease_owner, node.lease_until, node.hold_reason) == ("req-1/n1", 1767226532, None)
    assert store.node_to_item(node) == NODE_ITEM


def test_switch_items_of_a_deployed_table_load_typed_and_are_written_back_unchanged() -> None:
    for item, outcome in ((SWITCH_ITEM, Outcome.SUCCEEDED), (CLAIMED_ITEM, Outcome.IN_PROGRESS)):
        switch = store.switch_from_item(item)
        assert switch.outcome is outcome
        written = store.switch_to_item(switch)
        assert {k: v for k, v in written.items() if k != "body"} == {
            k: v for k, v in item.items() if k != "body"
        }
        stored, rewritten = json.loads(item["body"]["S"]), json.loads(written["body"]["S"])
        # Every stored field comes back as it was; fields added to the record since are written with
        # their defaults, which is how a record without them loads.
        assert {k: rewritten[k] for k in stored} == stored
        defaults = asdict(SwitchRecord("s", "v", 1, "sk", "reason", "swr", "i-0"))
        assert {k: rewritten[k] for k in rewritten.keys() - stored.keys()} == {
            k: defaults[k] for k in rewritten.keys() - stored.keys()
        }
    finished = store.switch_from_item(SWITCH_ITEM)
    assert finished.snapshot is not None and finished.snapshot.security_group_ids == ("sg-app",)
    assert (finished.snapshot.key_name, finished.snapshot.tags) == ("ops", {"Name": "app"})
    assert finished.candidates == [Candidate("us-east-1c", "subnet-c"), Candidate("us-east-1b", "subnet-b")]
    claimed = store.switch_from_item(CLAIMED_ITEM)
    assert claimed.snapshot is None and claimed.candidates == []


def test_a_loaded_flap_history_drives_the_flap_guard_and_the_az_preference() -> None:
    node = store.node_from_item(NODE_ITEM)
    now = 1767221000 + 60
    # Both switches count for the flap guard; only the one with a known AZ counts against that AZ.
    assert transitions.switches_in_window(node, 3600, now) == 2
    assert transitions.failures_by_az(node, 3600, now) == {"us-east-1b": 1}
    # Out of the window (entries are kept only while `at` > now - window) they count no more.
    assert transitions.switches_in_window(node, 3600, 1767220000 + 3600) == 1
