"""Tests of the deployed-config reader, the bootstrap intervals, the peers, P3's bound and the reports."""

from __future__ import annotations

import statistics
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws

from bench.deployment_config import DeployedConfigError, TargetGroupHealth, from_templates
from bench.latency_model import LatencyModel
from bench.peers import MEASURED, PEERS, PeerInput, auto_scaling_group, ec2_automatic_recovery
from bench.rto_model import CASES, detect, unhealthy_time
from bench.stats import median_interval, ratio_interval

NLB_HEALTH = TargetGroupHealth(
    lb="nlb",
    logical_id="Node1TargetGroup",
    interval_seconds=10,
    healthy_threshold=2,
    unhealthy_threshold=2,
    deregistration_delay_seconds=30,
)


def _template(**overrides: Any) -> dict[str, Any]:
    nlb = {
        "HealthCheckIntervalSeconds": 30,
        "HealthyThresholdCount": 5,
        "UnhealthyThresholdCount": 3,
        "Protocol": "TCP",
        "TargetType": "ip",
        "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "45"}],
    }
    nlb.update(overrides)
    alb = {**nlb, "Protocol": "HTTP", "HealthCheckIntervalSeconds": 15}
    return {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"ReservedConcurrentExecutions": 7}},
            "Helper": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Tg1": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": nlb},
            "Tg2": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": alb},
        }
    }


def test_health_checks_and_concurrency_are_read_from_the_synthesized_template() -> None:
    config = from_templates([("swr.template.json", _template())])
    assert config.health("nlb") == TargetGroupHealth(
        lb="nlb",
        logical_id="Tg1",
        interval_seconds=30,
        healthy_threshold=5,
        unhealthy_threshold=3,
        deregistration_delay_seconds=45,
    )
    assert config.health("alb").interval_seconds == 15
    assert config.reserved_concurrency == 7


def test_a_template_without_an_explicit_health_check_is_refused_not_guessed() -> None:
    template = _template()
    del template["Resources"]["Tg1"]["Properties"]["HealthyThresholdCount"]
    with pytest.raises(DeployedConfigError, match="HealthyThresholdCount is not set"):
        from_templates([("swr.template.json", template)])


@mock_aws
def test_the_bench_deploys_target_groups_with_the_synthesized_health_check() -> None:
    from bench.harness import health_check_options
    from swr_local.world import build_world

    health = from_templates([("swr.template.json", _template())]).health("nlb")
    world = build_world(node_ids=[1], target_group_options=health_check_options(health))
    group = world.clients.elbv2.describe_target_groups(TargetGroupArns=[world.target_group_by_node[1]])
    deployed = group["TargetGroups"][0]
    assert (deployed["HealthCheckIntervalSeconds"], deployed["HealthyThresholdCount"]) == (30, 5)
    assert deployed["UnhealthyThresholdCount"] == 3


def test_the_bootstrap_interval_brackets_the_median_and_is_reproducible() -> None:
    values = [float(v) for v in (3, 9, 4, 12, 7, 5, 8, 30, 6, 10, 2)]
    estimate = median_interval(values)
    assert estimate.value == statistics.median(values)
    assert estimate.low <= estimate.value <= estimate.high
    assert estimate.low < estimate.high
    assert median_interval(values) == estimate
    assert median_interval([5.0] * 9).as_dict() == {"value": 5.0, "low": 5.0, "high": 5.0}


def test_a_paired_ratio_of_a_series_shifted_by_a_constant_factor_has_no_spread() -> None:
    base = [10.0, 20.0, 30.0, 40.0, 55.0]
    ratio = ratio_interval([2 * v for v in base], base)
    assert ratio.as_dict() == pytest.approx({"value": 2.0, "low": 2.0, "high": 2.0})


def _input(case: str, lb: str, seed: int, health: TargetGroupHealth = NLB_HEALTH) -> PeerInput:
    run = SimpleNamespace(rto={lb: 100.0}, readiness={lb: {"app_up_at": 60.0}})
    return PeerInput(
        case=case,
        lb=lb,
        seed=seed,
        model=LatencyModel.load(),
        health=health,
        runs={"swr": run, "vendor": run},
    )


def test_the_auto_scaling_group_does_not_see_a_dead_monitor_and_ec2_recovery_only_status_checks() -> None:
    assert auto_scaling_group(_input("monitor_death", "nlb", 1)).rto is None
    assert auto_scaling_group(_input("app_fault", "nlb", 1)).rto is not None
    for case in CASES:
        outcome = ec2_automatic_recovery(_input(case, "nlb", 1))
        assert (outcome.rto is not None) == (case == "status_check"), outcome.reason


def test_the_auto_scaling_group_pays_the_nlb_registration_delay_and_recovery_in_place_does_not() -> None:
    model = LatencyModel.load()
    delay = model["load_balancer.nlb.registration_delay"].low
    for seed in range(20):
        asg_nlb = auto_scaling_group(_input("app_fault", "nlb", seed)).rto
        asg_alb = auto_scaling_group(_input("app_fault", "alb", seed)).rto
        assert asg_nlb is not None and asg_alb is not None
        # The same failure and draws; an NLB adds at least its registration delay minus the ALB's.
        assert asg_nlb - asg_alb >= delay - model["load_balancer.alb.registration_delay"].high - 10
        # EC2 recovery keeps the IP registered: the load-balancer type does not change its RTO.
        assert ec2_automatic_recovery(_input("status_check", "nlb", seed)).rto == (
            ec2_automatic_recovery(_input("status_check", "alb", seed)).rto
        )


def test_peers_replay_the_switchers_failure_for_the_same_seed() -> None:
    from bench.latency_model import Sampler

    model = LatencyModel.load()
    for seed in (3, 4, 5):
        found = detect("app_fault", Sampler(model, seed))
        asg = auto_scaling_group(_input("app_fault", "nlb", seed)).rto
        assert asg is not None and found.source_stopping_at is not None
        # Marked no earlier than the stop, then launch + boot + registration delay follow.
        assert asg > found.source_stopping_at + model["load_balancer.nlb.registration_delay"].low


def test_the_preregistered_variant_is_its_own_measured_switcher_run() -> None:
    (peer,) = [peer for peer in PEERS if peer.key == "swr_preregistered"]
    assert peer.evidence == MEASURED
    inp = _input("app_fault", "nlb", 1)
    own = SimpleNamespace(rto={"nlb": 42.0})
    assert (
        peer.recover(PeerInput(**{**inp.__dict__, "runs": {**inp.runs, "swr_preregistered": own}})).rto
        == 42.0
    )


def test_a_failed_target_turns_unhealthy_after_threshold_failed_checks() -> None:
    # Checks at 3, 13, 23, ...; the fault at 5: first failure at 13, second (threshold 2) at 23.
    assert unhealthy_time(fault_at=5.0, phase=3.0, interval=10.0, threshold=2) == 23.0


def test_p3_compares_the_bound_and_the_measurement_with_the_same_statistic() -> None:
    from bench.p3_mass_stop import token_bucket_bounds

    # Bucket of 2, refill 1/s: launch k can be admitted at max(0, k - 2) s. Each switch needs 10 s
    # after its launch; switch 4 launched 1 s later than the bucket allowed.
    history = [
        {"launched_call_end": 0.5, "done": 10.5},
        {"launched_call_end": 0.6, "done": 10.6},
        {"launched_call_end": 2.0, "done": 12.0},
        {"launched_call_end": 3.0, "done": 13.0},
    ]
    bounds = token_bucket_bounds(history, head=0.4, drain_time=lambda k: max(0.0, k - 2.0))
    assert bounds["completion_max_s"] == 13.0
    assert bounds["bound_max_s"] == pytest.approx(12.0)  # drain(4) = 2 s + its own 10 s
    assert bounds["ratio_max"] == pytest.approx(13.0 / 12.0)
    assert bounds["completion_median_s"] == pytest.approx(11.3)
    assert bounds["bound_median_s"] == pytest.approx((10.4 + 11.0) / 2)


def test_the_committed_readme_and_results_are_generated_from_the_committed_results() -> None:
    from bench import report

    readme = report.README.read_text(encoding="utf-8")
    block = readme.split(report.README_BEGIN, 1)[1].split(report.README_END, 1)[0]
    assert block.strip().splitlines() == report.readme_summary()
    assert report.RESULTS_MD.read_text(encoding="utf-8") == report.render()


def test_every_order_of_one_seed_gets_the_same_registration_delay_and_boot() -> None:
    from bench.rto_model import readiness_sampler, replacement_ready

    model = LatencyModel.load()
    early, late = (
        replacement_ready(
            launched_at=launched,
            running_at=launched + 10.0,
            registered_at=launched + 1.0,
            lb="nlb",
            health=NLB_HEALTH,
            sampler=readiness_sampler(model, 42),
        )
        for launched in (20.0, 45.0)
    )
    # The vendor order registers later than swr: the same delay and boot, shifted, not redrawn.
    assert late.health_checks_start_at - early.health_checks_start_at == pytest.approx(25.0)
    assert late.app_up_at - early.app_up_at == pytest.approx(25.0)


def test_the_results_and_the_readme_carry_the_time_to_convergence_after_a_lost_event() -> None:
    from bench import report
    from bench.results_io import read_result

    p5 = read_result("p5_convergence")
    assert p5 is not None, "bench/results/p5_convergence.json: run `python -m bench.p5_convergence`"
    assert set(p5["cases"]) == {"retries_exhausted", "killed_once", "killed_every_attempt"}
    assert (p5["reconcile_interval_s"], p5["lease_s"]) == (60, 930)  # the Settings defaults
    assert "## P5 — time to convergence after a lost event (modeled seconds)" in report.render()
    assert any(
        line.startswith("| P5 time to convergence after a lost event") for line in report.readme_summary()
    )
