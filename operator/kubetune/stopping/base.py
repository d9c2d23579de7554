"""What every stopping rule shares: curves, orientation, decisions."""
from __future__ import annotations

import bisect
import itertools
import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np

from .remembered import Remembered

Curve = Sequence[tuple[int, float]]
Strategy = Literal["best", "last"]  # which reported value is a trial's objective
STRATEGIES: tuple[Strategy, ...] = ("best", "last")
RECENT = 3  # with the last value as objective, a curve stands at the median of its latest values


@dataclass(frozen=True)
class Decision:
    """Stop this trial, and why (the evidence is written to Trial.status.stopReason)."""

    rule: str
    step: int
    message: str
    evidence: dict[str, float] = field(default_factory=dict)


class Oriented(list):
    """A curve's finite points by step, lower is better, with what the rules read of it at
    every decision kept beside them: the steps, the best value and the sum of the values up
    to each point, and the values as an array."""

    __slots__ = ("steps", "lows", "sums", "array")

    def __init__(self, points: list[tuple[int, float]]) -> None:
        super().__init__(points)
        self.steps = [s for s, _ in points]
        values = [v for _, v in points]
        self.lows = list(itertools.accumulate(values, min))
        self.sums = list(itertools.accumulate(values))
        self.array = np.asarray(values, dtype=float)

    def upto(self, step: int) -> int:
        """How many points lie at or before `step`."""
        return bisect.bisect_right(self.steps, step)


def oriented(curve: Curve, direction: str) -> Oriented:
    """The finite points of a curve, sorted by step, negated when maximizing, so lower is
    always better inside the rules.

    Computed once per curve object and length. Every decision reads every peer's curve,
    and peers' curves are the same objects from one decision to the next (the operator
    converts each Trial's curve once per version, the benchmark grows one list per trial):
    converting them anew cost more than the decision itself. An entry holds its curve, so
    the curve's id cannot be reused while it is remembered; a curve grown in place is
    converted again (its length changed). Curves are appended to or replaced, never
    edited in place."""
    if isinstance(curve, Oriented):
        return curve
    key = id(curve)
    hit = _ORIENTED.get(key)
    if hit is not None and hit[0] is curve and hit[1] == len(curve) and hit[2] == direction:
        return hit[3]
    sign = 1.0 if direction == "minimize" else -1.0
    by_step = {int(s): sign * float(v) for s, v in curve if math.isfinite(v)}
    points = Oriented(sorted(by_step.items()))
    _ORIENTED.put(key, (curve, len(curve), direction, points), size=len(curve))
    return points


# by curve id: (the curve, its length then, direction, its points); within a budget of points
# (~0.2 KB each with their curve): 5000 trials of 100 steps
_ORIENTED = Remembered(500_000)


def running_averages(curves: Iterable[Curve], direction: str, step: int) -> list[float]:
    """The running averages up to `step` of the curves that reached it: the median rule's
    yardstick (curve fitting's running-average gate reads it too)."""
    out = []
    for curve in curves:
        pts = oriented(curve, direction)  # remembered per curve, with its running sums
        if pts and pts.steps[-1] >= step:
            k = pts.upto(step)
            if k:
                out.append(pts.sums[k - 1] / k)
    return out


def best_so_far(curve: list[tuple[int, float]], step: int) -> float | None:
    if isinstance(curve, Oriented):
        k = curve.upto(step)
        return curve.lows[k - 1] if k else None
    values = [v for s, v in curve if s <= step]
    return min(values) if values else None


def check_strategy(strategy: str) -> None:
    """Refuse an objective that is neither the best nor the last value, naming both."""
    if strategy not in STRATEGIES:
        raise ValueError(f"objective must be one of {', '.join(STRATEGIES)}, not {strategy!r}")


def level(curve: list[tuple[int, float]], step: int, strategy: Strategy = "best") -> float | None:
    """Where an oriented curve stands at `step` on the objective (lower is better): its
    best value so far, or, when the objective is the last value, the median of its latest
    RECENT values up to the step (one spike or one lucky draw is not where it stands)."""
    if strategy == "best":
        return best_so_far(curve, step)
    if isinstance(curve, Oriented):
        k = curve.upto(step)
        values = [v for _, v in curve[max(0, k - RECENT):k]]
    else:
        values = [v for s, v in curve if s <= step]
    return statistics.median(values[-RECENT:]) if values else None


def final(curve: list[tuple[int, float]], strategy: Strategy = "best") -> float:
    """A finished oriented curve's objective: its best value, or its last."""
    if strategy == "best":
        return curve.lows[-1] if isinstance(curve, Oriented) else min(v for _, v in curve)
    return curve[-1][1]
