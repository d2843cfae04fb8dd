"""Pure parts of the CLI: what counts as local, timelines."""

from __future__ import annotations

import pytest
from switcher import state

from swr_cli.aws import is_local_endpoint
from swr_cli.render import rto_seconds, timeline_rows


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:4566", True),
        ("https://ec2.eu-west-1.amazonaws.com", False),
        ("http://127.0.0.2.example.com", False),
        (None, False),
    ],
)
def test_only_this_machine_counts_as_local(url: str | None, local: bool) -> None:
    assert is_local_endpoint(url) is local


def test_timeline_follows_the_plan_and_rto_runs_from_detection() -> None:
    switch = state.SwitchRecord(
        switch_id="swr-1",
        vpc_name="demo",
        node_id=1,
        sk="x",
        reason="r",
        order="swr",
        source_instance_id="i-1",
        timeline={
            "done": "2026-11-25T10:00:09.500+00:00",
            "detected": "2026-11-25T10:00:00.000+00:00",
            "fenced": "2026-11-25T10:00:02.000+00:00",
            "claimed": "2026-11-25T10:00:01.000+00:00",
        },
    )
    assert [row[0] for row in timeline_rows(switch)] == ["detected", "claimed", "fenced", "done"]
    assert rto_seconds(switch) == pytest.approx(9.5)
