"""`swr local up|down`: a sandbox left running in the background, against which every operator command
works as against an account; `down` stops it. One scenario (a deploy, a switch and an AZ loss on the
emulator)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

from swr_local import sandbox


def test_local_up_leaves_a_sandbox_every_command_works_against_and_down_stops_it(
    swr, assembly_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sandbox.DIR_VARIABLE, str(tmp_path))
    try:
        up = swr("local", "up", "--assembly", str(assembly_dir), "--output", "json")
        assert up.code == 0, up.out
        started = json.loads(up.out)
        assert started["started"] is True and started["nodes"] == [1, 2]
        # The printed environment is all the other commands need (the sandbox's fake credentials).
        for key, value in started["environment"].items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(key, raising=False)

        again = json.loads(swr("local", "up", "--output", "json").out)
        assert again["started"] is False and again["pid"] == started["pid"]

        status = json.loads(swr("status", "--output", "json").out)
        assert [(n["node_id"], n["state"]) for n in status["nodes"]] == [(1, "ACTIVE"), (2, "ACTIVE")]
        assert swr("hold", "1").code == 0
        assert json.loads(swr("status", "--output", "json").out)["nodes"][0]["state"] == "HOLD"
        assert swr("resume", "1").code == 0

        drill = swr("drill", "1", "--fault", "app", "--timeout", "120", "--output", "json")
        assert drill.code == 0, drill.out
        assert json.loads(drill.out)["ok"] is True
        (switch,) = json.loads(swr("history", "1", "--output", "json").out)["switches"]
        assert switch["outcome"] == "SUCCEEDED"

        # An AZ lost in the sandbox's own process (its moto answers the lost-AZ control of gap 8).
        lost = swr("drill", "2", "--fault", "az", "--timeout", "120", "--output", "json")
        assert lost.code == 0, lost.out
        checks = {c["name"]: c["ok"] for c in json.loads(lost.out)["checks"]}
        assert checks["fence: network-fenced (the source never stopped)"] and all(checks.values()), checks
    finally:
        down = swr("local", "down", "--output", "json")
    assert down.code == 0 and json.loads(down.out)["stopped"] is True
    with pytest.raises(ProcessLookupError):
        os.kill(started["pid"], 0)
    port = urlparse(started["endpoint_url"]).port
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the sandbox's port is still open"
    assert json.loads(swr("local", "down", "--output", "json").out)["stopped"] is False
