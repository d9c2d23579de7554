"""Training-curve checks for the top trials: what the playbook asks to look at."""
from __future__ import annotations

import numpy as np

from ..api import Trial
from .model import CurveFinding


def curve_findings(trial: Trial, direction: str, max_steps: int, strategy: str = "best") -> list[CurveFinding]:
    """`strategy`: the Study's objective, the best or the last value a trial reports."""
    pts = sorted((p.step, p.value) for p in trial.status.curve)
    if len(pts) < 8:
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
    if best_i < 0.8 * n and worse > 0.10:
        out.append(CurveFinding(trial=name, finding="overfitting", message=(
            f"{name}: the objective was best at step {int(steps[best_i])} and got {worse:.0%} of its range worse by "
            f"step {int(steps[-1])}; consider regularization or fewer steps")))

    # noisy late: step-to-step changes in the last quarter are large compared with the progress made
    tail = y[int(0.75 * n):]
    if len(tail) >= 4:
        jitter = float(np.median(np.abs(np.diff(tail)))) / span
        if jitter > 0.08:
            luck = ("the best value may be luck (try a lower learning rate or larger batch, or judge trials "
                    "by their last value: objective.strategy last)") if strategy == "best" else (
                    "the last value may be luck (try a lower learning rate or larger batch)")
            out.append(CurveFinding(trial=name, finding="noisy", message=(
                f"{name}: late in training the objective moves {jitter:.0%} of its range from step to step; {luck}")))

    # still improving: reached at the very end, and the last 20% still made real progress
    if steps[-1] >= 0.95 * max_steps:
        k = max(2, int(0.2 * n))
        gain = (y[-k] - y[-1]) / span
        if best_i >= n - 2 and gain > 0.05:
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


def step_findings(trials: list[Trial], max_steps: int) -> list[CurveFinding]:
    """Do the trials count steps as maxSteps does? Curve fitting predicts the value at
    maxSteps and decides nothing past it, and a trial reads maxSteps as how long to train
    (KUBETUNE_MAX_STEPS). Training that counts iterations where maxSteps counts epochs, or
    that ignores maxSteps, leaves curve fitting blind or extrapolating to a step no trial
    reaches, without any error: this says so."""
    fix = (f"set spec.maxSteps to the step the training ends at, or train for KUBETUNE_MAX_STEPS "
           f"steps (now {max_steps})")
    last = {t.metadata.name: max([p.step for p in t.status.curve] + [t.status.last_step or 0]) for t in trials}
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
