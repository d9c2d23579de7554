"""Calibrate extrapolations on the Round's own finished trials.

Raw fits are overconfident, and on real curves mostly pessimistic: curves keep improving
longer than the families assume. So a prediction is judged by how the same extrapolation
fared on finished trials that looked like this one at the same step (they stood nearest
on the objective then: their best value so far, or their latest values): the gain each
was extrapolated to make from there, and the gain it really made. Gains are measured on
a Scale that fits the metric: above a floor (a loss, an error rate), curves improve by
factors, so in log distance to the floor.

Two models of the error, averaged, each a Student-t prediction interval for one more
trial:
- offset: the extrapolated gain is right up to a constant (the look-alikes' mean error);
- linear: the achieved gain is a line in the extrapolated one, so where extrapolations
  carry little information (a noisy accuracy early on) the look-alikes' own gains decide.
A handful of look-alikes cannot tell them apart, so a trial is stopped only when both
find it hopeless. And the look-alikes are counted (`Calibration.beating`): a smooth
interval gives a few big late gains among many small ones almost no weight.

Each interval has two halves, each as wide as the errors on its side: the chance to beat
the best depends on how much better than expected look-alikes ended (late bloomers), not
on how much worse one ended (a spike, a collapse). The better half can be narrowed
(`better_half` below 1): the look-alikes are finished trials, the ones that kept
improving. Tuned on one task (digits), a better half at 0.65 of its width with thresholds
lowered to match stopped the best configuration of tasks it had not seen; chosen leave
one task out over six tasks (bench/early_stopping.py), the default is the full width
(BETTER_HALF = 1.0) with lower thresholds (see CurveFitRule).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from .base import Oriented, Strategy, final, level
from .extrapolation import MIN_POINTS, predict_finals
from .remembered import Remembered

MIN_CALIBRATION = 5  # finished trials needed before predictions are calibrated
NEIGHBOURS = (8, 24)  # how many look-alike finished trials calibrate one prediction (at least, at most)
BETTER_HALF = 1.0  # the better half of an interval, as a share of the look-alikes' errors on that side


def infer_floor(values: list[float] | np.ndarray, direction: str) -> float | None:
    """The bound a metric cannot pass, in the rules' lower-is-better orientation, inferred
    from every value the Round has seen: a minimized metric that was never negative has a
    floor of 0 (losses, error rates, RMSE); a maximized one that stayed within [0, 1] has a
    ceiling of 1 (accuracy, AUC, F1), within [0, 100] a ceiling of 100 (percentages)."""
    if not len(values):
        return None
    lo, hi = float(np.min(values)), float(np.max(values))
    if direction == "minimize":
        return 0.0 if lo >= 0 else None
    if hi <= 0 and lo >= -1:  # oriented: the negated metric
        return -1.0
    if hi <= 0 and lo >= -100:
        return -100.0
    return None


def quantum(values: list[float] | np.ndarray) -> float:
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
    def of(values: list[float] | np.ndarray, direction: str) -> "Scale":
        floor = infer_floor(values, direction)
        if floor is None:
            return Scale(None)
        v = np.asarray(values, dtype=float)
        above = v[v > floor] - floor
        # half the smallest distance seen keeps a value on the floor finite (half a quantum
        # for a quantized metric such as accuracy)
        return Scale(floor, 0.5 * float(above.min()) if above.size else 1e-9)

    def to(self, v: float) -> float:
        return v if self.floor is None else math.log(max(v - self.floor, 0.0) + self.eps)

    def back(self, z: float) -> float:
        return z if self.floor is None else self.floor + max(0.0, math.exp(z) - self.eps)

    def spread(self, v: float, sd: float) -> float:
        """A small scatter `sd` around the value `v`, on the Scale."""
        return sd if self.floor is None else sd / (max(v - self.floor, 0.0) + self.eps)


def _stood(curve: list[tuple[int, float]], step: int, strategy: Strategy) -> float | None:
    """Where a finished curve stood on the objective at `step`, if it can be cut there
    (enough points up to the step, some after it). No fit: cheap for every finished trial."""
    k = curve.upto(step) if isinstance(curve, Oriented) else sum(1 for s, _ in curve if s <= step)
    if k < MIN_POINTS or k == len(curve):
        return None
    return level(curve, step, strategy)


_fits = Remembered(65536)  # extrapolations of finished curves remembered, ~0.2 KB each


def _extrapolated(
    curves: list[list[tuple[int, float]]], step: int, final_step: int, floor: float | None, strategy: Strategy
) -> list[float | None]:
    """The final objective extrapolated from each finished curve cut at `step`; each is fitted
    once, and those not fitted yet together (extrapolation.predict_finals). Remembered by a
    digest of the curve, not the curve: the operator builds new curve objects for every
    decision, and keeping one per finished trial and step held ~0.5 GB at 1000 finished
    trials of 100 steps."""
    keys = [(hash(tuple(c)), len(c), c[-1], step, final_step, floor, strategy) for c in curves]
    out = [_fits.get(key, _fits) for key in keys]  # one lookup each: another thread may evict between two
    todo = [i for i, hit in enumerate(out) if hit is _fits]
    cuts = [[(s, v) for s, v in curves[i] if s <= step] for i in todo]
    for i, upto, pred in zip(todo, cuts, predict_finals(cuts, final_step, floor)):
        out[i] = None if pred is None else pred.objective(upto, final_step, floor, strategy)
        _fits.put(keys[i], out[i])
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class Calibration:
    """How the extrapolation fared on `n` look-alike finished trials cut at the same step:
    the gain each was extrapolated to make from where it stood then, and the gain it really
    made, on the Scale (lower is better; with the best value as objective both are <= 0)."""

    extrapolated: np.ndarray
    achieved: np.ndarray
    better_half: float = BETTER_HALF

    @property
    def n(self) -> int:
        return len(self.achieved)

    def beating(self, position: float, target: float) -> int:
        """How many look-alikes made a gain that would take a trial standing at `position`
        to `target` or better (on the Scale). Plateaus that end in a jump, and curves whose
        best value is a late lucky draw, make the outcomes of look-alikes lumpy: most gain
        little, a few a lot. A smooth interval over them gives those few almost no
        weight; counting them does not."""
        return int(np.count_nonzero(position + self.achieved <= target))

    def distribution(self, position: float, predicted: float, noise: float = 0.0) -> "Mixture":
        """The final objective on the Scale of a trial that stands at `position`
        and whose extrapolation is `predicted`: the average of two models of how the
        extrapolation errs, each a prediction interval for one more trial. With a handful
        of look-alikes neither can be trusted alone, and a trial is hopeless only when
        both say so. `noise`: the scatter of the trial's own single measurements on the
        Scale, when its objective is one of them (the last value): look-alikes are chosen
        by where they stood, not by how noisy they were, so a noisy trial's own scatter
        widens both halves."""
        gain = predicted - position
        parts = (self.offset(gain).shifted(position), self.linear(gain).shifted(position))
        return Mixture(tuple(p.widened(noise) for p in parts))

    def offset(self, gain: float) -> "TwoPieceT":
        """The extrapolated gain is right up to a constant: corrected by the look-alikes'
        mean error (a line of slope 1)."""
        return self._line(gain, slope=1.0)

    def linear(self, gain: float) -> "TwoPieceT":
        """The achieved gain is a linear function of the extrapolated one (least squares):
        where extrapolations of this metric at this step carry little information (a noisy
        accuracy early on), the slope falls towards 0 and the look-alikes' own gains decide;
        where they carry a lot, it stays near 1. The slope is kept within [0, 2]."""
        return self._line(gain, slope=None)

    def _line(self, gain: float, slope: float | None) -> "TwoPieceT":
        """The achieved gain at `gain` on a line through the look-alikes' means, with the
        given slope or (None) the least-squares one, and a Student-t prediction interval
        whose halves are as wide as the residuals on each side (the better one narrowed by
        BETTER_HALF: finished look-alikes are survivors)."""
        x, y, n = self.extrapolated, self.achieved, self.n
        xm, ym = float(x.mean()), float(y.mean())
        sxx = float(((x - xm) ** 2).sum())
        fitted = slope is None and sxx > 1e-12
        if slope is None:
            slope = min(max(float(((x - xm) * (y - ym)).sum()) / sxx, 0.0), 2.0) if fitted else 0.0
        r = y - ym - slope * (x - xm)
        dof = n - 2 if fitted else n - 1
        widen = math.sqrt(1.0 + 1.0 / n + ((gain - xm) ** 2 / sxx if fitted else 0.0))
        return TwoPieceT(dof, ym + slope * (gain - xm), _semi_deviation(r[r < 0], dof) * widen * self.better_half,
                         _semi_deviation(r[r > 0], dof) * widen)


@dataclass(frozen=True)
class TwoPieceT:
    """A Student-t split at its centre: half the mass on each side, each half with its own
    scale."""

    df: int
    centre: float
    below: float
    above: float

    def shifted(self, by: float) -> "TwoPieceT":
        return TwoPieceT(self.df, self.centre + by, self.below, self.above)

    def widened(self, sd: float) -> "TwoPieceT":
        """Each half with an independent error of standard deviation `sd` added."""
        return TwoPieceT(self.df, self.centre, math.hypot(self.below, sd), math.hypot(self.above, sd))

    def cdf(self, x: float) -> float:
        side = self.below if x < self.centre else self.above
        return float(special.stdtr(self.df, (x - self.centre) / side))

    def interval(self, mass: float) -> tuple[float, float]:
        q = float(special.stdtrit(self.df, 0.5 + mass / 2))
        return self.centre - q * self.below, self.centre + q * self.above


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of distributions on the Scale."""

    parts: tuple[TwoPieceT, ...]

    def cdf(self, x: float) -> float:
        return sum(p.cdf(x) for p in self.parts) / len(self.parts)

    @functools.cached_property
    def _support(self) -> tuple[float, float]:
        """Where every quantile lies: from the lowest part's lower end to the highest's
        upper end (all but 1e-9 of each part's mass)."""
        ends = [p.interval(1.0 - 1e-9) for p in self.parts]
        return min(lo for lo, _ in ends), max(hi for _, hi in ends)

    def quantile(self, q: float) -> float:
        return float(optimize.brentq(lambda z: self.cdf(z) - q, *self._support, xtol=1e-9))

    def interval(self, mass: float) -> tuple[float, float]:
        return self.quantile((1.0 - mass) / 2), self.quantile((1.0 + mass) / 2)


def _semi_deviation(deviations: np.ndarray, dof: int) -> float:
    """The root of twice the mean squared deviation on one side: a standard deviation when
    the deviations are symmetric."""
    return math.sqrt(2.0 * float((deviations**2).sum()) / dof) + 1e-9


def calibrate(
    finished: list[list[tuple[int, float]]], step: int, final_step: int, scale: Scale, position: float,
    strategy: Strategy = "best", better_half: float = BETTER_HALF,
) -> Calibration | None:
    """How the same extrapolation fared on the Round's finished trials cut at `step`, from
    the ones that stood nearest to `position` on the objective at that step (on the
    Scale): a trial is judged by how curves that looked like it really ended. None until
    enough trials have finished."""
    # Look-alikes are chosen by where they stood, which needs no fit; only those are
    # extrapolated (a Round with thousands of finished trials fits a couple dozen).
    candidates = []
    for c in finished:
        stood = _stood(c, step, strategy)
        if stood is not None:
            then = scale.to(stood)
            candidates.append((abs(then - position), then, c))
    if len(candidates) < MIN_CALIBRATION:
        return None
    k = min(len(candidates), max(NEIGHBOURS[0], min(NEIGHBOURS[1], round(2 * math.sqrt(len(candidates))))))
    nearest: list[tuple[float, float]] = []
    ranked = sorted(candidates, key=lambda r: r[0])
    while len(nearest) < k and ranked:  # the k nearest that extrapolate, fitted together
        batch, ranked = ranked[: k - len(nearest)], ranked[k - len(nearest):]
        values = _extrapolated([c for _, _, c in batch], step, final_step, scale.floor, strategy)
        for (_, then, c), extrapolated in zip(batch, values):
            if extrapolated is not None:  # (a fit of finite points practically always succeeds)
                nearest.append((scale.to(extrapolated) - then, scale.to(final(c, strategy)) - then))
    if len(nearest) < MIN_CALIBRATION:
        return None
    return Calibration(extrapolated=np.array([r[0] for r in nearest]), achieved=np.array([r[1] for r in nearest]),
                       better_half=better_half)
