"""Training-curve checks: what the playbook asks to look at, for the top trials one by one
and for the whole Round at once (how many trials show each problem, and where they lie)."""
from __future__ import annotations

import math

import numpy as np

from ..api import Parameter, Trial
from ..api.trial import curve_pairs, last_step
from ..core.round_plan import phase_of
from .model import CurveFinding, CurveSummary
from .regions import region

MIN_POINTS = 8  # fewer finite points than this and a curve is not judged
OVERFIT = 0.10  # worse at the end than at its best by this share of the curve's range
NOISY = 0.08  # late step-to-step change, as a share of the curve's range
STILL = 0.05  # progress over the last 20% of the points, as a share of the curve's range


def _points(trial: Trial) -> list[tuple[int, float]]:
    """The curve's finite points by step (a diverged curve's NaN and inf are not values)."""
    return sorted((s, v) for s, v in curve_pairs(trial.status.curve) if math.isfinite(v))


def _late_changes(y: np.ndarray) -> np.ndarray | None:
    """Step-to-step changes over the last quarter of a curve (None: too few to judge)."""
    tail = y[int(0.75 * len(y)):]
    return np.abs(np.diff(tail)) if len(tail) >= 4 else None


def late_jitter(trial: Trial) -> float | None:
    """How much the objective moves from one reported step to the next late in training, in
    the objective's units (the median over the last quarter of the curve)."""
    pts = _points(trial)
    changes = _late_changes(np.array([v for _, v in pts], float)) if len(pts) >= MIN_POINTS else None
    return float(np.median(changes)) if changes is not None else None


def curve_findings(trial: Trial, direction: str, max_steps: int, strategy: str = "best") -> list[CurveFinding]:
    """`strategy`: the Study's objective, the best or the last value a trial reports."""
    pts = _points(trial)
    if len(pts) < MIN_POINTS:
        return []
    steps = np.array([s for s, _ in pts], float)
    y = np.array([v for _, v in pts], float) * (1.0 if direction == "minimize" else -1.0)
    span = float(np.ptp(y)) or 1e-12
    n = len(y)
    best_i = int(np.argmin(y))
    out = []
    name = trial.metadata.name

    # overfitting: clearly worse at the end than at its best, the best well before the end
    worse = (y[-3:].mean() - y[best_i]) / span
    if best_i < 0.8 * n and worse > OVERFIT:
        out.append(CurveFinding(trial=name, finding="overfitting", message=(
            f"{name}: the objective was best at step {int(steps[best_i])} and got {worse:.0%} of its range worse by "
            f"step {int(steps[-1])}; consider regularization or fewer steps")))

    # noisy late: step-to-step changes in the last quarter are large compared with the progress made
    changes = _late_changes(y)
    if changes is not None:
        jitter = float(np.median(changes)) / span
        if jitter > NOISY:
            luck = ("the best value may be luck (try a lower learning rate or larger batch, or judge trials "
                    "by their last value: objective.strategy last)") if strategy == "best" else (
                    "the last value may be luck (try a lower learning rate or larger batch)")
            out.append(CurveFinding(trial=name, finding="noisy", message=(
                f"{name}: late in training the objective moves {jitter:.0%} of its range from step to step; {luck}")))

    # still improving: reached at the very end, and the last 20% still made real progress
    if steps[-1] >= 0.95 * max_steps:
        k = max(2, int(0.2 * n))
        gain = (y[-k] - y[-1]) / span
        if best_i >= n - 2 and gain > STILL:
            out.append(CurveFinding(trial=name, finding="stillImproving", message=(
                f"{name}: still improving at the last step ({gain:.0%} of its range over the last {k} points); "
                "more steps would likely help")))

    # saturated early: within 2% of its best by 40% of training, and flat afterwards
    close = np.nonzero(y - y[best_i] <= 0.02 * span)[0]
    if close.size and steps[close[0]] <= 0.4 * steps[-1] and not any(f.finding == "overfitting" for f in out):
        if float(np.ptp(y[close[0]:])) <= 0.05 * span:
            out.append(CurveFinding(trial=name, finding="saturatedEarly", message=(
                f"{name}: reached its best level by step {int(steps[close[0]])} of {int(steps[-1])}; "
                "fewer steps would do")))
    return out


# what the Round-wide summary says of each problem, the verb of its regions, and what to do
_SUMMARIZED = {
    "overfitting": (f"overfit (best value before the last 20% of their points, then worse by ≥ {OVERFIT:.0%} of "
                    "their curve's range)", "overfit", "consider regularization or fewer steps"),
    "stillImproving": ("were still improving at their last step", "were still improving",
                       "more steps would likely help"),
    "noisy": (f"move ≥ {NOISY:.0%} of their curve's range from step to step late in training", "were noisy late",
              "the value a trial is judged by may be luck"),
}


def round_curves(params: list[Parameter], trials: list[Trial], direction: str, max_steps: int,
                 strategy: str = "best") -> list[CurveSummary]:
    """The curve problems of the whole Round, beyond the top trials: "7 of 20 trials overfit
    (...); all 6 trials with weight_decay <= 9.5e-05 overfit". Ended search trials (stopped
    ones too: a rule stops an overfitting trial) with enough points to judge; a problem is
    summarized when at least two trials show it."""
    judged = [t for t in trials if t.spec.purpose == "search" and phase_of(t) in ("Succeeded", "EarlyStopped")
              and len(_points(t)) >= MIN_POINTS]
    found = {t.metadata.name: {f.finding for f in curve_findings(t, direction, max_steps, strategy)} for t in judged}
    out = []
    for finding, (what, verb, advice) in _SUMMARIZED.items():
        hit = [t for t in judged if finding in found[t.metadata.name]]
        if len(hit) < 2:
            continue
        where = [w for p in params if (w := region(p, judged, lambda t: finding in found[t.metadata.name]))]
        out.append(CurveSummary(finding=finding, count=len(hit), of=len(judged), regions=where, message="; ".join(
            [f"{len(hit)} of {len(judged)} trials {what}", *(f"{w} {verb}" for w in where), advice])))
    return out


def curves_skipped(succeeded: list[Trial]) -> str | None:
    """One line naming the succeeded trials whose curves are too short to judge (best first)."""
    short = [t for t in succeeded if len(_points(t)) < MIN_POINTS]
    if not short:
        return None
    names = ", ".join(t.metadata.name for t in short[:3]) + (f" and {len(short) - 3} more" if len(short) > 3 else "")
    return (f"curve checks skipped for {len(short)} of {len(succeeded)} succeeded trials ({names}): "
            f"fewer than {MIN_POINTS} points on their curves")


def step_findings(trials: list[Trial], max_steps: int) -> list[CurveFinding]:
    """Do the trials count steps as maxSteps does? Curve fitting predicts the value at
    maxSteps and decides nothing past it, and a trial reads maxSteps as how long to train
    (KUBETUNE_MAX_STEPS). Training that counts iterations where maxSteps counts epochs, or
    that ignores maxSteps, leaves curve fitting blind or extrapolating to a step no trial
    reaches, without any error: this says so."""
    fix = (f"set spec.maxSteps to the step the training ends at, or train for KUBETUNE_MAX_STEPS "
           f"steps (now {max_steps})")
    last = {t.metadata.name: last_step(t.status) for t in trials}
    if last and max(last.values()) > max_steps:
        name = max(last, key=last.__getitem__)
        return [CurveFinding(trial=name, finding="stepsBeyondMaxSteps", message=(
            f"{name} reported step {last[name]}, beyond maxSteps {max_steps}: early stopping predicts the value "
            f"at step {max_steps} and decides nothing after it; {fix}"))]
    done = [t for t in trials if t.spec.purpose == "search" and t.status.phase == "Succeeded" and last[t.metadata.name]]
    if len(done) >= 3 and max(last[t.metadata.name] for t in done) < 0.8 * max_steps:
        name = max((t.metadata.name for t in done), key=last.__getitem__)
        return [CurveFinding(trial=name, finding="endedBeforeMaxSteps", message=(
            f"all {len(done)} succeeded trials ended by step {last[name]} ({name}) of maxSteps {max_steps}: "
            f"early stopping extrapolates to a step no trial reaches; {fix}"))]
    return []
