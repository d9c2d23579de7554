"""Calibrate extrapolations on the Round's own finished trials.

Raw fits are overconfident, and on real curves mostly pessimistic: curves keep improving
longer than the families assume. So a prediction is corrected by how the same
extrapolation erred on finished trials that looked like this one at the same step (their
best value then was nearest), and its interval is a Student-t prediction interval from
those errors. Errors are measured on a Scale that fits the metric: above a floor (a loss,
an error rate), curves improve by factors, so in log distance to the floor.

The interval has two halves, each as wide as the errors on its side were: the chance to
beat the best depends on how much better than extrapolated look-alikes ended (late
bloomers), not on how much worse one ended (a spike, a collapse). With one symmetric
spread, a single finished curve that ended far worse than its cut promised widened every
interval on the better side too and kept hopeless trials running.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .extrapolation import MIN_POINTS, predict_final

MIN_CALIBRATION = 5  # finished trials needed before predictions are calibrated
NEIGHBOURS = (8, 24)  # how many look-alike finished trials calibrate one prediction (at least, at most)


def infer_floor(values: list[float], direction: str) -> float | None:
    """The bound a metric cannot pass, in the rules' lower-is-better orientation, inferred
    from every value the Round has seen: a minimized metric that was never negative has a
    floor of 0 (losses, error rates, RMSE); a maximized one that stayed within [0, 1] has a
    ceiling of 1 (accuracy, AUC, F1), within [0, 100] a ceiling of 100 (percentages)."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    if direction == "minimize":
        return 0.0 if lo >= 0 else None
    if hi <= 0 and lo >= -1:  # oriented: the negated metric
        return -1.0
    if hi <= 0 and lo >= -100:
        return -100.0
    return None


def quantum(values: list[float]) -> float:
    """The step between the values a quantized metric can take (accuracy over N examples
    moves in steps of 1/N), or 0 for a continuous one."""
    distinct = np.unique(np.round(np.asarray(values, dtype=float), 12))
    if len(distinct) < 5:
        return 0.0
    gaps = np.diff(distinct)
    q = float(gaps.min())
    if q <= 1e-9 * max(1.0, float(np.abs(distinct).max())):
        return 0.0
    multiples = gaps / q
    return q if bool(np.all(np.abs(multiples - np.round(multiples)) <= 0.1)) else 0.0


@dataclass(frozen=True)
class Scale:
    """Where prediction errors are measured: log distance to the metric's floor when it has
    one, else the metric's own units."""

    floor: float | None
    eps: float = 0.0

    @staticmethod
    def of(values: list[float], direction: str) -> "Scale":
        floor = infer_floor(values, direction)
        if floor is None:
            return Scale(None)
        above = [v - floor for v in values if v > floor]
        # half the smallest distance seen keeps a value on the floor finite (half a quantum
        # for a quantized metric such as accuracy)
        return Scale(floor, 0.5 * min(above) if above else 1e-9)

    def to(self, v: float) -> float:
        return v if self.floor is None else math.log(max(v - self.floor, 0.0) + self.eps)

    def back(self, z: float) -> float:
        return z if self.floor is None else self.floor + max(0.0, math.exp(z) - self.eps)


@functools.lru_cache(maxsize=65536)
def _cut(curve: tuple[tuple[int, float], ...], step: int, final_step: int, floor: float | None) -> tuple[float, float] | None:
    """A finished curve as it looked at `step`: (best so far, extrapolated final objective)."""
    upto = [(s, v) for s, v in curve if s <= step]
    if len(upto) < MIN_POINTS or len(upto) == len(curve):
        return None
    pred = predict_final(upto, final_step, floor)
    if pred is None:
        return None
    return min(v for _, v in upto), pred.objective(upto, final_step, floor)


@dataclass(frozen=True)
class Calibration:
    """How the extrapolation erred on `n` look-alike finished trials: the mean of (true final
    objective - extrapolated), on the Scale, and the spread of the errors on each side of it
    (semi-deviations, each scaled to a standard deviation when the errors are symmetric)."""

    bias: float
    below: float  # errors where the trial ended better than corrected: the side that beats
    above: float  # errors where it ended worse
    n: int

    def distribution(self, centre: float) -> "TwoPieceT":
        """The final objective on the Scale: a Student-t prediction interval for one more
        trial around `centre`, each half with its own side's spread."""
        widen = math.sqrt(1.0 + 1.0 / self.n)
        return TwoPieceT(self.n - 1, centre, self.below * widen, self.above * widen)


@dataclass(frozen=True)
class TwoPieceT:
    """A Student-t split at its centre: half the mass on each side, each half with its own
    scale."""

    df: int
    centre: float
    below: float
    above: float

    def cdf(self, x: float) -> float:
        side = self.below if x < self.centre else self.above
        return float(stats.t.cdf((x - self.centre) / side, self.df))

    def interval(self, mass: float) -> tuple[float, float]:
        q = float(stats.t.ppf(0.5 + mass / 2, self.df))
        return self.centre - q * self.below, self.centre + q * self.above


def _semi_deviation(deviations: np.ndarray, n: int) -> float:
    """The root of twice the mean squared deviation on one side: a standard deviation when
    the errors are symmetric."""
    return math.sqrt(2.0 * float((deviations**2).sum()) / (n - 1)) + 1e-9


def calibrate(
    finished: list[list[tuple[int, float]]], step: int, final_step: int, scale: Scale, position: float
) -> Calibration | None:
    """Errors of the same extrapolation on the Round's finished trials cut at `step`, from
    the ones whose best value at that step was nearest to `position` (on the Scale): a
    trial is judged by how curves that looked like it really ended. None until enough
    trials have finished."""
    rows = []
    for c in finished:
        cut = _cut(tuple(c), step, final_step, scale.floor)
        if cut is not None:
            truth = min(v for _, v in c)
            rows.append((abs(scale.to(cut[0]) - position), scale.to(truth) - scale.to(cut[1])))
    if len(rows) < MIN_CALIBRATION:
        return None
    k = min(len(rows), max(NEIGHBOURS[0], min(NEIGHBOURS[1], round(2 * math.sqrt(len(rows))))))
    errors = np.array([e for _, e in sorted(rows, key=lambda r: r[0])[:k]])
    bias = float(errors.mean())
    d = errors - bias
    return Calibration(bias=bias, below=_semi_deviation(d[d < 0], k), above=_semi_deviation(d[d > 0], k), n=k)
