"""The curve-fitting rule: stop a trial whose extrapolated final value is very unlikely
to beat the best value seen in the Round.

In the spirit of Domhan, Springenberg & Hutter (2015) and NNI's curve-fitting assessor:
an ensemble of parametric families extrapolates the partial curve (`extrapolation`),
with changes that measured curves ask for:
- the objective is the best value a trial reports (by default), so the extrapolation
  counts the lucky measurements a noisy curve still has ahead of it; with the last value
  as objective it is the fitted curve at the final step, a trial stands where its
  latest values are, not where its luckiest was, and only finished trials set the value
  to beat;
- the prediction is calibrated on the Round's finished trials that looked like this one
  at the same step (`calibration`): raw fits are overconfident and pessimistic, and the
  chance to beat the best is learned from how much of their extrapolated gain those
  trials really made, and how much more;
- bounded metrics (a loss above 0, an accuracy below 1) are modelled as such, and on a
  quantized metric reaching the best value's level counts as beating it;
- the threshold depends on where the trial stands among the other trials at its step: a
  trial worse than the median of those that went on past the step is stopped at a higher
  chance (`median_probability`, off by default since the leave-one-task-out benchmark:
  it stopped late bloomers, which stand below the median early), one among the best
  tenth of all the trials at its step only at a lower one (`leader_probability`). The calibration learns from finished trials
  only, and with few workers most trials are stopped, so those are survivors: a middling
  trial's look-alikes are the worst of them, which went on to improve anyway, while a
  leader's are few. Where a trial stands does not depend on who finished: it is a second
  opinion. With the last value as objective there is no median band: the others' latest
  values are not where they will end (a fast learner at its low may overfit, a slow one
  is still coming down);
- below that median the chance is also scaled by how many of the trials that stood
  nearest at the step and went on past it finished rather than being stopped later
  (`SURVIVOR_PEERS` of them, one finished added to both counts): the calibration learns
  from the ones that finished only, and measured over replays with one worker, trials
  below the median given a chance of 0.3-0.6 by their finished look-alikes never beat
  the best (about 1600 assessments on each of two metrics).
- the look-alikes are also counted: the chance is never below the share of them that
  made a gain from where they stood that would take this trial past the best. Plateaus
  that end in a jump (a step decay, a long warm-up) and best values that are late lucky
  draws make their outcomes lumpy, most gaining little and a few a lot, and a smooth
  interval over them gives those few almost no weight (`count_look_alikes`);
- before enough finished trials reached the step to calibrate on, nothing is stopped
  (`uncalibrated="keep"`): a plateau now may be a jump later, and the fit alone cannot
  tell. Measured leave one task out over seven tasks (bench/early_stopping.py), the
  fit's own default interval ("default") stopped the best configuration of a
  plateau-and-jump task while the first trials ran in parallel;
- a calibration resting on a handful of look-alikes says little (with six of them, a
  chance of 0.3% is a parametric guess): a stop needs `min_look_alikes` of them (8 by
  default); with fewer the trial counts as not calibrated yet;
- the chance is never below that of one lucky draw (`lucky_draws`): with the best value
  as objective a noisy trial wins with one good measurement, whatever its trend, so the
  chance that one of its remaining measurements, each scattered around its level as its
  own recent ones were (a Student-t with LUCKY_DF degrees of freedom), reaches the best
  is a floor. The best configurations of two held-out tasks in the benchmark (an MLP on
  a near-chance task, a noisy loss) were such draws, and the calibrated chance alone
  stopped them at 0.1-0.3%;
- a trial worse than (by default) 45% of the other trials' running averages at its step
  is stopped whatever its chance (`running_quantile`): near the median rule (Golovin et
  al. 2017, at 50%), which stopped no best configuration on any task of the benchmark;
  unless curve fitting, calibrated on its finished look-alikes (however few), still
  gives it a chance of `running_lift` or more: late bloomers like it have finished.
  Curve fitting then adds its own stops among the better trials, where it needs a
  calibrated, lucky-draw-proof case: measured leave one task out over seven tasks,
  cheaper than either rule alone, and it stopped no best configuration.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .base import Curve, Decision, Oriented, Strategy, check_strategy, final, level, oriented, running_averages
from .calibration import BETTER_HALF, MIN_CALIBRATION, Calibration, Mixture, Scale, calibrate, quantum
from .extrapolation import MIN_POINTS, measurement_noise, predict_final, reach

DEFAULT_SCALE = 3.0  # uncalibrated: the improvement still to come is 0 to 3 times what the fit expects
Z90 = 1.645
MEDIAN_PEERS = 5  # other trials that must have reached the step before their median counts
LEADERS = 0.1  # a trial better than all but this fraction of the others at its step is a leader
LEADER_PEERS = 10  # other trials needed before a trial counts as a leader
UNCALIBRATED = ("keep", "median", "default")  # before calibration: no stop; only below the median; the default interval
SURVIVOR_PEERS = 12  # finished or stopped trials, nearest at the step, that weigh a chance below the median
LUCKY_DF = 4  # degrees of freedom of the Student-t a trial's own measurements scatter by (heavy tails: spikes)


@dataclass(frozen=True)
class Assessment:
    """A prediction of the trial's final objective (lower is better), with its 90% interval."""

    step: int
    mean: float  # the predicted final objective (with the best value as objective: never worse than it is now)
    low: float
    high: float
    best: float  # the best value seen in the Round
    p_beat: float
    calibration_trials: int
    threshold: float  # the trial is stopped when p_beat falls below this
    median: float | None = None  # of the other trials' best values at this step, when the trial is worse
    leader: bool = False  # among the best tenth of the trials at this step
    finished_near: int | None = None  # below the median: of the SURVIVOR_PEERS nearest that went on, how many finished
    beating: int = 0  # of the calibration trials, how many made a gain that would take this one past the best
    lucky: float = 0.0  # the chance one of its remaining measurements, scattered as its own, beats the best
    running: float | None = None  # the others' running averages' quantile it is worse than, when it is
    gated: bool = False  # worse than that quantile, and its finished look-alikes give it no chance: stop

    @property
    def stop(self) -> bool:
        return self.gated or self.p_beat < self.threshold

    @property
    def finished_share(self) -> float | None:
        """The weight on the chance below the median (`_finished_weight`)."""
        return None if self.finished_near is None else _finished_weight(self.finished_near)

    def interval(self) -> tuple[float, float]:
        return self.low, self.high


@dataclass(frozen=True)
class CurveFitRule:
    """Stop a trial when its extrapolated final value is very unlikely to beat the best
    value seen in the Round.

    The defaults were chosen leave one task out (bench/early_stopping.py): the cheapest
    setting that never stopped the best configuration of the other tasks and kept the
    regret within 0.1% ("gated": stop a trial worse than 45% of the others' running
    averages, as the median rule would, unless curve fitting calibrated on its finished
    look-alikes still gives it 5% or more; and among the better ones at a chance below
    0.3%, calibrated on at least 8 look-alikes, and never below the chance of a lucky
    draw). Settings were eligible only if curve fitting can stop from the eighth
    finished trial on: one that waited for ten look-alikes (about 25 finished trials)
    at a threshold of 1.25% was 0.5 points of compute cheaper on the benchmark and
    stopped nothing of its own in a Round of 20.

    final_step: the step training ends at (the Study's or Round's maxSteps).
    probability: stop when P(beat the best) falls below this.
    median_probability: the threshold instead, for a trial that stands worse than the
        median of the other trials that went on past its step (at least MEDIAN_PEERS of
        them; while fewer did, of those that reached it); never below `probability`, 0
        (the default) turns it off. Not with objective "last": the others' latest values are not their
        objectives. Below the median, the chance is also scaled by (f + 1) /
        (SURVIVOR_PEERS + 1), f of the SURVIVOR_PEERS trials that stood nearest the trial
        at its step and went on past it having finished, the others stopped (`stopped`
        curves; running ones are not counted, and with fewer such trials nothing is scaled).
    leader_probability: the threshold instead, for a trial that stands better than all but
        a tenth of the other trials at its step (where they stood up to it, at least
        LEADER_PEERS of them); never above `probability`, 0 never stops a leader.
    margin: relative margin the trial must beat the best by to count.
    objective: which reported value is a trial's objective: its best ("best"), or its
        last ("last"). A trial stands at its best value so far, or at the median of its
        latest three values; with "last" the value to beat is the best last value of the
        finished trials (a running trial may still overfit), and nothing is stopped before
        one has finished.
    start_step: no decision before this step.
    min_trials: other trials with data needed before any stop.
    interval: decide only every this many steps.
    better_half: the better half of a calibrated interval, as a share of the look-alikes'
        errors on that side (below 1 narrows it: finished look-alikes are survivors).
    count_look_alikes: the chance is at least the share of look-alikes whose gain from
        where they stood would take this trial past the best.
    uncalibrated: before `min_look_alikes` finished trials reached the step: "keep" stops
        nothing (but the running-average gate), "median" stops only a trial worse than
        the median of the trials that went on past the step, "default" judges by the fit
        with a wide default interval.
    lucky_draws: the chance is never below that of one of the trial's remaining
        measurements reaching the best, each scattered around its level as its own
        recent ones were (objective "best" only).
    min_look_alikes: finished look-alikes a calibrated chance must rest on (at least
        MIN_CALIBRATION); with fewer the trial is not calibrated yet (`uncalibrated`).
        A prediction is calibrated on about 2 sqrt(N) of N finished trials (at least 8),
        so 8 lets curve fitting stop from the eighth finished trial on, and 10 only
        once about 25 finished past the step.
    running_quantile: a trial worse than this quantile of the other trials' running
        averages up to its step (those that reached it, at least `min_trials`) is
        stopped whatever its chance, as the median rule (Vizier's, at 0.5) stops it,
        unless its chance calibrated on its finished look-alikes (even fewer than
        `min_look_alikes`, without the lucky-draw floor) is `running_lift` or more:
        late bloomers like it have finished. Curve fitting adds its own stops among the
        better trials. 0 turns it off.
    running_lift: see `running_quantile`; above 1 nothing lifts the gate.
    """

    final_step: int
    probability: float = 0.003
    margin: float = 0.0
    start_step: int = 5
    min_trials: int = 3
    interval: int = 1
    median_probability: float = 0.0
    leader_probability: float = 0.0005
    objective: Strategy = "best"
    better_half: float = BETTER_HALF
    count_look_alikes: bool = True
    uncalibrated: str = "keep"
    lucky_draws: bool = True
    min_look_alikes: int = 8
    running_quantile: float = 0.45
    running_lift: float = 0.05

    def __post_init__(self) -> None:
        check_strategy(self.objective)
        if self.min_look_alikes < MIN_CALIBRATION:
            raise ValueError(f"min_look_alikes must be at least {MIN_CALIBRATION}, not {self.min_look_alikes}")
        if not 0.0 <= self.running_quantile < 1.0:
            raise ValueError(f"running_quantile must be in [0, 1), not {self.running_quantile}")
        if self.uncalibrated not in UNCALIBRATED:
            raise ValueError(f"uncalibrated must be one of {', '.join(UNCALIBRATED)}, not {self.uncalibrated!r}")

    def assess(
        self, curve: Curve, others: list[Curve], direction: str, finished: list[Curve] | None = None,
        stopped: list[Curve] | None = None,
    ) -> Assessment | None:
        """The calibrated prediction behind a decision (also when the trial is kept).
        finished: the curves of trials that ran to the end; stopped: of those stopped early."""
        mine = oriented(curve, direction)
        if len(mine) < MIN_POINTS:
            return None
        step = mine[-1][0]
        if step < self.start_step or step >= self.final_step or (step - self.start_step) % self.interval:
            return None
        def orient(c: Curve) -> Oriented:
            return oriented(c, direction)  # remembered per curve: finished curves are among the others too

        peers = [p for p in map(orient, others) if p]
        if len(peers) < self.min_trials:
            return None
        done = [d for d in map(orient, finished or []) if d]
        # every value the Round has seen, each curve once (finished ones are among the peers)
        values = np.concatenate([c.array for c in {id(c): c for c in [mine, *peers, *done]}.values()])
        scale = Scale.of(values, direction)
        raw = predict_final(mine, self.final_step, scale.floor)
        if raw is None:
            return None
        position = level(mine, step, self.objective)
        assert position is not None
        if self.objective == "best":  # a running trial's best so far is its objective already, or better
            best = min(p.lows[-1] for p in peers)
        elif done:  # a running trial's latest values are not its objective: it may still overfit
            best = min(final(d, "last") for d in done)
        else:
            return None
        # on a quantized metric, reaching the best value's level counts: a tie is not a loss
        target = best - self.margin * abs(best) + quantum(values) / 2
        expected = raw.objective(mine, self.final_step, scale.floor, self.objective)
        cal = calibrate(done, step, self.final_step, scale, scale.to(position), self.objective, self.better_half)
        noise = scale.spread(position, raw.noise) if self.objective == "last" else 0.0

        def chance(c: Calibration) -> tuple[float, int, Mixture]:
            """The calibrated chance to beat the best, the look-alikes that did, and the
            distribution of the final objective on the Scale."""
            dist = c.distribution(scale.to(position), scale.to(expected), noise)
            won = c.beating(scale.to(position), scale.to(target))
            p = dist.cdf(scale.to(target))
            return (max(p, won / c.n) if self.count_look_alikes else p), won, dist

        few = cal  # too few look-alikes to rest a stop on, enough to keep a late bloomer
        if cal is not None and cal.n < self.min_look_alikes:
            cal = None
        beating, p_cal = 0, 0.0
        if cal is None:
            # nothing to learn from yet: anything from no further improvement to three times
            # the improvement (or the uncertainty) the fit expects
            gain = max(reach(position, raw), position - expected)
            mean = position - gain * DEFAULT_SCALE / 2
            sd = gain * DEFAULT_SCALE / (2 * Z90)
            p_beat = float(stats.norm.cdf((target - mean) / sd))
            low, high, n = mean - Z90 * sd, mean + Z90 * sd, 0
        else:
            # the final objective on the Scale, from how the extrapolation fared on look-alikes
            p_beat, won, dist = chance(cal)
            p_cal = p_beat
            mean, n = scale.back(dist.quantile(0.5)), cal.n
            beating = won if self.count_look_alikes else 0
            low, high = (scale.back(z) for z in dist.interval(0.9))
        lucky = 0.0
        if self.lucky_draws and self.objective == "best":
            lucky = _lucky(mine, min(raw.mean, level(mine, step, "last")), target, self.final_step - step)
            p_beat = max(p_beat, lucky)
        if position <= target:
            p_beat = 1.0
        below, leader = _standing(position, peers, step, self.objective)
        median = below
        if self.objective == "last" or self.median_probability <= 0:
            median = None  # "last": the others' latest values are not their objectives, they may still overfit
        near = None
        if median is not None and p_beat < 1.0:
            gone = [g for g in map(orient, stopped or []) if g]
            near = _finished_near(position, step, done, gone, self.objective)
            if near is not None:
                p_beat *= _finished_weight(near)
        threshold = self.probability
        if leader:
            threshold = min(self.probability, self.leader_probability)
        elif median is not None:
            threshold = max(self.probability, self.median_probability)
        if cal is None and (self.uncalibrated == "keep" or (self.uncalibrated == "median" and below is None)):
            threshold = 0.0  # nothing learned yet of how curves like it end: no stop
        running, gated = None, False
        if self.running_quantile > 0 and position > target:
            running = _running_quantile(position, peers, step, self.running_quantile, self.min_trials)
            if running is not None:
                # the median rule's stop, unless curve fitting calibrated on finished look-alikes
                # (even fewer than min_look_alikes) still gives it running_lift: a late bloomer
                kept = few is not None and (p_cal if few is cal else chance(few)[0]) >= self.running_lift
                gated = not kept
        cap = position if self.objective == "best" else float("inf")  # the best so far cannot get worse
        return Assessment(
            step=step, mean=min(mean, cap), low=min(low, cap), high=min(high, cap),
            best=best, p_beat=p_beat, calibration_trials=n, threshold=threshold, median=median, leader=leader,
            finished_near=near, beating=beating, lucky=lucky, running=running, gated=gated,
        )

    def decide(
        self, curve: Curve, others: list[Curve], direction: str, finished: list[Curve] | None = None,
        stopped: list[Curve] | None = None,
    ) -> Decision | None:
        if curve and curve[-1][0] >= self.final_step:
            return None  # training has ended: stopping saves nothing
        a = self.assess(curve, others, direction, finished, stopped)
        if a is None:
            return _gate(self, curve, others, direction)
        if not a.stop:
            return None
        sign = 1.0 if direction == "minimize" else -1.0
        low, high = sorted(sign * x for x in a.interval())
        evidence = {
            "predicted": sign * a.mean, "lower": low, "upper": high, "best": sign * a.best,
            "probability": a.p_beat, "threshold": a.threshold, "calibrationTrials": float(a.calibration_trials),
        }
        chance = _percent(a.p_beat)
        standing = ""
        if a.median is not None:
            evidence["median"] = sign * a.median
            standing = f"; it is worse than the median {sign * a.median:.6g} of the trials at this step"
            if a.finished_near is not None:
                # the interval is the finished look-alikes' view; the weighing is the stopped ones' say
                went, share = a.finished_near, _finished_weight(a.finished_near)
                unweighed = a.p_beat / share
                evidence["finishedShare"] = share
                evidence["finishedProbability"] = unweighed
                chance += (f" ({_percent(unweighed)} as the finished trials like it ended, weighed by "
                           f"{went + 1}/{SURVIVOR_PEERS + 1}: {went} of the {SURVIVOR_PEERS} trials nearest it at "
                           "this step that went on finished, the others were stopped)")
        elif a.leader:
            standing = "; it is among the best tenth of the trials at this step"
        evidence["lookAlikesBeating"] = float(a.beating)
        if self.lucky_draws:
            evidence["luckyProbability"] = a.lucky
        verdict = f"is {chance}, below {_percent(a.threshold)}"
        if a.running is not None:
            evidence["running"] = sign * a.running
            evidence["runningQuantile"] = self.running_quantile
            if a.gated and not a.p_beat < a.threshold:
                verdict = f"is {chance}"
            standing += (f"; it is worse than {_percent(self.running_quantile)} of the other trials' running "
                         f"averages at this step ({sign * a.running:.6g})"
                         + (", and no finished look-alikes like it give it a chance of "
                            f"{_percent(self.running_lift)} or more: stopped as the median rule would"
                            if a.gated else ""))
        if a.calibration_trials:
            basis = (f"; calibrated on the {a.calibration_trials} finished trials that stood nearest it at this "
                     f"step, {a.beating} of which improved enough from there to beat the best")
        else:
            basis = (f"; not calibrated yet (fewer than {self.min_look_alikes} finished trials like it reached this "
                     f"step): a wide default interval, 0 to {DEFAULT_SCALE:g} times the improvement the fit expects")
        if self.lucky_draws:
            basis += (f"; one lucky draw among its {self.final_step - a.step} remaining measurements, scattered as its "
                      f"own have been, would beat the best at a chance of {_percent(a.lucky)}")
        reaches = a.low <= a.best  # the interval's better end still reached the best: a likely late bloomer
        evidence["intervalReachesBest"] = float(reaches)
        if reaches:
            basis += "; its interval still reaches the best value: it may be a late bloomer"
        return Decision(
            rule="curvefit",
            step=a.step,
            message=(
                f"at step {a.step} the curve extrapolates to {sign * a.mean:.6g} at step {self.final_step} "
                f"(90% interval {low:.6g} to {high:.6g}); the chance to beat the best value "
                f"{sign * a.best:.6g} {verdict}{standing}{basis}"
            ),
            evidence=evidence,
        )


def _gate(rule: "CurveFitRule", curve: Curve, others: list[Curve], direction: str) -> Decision | None:
    """The running-average gate alone, for a trial too short to extrapolate (fewer than
    MIN_POINTS points): nothing calibrated lifts it, so it stops as the median rule would."""
    if rule.running_quantile <= 0:
        return None
    mine = oriented(curve, direction)
    if not mine:
        return None
    step = mine[-1][0]
    if step < rule.start_step or step >= rule.final_step or (step - rule.start_step) % rule.interval:
        return None
    peers = [p for p in (oriented(c, direction) for c in others) if p]
    position = level(mine, step, rule.objective)
    if len(peers) < rule.min_trials or position is None:
        return None
    running = _running_quantile(position, peers, step, rule.running_quantile, rule.min_trials)
    if running is None:
        return None
    sign = 1.0 if direction == "minimize" else -1.0
    return Decision(
        rule="curvefit",
        step=step,
        message=(f"at step {step} its value {sign * position:.6g} is worse than {_percent(rule.running_quantile)} "
                 f"of the other trials' running averages ({sign * running:.6g}): stopped as the median rule would; "
                 "too few points to extrapolate, nothing calibrated"),
        evidence={"value": sign * position, "running": sign * running, "runningQuantile": rule.running_quantile,
                  "peers": float(len(peers)), "calibrationTrials": 0.0},
    )


def _running_quantile(position: float, peers: list[Oriented], step: int, q: float, least: int) -> float | None:
    """The `q`-quantile of the running averages up to `step` of the peers that reached it
    (the median rule's yardstick at q = 0.5), when the trial stands worse than it and at
    least `least` peers reached the step; else None."""
    averages = running_averages(peers, "minimize", step)  # peers are oriented already: lower is better
    if len(averages) < least:
        return None
    v = float(np.quantile(averages, q))
    return v if position > v else None


def _lucky(curve: Oriented, centre: float, target: float, remaining: int) -> float:
    """The chance that at least one of a trial's `remaining` measurements reaches `target`
    when each scatters around `centre` as its own recent measurements did (a Student-t
    with LUCKY_DF degrees of freedom, scaled by `measurement_noise`): with the best value
    as objective, a noisy trial can win by one lucky draw, whatever its trend."""
    if remaining <= 0:
        return 0.0
    sd = measurement_noise(curve.array)
    if sd <= 0.0:
        return 1.0 if centre <= target else 0.0
    one = float(special.stdtr(LUCKY_DF, (target - centre) / sd))
    return float(-np.expm1(remaining * np.log1p(-min(one, 1.0 - 1e-16))))


def _percent(p: float) -> str:
    """A chance as a percentage with three significant digits: thresholds such as 0.15%
    and 1.25% read as set."""
    return f"{100 * p:.3g}%"


def _finished_weight(finished_near: int) -> float:
    """The weight on a chance below the median when `finished_near` of the SURVIVOR_PEERS
    nearest trials that went on finished: (f + 1) / (SURVIVOR_PEERS + 1)."""
    return (finished_near + 1) / (SURVIVOR_PEERS + 1)


def _finished_near(
    position: float, step: int, done: list[list[tuple[int, float]]], gone: list[list[tuple[int, float]]],
    strategy: Strategy,
) -> int | None:
    """How many of the SURVIVOR_PEERS trials that stood nearest `position` at `step` and
    went on past it finished (`done`) rather than being stopped later (`gone`); None
    while fewer such trials exist."""
    near = sorted(
        (abs(v - position), not fin)
        for curves, fin in ((done, True), (gone, False)) for c in curves
        if c[-1][0] > step and (v := level(c, step, strategy)) is not None
    )
    if len(near) < SURVIVOR_PEERS:
        return None
    return sum(1 for _, was_stopped in near[:SURVIVOR_PEERS] if not was_stopped)


def _standing(
    position: float, peers: list[list[tuple[int, float]]], step: int, strategy: Strategy
) -> tuple[float | None, bool]:
    """Where the trial stands at `step` among its peers, each where it stood on the
    objective up to the step (lower is better): the median of the peers that went on past
    the step (of those that reached it while fewer than MEDIAN_PEERS went past), when the
    trial is worse than it (else None); and whether it is better than all but a tenth of
    them all (stopped trials count where they stopped).

    The median leaves out the trials stopped at the step, as optuna's MedianPruner and
    Vizier's rule compare with trials that went on: with one worker most trials are
    stopped at the first decision, and counting them put the median among the hopeless."""
    levels = [(v, p[-1][0]) for p in peers if (v := level(p, step, strategy)) is not None]
    passed = [v for v, last in levels if last > step]
    pool = passed if len(passed) >= MEDIAN_PEERS else [v for v, last in levels if last >= step]
    median = statistics.median(pool) if len(pool) >= MEDIAN_PEERS else None
    leader = len(levels) >= LEADER_PEERS and sum(1 for v, _ in levels if v < position) < LEADERS * len(levels)
    return (median if median is not None and position > median else None), leader
