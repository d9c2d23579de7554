"""The curve-fitting rule: stop a trial whose extrapolated final value is very unlikely
to beat the best value seen in the Round.

In the spirit of Domhan, Springenberg & Hutter (2015) and NNI's curve-fitting assessor:
an ensemble of parametric families extrapolates the partial curve (`extrapolation`),
with three changes that measured curves ask for:
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
  plateau-and-jump task while the first trials ran in parallel.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .base import Curve, Decision, Oriented, Strategy, check_strategy, final, level, oriented
from .calibration import BETTER_HALF, MIN_CALIBRATION, Scale, calibrate, quantum
from .extrapolation import MIN_POINTS, predict_final, reach

DEFAULT_SCALE = 3.0  # uncalibrated: the improvement still to come is 0 to 3 times what the fit expects
Z90 = 1.645
MEDIAN_PEERS = 5  # other trials that must have reached the step before their median counts
LEADERS = 0.1  # a trial better than all but this fraction of the others at its step is a leader
LEADER_PEERS = 10  # other trials needed before a trial counts as a leader
UNCALIBRATED = ("keep", "median", "default")  # before calibration: no stop; only below the median; the default interval
SURVIVOR_PEERS = 12  # finished or stopped trials, nearest at the step, that weigh a chance below the median


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

    @property
    def stop(self) -> bool:
        return self.p_beat < self.threshold

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
    setting that never stopped the best configuration of the other tasks, or, as on
    these tasks none did on all of them, the one that stopped it least often.

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
    uncalibrated: before MIN_CALIBRATION finished trials reached the step: "keep" stops
        nothing, "median" stops only a trial worse than the median of the trials that
        went on past the step, "default" judges by the fit with a wide default interval.
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

    def __post_init__(self) -> None:
        check_strategy(self.objective)
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
        beating = 0
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
            noise = scale.spread(position, raw.noise) if self.objective == "last" else 0.0
            dist = cal.distribution(scale.to(position), scale.to(expected), noise)
            p_beat = dist.cdf(scale.to(target))
            mean, n = scale.back(dist.quantile(0.5)), cal.n
            if self.count_look_alikes:
                beating = cal.beating(scale.to(position), scale.to(target))
                p_beat = max(p_beat, beating / n)
            low, high = (scale.back(z) for z in dist.interval(0.9))
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
        cap = position if self.objective == "best" else float("inf")  # the best so far cannot get worse
        return Assessment(
            step=step, mean=min(mean, cap), low=min(low, cap), high=min(high, cap),
            best=best, p_beat=p_beat, calibration_trials=n, threshold=threshold, median=median, leader=leader,
            finished_near=near, beating=beating,
        )

    def decide(
        self, curve: Curve, others: list[Curve], direction: str, finished: list[Curve] | None = None,
        stopped: list[Curve] | None = None,
    ) -> Decision | None:
        if curve and curve[-1][0] >= self.final_step:
            return None  # training has ended: stopping saves nothing
        a = self.assess(curve, others, direction, finished, stopped)
        if a is None or not a.stop:
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
        if a.calibration_trials:
            basis = (f"; calibrated on the {a.calibration_trials} finished trials that stood nearest it at this "
                     f"step, {a.beating} of which improved enough from there to beat the best")
        else:
            basis = (f"; not calibrated yet (fewer than {MIN_CALIBRATION} finished trials reached this step): "
                     f"a wide default interval, 0 to {DEFAULT_SCALE:g} times the improvement the fit expects")
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
                f"{sign * a.best:.6g} is {chance}, below {_percent(a.threshold)}{standing}{basis}"
            ),
            evidence=evidence,
        )


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
