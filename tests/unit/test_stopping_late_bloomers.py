"""Curve fitting on schedules that make late bloomers (warm-up, step decay), what its stop
evidence says, and the Round analysis flag for a trial it may have cut short."""
import math

import numpy as np
import pytest

from kubetune.analysis import analyze_round
from kubetune.api.trial import StopReason
from kubetune.stopping import CurveFitRule, MedianRule
from kubetune.stopping.calibration import MIN_CALIBRATION

from .factories import round_, study, trial

STEPS = 40
# curve fitting alone (no median-rule gate, no lucky-draw floor, calibrated from five
# look-alikes): the mechanics these tests look at
FIT = dict(lucky_draws=False, min_look_alikes=MIN_CALIBRATION, running_quantile=0.0)


def step_decay(plateau, final, seed, decay_at=20, steps=STEPS):
    """A loss under warm-up then step decay: flat at `plateau` (with a little noise) until
    the learning rate drops at `decay_at`, then a jump down to `final`."""
    rng = np.random.default_rng(seed)
    return [(s, 0.003 * rng.standard_normal()
             + (plateau if s < decay_at else final + (plateau - final) * math.exp(-(s - decay_at) / 1.5)))
            for s in range(1, steps + 1)]


def smooth(start, final, seed, steps=STEPS):
    """A loss that falls early and settles at `final`: good early, no jump to come."""
    rng = np.random.default_rng(seed)
    return [(s, final + (start - final) * math.exp(-s / 4) + 0.003 * rng.standard_normal()) for s in range(1, steps + 1)]


def schedule_round():
    """Finished trials of a Round on a step-decay schedule: twelve that sat on the plateau
    and stayed mediocre after the decay, three that sat there too and then jumped below
    everything (the late bloomers), and five that learned early and settled."""
    stayed = [step_decay(0.6 + 0.004 * i, 0.45 + 0.005 * i, seed=i) for i in range(12)]
    jumped = [step_decay(0.6 + 0.004 * i, 0.08 + 0.01 * i, seed=20 + i) for i in range(3)]
    early = [smooth(0.9, 0.18 + 0.01 * i, seed=40 + i) for i in range(5)]
    return stayed + jumped + early


def test_a_late_bloomer_on_a_step_decay_schedule_is_not_stopped():
    done = schedule_round()
    mine = step_decay(0.59, 0.07, seed=99)[:12]  # on the plateau at step 12: its jump is still to come
    rule = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, **FIT)
    a = rule.assess(mine, done, "minimize", done)
    assert a is not None and a.calibration_trials >= MIN_CALIBRATION and a.beating >= 1
    assert a.p_beat >= a.beating / a.calibration_trials  # one in nine look-alikes did it
    assert rule.decide(mine, done, "minimize", done) is None
    # the defaults keep it too, also with ten early learners still running that put it
    # below the median of the running averages (where the median rule stops it): curve
    # fitting on its finished look-alikes still gives it a chance, which lifts the gate
    running = [smooth(0.9, 0.2 + 0.01 * i, seed=80 + i)[:14] for i in range(10)]
    default = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3)
    d = default.assess(mine, done + running, "minimize", done)
    assert d is not None and d.running is not None and not d.gated and not d.stop
    assert default.decide(mine, done + running, "minimize", done) is None
    assert MedianRule(start_step=4, min_trials=3).decide(mine, done + running, "minimize") is not None
    # early in the Round (many workers), when only the early learners have finished, the
    # fit alone sees a plateau far from the best: the default interval would stop it
    early = done[-5:-1]
    assert rule.decide(mine, done, "minimize", early) is None
    fit_alone = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, uncalibrated="default", **FIT)
    assert fit_alone.decide(mine, done, "minimize", early) is not None


def test_a_trial_whose_look_alikes_never_jumped_is_still_stopped():
    done = [c for c in schedule_round() if min(v for _, v in c) > 0.1 or c[0][1] > 0.7]  # no jumpers
    done += [smooth(0.9, 0.05 + 0.005 * i, seed=60 + i) for i in range(3)]
    mine = step_decay(0.62, 0.5, seed=98)[:12]
    d = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3).decide(mine, done, "minimize", done)
    assert d is not None and d.evidence["lookAlikesBeating"] == 0


def test_nothing_is_stopped_before_trials_like_it_have_finished():
    """Before MIN_CALIBRATION finished trials reached the step there is nothing to learn how
    curves like it end from: a plateau now may be a jump later."""
    done = schedule_round()
    hopeless = smooth(3.0, 2.5, seed=7)[:12]
    rule = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, **FIT)
    assert rule.decide(hopeless, done, "minimize", done[: MIN_CALIBRATION - 1]) is None
    assert rule.decide(hopeless, done, "minimize", done) is not None
    # the earlier behaviour, a wide default interval from the fit alone, stays available
    default = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, uncalibrated="default", **FIT)
    assert default.decide(hopeless, done, "minimize", done[: MIN_CALIBRATION - 1]) is not None
    # with the median rule's gate (the default), a trial worse than the others' running
    # averages is stopped before anything finished, as the median rule stops it
    gated = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3)
    d = gated.decide(hopeless, done, "minimize", [])
    assert d is not None and "stopped as the median rule would" in d.message and "not calibrated yet" in d.message


def test_the_stop_evidence_says_how_sure_the_rule_was():
    done = schedule_round()
    hopeless = smooth(3.0, 2.5, seed=7)[:12]
    d = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, **FIT).decide(hopeless, done, "minimize", done)
    assert d is not None
    n = int(d.evidence["calibrationTrials"])
    assert n >= MIN_CALIBRATION
    chance = f"{100 * d.evidence['probability']:.3g}%"
    assert f"the chance to beat the best value {d.evidence['best']:.6g} is {chance}" in d.message
    assert f"calibrated on the {n} finished trials" in d.message
    assert f"{int(d.evidence['lookAlikesBeating'])} of which improved enough" in d.message
    assert d.evidence["intervalReachesBest"] == 0.0 and "late bloomer" not in d.message


def test_a_peer_curve_grown_in_place_is_read_as_it_is_now():
    """Rules remember each peer's converted curve; a curve that grows between decisions
    (the benchmark appends to one list per trial) is read again."""
    peers = [[(s, 1.0 + 0.1 * k) for s in range(1, 7)] for k in range(3)]
    mine = [(s, 1.15) for s in range(1, 7)]
    rule = MedianRule(start_step=5, min_trials=3)
    assert rule.decide(mine, peers, "minimize") is not None  # worse than the median 1.1
    for p in peers:  # the same lists, grown past step 6, their step-6 averages unchanged
        p.append((7, 0.5))
    mine7 = [*mine, (7, 1.15)]
    d = rule.decide(mine7, peers, "minimize")
    assert d is not None and d.evidence["median"] < 1.1  # step 7's average counts the new point


def _stopped(number, low, high, best, chance, calibrated=12):
    t = trial(number, {"learning_rate": 0.01 * number}, "EarlyStopped", 0.5,
              [(s, 0.6 - 0.001 * s) for s in range(1, 11)])
    t.status.stop_reason = StopReason(rule="curvefit", step=10, message="stopped", evidence={
        "predicted": (low + high) / 2, "lower": low, "upper": high, "best": best, "probability": chance,
        "threshold": 0.18, "calibrationTrials": float(calibrated)})
    return t


def test_the_analysis_flags_a_round_that_stopped_a_likely_late_bloomer():
    st = study(maxSteps=20)
    rnd = round_(earlyStopping={"rule": "curvefit"})
    done = [trial(i, {"learning_rate": 0.01 * i}, "Succeeded", 0.2 + 0.01 * i,
                  [(s, 0.2 + 0.01 * i + 0.5 / s) for s in range(1, 21)]) for i in range(1, 6)]
    planted = _stopped(7, 0.15, 0.4, 0.21, 0.09)  # its interval still reached the best (0.15 <= 0.21)
    clear = _stopped(8, 0.35, 0.5, 0.21, 0.001)  # hopeless: the interval stays above the best
    a = analyze_round(st, rnd, [*done, planted, clear])
    flagged = [c for c in a.curves if c.finding == "likelyLateBloomer"]
    assert [c.trial for c in flagged] == [planted.metadata.name]
    assert "9%" in flagged[0].message and "calibrated on 12 finished trials" in flagged[0].message
    assert flagged[0].message in a.messages
    # nothing planted, nothing flagged
    assert not [c for c in analyze_round(st, rnd, [*done, clear]).curves if c.finding == "likelyLateBloomer"]


def test_the_late_bloomer_flag_reads_a_maximized_metric_the_right_way_round():
    st = study(maxSteps=20, objective={"metric": "val_accuracy", "goal": "maximize"})
    rnd = round_(earlyStopping={"rule": "curvefit"})
    done = [trial(i, {"learning_rate": 0.01 * i}, "Succeeded", 0.8, [(s, 0.8 - 0.5 / s) for s in range(1, 21)])
            for i in range(1, 6)]
    reaches = _stopped(7, 0.7, 0.92, 0.9, 0.08)  # upper end above the best accuracy
    short = _stopped(8, 0.6, 0.85, 0.9, 0.002)
    flagged = [c.trial for c in analyze_round(st, rnd, [*done, reaches, short]).curves
               if c.finding == "likelyLateBloomer"]
    assert flagged == [reaches.metadata.name]


def test_the_analysis_flags_a_planted_late_bloomer_stopped_below_the_median():
    """Ten good trials still running push the plateau below the median of its step, where
    a Round with medianProbability 0.18 (the default before the leave-one-task-out
    benchmark) stops at a chance below 18%: it stops the late bloomer at a chance of about
    one in nine, its 90% interval still reaching the best. The evidence says so, and the
    Round analysis flags it."""
    done = schedule_round()
    running = [smooth(0.9, 0.2 + 0.01 * i, seed=80 + i)[:14] for i in range(10)]
    mine = step_decay(0.59, 0.07, seed=99)[:12]
    below = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, median_probability=0.18, **FIT)
    d = below.decide(mine, done + running, "minimize", done)
    assert d is not None and "worse than the median" in d.message
    assert d.evidence["intervalReachesBest"] == 1.0 and "may be a late bloomer" in d.message
    st, rnd = study(maxSteps=STEPS), round_(earlyStopping={"rule": "curvefit"})
    finished = [trial(i, {"learning_rate": 0.01 * (i + 1)}, "Succeeded", min(v for _, v in c), c)
                for i, c in enumerate(done)]
    bloomer = trial(50, {"learning_rate": 0.5}, "EarlyStopped", min(v for _, v in mine), mine)
    bloomer.status.stop_reason = StopReason(rule=d.rule, step=d.step, message=d.message, evidence=d.evidence)
    flagged = [c for c in analyze_round(st, rnd, [*finished, bloomer]).curves if c.finding == "likelyLateBloomer"]
    assert [c.trial for c in flagged] == [bloomer.metadata.name]


def noisy_accuracy(level, sd, seed, steps=STEPS):
    """An accuracy that settles at `level` early, each measurement scattered by `sd`."""
    rng = np.random.default_rng(seed)
    return [(s, level - 0.2 * math.exp(-s / 3) + sd * rng.standard_normal()) for s in range(1, steps + 1)]


def test_a_noisy_trial_that_one_lucky_draw_could_make_the_best_is_not_stopped():
    """With the best value as objective a noisy trial wins by one good measurement: the best
    configuration of a near-chance task in the benchmark was such a draw, and the
    calibrated chance alone (its quiet look-alikes never jumped) stopped it."""
    done = [noisy_accuracy(0.47 + 0.0005 * i, 0.002, seed=i) for i in range(30)]  # quiet, best ~0.49
    mine = noisy_accuracy(0.455, 0.015, seed=99)[:24]  # mediocre on average, but it scatters widely
    quiet = noisy_accuracy(0.465, 0.002, seed=98)[:24]  # the same level, without the scatter
    without = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, lucky_draws=False, running_quantile=0.0)
    assert without.decide(mine, done, "maximize", done) is not None
    rule = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, running_quantile=0.0)
    a = rule.assess(mine, done, "maximize", done)
    assert a is not None and a.lucky > rule.probability and a.p_beat >= a.lucky and not a.stop
    assert rule.decide(mine, done, "maximize", done) is None
    d = rule.decide(quiet, done, "maximize", done)  # no scatter to hope on: stopped, and the evidence says so
    assert d is not None and d.evidence["luckyProbability"] < rule.probability
    assert "one lucky draw among its 16 remaining measurements" in d.message


def test_a_chance_resting_on_few_look_alikes_stops_nothing():
    """Seven look-alikes cannot support a chance of a fraction of a percent: below
    min_look_alikes (8) a trial counts as not calibrated yet."""
    done = [smooth(0.9, 0.1 + 0.01 * i, seed=i) for i in range(7)]
    hopeless = smooth(0.9, 0.5, seed=50)[:12]
    few = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, running_quantile=0.0)
    a = few.assess(hopeless, done, "minimize", done)
    assert a is not None and a.calibration_trials == 0 and not a.stop
    assert CurveFitRule(final_step=STEPS, start_step=4, min_trials=3, running_quantile=0.0,
                        min_look_alikes=MIN_CALIBRATION).decide(hopeless, done, "minimize", done) is not None
    with pytest.raises(ValueError, match="min_look_alikes"):
        CurveFitRule(final_step=STEPS, min_look_alikes=2)
    with pytest.raises(ValueError, match="running_quantile"):
        CurveFitRule(final_step=STEPS, running_quantile=1.5)


def test_the_median_rules_gate_stops_with_evidence_of_how_sure_it_was():
    """A trial worse than most running averages whose finished look-alikes never bloomed is
    stopped as the median rule would stop it; the evidence still carries the chance and the
    look-alikes it rests on, and says which gate stopped it."""
    done = [smooth(0.9, 0.1 + 0.005 * i, seed=i) for i in range(30)]
    slow = smooth(1.4, 0.6, seed=77)[:10]
    d = CurveFitRule(final_step=STEPS, start_step=4, min_trials=3).decide(slow, done, "minimize", done)
    assert d is not None and d.evidence["runningQuantile"] == 0.45 and d.evidence["running"] < 0.6
    assert d.evidence["probability"] < 0.003 and d.evidence["calibrationTrials"] >= 8
    assert "running averages" in d.message
