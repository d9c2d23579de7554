import math
import time

import numpy as np
import optuna
import pytest

from kubetune.stopping import CurveFitPruner, CurveFitRule, MedianRule, MedianStoppingPruner, predict_final


def curve(floor, scale=1.0, steps=30, power=0.7, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return [(s, floor + scale * s ** -power + rng.normal(0, noise)) for s in range(1, steps + 1)]


def test_median_stops_a_trial_worse_than_the_median_of_running_averages():
    others = [curve(0.1), curve(0.15), curve(0.2)]
    bad = curve(1.0)[:6]
    d = MedianRule(start_step=5, min_trials=3).decide(bad, others, "minimize")
    assert d is not None and d.rule == "median" and d.step == 6
    assert d.evidence["value"] > d.evidence["median"] and d.evidence["peers"] == 3


def test_median_keeps_good_trials_and_waits_for_enough_peers():
    others = [curve(0.1), curve(0.15), curve(0.2)]
    assert MedianRule(5, 3).decide(curve(0.05)[:6], others, "minimize") is None
    assert MedianRule(5, 4).decide(curve(1.0)[:6], others, "minimize") is None  # only 3 peers
    assert MedianRule(8, 3).decide(curve(1.0)[:6], others, "minimize") is None  # before start step
    # peers that have not reached the step do not count
    assert MedianRule(5, 3).decide(curve(1.0)[:6], [c[:4] for c in others], "minimize") is None


def test_median_works_for_maximized_objectives():
    acc = lambda c: [(s, 1 - v) for s, v in c]  # noqa: E731
    others = [acc(curve(0.1)), acc(curve(0.15)), acc(curve(0.2))]
    d = MedianRule(5, 3).decide(acc(curve(0.9))[:6], others, "maximize")
    assert d is not None and d.evidence["value"] < d.evidence["median"]


def test_curve_fit_predicts_a_clean_power_law_well_and_fast():
    c = curve(0.2, steps=100)
    started = time.perf_counter()
    p = predict_final(c[:30], 100)
    elapsed = time.perf_counter() - started
    assert p is not None and abs(p.mean - c[-1][1]) < 0.05
    assert elapsed < 1.0  # a decision must be cheap; the benchmark measures it properly


def test_curve_fit_stops_a_clearly_hopeless_trial_and_keeps_a_late_bloomer():
    done = [curve(0.1 + 0.02 * i, seed=i) for i in range(5)]
    rule = CurveFitRule(final_step=30, start_step=5, min_trials=3)
    hopeless = curve(0.8, noise=0.005)[:10]
    d = rule.decide(hopeless, done, "minimize", finished=done)
    assert d is not None and d.evidence["probability"] < 0.05 and d.evidence["predicted"] > 0.5
    # a late bloomer: starts worse but falls steeply, headed below the best
    bloomer = [(s, 0.02 + 3.0 * s ** -1.2) for s in range(1, 11)]
    assert rule.decide(bloomer, done, "minimize", finished=done) is None


@pytest.mark.parametrize("shape", ["plateau", "noisy", "diverging", "flat"])
def test_curve_fit_is_robust_to_awkward_curves(shape):
    rng = np.random.default_rng(1)
    steps = range(1, 16)
    values = {
        "plateau": [0.5 if s > 3 else 1.0 / s for s in steps],
        "noisy": [0.3 + 0.2 * rng.standard_normal() for _ in steps],
        "diverging": [0.3 * 1.3 ** s for s in steps],
        "flat": [0.42 for _ in steps],
    }[shape]
    c = list(zip(steps, values))
    p = predict_final(c, 30)
    assert p is None or (math.isfinite(p.mean) and p.sd > 0)
    CurveFitRule(final_step=30).decide(c, [curve(0.1)] * 3, "minimize", finished=[curve(0.1)] * 3)


def test_median_pruner_plugs_into_optuna():
    study = optuna.create_study(pruner=MedianStoppingPruner(start_step=3, min_trials=2))
    pruned = 0
    for floor in [0.1, 0.15, 0.2, 2.0, 3.0]:
        t = study.ask()
        for s, v in curve(floor, steps=10):
            t.report(v, s)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
                break
        else:
            study.tell(t, v)
    assert pruned == 2


def test_curve_fit_pruner_plugs_into_optuna():
    study = optuna.create_study(pruner=CurveFitPruner(final_step=30, start_step=5, min_trials=3))
    outcomes = []
    for i, floor in enumerate([0.1, 0.12, 0.14, 0.05, 0.9]):  # the 4th will be the best: never stopped
        t = study.ask()
        for s, v in curve(floor, steps=30, seed=i):
            t.report(v, s)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                outcomes.append("pruned")
                break
        else:
            study.tell(t, v)
            outcomes.append("complete")
    assert outcomes[-1] == "pruned" and outcomes[:4] == ["complete"] * 4


def test_curve_fit_needs_stronger_evidence_early_in_training():
    rule = CurveFitRule(final_step=100, probability=0.05)
    assert rule.threshold(5) == pytest.approx(0.01) and rule.threshold(25) == rule.threshold(80) == 0.05
