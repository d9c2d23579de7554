"""A Round's curves from raw samples: each objective sample with the step scraped with it."""
from __future__ import annotations

from kubetune.api.trial import CurvePoint
from kubetune.metrics.prometheus import diverged_step, join_curve
from kubetune.sdk import DIVERGED_NAME, METRIC_NAME, STEP_NAME


def series(name: str, pod: str, samples: list[tuple[float, float]], **labels: str) -> dict:
    return {"metric": {"__name__": name, "kubetune_trial": "t", "pod": pod, **labels},
            "values": [[t, str(v)] for t, v in samples]}


def test_each_objective_sample_takes_the_step_of_its_own_scrape():
    got = join_curve([
        series(STEP_NAME, "p1", [(10.0, 1), (40.0, 2), (70.0, 3)]),
        series(METRIC_NAME, "p1", [(10.0, 0.9), (40.0, 0.7), (70.0, 0.6)], metric="val_loss"),
    ])
    assert got == [CurvePoint(step=1, value=0.9), CurvePoint(step=2, value=0.7), CurvePoint(step=3, value=0.6)]


def test_a_step_scraped_twice_keeps_its_latest_value_and_a_sample_without_its_step_is_left_out():
    got = join_curve([
        series(STEP_NAME, "p1", [(10.0, 1), (25.0, 1), (40.0, 2)]),
        series(METRIC_NAME, "p1", [(10.0, 0.95), (25.0, 0.9), (40.0, 0.7), (55.0, 0.6)], metric="val_loss"),
    ])
    assert got == [CurvePoint(step=1, value=0.9), CurvePoint(step=2, value=0.7)]  # 55 s: its step not in the window


def test_a_restarted_trials_pods_are_joined_each_with_its_own_steps():
    """The old pod reached step 5 before it was evicted; the new one starts over at step 1.
    Scraped at the same instant, a join by time alone would pair one pod's step with the
    other's value."""
    got = join_curve([
        series(STEP_NAME, "old", [(100.0, 4), (130.0, 5)]),
        series(METRIC_NAME, "old", [(100.0, 0.5), (130.0, 0.45)], metric="val_loss"),
        series(STEP_NAME, "new", [(130.0, 1), (160.0, 2)]),
        series(METRIC_NAME, "new", [(130.0, 0.9), (160.0, 0.8)], metric="val_loss"),
    ])
    assert got == [CurvePoint(step=1, value=0.9), CurvePoint(step=2, value=0.8),
                   CurvePoint(step=4, value=0.5), CurvePoint(step=5, value=0.45)]


def test_a_step_both_pods_reported_takes_the_later_pods_value():
    got = join_curve([
        series(STEP_NAME, "old", [(100.0, 3)]),
        series(METRIC_NAME, "old", [(100.0, 0.5)], metric="val_loss"),
        series(STEP_NAME, "new", [(190.0, 3)]),
        series(METRIC_NAME, "new", [(190.0, 0.4)], metric="val_loss"),
    ])
    assert got == [CurvePoint(step=3, value=0.4)]


def test_non_finite_values_are_left_out_and_the_diverged_step_is_read():
    data = [
        series(STEP_NAME, "p1", [(10.0, 1), (40.0, 2)]),
        series(METRIC_NAME, "p1", [(10.0, 0.9), (40.0, float("nan"))], metric="val_loss"),
        series(DIVERGED_NAME, "p1", [(10.0, float("nan")), (40.0, 2)]),
    ]
    assert join_curve(data) == [CurvePoint(step=1, value=0.9)]
    assert diverged_step(data) == 2
