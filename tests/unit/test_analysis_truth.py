"""Issue #26, the analysis parts: what the analysis says must be true on planted Rounds —
re-runs that did not vary, gains too small to matter, checks skipped for lack of data,
curve problems beyond the top trials, and no numerical warnings on degenerate inputs."""
import math
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from kubetune.analysis import analyze_round
from kubetune.analysis.reruns import rerun_statistics
from kubetune.api import Reruns

from .factories import round_, study, trial

ROOT = Path(__file__).resolve().parents[2]


def runs(first: int, of: str, values, curves=None, params=None):
    """Re-run trials of configuration `of` ("baseline" or a trial's name) with these objectives."""
    curves = curves or [None] * len(values)
    return [trial(first + i, params or {"learning_rate": 0.1}, "Succeeded", v, c, purpose="rerun", rerun_of=of)
            for i, (v, c) in enumerate(zip(values, curves))]


def jittery(final: float, amplitude: float, steps: int = 20) -> list[tuple[int, float]]:
    """A curve that settles at `final` and moves by `amplitude` from one step to the next."""
    return [(s, final + 0.1 / s + (amplitude / 2) * (-1) ** s) for s in range(1, steps + 1)]


@pytest.fixture(autouse=True)
def numerical_warnings_are_errors():
    """Degenerate inputs are handled explicitly: no RuntimeWarning from numpy or scipy."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- re-runs that did not vary -------------------------------------------------------------

def test_identical_reruns_never_give_p_zero_nor_adopt_and_name_the_seed():
    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.4)  # a trial that ignores KUBETUNE_SEED
    r = rerun_statistics([best, *runs(10, "r-0", [0.4, 0.4, 0.4]), *runs(20, "baseline", [0.5, 0.5, 0.5])],
                         "minimize")
    assert r.recommendation == "gatherMoreEvidence" and r.p_value is None and r.winner == "r-0"
    assert "did not vary" in r.message and "KUBETUNE_SEED" in r.message and "seed" in r.message
    assert "r-0 gave 0.4 on all 4 runs" in r.message and "baseline gave 0.5 on all 3 runs" in r.message


def test_one_group_that_did_not_vary_is_enough_to_refuse_a_test():
    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.40)
    r = rerun_statistics([best, *runs(10, "r-0", [0.41, 0.39, 0.40]), *runs(20, "baseline", [0.5, 0.5, 0.5])],
                         "minimize")
    assert r.recommendation == "gatherMoreEvidence" and r.p_value is None
    assert "baseline gave 0.5 on all 3 runs" in r.message and "r-0" not in r.message.split("(")[1].split(")")[0]


# -- a gain must be worth having ---------------------------------------------------------

def tiny_gain(settings=None, amplitude=0.005):
    """The winner beats the baseline by 0.0007, very significantly (runs differ by 0.0001),
    on a metric whose curves move by `amplitude` from step to step (None: no curves)."""
    w = [0.4993, 0.4994, 0.4992]
    b = [0.5000, 0.5001, 0.4999, 0.5000]

    def curve(v):
        return None if amplitude is None else jittery(v, amplitude)

    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.4993, curve(0.4993))
    ts = [best, *runs(10, "r-0", w[1:], [curve(v) for v in w[1:]]), *runs(20, "baseline", b, [curve(v) for v in b])]
    return rerun_statistics(ts, "minimize", *([settings] if settings else []))


def test_a_significant_gain_smaller_than_the_curves_jitter_is_not_adopted():
    r = tiny_gain()
    assert r.p_value < 0.001  # significant ...
    assert r.recommendation == "keepBaseline"  # ... but not worth having
    assert r.min_improvement == pytest.approx(0.005, rel=0.1)
    lo, hi = r.interval
    assert 0 < lo < r.difference < hi < 0.005 and r.difference == pytest.approx(0.0007, rel=0.01)
    assert "95% interval" in r.message and "from step to step" in r.message
    assert "less than the minimum improvement worth adopting" in r.message


def test_without_curves_the_default_minimum_is_the_reruns_own_noise():
    r = tiny_gain(amplitude=None)  # the runs' pooled standard deviation (~0.0001) decides
    assert r.recommendation == "adopt" and r.min_improvement == pytest.approx(9.13e-5, rel=0.01)
    assert "pooled standard deviation" in r.message and "at least the minimum improvement" in r.message


def test_the_minimum_improvement_is_configurable_absolute_or_relative():
    assert tiny_gain(Reruns(min_improvement=0.0001)).recommendation == "adopt"
    assert tiny_gain(Reruns(min_improvement=0.0001, min_relative_improvement=0.01)).recommendation == "keepBaseline"
    r = tiny_gain(Reruns(min_relative_improvement=0.01))  # 1% of a baseline of 0.5
    assert r.recommendation == "keepBaseline" and r.min_improvement == pytest.approx(0.005)
    assert "minRelativeImprovement" in r.message
    wire = Reruns.model_validate({"minImprovement": 0.001, "minRelativeImprovement": 0.02})
    assert (wire.min_improvement, wire.min_relative_improvement) == (0.001, 0.02)
    with pytest.raises(ValueError):
        Reruns.model_validate({"minImprovement": -1})


def test_the_round_setting_reaches_the_recommendation():
    w, b = [0.4993, 0.4994, 0.4992], [0.5000, 0.5001, 0.4999, 0.5000]
    ts = [trial(0, {"learning_rate": 0.02}, "Succeeded", w[0]), *runs(10, "r-0", w[1:]), *runs(20, "baseline", b)]
    assert analyze_round(study(), round_(), ts).reruns.recommendation == "adopt"
    strict = analyze_round(study(), round_(reruns={"topK": 1, "seeds": 2, "minImprovement": 0.01}), ts).reruns
    assert strict.recommendation == "keepBaseline" and strict.min_improvement == 0.01


def test_a_worthwhile_gain_not_yet_significant_asks_for_a_number_of_runs():
    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.46)
    r = rerun_statistics([best, *runs(10, "r-0", [0.42, 0.49]), *runs(20, "baseline", [0.50, 0.47, 0.52])],
                         "minimize")
    assert r.difference == pytest.approx(0.04) and r.difference > r.min_improvement and r.interval[0] < 0
    assert r.recommendation == "gatherMoreEvidence" and 3 < r.reruns_needed <= 50
    assert f"about {r.reruns_needed} runs per configuration" in r.message


def test_maximize_adopts_a_clearly_higher_winner():
    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.91)
    r = rerun_statistics([best, *runs(10, "r-0", [0.90, 0.92]), *runs(20, "baseline", [0.80, 0.81, 0.79])],
                         "maximize")
    assert r.recommendation == "adopt" and r.difference == pytest.approx(0.11) and r.interval[0] > 0.05


# -- degenerate inputs ---------------------------------------------------------------------

def test_degenerate_reruns_are_handled_without_warnings():
    nan = float("nan")
    best = trial(0, {"learning_rate": 0.02}, "Succeeded", 0.4, [(1, nan), (2, math.inf)])
    # one baseline value: nothing to compare yet
    one = rerun_statistics([best, *runs(10, "r-0", [0.41]), *runs(20, "baseline", [0.5])], "minimize")
    assert one.recommendation == "gatherMoreEvidence" and one.p_value is None
    # NaN objectives are not values: the group keeps its finite ones
    r = rerun_statistics([best, *runs(10, "r-0", [nan, 0.41, 0.39]), *runs(20, "baseline", [0.5, nan, 0.52, 0.49])],
                         "minimize")
    assert {g.configuration: g.n for g in r.groups} == {"r-0": 3, "baseline": 3}
    assert all(math.isfinite(v) for g in r.groups for v in g.values) and math.isfinite(r.p_value)
    # values equal up to rounding error count as identical (scipy would warn of catastrophic cancellation)
    same = rerun_statistics([trial(0, {}, "Succeeded", 0.1 + 0.2), *runs(10, "r-0", [0.3, 0.30000000000000004]),
                             *runs(20, "baseline", [0.5, 0.5])], "minimize")
    assert same.recommendation == "gatherMoreEvidence" and "did not vary" in same.message


def test_a_whole_round_with_degenerate_trials_analyzes_without_warnings():
    nan = float("nan")
    ts = [trial(0, {"learning_rate": 0.01}, "Succeeded", 0.3, [(s, 0.3) for s in range(1, 21)]),  # a flat curve
          trial(1, {"learning_rate": 0.5}, "Infeasible", nan, [(1, 1.0), (2, nan), (3, math.inf)]),
          trial(2, {"learning_rate": 0.02}, "Succeeded", 0.31, [(1, 0.31)]),  # one point
          *runs(10, "r-0", [0.3, 0.3]), *runs(20, "baseline", [0.5, 0.5])]
    a = analyze_round(study(), round_(), ts)
    assert a.reruns.recommendation == "gatherMoreEvidence"
    assert a.best_trials[0].name == "r-0"


# -- checks skipped for lack of data -----------------------------------------------------

def two_parameters(**spec):
    return round_(nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                            {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}], **spec)


def test_checks_skipped_for_lack_of_data_say_so_in_one_line_each():
    ts = [trial(i, {"learning_rate": 10 ** -(i + 1), "momentum": 0.5}, "Succeeded", 0.1 * (i + 1),
                [(1, 1.0), (2, 0.5), (3, 0.1 * (i + 1))]) for i in range(3)]
    a = analyze_round(study(), two_parameters(), ts)
    assert a.skipped == [
        "boundary check skipped: 3 succeeded trials, it needs 5",
        "importance skipped: 3 succeeded trials, it needs 6",
        "curve checks skipped for 3 of 3 succeeded trials (r-0, r-1, r-2): fewer than 8 points on their curves",
    ]
    assert all(m in a.messages for m in a.skipped) and all("\n" not in m for m in a.skipped)


def test_nothing_is_said_skipped_when_the_data_is_there():
    rng = np.random.default_rng(3)
    s = np.arange(1, 21)
    ts = [trial(i, {"learning_rate": float(10 ** rng.uniform(-4, 0)), "momentum": float(rng.uniform(0, 0.99))},
                "Succeeded", 0.1 + i / 100, [(int(k), float(0.1 + i / 100 + 1 / k)) for k in s]) for i in range(8)]
    assert analyze_round(study(), two_parameters(), ts).skipped == []
    # one searched parameter: importance has nothing to compare, which is no lack of data
    assert not any("importance" in m for m in analyze_round(study(), round_(), ts[:3]).skipped)


def test_without_scikit_learn_importance_is_a_message_not_a_crash():
    code = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None  # as if scikit-learn were not installed
        from tests.unit.factories import round_, study, trial
        from kubetune.analysis import analyze_round
        rnd = round_(nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
                               {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}])
        ts = [trial(i, {"learning_rate": 10 ** -(i % 4 + 1), "momentum": i / 10}, "Succeeded", 0.1 * i)
              for i in range(8)]
        a = analyze_round(study(), rnd, ts)
        assert a.importance == {}, a.importance
        print(a.skipped)
    """)
    res = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "importance skipped: fANOVA needs scikit-learn" in res.stdout


# -- curve problems beyond the top trials --------------------------------------------------

def overfitting_round(n=20, seed=5):
    """Trials whose weight decay is below 1e-4 overfit (best at step 8 of 30, then worse);
    the others settle. The best trials are healthy, so the top-trial checks see nothing."""
    rng = np.random.default_rng(seed)
    s = np.arange(1, 31)
    ts = []
    for i in range(n):
        wd = float(10 ** rng.uniform(-6, -2))
        lr = float(10 ** rng.uniform(-3, -1))
        floor = 0.2 + 0.05 * abs(math.log10(lr) + 2)
        if wd < 1e-4:
            curve = floor + 0.1 + 0.8 * np.exp(-s / 2.0) + 0.01 * np.maximum(0, s - 8)
        else:
            curve = floor + 0.8 / s
        ts.append(trial(i, {"learning_rate": lr, "weight_decay": wd}, "Succeeded", float(curve.min()),
                        [(int(k), float(v)) for k, v in zip(s, curve)]))
    return ts


def test_overfitting_beyond_the_top_trials_is_summarized_with_its_region():
    ts = overfitting_round()
    rnd = round_(nuisance=[{"name": "learning_rate", "type": "float", "min": 1e-3, "max": 1e-1, "log": True},
                           {"name": "weight_decay", "type": "float", "min": 1e-6, "max": 1e-2, "log": True}],
                 budget={"maxTrials": 20, "parallelism": 2})
    a = analyze_round(study(maxSteps=30), rnd, ts)
    overfit = sorted((t for t in ts if t.spec.parameters["weight_decay"] < 1e-4),
                     key=lambda t: t.spec.parameters["weight_decay"])
    k = len(overfit)
    assert 4 <= k <= 16
    assert not any(f.finding == "overfitting" for f in a.curves)  # the top trials are healthy
    (summary,) = [c for c in a.curve_summary if c.finding == "overfitting"]
    assert (summary.count, summary.of) == (k, 20)
    edge = overfit[-1].spec.parameters["weight_decay"]
    assert summary.message.startswith(f"{k} of 20 trials overfit (best value before the last 20% of their points, "
                                      "then worse by ≥ 10% of their curve's range)")
    # the same wording as the infeasible check's regions
    assert f"all {k} trials with weight_decay <= {edge:.4g} overfit" in summary.message
    assert summary.message in a.messages


def test_a_single_overfitting_trial_is_no_round_summary():
    ts = overfitting_round()
    keep = [t for t in ts if t.spec.parameters["weight_decay"] >= 1e-4]
    one = next(t for t in ts if t.spec.parameters["weight_decay"] < 1e-4)
    a = analyze_round(study(maxSteps=30), round_(), [*keep, one])
    assert not [c for c in a.curve_summary if c.finding == "overfitting"]
