"""Each analysis check on a planted case, and on a clean case where nothing must be flagged."""
import math

import numpy as np

from kubetune.analysis import analyze_round
from kubetune.analysis.boundary import boundary_warnings
from kubetune.analysis.curves import curve_findings
from kubetune.analysis.infeasible import infeasibility
from kubetune.analysis.reruns import rerun_statistics
from kubetune.space import SearchSpace

from .factories import finished, round_, study, trial

LR = round_().spec.nuisance


def ranked_trials(lrs, objective):
    ts = [trial(i, {"learning_rate": lr}, "Succeeded", objective(lr)) for i, lr in enumerate(lrs)]
    return sorted(ts, key=lambda t: t.status.objective)


def test_boundary_flags_best_trials_crowding_the_upper_edge_in_log_space():
    lrs = np.geomspace(1e-4, 1.0, 20)
    ranked = ranked_trials(lrs, lambda lr: -math.log10(lr))  # bigger is better, up to the edge
    (w,) = boundary_warnings(list(LR), ranked)
    assert w.parameter == "learning_rate" and w.side == "upper" and "widen the range upward" in w.message
    assert "(log scale)" in w.message


def test_boundary_is_quiet_when_the_best_lie_inside():
    lrs = np.geomspace(1e-4, 1.0, 20)
    ranked = ranked_trials(lrs, lambda lr: (math.log10(lr) + 2) ** 2)  # optimum at 1e-2, mid-range
    assert boundary_warnings(list(LR), ranked) == []


def test_infeasible_region_is_named():
    ts = [trial(i, {"learning_rate": lr}, "Infeasible" if lr > 0.3 else "Succeeded", None if lr > 0.3 else 0.5)
          for i, lr in enumerate(np.geomspace(1e-4, 1.0, 12))]
    inf = infeasibility(list(LR), ts)
    assert inf.count == 2 and inf.total == 12
    assert inf.regions and "learning_rate >=" in inf.regions[0].message and "diverged" in inf.regions[0].message


def test_a_categorical_region_is_named_only_where_the_rest_worked():
    from kubetune.api import Parameter

    opt = [Parameter.model_validate({"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]})]
    choices = ["sgd", "adam"] * 4
    ts = [trial(i, {"optimizer": c}, "Failed" if c == "adam" else "Succeeded", None if c == "adam" else 0.5)
          for i, c in enumerate(choices)]
    (region,) = infeasibility(opt, ts).regions
    assert region.message == "all 4 trials with optimizer = adam were infeasible or failed"
    # everything failed (a broken command): no choice is to blame
    ts = [trial(i, {"optimizer": c}, "Failed") for i, c in enumerate(choices)]
    inf = infeasibility(opt, ts)
    assert inf.count == 8 and inf.regions == []


def test_scattered_failures_name_no_region():
    ts = [trial(i, {"learning_rate": lr}, "Infeasible" if i in (3, 7) else "Succeeded", 0.5)
          for i, lr in enumerate(np.geomspace(1e-4, 1.0, 12))]
    assert infeasibility(list(LR), ts).regions == []


def _t(values, steps=None):
    steps = steps or list(range(1, len(values) + 1))
    return trial(0, {"learning_rate": 0.1}, "Succeeded", min(values), list(zip(steps, values)))


def test_curve_checks_on_planted_curves():
    s = np.arange(1, 41)
    overfit = _t(list(0.2 + (s - 15) ** 2 / 400))
    noisy = _t(list(1.0 / s + 0.4 * (s > 30) * np.random.default_rng(0).standard_normal(40)))
    improving = _t(list(1.0 - 0.02 * s))
    saturated = _t(list(0.2 + 0.8 * np.exp(-s / 2.0)))
    assert [f.finding for f in curve_findings(overfit, "minimize", 40)] == ["overfitting"]
    found = {f.finding: f.message for f in curve_findings(noisy, "minimize", 40)}
    assert "best value may be luck" in found["noisy"] and "objective.strategy last" in found["noisy"]
    found = {f.finding: f.message for f in curve_findings(noisy, "minimize", 40, "last")}
    assert "last value may be luck" in found["noisy"]
    assert [f.finding for f in curve_findings(improving, "minimize", 40)] == ["stillImproving"]
    assert [f.finding for f in curve_findings(saturated, "minimize", 40)] == ["saturatedEarly"]


def test_a_healthy_curve_is_not_flagged():
    s = np.arange(1, 41)
    healthy = _t(list(0.1 + 1.0 / s**0.8 + 0.002 * np.random.default_rng(1).standard_normal(40)))
    assert curve_findings(healthy, "minimize", 40) == []


def test_reruns_recommend_adoption_only_with_evidence():
    base = [trial(10 + i, {"learning_rate": 0.1}, "Succeeded", 0.50 + d, purpose="rerun", rerun_of="baseline")
            for i, d in enumerate([0.01, -0.01, 0.0, 0.005])]
    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.40)
    win = [trial(20 + i, {"learning_rate": 0.02}, "Succeeded", 0.40 + d, purpose="rerun", rerun_of="r-0")
           for i, d in enumerate([0.01, -0.005, 0.0])]
    r = rerun_statistics([best, *win, *base], "minimize")
    assert r.recommendation == "adopt" and r.winner == "r-0" and r.p_value < 0.01
    # the same winner, but the difference is within the noise
    noisy = [trial(20 + i, {"learning_rate": 0.02}, "Succeeded", 0.49 + d, purpose="rerun", rerun_of="r-0")
             for i, d in enumerate([0.03, -0.04, 0.02])]
    best2 = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.47)
    r2 = rerun_statistics([best2, *noisy, *base], "minimize")
    # a gain of 0.014 against a noise of 0.024: telling whether it clears the minimum worth
    # adopting (by default that noise) takes more runs than are worth making (more than 50)
    assert r2.recommendation == "keepBaseline" and r2.reruns_needed is None
    worse = [trial(20 + i, {"learning_rate": 0.02}, "Succeeded", 0.6 + d, purpose="rerun", rerun_of="r-0")
             for i, d in enumerate([0.01, 0.0, 0.02])]
    r3 = rerun_statistics([trial(0, {}, "Succeeded", 0.45), *worse, *base], "minimize")
    assert r3.recommendation == "keepBaseline"


def test_full_analysis_has_importance_and_isolation():
    rnd = round_(scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}],
                 budget={"maxTrials": 20, "parallelism": 2})
    rng = np.random.default_rng(0)
    ts = []
    for i in range(16):
        opt = ["sgd", "adam"][i % 2]
        lr = float(10 ** rng.uniform(-4, 0))
        obj = (math.log10(lr) + 2) ** 2 + (0.3 if opt == "adam" else 0.0)
        ts.append(trial(i, {"optimizer": opt, "learning_rate": lr}, "Succeeded", obj))
    a = analyze_round(study(), rnd, ts)
    assert a.importance and max(a.importance, key=a.importance.get) == "learning_rate"
    iso = {p.value: p for p in a.isolation}
    assert set(iso) == {"sgd", "adam"} and iso["sgd"].best < iso["adam"].best and iso["sgd"].trials == 8
    assert a.best_trials[0].value == min(t.status.objective for t in ts)
    assert len(SearchSpace.of(rnd.spec).parameters) == 2


def test_importance_is_computed_once_per_set_of_finished_trials():
    """The analysis runs on every pass while curves grow; fANOVA only when a trial finishes."""
    from kubetune.analysis.importance import _fanova

    rnd = round_(nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                           {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}],
                 budget={"maxTrials": 30, "parallelism": 2})
    rng = np.random.default_rng(1)
    done = []
    for i in range(12):
        lr, mom = float(10 ** rng.uniform(-4, 0)), float(rng.uniform(0, 0.99))
        objective = (math.log10(lr) + 2) ** 2 + 0.1 * mom
        done.append(trial(i, {"learning_rate": lr, "momentum": mom}, "Succeeded", objective))
    running = trial(12, {"learning_rate": 0.01, "momentum": 0.5}, "Running", None, [(0, 1.0)])
    _fanova.cache_clear()
    first = analyze_round(study(), rnd, [*done, running])
    longer = finished(running, "Running", None, [(0, 1.0), (1, 0.8), (2, 0.7)])
    again = analyze_round(study(), rnd, [*done, longer])
    assert again.importance == first.importance and _fanova.cache_info().misses == 1
    assert max(first.importance, key=first.importance.get) == "learning_rate"
    ended = finished(running, "Succeeded", 0.05, [(0, 1.0), (1, 0.8), (2, 0.05)])
    analyze_round(study(), rnd, [*done, ended])
    assert _fanova.cache_info().misses == 2  # a finished trial is new evidence


def test_trials_that_count_steps_unlike_max_steps_are_flagged():
    from kubetune.analysis.curves import step_findings

    def ran(number, last, phase="Succeeded"):
        steps = np.linspace(1, last, 20).astype(int)
        return trial(number, {"learning_rate": 0.1}, phase, 0.3, [(int(s), 1.0 / s) for s in steps])

    # iterations where maxSteps counts epochs: curve fitting would never decide
    beyond = step_findings([ran(0, 20), ran(1, 3000, "Running")], max_steps=20)
    assert [(f.finding, f.trial) for f in beyond] == [("stepsBeyondMaxSteps", "r-1")]
    assert "reported step 3000, beyond maxSteps 20" in beyond[0].message and "spec.maxSteps" in beyond[0].message
    # training with its own epoch count, shorter than maxSteps: extrapolation to a step nobody reaches
    short = step_findings([ran(i, 30) for i in range(4)], max_steps=100)
    assert [f.finding for f in short] == ["endedBeforeMaxSteps"]
    assert "all 4 succeeded trials ended by step 30" in short[0].message
    # as intended: steps 1..maxSteps, early-stopped trials ending anywhere before
    fine = [ran(0, 100), ran(1, 99), ran(2, 100), ran(3, 12, "EarlyStopped"), ran(4, 40, "Running")]
    assert step_findings(fine, max_steps=100) == []
    assert step_findings([ran(0, 30), ran(1, 30)], max_steps=100) == []  # too few finished to say
    a = analyze_round(study(maxSteps=20), round_(), [ran(0, 20), ran(1, 3000, "Running")])
    assert any("beyond maxSteps 20" in m for m in a.messages)
