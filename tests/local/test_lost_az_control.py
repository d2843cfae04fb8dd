"""Gap 8 steered over HTTP (`gaps.lost_availability_zones_control`): what `swr drill --fault az` uses to lose
an AZ in the process that runs moto (the `swr local up` sandbox, `swr_local.moto_server`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from swr_cli.aws import AwsTarget
from swr_cli.drill import DrillError
from swr_local import gaps
from swr_local.drill import set_lost_zones
from swr_local.emulator import REGION, LocalServer, moto_server

LOST, OTHER = f"{REGION}a", f"{REGION}b"


@pytest.fixture
def controlled() -> Iterator[LocalServer]:
    with gaps.lost_availability_zones_control(), moto_server(region=REGION) as server:
        yield server


def _put(server: LocalServer, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(server.endpoint_url + gaps.LOST_AZ_CONTROL_PATH, data=body, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _instance(ec2: Any, az: str) -> str:
    return str(
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": az})[
            "Instances"
        ][0]["InstanceId"]
    )


def _state(ec2: Any, instance_id: str) -> str:
    return str(
        ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    )


def test_a_lost_az_keeps_stops_and_terminations_pending_until_it_recovers(controlled: LocalServer) -> None:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=controlled.endpoint_url)
    stopped, terminated, elsewhere = _instance(ec2, LOST), _instance(ec2, LOST), _instance(ec2, OTHER)
    target = AwsTarget(REGION, controlled.endpoint_url)

    assert set_lost_zones(target, [LOST])["lost"] == [LOST]
    ec2.stop_instances(InstanceIds=[stopped, elsewhere], Force=True)
    ec2.terminate_instances(InstanceIds=[terminated])
    # accepted, never completed in the lost AZ; the other AZ behaves as ever
    assert (_state(ec2, stopped), _state(ec2, terminated), _state(ec2, elsewhere)) == (
        "stopping",
        "shutting-down",
        "stopped",
    )

    recovered = set_lost_zones(target, [])
    assert recovered == {"lost": [], "completed": sorted([stopped, terminated])}
    assert (_state(ec2, stopped), _state(ec2, terminated)) == ("stopped", "terminated")


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"not json", "expected a JSON object"), (b'{"lost": "us-east-1a"}', "'lost': 'us-east-1a'")],
    ids=["not_json", "not_a_list"],
)
def test_a_bad_request_is_refused_naming_the_value(
    controlled: LocalServer, body: bytes, message: str
) -> None:
    status, answer = _put(controlled, body)
    assert status == 400 and message in answer["error"], answer
    assert _put(controlled, b'{"lost": []}') == (200, {"lost": [], "completed": []})


def test_an_emulator_without_the_control_is_named_in_the_drills_error() -> None:
    with (
        moto_server(region=REGION) as server,
        pytest.raises(DrillError, match=f"cannot lose an AZ .*{gaps.LOST_AZ_CONTROL_PATH}"),
    ):
        set_lost_zones(AwsTarget(REGION, server.endpoint_url), [LOST])


def test_moto_in_a_process_of_its_own_answers_the_control_too() -> None:
    """`swr_local.moto_server` (what `moto_server(own_process=True)` runs) applies the gap in its process."""
    with moto_server(own_process=True, region=REGION) as server:
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=server.endpoint_url)
        instance = _instance(ec2, LOST)
        set_lost_zones(AwsTarget(REGION, server.endpoint_url), [LOST])
        ec2.terminate_instances(InstanceIds=[instance])
        assert _state(ec2, instance) == "shutting-down"
        assert set_lost_zones(AwsTarget(REGION, server.endpoint_url), [])["completed"] == [instance]
        assert _state(ec2, instance) == "terminated"
