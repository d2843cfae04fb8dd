"""Tests of the benchmark machinery itself: token bucket, latency-model loader, modeled instance states."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from moto import mock_aws

from bench.aws_model import ModeledAws
from bench.latency_model import DEFAULT_MODEL_PATH, LatencyModel, LatencyModelError, Sampler
from bench.model_clock import VirtualClock
from bench.token_bucket import TokenBucket


class FakeTime:
    """A settable clock for the token bucket."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_admits_the_burst_then_refuses_until_refilled() -> None:
    clock = FakeTime()
    bucket = TokenBucket(capacity=3, refill_per_second=2, now=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.4  # 0.8 of a token: still not enough
    assert bucket.try_take() is False
    clock.now = 0.5  # one token refilled
    assert bucket.try_take() is True
    assert bucket.try_take() is False


def test_token_bucket_never_holds_more_than_its_capacity() -> None:
    clock = FakeTime()
    bucket = TokenBucket(capacity=2, refill_per_second=10, now=clock)
    clock.now = 100.0
    assert bucket.tokens == 2.0


def test_token_bucket_drain_time_counts_only_calls_beyond_the_burst() -> None:
    bucket = TokenBucket(capacity=10, refill_per_second=0.5, now=FakeTime())
    assert bucket.drain_time(10) == 0.0
    assert bucket.drain_time(30) == 40.0


def _model_data() -> dict:
    return json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))


def test_the_shipped_model_loads_and_every_figure_has_a_source() -> None:
    model = LatencyModel.load()
    assert model.time_scale > 0
    assert all(figure.source for figure in model.figures.values())
    assert model.api_figure("ec2", "RunInstances").path == "api_round_trip.ec2.RunInstances"
    assert model.api_figure("dynamodb", "PutItem").path == "api_round_trip.dynamodb"
    assert model.api_figure("elbv2", "RegisterTargets").path == "api_round_trip.default"


def test_loader_rejects_a_figure_without_a_source() -> None:
    data = _model_data()
    del data["instance_transition"]["pending_to_running"]["source"]
    with pytest.raises(LatencyModelError, match=r"pending_to_running.*no source"):
        LatencyModel.from_dict(data)


def test_loader_rejects_a_blank_source_and_an_inverted_range() -> None:
    data = _model_data()
    blank = copy.deepcopy(data)
    blank["delivery"]["eventbridge_delivery"]["source"] = "  "
    with pytest.raises(LatencyModelError, match="no source"):
        LatencyModel.from_dict(blank)
    inverted = copy.deepcopy(data)
    inverted["delivery"]["eventbridge_delivery"].update({"min": 2.0, "max": 1.0})
    with pytest.raises(LatencyModelError, match="invalid range"):
        LatencyModel.from_dict(inverted)


def test_assumptions_are_told_apart_from_published_figures() -> None:
    model = LatencyModel.load()
    assert model["delivery.lambda_cold_start"].is_assumption
    assert not model["instance_transition.pending_to_running"].is_assumption


@mock_aws
def test_a_launched_instance_reads_pending_until_its_modeled_boot_time_has_passed() -> None:
    model = LatencyModel.load()
    clock = VirtualClock(scale=1e-6)
    modeled = ModeledAws(Sampler(model, seed=7), clock)
    ec2 = modeled.attach(boto3.client("ec2", region_name="us-east-1"))
    image_id = ec2.describe_images(Owners=["amazon"], MaxResults=1)["Images"][0]["ImageId"]
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    def state() -> str:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    assert state() == "pending"
    clock.sleep(model["instance_transition.pending_to_running"].high)
    assert state() == "running"
    ec2.stop_instances(InstanceIds=[instance_id], Force=True)
    assert state() == "stopping"
    clock.sleep(model["instance_transition.forced_stop"].high)
    assert state() == "stopped"
    assert {call.operation for call in modeled.calls} >= {
        "RunInstances",
        "StopInstances",
        "DescribeInstances",
    }
