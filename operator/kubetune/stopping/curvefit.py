"""Curve fitting: extrapolate a partial learning curve to the final step.

In the spirit of Domhan, Springenberg & Hutter (2015) and NNI's curve-fitting
assessor, with two changes that measured curves ask for:
- an ensemble of four parametric families, each fitted exactly over a grid of
  shapes with Huber weights, weighted by BIC; the spread between families is
  part of the uncertainty;
- calibration: raw fits are overconfident and pessimistic (curves keep improving
  longer than the fits assume), so the predictive distribution is shifted and
  widened by what the same fits got wrong on the Round's finished trials, cut at
  the same fraction of training. Without enough finished trials the interval is
  widened by a conservative default.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .base import Curve, Decision, best_so_far, oriented

DEFAULT_SCALE = 3.0  # interval inflation (in sd) before the Round has finished trials to calibrate on
MIN_POINTS = 5
EARLY_FRACTION = 0.25  # before this fraction of training, stopping needs proportionally stronger evidence


# Each family is y = c + a * g_b(t), t = step / final_step, a >= 0: for a fixed shape b the
# fit is linear in (c, a), so every b of a grid is solved in closed form at once (variable
# projection), then refined with Huber weights against outliers. Fast (well under 1 ms per
# family) and never stuck in a local minimum the way iterative bounded fits can be.
FAMILIES = {
    "pow3": (lambda t, b: np.power(t, -b), np.geomspace(0.01, 3.0, 48)),
    "exp3": (lambda t, b: np.exp(-b * t), np.geomspace(0.05, 60.0, 48)),
    "hyperbolic": (lambda t, b: 1.0 / (1.0 + b * t), np.geomspace(0.05, 500.0, 48)),
    "logpower": (lambda t, b: np.power(np.log1p(50.0 * t) + 1.0, -b), np.geomspace(0.01, 5.0, 48)),
}


@dataclass(frozen=True)
class Prediction:
    mean: float
    sd: float
    families: int


def _fit_family(g: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of y = c + a*g for every row of g (one row per b); a >= 0.
    Returns (c, a, weighted SSE) per row."""
    sw = w.sum()
    gm = (g * w).sum(axis=1) / sw
    ym = float((y * w).sum() / sw)
    gc = g - gm[:, None]
    var = (w * gc * gc).sum(axis=1)
    cov = (w * gc * (y - ym)).sum(axis=1)
    a = np.where(var > 1e-15, cov / np.maximum(var, 1e-15), 0.0)
    a = np.maximum(a, 0.0)
    c = ym - a * gm
    r = y[None, :] - (c[:, None] + a[:, None] * g)
    return c, a, (w * r * r).sum(axis=1)


def predict_final(curve: list[tuple[int, float]], final_step: int) -> Prediction | None:
    """Predicted value at `final_step` (lower is better) with its raw standard deviation."""
    if len(curve) < MIN_POINTS:
        return None
    steps = np.array([s for s, _ in curve], dtype=float)
    ys = np.array([v for _, v in curve], dtype=float)
    scale = float(np.ptp(ys)) or (abs(float(ys.mean())) or 1.0)
    offset = float(ys[-1])
    y = (ys - offset) / scale
    t = steps / float(final_step)
    n = len(y)
    preds, bics, resid = [], [], []
    for shape, grid in FAMILIES.values():
        with np.errstate(all="ignore"):
            g = shape(t[None, :], grid[:, None])
            g1 = shape(np.array([1.0])[None, :], grid[:, None])[:, 0]
        ok = np.isfinite(g).all(axis=1) & np.isfinite(g1)
        if not ok.any():
            continue
        g, g1 = g[ok], g1[ok]
        w = np.ones(n)
        for _ in range(2):  # a Huber reweighting pass: noisy spikes do not steer the fit
            c, a, sse = _fit_family(g, y, w)
            k = int(np.argmin(sse))
            r = y - (c[k] + a[k] * g[k])
            mad = float(np.median(np.abs(r))) * 1.4826 or 1e-9
            u = np.abs(r) / (1.345 * mad)
            w = np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12))
        pred = float(c[k] + a[k] * g1[k])
        sse_k = float(np.sum((y - (c[k] + a[k] * g[k])) ** 2))
        if not math.isfinite(pred) or not math.isfinite(sse_k):
            continue
        preds.append(pred)
        resid.append(math.sqrt(sse_k / max(1, n - 3)))
        bics.append(n * math.log(sse_k / n + 1e-12) + 3 * math.log(n))
    if not preds:
        return None
    b = np.array(bics)
    wts = np.exp(-(b - b.min()) / 2.0)
    wts /= wts.sum()
    p = np.array(preds)
    mean = float(np.sum(wts * p))
    spread = float(math.sqrt(np.sum(wts * (p - mean) ** 2)))
    noise = float(np.sum(wts * np.array(resid)))
    # extrapolating further is less certain: grow the noise term with the distance left
    remaining = max(0.0, 1.0 - float(t[-1]))
    sd = math.sqrt(spread**2 + (noise * (1.0 + 2.0 * remaining)) ** 2) + 1e-9
    return Prediction(mean=mean * scale + offset, sd=sd * scale, families=len(preds))


def reach(curve: list[tuple[int, float]], pred: Prediction) -> float:
    """How far the fit expects the curve to still improve: the predicted drop below its best
    so far, or the prediction's own uncertainty when that is larger (plateaus, noise)."""
    best = min(v for _, v in curve)
    return max(best - pred.mean, pred.sd, 1e-12)


@functools.lru_cache(maxsize=4096)
def _calibration_error(curve: tuple[tuple[int, float], ...], cut: float, final_step: int) -> float | None:
    """On a finished curve cut at fraction `cut`: the improvement that really came, in units
    of the improvement the fit expected (1: as predicted; above 1: the curve kept improving
    longer than the fit assumed, the usual surprise)."""
    pts = list(curve)
    last = pts[-1][0]
    upto = [(s, v) for s, v in pts if s <= cut * last]
    if len(upto) < MIN_POINTS or len(upto) == len(pts):
        return None
    pred = predict_final(upto, final_step)
    if pred is None:
        return None
    truth = min(v for _, v in pts)
    return (min(v for _, v in upto) - truth) / reach(upto, pred)


@dataclass(frozen=True)
class Calibration:
    """How much of the expected improvement really came, on finished trials: `low` and
    `high` are the 5% and 95% quantiles of that ratio (see `_calibration_error`)."""

    low: float
    high: float
    n: int


UNCALIBRATED = Calibration(low=0.0, high=DEFAULT_SCALE, n=0)
"""Before the Round has finished trials: anything from no further improvement to three
times the improvement (or uncertainty) the fit expects."""
MIN_CALIBRATION = 5


def calibrate(finished: list[list[tuple[int, float]]], fraction: float, final_step: int, limit: int = 16) -> Calibration:
    """How the raw predictions erred on the Round's best finished trials, cut at the same
    fraction of training. The best ones, because decisions matter near the best; their
    errors are mostly optimistic surprises (curves that kept improving)."""
    cut = max(0.05, round(fraction * 20) / 20)  # bucket the fraction so the work is cached
    ranked = sorted(finished, key=lambda c: min(v for _, v in c))[:limit]
    zs = [z for c in ranked if (z := _calibration_error(tuple(c), cut, final_step)) is not None and math.isfinite(z)]
    if len(zs) < MIN_CALIBRATION:
        return Calibration(UNCALIBRATED.low, UNCALIBRATED.high, len(zs))
    arr = np.array(zs)
    widen = 1.0 + 1.0 / math.sqrt(len(zs))  # few samples: their extreme quantiles are too narrow
    lo, hi = float(np.quantile(arr, 0.05)), float(np.quantile(arr, 0.95))
    mid = (lo + hi) / 2
    return Calibration(low=max(0.0, mid + (lo - mid) * widen), high=max(1.0, mid + (hi - mid) * widen), n=len(zs))


@dataclass(frozen=True)
class Assessment:
    """A calibrated prediction of the trial's final objective (lower is better)."""

    step: int
    mean: float  # predicted final objective: the better of the best so far and the extrapolation
    sd: float
    best: float  # the best value seen in the Round
    p_beat: float
    calibration_trials: int

    def interval(self, z: float = 1.645) -> tuple[float, float]:
        return self.mean - z * self.sd, self.mean + z * self.sd


@dataclass(frozen=True)
class CurveFitRule:
    """Stop a trial when its extrapolated final value is very unlikely to beat the best
    value seen in the Round.

    final_step: the step training ends at (the Study's or Round's maxSteps).
    probability: stop when P(beat the best) falls below this.
    margin: relative margin the trial must beat the best by to count.
    start_step: no decision before this step.
    min_trials: other trials with data needed before any stop.
    interval: decide only every this many steps.
    """

    final_step: int
    probability: float = 0.05
    margin: float = 0.0
    start_step: int = 5
    min_trials: int = 3
    interval: int = 1

    def assess(
        self, curve: Curve, others: list[Curve], direction: str, finished: list[Curve] | None = None
    ) -> Assessment | None:
        """The calibrated prediction behind a decision (also when the trial is kept)."""
        mine = oriented(curve, direction)
        if len(mine) < MIN_POINTS:
            return None
        step = mine[-1][0]
        if step < self.start_step or step >= self.final_step or (step - self.start_step) % self.interval:
            return None
        peers = [p for p in (oriented(c, direction) for c in others) if p]
        if len(peers) < self.min_trials:
            return None
        best = min(min(v for _, v in p) for p in peers)
        raw = predict_final(mine, self.final_step)
        if raw is None:
            return None
        done = [d for d in (oriented(c, direction) for c in (finished or [])) if d]
        cal = calibrate(done, step / self.final_step, self.final_step)
        mine_best = best_so_far(mine, step)
        assert mine_best is not None
        # the final value is the best so far minus the improvement still to come: a normal
        # whose 5-95% range is the calibrated range of improvements
        gain = reach(mine, raw)
        mean = mine_best - gain * (cal.low + cal.high) / 2
        sd = gain * max(1e-6, (cal.high - cal.low) / (2 * 1.645))
        target = best - self.margin * abs(best)
        p_beat = 1.0 if mine_best <= target else float(stats.norm.cdf((target - mean) / sd))
        return Assessment(step=step, mean=mean, sd=sd, best=best, p_beat=p_beat, calibration_trials=cal.n)

    def threshold(self, step: int) -> float:
        """The stop threshold at a step: the full `probability` from a quarter of training on,
        proportionally stricter before, because extrapolating from the first few points is
        where fits stop late bloomers."""
        return self.probability * min(1.0, step / (EARLY_FRACTION * self.final_step))

    def decide(
        self, curve: Curve, others: list[Curve], direction: str, finished: list[Curve] | None = None
    ) -> Decision | None:
        a = self.assess(curve, others, direction, finished)
        if a is None or a.p_beat >= self.threshold(a.step):
            return None
        sign = 1.0 if direction == "minimize" else -1.0
        low, high = sorted(sign * x for x in a.interval())
        return Decision(
            rule="curvefit",
            step=a.step,
            message=(
                f"at step {a.step} the curve extrapolates to {sign * a.mean:.6g} at step {self.final_step} "
                f"(90% interval {low:.6g} to {high:.6g}); the chance to beat the best value "
                f"{sign * a.best:.6g} is {a.p_beat:.1%}"
            ),
            evidence={
                "predicted": sign * a.mean, "lower": low, "upper": high, "best": sign * a.best,
                "probability": a.p_beat, "calibrationTrials": float(a.calibration_trials),
            },
        )
