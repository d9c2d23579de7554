"""Trials early stopping may have cut short: a stopped trial whose extrapolated 90%
interval still reached the best value at the stop was a likely late bloomer (a curve that
is mediocre early and overtakes late, as a warm-up or a step decay makes them). No later
analysis can recover such a trial's final value; re-running it to the end can."""
from __future__ import annotations

import math

from ..api import Trial
from .model import CurveFinding

SHOWN = 5  # flagged trials named one by one, the likeliest first


def reached_best(evidence: dict[str, float], direction: str) -> bool:
    """Whether a curve-fitting stop's 90% interval still reached the best value it was
    judged against (lower end at or below it when minimizing, upper end at or above it
    when maximizing)."""
    try:
        low, high, best = evidence["lower"], evidence["upper"], evidence["best"]
    except KeyError:  # another rule's evidence: nothing was extrapolated
        return False
    if not all(math.isfinite(v) for v in (low, high, best)):
        return False
    return low <= best if direction == "minimize" else high >= best


def late_bloomers(trials: list[Trial], direction: str) -> list[CurveFinding]:
    """One finding per early-stopped search trial whose stop evidence left it a real chance
    (its interval reached the best value), the likeliest first (at most SHOWN; the last
    says how many more)."""
    flagged = []
    for t in trials:
        stop = t.status.stop_reason
        if t.spec.purpose != "search" or t.status.phase != "EarlyStopped" or stop is None:
            continue
        if reached_best(stop.evidence, direction):
            flagged.append((stop.evidence.get("probability", 0.0), t))
    flagged.sort(key=lambda f: (-f[0], f[1].metadata.name))
    out = []
    for i, (chance, t) in enumerate(flagged[:SHOWN]):
        e, name = t.status.stop_reason.evidence, t.metadata.name  # type: ignore[union-attr]
        n = int(e.get("calibrationTrials", 0))
        basis = f"calibrated on {n} finished trials like it" if n else "not yet calibrated"
        more = len(flagged) - SHOWN if i == SHOWN - 1 else 0
        out.append(CurveFinding(trial=name, finding="likelyLateBloomer", message=(
            f"{name}: stopped at step {t.status.stop_reason.step} although its 90% interval "  # type: ignore[union-attr]
            f"({e['lower']:.6g} to {e['upper']:.6g}) still reached the best value {e['best']:.6g} "
            f"(chance to beat it {100 * chance:.3g}%, {basis}); it may be a late bloomer: re-run it to the end "
            "before trusting the ranking, or lower earlyStopping.medianProbability (and probability)"
            + (f" ({more} more stopped trials like it)" if more > 0 else ""))))
    return out
