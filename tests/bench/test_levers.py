"""The lever table's machinery (bench/levers.py) and the detection model it relies on: pure, no moto."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import levers
from bench.deployment_config import DeployedConfig, TargetGroupHealth, monitor_check
from bench.latency_model import LatencyModel, Sampler
from bench.rto_model import detect

MODEL = LatencyModel.load()
SEED = 20_000
#: A measured run's phase timings (modeled s): the stop request returned at 12.0, the fence was
#: confirmed at 16.0 (the waiter's poll), RunInstances went out at 16.2 and returned at 17.7.
TIMINGS = levers.Timings(
    switcher_starts_at=10.0,
    stop_request_end=12.0,
    fence_confirmed_at=16.0,
    launch_call_start=16.2,
    launched_at=17.7,
    running_at=27.0,
)
REFERENCE_MONITOR = levers.Monitor(interval_seconds=10.0, threshold=3)


def _recovery(lever_set: levers.LeverSet, timings: levers.Timings = TIMINGS) -> levers.Outcome:
    return levers.recovery(timings, lever_set, model=MODEL, seed=SEED, reference_monitor=REFERENCE_MONITOR)


def test_the_monitor_confirms_a_failure_after_threshold_failed_checks() -> None:
    once = detect("app_fault", Sampler(MODEL, SEED), levers.Monitor(10.0, 1))
    thrice = detect("app_fault", Sampler(MODEL, SEED), levers.Monitor(10.0, 3))
    assert once.confirmed_at is not None and thrice.confirmed_at is not None
    assert thrice.confirmed_at - once.confirmed_at == pytest.approx(20.0)  # two more checks, 10 s apart
    assert thrice.switcher_starts_at - once.switcher_starts_at == pytest.approx(20.0)


def test_the_bench_detects_with_the_monitor_configuration_a_node_ships_with() -> None:
    from swr_agent import swr_monitor

    shipped = monitor_check()
    assert (shipped.interval_seconds, shipped.threshold) == (
        swr_monitor.CHECK_DEFAULTS["interval"],
        swr_monitor.CHECK_DEFAULTS["threshold"],
    )
    default = detect("app_fault", Sampler(MODEL, SEED))
    explicit = detect("app_fault", Sampler(MODEL, SEED), shipped)
    assert default == explicit


def test_a_faster_monitor_shifts_the_whole_recovery_by_the_detection_gain() -> None:
    slow = _recovery(levers.LEVERS_OFF)
    fast = _recovery(replace(levers.LEVERS_OFF, monitor=levers.Monitor(5.0, 3)))
    gain = slow.launched_at - fast.launched_at
    expected = (
        detect("app_fault", Sampler(MODEL, SEED), REFERENCE_MONITOR).detected_at
        - detect("app_fault", Sampler(MODEL, SEED), levers.Monitor(5.0, 3)).detected_at
    )
    assert gain == pytest.approx(expected) and gain > 0
    assert slow.app_up_at - fast.app_up_at == pytest.approx(gain)  # same boot and app start draws


def test_a_gated_start_launches_right_after_the_stop_request_and_the_gate_does_not_delay_a_boot() -> None:
    after_fence = _recovery(levers.LEVERS_OFF)
    gated = _recovery(replace(levers.LEVERS_OFF, gated_start=True))
    waited = TIMINGS.fence_confirmed_at - TIMINGS.stop_request_end
    assert after_fence.launched_at - gated.launched_at == pytest.approx(waited)
    assert gated.gate_wait == 0.0  # the fence is confirmed long before a boot ends
    assert gated.rto <= after_fence.rto


def test_a_gated_replacement_starts_its_app_only_after_the_fence_is_confirmed() -> None:
    late_fence = replace(TIMINGS, fence_confirmed_at=TIMINGS.launch_call_start + 120.0)
    gated = _recovery(replace(levers.LEVERS_OFF, gated_start=True), late_fence)
    assert gated.gate_wait > 0
    assert gated.app_up_at > late_fence.fence_confirmed_at


def test_a_shorter_health_check_interval_never_makes_the_target_healthy_later() -> None:
    for seed in range(SEED, SEED + 20):
        ten, five = (
            levers.recovery(
                TIMINGS,
                replace(levers.LEVERS_OFF, health=levers.Health(interval, 2)),
                model=MODEL,
                seed=seed,
                reference_monitor=REFERENCE_MONITOR,
            )
            for interval in (10, 5)
        )
        assert ten.app_up_at == five.app_up_at
        assert five.rto <= ten.rto


def test_the_direct_signal_starts_the_switcher_before_the_ec2_event_would() -> None:
    ec2_event = _recovery(levers.LEVERS_OFF)
    direct = _recovery(replace(levers.LEVERS_OFF, direct_signal=True))
    assert 0 < ec2_event.launched_at - direct.launched_at < 2.0  # the FaultScript's stop call, not more


def _deployed(interval: int) -> DeployedConfig:
    nlb = TargetGroupHealth("nlb", "Tg", interval, 3, 2, 30)
    return DeployedConfig(target_groups={"nlb": nlb}, reserved_concurrency=10, origin="test")


def test_the_adopted_row_is_the_product_as_shipped() -> None:
    from switcher.settings import Settings

    row = next(r for r in levers.rows(_deployed(7), monitor_check()) if r.kind == "adopted")
    assert row.levers.health == levers.Health(7, 3)  # from the template, not a copy
    default = Settings(table_name="t", topic_arn="t", blackhole_sg_id="t", vpc_name="t", vpc_id="t")
    assert row.levers.waiter_delay_seconds == default.waiter_delay_seconds
    assert row.levers.monitor == levers.Monitor(monitor_check().interval_seconds, monitor_check().threshold)
    assert not row.levers.gated_start and not row.levers.direct_signal


def _section_rows() -> list[dict[str, object]]:
    estimate = {"value": 50.0, "low": 48.0, "high": 52.0}
    return [
        {
            "key": row.key,
            "title": row.title,
            "kind": row.kind,
            "levers": levers._levers_dict(row.levers),
            "runs": 5,
            "rto_median": estimate,
            "gain_median_s": estimate,
            "gain_mean_s": 1.0,
            "app_up_gain_median_s": estimate,
            "gate_wait_median_s": 0.0,
        }
        for row in levers.rows(_deployed(5), monitor_check())
    ]


def test_the_lever_section_lists_every_row_and_names_the_dominant_piece() -> None:
    from bench.report import levers_section

    rows = _section_rows()
    pieces = {"boot": 30.0, "detection": 12.0}
    text = "\n".join(
        levers_section({"rows": rows, "target_rto_s": 45.0, "adopted_pieces_median_s": pieces}, _model_rows())
    )
    assert all(row["title"] in text for row in rows)
    assert "Dominant piece: **boot**" in text and "not met" in text


def _model_rows() -> list[dict[str, object]]:
    """The committed latency model as P1's results carry it (figure, low, high)."""
    from bench.latency_model import LatencyModel

    model = LatencyModel.load()
    return [{"figure": path, "low": f.low, "high": f.high} for path, f in model.figures.items()]


def test_the_floor_of_a_launch_based_recovery_is_the_model_s_own_figures() -> None:
    """The floor adds the midpoints of AWS's and the application's figures (each a symmetric uniform draw)
    and the fastest health check the ELB API accepts (5 s x 2); the report says what is left of 45 s."""
    from bench.latency_model import LatencyModel
    from bench.report import levers_section

    model = LatencyModel.load()
    floor = levers.fresh_launch_floor(lambda path: (model[path].low, model[path].high))
    boot = model["replacement_ready.launch_to_ssh_answering"]
    assert floor["launch -> SSH answering (boot)"] == (boot.low + boot.high) / 2
    assert floor["health checks at the fastest allowed (5 s x 2)"] == 7.5  # half an interval + one interval
    total = sum(floor.values())
    assert 40 < total < 45  # the committed model: 42.1 s, of which the boot is 26 s
    text = "\n".join(
        levers_section(
            {"rows": _section_rows(), "target_rto_s": 45.0, "adopted_pieces_median_s": {"x": 1.0}},
            _model_rows(),
        )
    )
    assert f"| **floor** | **{total:.1f}** |" in text
    assert "cannot reach the target" in text
