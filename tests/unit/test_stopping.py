import dataclasses
import math
import time

import numpy as np
import optuna
import pytest

from kubetune.stopping import CurveFitPruner, CurveFitRule, MedianRule, MedianStoppingPruner, predict_final
from kubetune.stopping.calibration import infer_floor, quantum

# curve fitting alone, as before it gained the median rule's gate, the lucky-draw floor and
# a least number of look-alikes: the tests of its mechanics
FIT = dict(lucky_draws=False, min_look_alikes=5, running_quantile=0.0)


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
    # the 4th will be the best: never stopped; nothing is stopped before five have finished
    for i, floor in enumerate([0.1, 0.12, 0.14, 0.05, 0.16, 0.9]):
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
    assert outcomes[-1] == "pruned" and outcomes[:5] == ["complete"] * 5


def overfitting(steps=14):
    """Best at step 3 (0.05, better than any peer ever gets), then stuck at 0.6 with jitter."""
    rng = np.random.default_rng(3)
    return [(1, 1.0), (2, 0.3), (3, 0.05)] + [(s, 0.6 + 0.01 * rng.standard_normal()) for s in range(4, steps + 1)]


def test_with_the_last_value_as_objective_a_trial_is_judged_where_it_is_now():
    done = [curve(0.1 + 0.02 * i, seed=i) for i in range(8)]  # end at 0.19-0.33
    for rule in (CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3), MedianRule(5, 3)):
        judge = lambda c, objective: dataclasses.replace(rule, objective=objective).decide(  # noqa: E731
            c, done, "minimize", *([done] if isinstance(rule, CurveFitRule) else []))
        assert judge(overfitting(), "best") is None  # its best, 0.05, still beats everyone
        d = judge(overfitting(), "last")
        assert d is not None, rule
        assert (d.evidence["predicted"] if isinstance(rule, CurveFitRule) else d.evidence["value"]) > 0.55
        # one lucky low value is not where a trial stands: the median of its latest three
        lucky = [*curve(0.5)[:13], (14, 0.01)]
        assert judge(lucky, "last") is not None and judge(lucky, "best") is None
    assert "recent value" in MedianRule(5, 3, objective="last").decide(overfitting(), done, "minimize").message
    with pytest.raises(ValueError, match="objective must be one of best, last"):
        CurveFitRule(final_step=30, **FIT, objective="mean")
    with pytest.raises(ValueError, match="objective must be one of best, last"):
        MedianRule(objective="final")


def test_with_the_last_value_as_objective_only_finished_trials_set_the_value_to_beat():
    done = [curve(0.1 + 0.02 * i, seed=i) for i in range(8)]
    dipping = [(s, 1.0 / s) for s in range(1, 21)]  # running, at 0.05 now: it may still overfit
    trial = curve(0.1, seed=9)[:10]  # headed where the best finished trial ended
    rule = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, objective="last")
    a = rule.assess(trial, [*done, dipping], "minimize", done)
    assert a is not None and a.best == pytest.approx(min(c[-1][1] for c in done)) and not a.stop
    assert rule.decide(trial, [*done, dipping], "minimize") is None  # nothing finished: nothing to beat yet
    # with the best value as objective, the running trial's 0.05 is already achieved
    best = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3).assess(
        trial, [*done, dipping], "minimize", done)
    assert best is not None and best.best == pytest.approx(0.05)


def test_with_the_last_value_as_objective_standing_below_the_median_is_no_case_for_stopping():
    # the others' latest values are not their objectives (they may still overfit), so the
    # median band that lowers the bar for trials below it does not apply
    done = bloomers_and_plateaus()
    below = [c[:12] for c in done]  # every finished trial was better than this one at its step
    trial = [(s, 0.9 + 0.1 / s) for s in range(1, 13)]
    for objective in ("best", "last"):
        rule = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, objective=objective,
                            median_probability=0.18)
        a = rule.assess(trial, below, "minimize", done)
        threshold = rule.median_probability if objective == "best" else rule.probability
        assert a is not None and a.threshold == threshold and (a.median is None) == (objective == "last")


def test_curve_fit_pruner_judges_the_value_an_optuna_objective_returns():
    def run(objective):
        pruner = CurveFitPruner(final_step=30, start_step=5, min_trials=3, objective=objective)
        study = optuna.create_study(pruner=pruner)
        for c in [curve(0.13 - 0.005 * i) for i in range(6)] + [overfitting(30)]:  # each steady one a new best
            t = study.ask()
            for s, v in c:
                t.report(v, s)
                if t.should_prune():
                    study.tell(t, state=optuna.trial.TrialState.PRUNED)
                    break
            else:
                study.tell(t, v if objective == "last" else min(v for _, v in c))
        return [t.state.name for t in study.trials]
    best, last = run("best"), run("last")
    assert best[:6] == last[:6] == ["COMPLETE"] * 6
    assert best[-1] == "COMPLETE" and last[-1] == "PRUNED"  # the overfitting one: 0.05 once, 0.6 at the end


def test_metric_bounds_and_quanta_are_inferred_from_the_values_seen():
    assert infer_floor([0.3, 2.0, 0.01], "minimize") == 0.0  # a loss
    assert infer_floor([-0.3, 2.0], "minimize") is None
    assert infer_floor([-0.2, -0.97], "maximize") == -1.0  # accuracy, negated inside the rules
    assert infer_floor([-12.0, -97.0], "maximize") == -100.0  # a percentage
    assert infer_floor([-12.0, -970.0], "maximize") is None
    assert quantum([k / 449 for k in (400, 401, 405, 430, 441, 447)]) == pytest.approx(1 / 449)
    assert quantum(list(np.random.default_rng(0).random(50))) == 0.0


def test_a_loss_is_never_extrapolated_below_zero():
    steep = [(s, 2.0 - 0.12 * s) for s in range(1, 11)]  # a straight line would cross 0 at step 17
    p = predict_final(steep, 50, floor=0.0)
    assert p is not None and p.mean >= 0.0
    unbounded = predict_final(steep, 50)
    assert unbounded is not None and unbounded.mean < 0.0


def test_the_best_of_a_noisy_curve_is_expected_to_beat_its_fitted_level():
    rng = np.random.default_rng(3)
    smooth = [(s, 0.2 + 0.5 * s ** -0.7) for s in range(1, 21)]
    noisy = [(s, v + rng.normal(0, 0.03)) for s, v in smooth]
    ps, pn = predict_final(smooth, 50, 0.0), predict_final(noisy, 50, 0.0)
    assert ps is not None and pn is not None and 0.01 < pn.noise < 0.06 and ps.noise < 0.002
    assert pn.objective(noisy, 50, 0.0) < pn.mean - pn.noise  # 30 more noisy draws: some land low
    assert ps.objective(smooth, 50, 0.0) == pytest.approx(ps.mean, abs=0.005)
    assert pn.objective(noisy, 20, 0.0) == min(v for _, v in noisy)  # nothing left to draw


def late_drop(level, final, drop_at, steps=30, seed=0):
    """Flat at `level`, then falls to `final` from `drop_at` on: no fit can see it coming."""
    rng = np.random.default_rng(seed)
    return [(s, 0.002 * rng.standard_normal() + (level if s < drop_at else final + (level - final) * math.exp(-(s - drop_at) / 2.0)))
            for s in range(1, steps + 1)]


def bloomers_and_plateaus():
    """Finished trials: ten flat at ~0.5 that dropped late to ~0.05, ten at ~0.2 that stayed there."""
    bloomers = [late_drop(0.5 + 0.01 * i, 0.05 + 0.005 * i, 14 + i % 5, seed=i) for i in range(10)]
    plateaus = [late_drop(0.2 + 0.005 * i, 0.2 + 0.005 * i, 40, seed=i) for i in range(10)]
    return bloomers + plateaus


def worse_running():
    """Thirty trials still running at step 12, all at ~0.8."""
    return [late_drop(0.8 + 0.01 * i, 0.8, 40, seed=i)[:12] for i in range(30)]


def test_curve_fit_judges_a_trial_by_how_finished_look_alikes_ended():
    done = bloomers_and_plateaus()
    rule = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3)
    like_bloomers = late_drop(0.52, 0.05, 40)[:10]  # worse now, but looks like the late bloomers
    like_plateaus = late_drop(0.21, 0.21, 40)[:10]  # better now, but looks like the plateaus
    kept = rule.assess(like_bloomers, done, "minimize", done)
    stopped = rule.decide(like_plateaus, done, "minimize", done)
    assert kept is not None and kept.calibration_trials >= 5 and kept.p_beat > rule.probability
    assert stopped is not None and stopped.evidence["calibrationTrials"] >= 5
    assert stopped.evidence["upper"] > stopped.evidence["lower"] > 0.05  # the interval stays above the best
    # without finished trials to learn from, the same curve is judged with a wide default
    uncalibrated = rule.assess(like_plateaus, done, "minimize", finished=[])
    assert uncalibrated is not None and uncalibrated.calibration_trials == 0


def test_a_trial_below_the_median_of_its_step_needs_less_of_a_case_to_be_stopped():
    done = bloomers_and_plateaus()
    trial = late_drop(0.52, 0.05, 40)[:10]  # at step 10 worse than half of the finished trials
    p = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3).assess(trial, done, "minimize", done).p_beat
    assert 0 < p < 0.5
    # a chance to beat the best between the two thresholds: the median decides
    rule = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, probability=p / 2, median_probability=2 * p)
    d = rule.decide(trial, done, "minimize", done)
    assert d is not None and d.evidence["threshold"] == 2 * p
    assert d.evidence["median"] < 0.52 and "worse than the median" in d.message
    off = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, probability=p / 2, median_probability=0)
    assert off.decide(trial, done, "minimize", done) is None
    # with many worse trials running at the same step it is above the median, and kept
    running = worse_running()
    a = rule.assess(trial, done + running, "minimize", done)
    assert a is not None and a.median is None and a.threshold == p / 2 and not a.stop
    assert rule.decide(trial, done + running, "minimize", done) is None
    # trials that have not reached the step do not count towards the median
    early = [c[:8] for c in running]
    assert rule.decide(trial, done + early, "minimize", done) is not None
    # nor do trials stopped at the step: the median is of those that went on past it, as in
    # optuna's MedianPruner (with one worker most trials stop at the first decision)
    stopped_here = [c[:10] for c in running]
    d = rule.decide(trial, done + stopped_here, "minimize", done)
    assert d is not None and d.evidence["median"] < 0.52
    # until five have gone on past it, the trials that reached it count
    a = rule.assess(trial, done[-4:] + stopped_here, "minimize", done)
    assert a is not None and a.median is None and a.threshold == p / 2
    # maximized: the same trial as an accuracy, with the median in the metric's own terms
    acc = lambda c: [(s, 1 - v) for s, v in c]  # noqa: E731
    d = rule.decide(acc(trial), [acc(c) for c in done], "maximize", [acc(c) for c in done])
    assert d is not None and d.evidence["median"] > 1 - 0.52


def test_below_the_median_trials_like_it_that_were_stopped_later_weigh_against_it():
    # the finished late bloomers that stood where this trial stands are survivors: twenty
    # other trials stood there too, went on, and were stopped a few steps later
    done = bloomers_and_plateaus()
    trial = late_drop(0.52, 0.05, 40)[:10]
    gone = [late_drop(0.505 + 0.0005 * i, 0.5, 40, seed=50 + i)[:13] for i in range(20)]
    rule = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, probability=0.0025, median_probability=0.0125,
                        better_half=0.65)
    alone = rule.assess(trial, done, "minimize", done)
    assert alone is not None and alone.median is not None and alone.finished_share == 1.0 and not alone.stop
    a = rule.assess(trial, done + gone, "minimize", done, gone)
    assert a is not None and a.median is not None and a.finished_share is not None and a.finished_share < 0.5
    assert a.p_beat == pytest.approx(alone.p_beat * a.finished_share) and a.stop
    d = rule.decide(trial, done + gone, "minimize", done, gone)
    assert d is not None and d.evidence["finishedShare"] == a.finished_share
    assert d.evidence["finishedProbability"] == pytest.approx(alone.p_beat)
    assert "as the finished trials like it ended, weighed by" in d.message
    assert "of the 12 trials nearest it at this step that went on finished, the others were stopped" in d.message
    # trials stopped at this very step were judged on what this trial shows now: they do not count
    here = [c[:10] for c in gone]
    assert rule.assess(trial, done + here, "minimize", done, here).p_beat == alone.p_beat
    # nor does anything above the median, or before twelve trials went on past the step
    few = rule.assess(trial, done[10:18] + gone[:3], "minimize", done[10:18], gone[:3])
    assert few is not None and few.median is not None and few.finished_share is None
    running = worse_running()
    above = rule.assess(trial, done + gone + running, "minimize", done, gone)
    assert above is not None and above.median is None and above.finished_share is None


def test_a_trial_among_the_best_tenth_at_its_step_needs_more_of_a_case_to_be_stopped():
    done = bloomers_and_plateaus()
    running = worse_running()
    trial = late_drop(0.21, 0.21, 40)[:10]  # looks like the plateaus, but only 2 of 50 trials are better now
    default = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3)
    a = default.assess(trial, done + running, "minimize", done)
    assert a is not None and a.leader and a.median is None and a.threshold == default.leader_probability
    p = a.p_beat
    assert p < default.probability  # hopeless by the look-alikes: the threshold decides
    strict = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, leader_probability=p / 2)
    assert strict.decide(trial, done + running, "minimize", done) is None
    lenient = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, leader_probability=2 * p)
    d = lenient.decide(trial, done + running, "minimize", done)
    assert d is not None and d.evidence["threshold"] == 2 * p and "best tenth" in d.message
    # among the finished trials alone it is no leader (2 of 20 are better) and is held to the default
    a = strict.assess(trial, done, "minimize", done)
    assert a is not None and not a.leader and a.threshold == strict.probability and a.stop
    # a leader is never held to more than the default threshold
    lax = CurveFitRule(final_step=30, **FIT, leader_probability=0.5)
    assert lax.assess(trial, done + running, "minimize", done).threshold == lax.probability


def test_a_look_alike_that_ended_worse_than_promised_does_not_keep_hopeless_trials_alive():
    # finished: three good trials, and plateaus at ~0.4 whose extrapolations held; one plateau
    # had a spike in its latest points, so its cut promised lucky draws it never got
    good = [curve(0.1 + 0.01 * i, seed=i) for i in range(3)]
    plateaus = [late_drop(0.4 + 0.01 * i, 0.4 + 0.01 * i, 40, seed=i) for i in range(8)]
    spiky = late_drop(0.4, 0.4, 40, seed=9)
    spiky[7] = (8, 1.0)
    rule = CurveFitRule(final_step=30, **FIT, start_step=5, min_trials=3, probability=0.0125)
    hopeless = late_drop(0.41, 0.41, 40, seed=20)[:10]
    clean = rule.assess(hopeless, good + plateaus, "minimize", good + plateaus)
    d = rule.decide(hopeless, good + plateaus + [spiky], "minimize", good + plateaus + [spiky])
    assert clean is not None and clean.p_beat < 1e-6
    # an error on the worse side widens the interval on that side only: the chance to beat
    # the best comes from look-alikes that ended better than extrapolated, and none did
    assert d is not None and d.evidence["probability"] < rule.probability
    assert d.evidence["lower"] > 0.2 > d.evidence["best"]


def test_calibrated_intervals_have_a_half_for_each_side():
    from kubetune.stopping.calibration import Mixture, TwoPieceT

    dist = TwoPieceT(df=8, centre=1.0, below=0.1, above=0.4)
    assert dist.cdf(1.0 - 1e-12) == pytest.approx(0.5) and dist.cdf(1.0) == pytest.approx(0.5)
    low, high = dist.interval(0.9)
    assert high - 1.0 == pytest.approx(4 * (1.0 - low))
    assert dist.cdf(low) == pytest.approx(0.05) and dist.cdf(high) == pytest.approx(0.95)
    mix = Mixture((dist, TwoPieceT(df=8, centre=3.0, below=0.1, above=0.1)))
    low, high = mix.interval(0.9)
    assert mix.cdf(low) == pytest.approx(0.05) and mix.cdf(high) == pytest.approx(0.95)
    assert mix.cdf(2.0) == pytest.approx(0.5, abs=0.01)  # all of one part, none of the other


def test_calibration_learns_how_much_of_the_extrapolated_gain_to_believe():
    from kubetune.stopping.calibration import Calibration

    rng = np.random.default_rng(3)
    extrapolated = np.linspace(-2.0, 0.0, 12)
    # look-alikes that all gained about 1 whatever their extrapolations said (a noisy metric
    # early on): a trial extrapolated to gain nothing is still expected to gain about 1
    noise = rng.normal(0, 0.05, 12)
    blind = Calibration(extrapolated=extrapolated, achieved=-1.0 + noise)
    assert blind.linear(0.0).centre == pytest.approx(-1.0, abs=0.1)
    assert blind.offset(0.0).centre == pytest.approx(0.0, abs=0.1)  # the constant correction alone
    dist = blind.distribution(position=5.0, predicted=5.0)
    assert 0.3 < dist.cdf(5.0 - 0.8) < 0.7  # gaining 0.8 is likely on one model, not the other
    assert blind.offset(0.0).cdf(-0.8) < 0.2 < 0.8 < blind.linear(0.0).cdf(-0.8)
    # look-alikes whose extrapolations held: both models agree, the interval is narrow
    sharp = Calibration(extrapolated=extrapolated, achieved=extrapolated + noise)
    assert sharp.linear(-0.5).centre == pytest.approx(-0.5, abs=0.1)
    low, high = sharp.distribution(position=5.0, predicted=4.5).interval(0.9)
    assert 4.3 < low < 4.5 < high < 4.7


def test_on_a_quantized_metric_reaching_the_best_level_is_not_a_loss():
    q = 1 / 200
    acc = lambda top: [(s, round(min(top, 0.5 + 0.1 * s) / q) * q) for s in range(1, 21)]  # noqa: E731
    peers = [acc(0.95), acc(0.9), acc(0.85)]
    tied = acc(0.95)[:12]  # already at the best level: a tie, kept whatever the fit says
    a = CurveFitRule(final_step=30, min_trials=3).assess(tied, peers, "maximize", peers)
    assert a is not None and a.p_beat == 1.0


def test_calibration_extrapolates_only_the_look_alikes_it_uses():
    """A Round with hundreds of finished trials: a decision at a new step fits the couple
    dozen that stood nearest, not all of them, and learns exactly what fitting all would."""
    from kubetune.stopping import calibration as cal
    from kubetune.stopping.base import final, level

    rng = np.random.default_rng(5)
    finished = []
    for _ in range(400):
        a, b, c = rng.uniform(0.1, 1), rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
        finished.append([(s, float(c + a * np.exp(-b * s) + rng.normal(0, 0.01))) for s in range(50)])
    values = [v for f in finished for _, v in f]
    scale = cal.Scale.of(values, "minimize")
    step, position = 12, scale.to(0.4)
    cal._fits.clear()
    got = cal.calibrate(finished, step, 49, scale, position)
    assert got is not None and got.n == cal.NEIGHBOURS[1]
    assert len(cal._fits) == got.n  # not 400 fits
    # the same look-alikes and numbers as extrapolating every finished trial, then choosing
    rows = []
    for f in finished:
        upto = f[: step + 1]
        then = scale.to(level(upto, step))
        pred = predict_final(upto, 49, scale.floor)
        rows.append((abs(then - position), scale.to(pred.objective(upto, 49, scale.floor, "best")) - then,
                     scale.to(final(f)) - then))
    nearest = sorted(rows, key=lambda r: r[0])[: got.n]
    assert np.allclose(got.extrapolated, [r[1] for r in nearest]) and np.allclose(got.achieved, [r[2] for r in nearest])


def test_what_calibration_remembers_stays_small_as_a_round_grows():
    """The operator builds new curve objects for every decision; remembering fits by the
    curves themselves kept one curve per finished trial and step (~0.5 GB at 1000 x 100)."""
    import tracemalloc

    from kubetune.stopping import calibration as cal

    rng = np.random.default_rng(2)
    finished = [[(s, float(0.1 + rng.uniform(0.2, 1) * np.exp(-0.1 * s) + rng.normal(0, 0.01))) for s in range(40)]
                for _ in range(100)]
    scale = cal.Scale.of([v for c in finished for _, v in c], "minimize")
    cal._fits.clear()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for step in range(5, 39):
            fresh = [[(s, v) for s, v in c] for c in finished]  # as the operator hands them over
            cal.calibrate(fresh, step, 39, scale, scale.to(0.3))
        del fresh
        # the fits' shapes by step are remembered in extrapolation.py, within their own budget (below)
        grown = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename")
                    if not d.traceback[0].filename.endswith("extrapolation.py"))
    finally:
        tracemalloc.stop()
    assert 0 < len(cal._fits) <= 34 * cal.NEIGHBOURS[1]
    assert grown < 1_000_000, f"{grown / 1e6:.1f} MB kept for {len(cal._fits)} fits"


def test_the_shapes_fits_share_stay_within_their_budget_and_change_no_fit(monkeypatch):
    """Fits of curves cut at the same steps share the families' shapes at those times;
    what is remembered of them stays within its budget however many steps are cut, and a
    fit from remembered shapes is the same fit."""
    from kubetune.stopping import extrapolation as ex
    from kubetune.stopping.remembered import Remembered

    rng = np.random.default_rng(4)
    points = [(s, float(0.1 + 0.5 * np.exp(-0.05 * s) + rng.normal(0, 0.01))) for s in range(1, 301)]
    fresh = [ex.predict_final(points[:k], 300, 0.0) for k in range(5, 300, 7)]
    monkeypatch.setattr(ex, "_BASES", Remembered(400_000))
    most = 0
    for k in range(5, 300, 7):
        assert ex.predict_final(points[:k], 300, 0.0) == fresh[(k - 5) // 7]
        kept = sum(g.nbytes for bases in ex._BASES._items.values() for g, _ in bases)
        assert kept == ex._BASES.size <= 400_000
        most = max(most, len(ex._BASES))
    assert most >= 5  # the budget holds several short cuts, not one


def test_what_the_rules_remember_of_curves_stays_bounded(monkeypatch):
    from kubetune.stopping import base

    monkeypatch.setattr(base._ORIENTED, "budget", 500)
    peers = [curve(0.1 + 0.01 * k) for k in range(3)]
    for i in range(200):  # a new curve object for every decision, as the operator's own trial's
        MedianRule(5, 3).decide(curve(1.0)[:6 + i % 20], peers, "minimize")
    assert base._ORIENTED.size <= 500
    assert sum(entry[1] for entry in base._ORIENTED._items.values()) == base._ORIENTED.size


def test_curves_fitted_together_get_the_numbers_each_gets_alone():
    """Calibration extrapolates a couple dozen look-alikes at once (one array operation for
    all of them): every prediction, floor or none, steps shared or not, is the one the curve
    gets fitted on its own, to the last bit, so stop decisions do not depend on the batch."""
    from kubetune.stopping.extrapolation import predict_finals

    rng = np.random.default_rng(5)
    curves = []
    for i in range(60):
        n = [5, 8, 15, 30][i % 4]
        steps = np.arange(1, n + 1) if i % 5 else np.sort(rng.choice(np.arange(1, 100), n, replace=False))
        a, b, noise = rng.uniform(0.2, 3.0), rng.uniform(0.05, 1.5), [0.0, 0.01, 0.2][i % 3]
        curves.append([(int(s), float(0.1 + a * s ** -b + noise * rng.normal())) for s in steps])
    curves.append([(s, 0.5) for s in range(1, 9)])  # flat
    curves.append([(1, 1.0), (2, 0.9)])  # too short: None
    for floor in (None, 0.0):
        together = predict_finals(curves, 50, floor)
        alone = [predict_final(c, 50, floor) for c in curves]
        assert together == alone
        assert together[-1] is None and all(p is not None for p in together[:-1])
