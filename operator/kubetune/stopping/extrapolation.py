"""Extrapolate a partial learning curve to the final step with parametric families.

Each family is y = c + a * g_b(t), t = step / final_step, a >= 0: for a fixed shape b
the fit is linear in (c, a), so every b of a grid is solved in closed form at once
(variable projection), then refined with Huber weights against outliers. Fast (well
under 1 ms per family) and never stuck in a local minimum the way iterative bounded fits
can be. The families are weighted by BIC; their spread is part of the uncertainty.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .base import Strategy
from .remembered import Remembered

MIN_POINTS = 5

FAMILIES = {
    "pow3": (lambda t, b: np.power(t, -b), np.geomspace(0.01, 3.0, 48)),
    "exp3": (lambda t, b: np.exp(-b * t), np.geomspace(0.05, 60.0, 48)),
    "hyperbolic": (lambda t, b: 1.0 / (1.0 + b * t), np.geomspace(0.05, 500.0, 48)),
    "logpower": (lambda t, b: np.power(np.log1p(50.0 * t) + 1.0, -b), np.geomspace(0.01, 5.0, 48)),
}


@dataclass(frozen=True)
class Prediction:
    """The fitted curve's value at the final step (lower is better)."""

    mean: float
    sd: float  # the fit's own uncertainty: spread between families and residual noise
    families: int
    noise: float = 0.0  # how much single measurements scatter around the curve lately

    def objective(
        self, curve: list[tuple[int, float]], final_step: int, floor: float | None = None, strategy: Strategy = "best"
    ) -> float:
        """The expected final objective. When that is the best value the trial will have
        reported: on a noisy curve the best of the measurements still to come falls below
        the fitted curve by about the expected minimum of that many noise draws (Blom's
        approximation), and it is never worse than the best so far. When it is the last
        value: the fitted curve at the final step. Never past the floor."""
        if strategy == "last":
            return self.mean if floor is None else max(floor, self.mean)
        best = min(v for _, v in curve)
        remaining = max(0, final_step - curve[-1][0])
        # the standard normal's quantile (scipy.stats.norm.ppf is this, after ~0.1 ms of argument checks)
        lucky = self.noise * float(special.ndtri((remaining - 0.375) / (remaining + 0.25))) if remaining > 1 else 0.0
        expected = self.mean - max(0.0, lucky)
        return min(best, expected if floor is None else max(floor, expected))


# shapes remembered by times, within a budget of bytes: ~27 cuts of a 100-point curve, 2 of a 1,000-point one
_BASES = Remembered(4 << 20)


def _bases(t: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Each family's shapes g_b(t) at the curve's times (one row per b of its grid) and at
    the final step, the rows that are finite everywhere. Remembered by the times: the
    finished look-alikes cut at one step share them (a third of a fit's time)."""
    key = t.tobytes()
    hit = _BASES.get(key)
    if hit is not None:
        return hit
    out = []
    for shape, grid in FAMILIES.values():
        with np.errstate(all="ignore"):
            g = shape(t[None, :], grid[:, None])
            g1 = shape(np.array([1.0])[None, :], grid[:, None])[:, 0]
        ok = np.isfinite(g).all(axis=1) & np.isfinite(g1)
        if ok.any():
            g, g1 = g[ok], g1[ok]
            g.flags.writeable = g1.flags.writeable = False  # shared between fits
            out.append((g, g1))
    bases = tuple(out)
    _BASES.put(key, bases, size=sum(g.nbytes for g, _ in bases))
    return bases


def _fit_family(
    g: np.ndarray, y: np.ndarray, w: np.ndarray, floor: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of y = c + a*g for every curve (row of y and w) and every row
    of g (one per b); a >= 0 and, when the metric has a floor, c >= floor (an asymptote
    below it is impossible). Returns (c, a, weighted SSE), one row per curve, one column
    per b."""
    wg = w[:, None, :]  # curves x b x points
    sw = w.sum(axis=1)
    gm = (g[None] * wg).sum(axis=2) / sw[:, None]
    ym = (y * w).sum(axis=1) / sw
    gc = g[None] - gm[:, :, None]
    var = (wg * gc * gc).sum(axis=2)
    cov = (wg * gc * (y - ym[:, None])[:, None, :]).sum(axis=2)
    a = np.where(var > 1e-15, cov / np.maximum(var, 1e-15), 0.0)
    a = np.maximum(a, 0.0)
    c = ym[:, None] - a * gm
    if floor is not None:
        low = c < floor[:, None]  # pin the asymptote at the floor and refit the amplitude alone
        if low.any():
            gg = (wg * g[None] * g[None]).sum(axis=2)
            a_pinned = np.maximum(0.0, (wg * g[None] * (y - floor[:, None])[:, None, :]).sum(axis=2)
                                  / np.maximum(gg, 1e-15))
            c = np.where(low, floor[:, None], c)
            a = np.where(low, a_pinned, a)
    r = y[:, None, :] - (c[:, :, None] + a[:, :, None] * g[None])
    return c, a, (wg * r * r).sum(axis=2)


def _medians(x: np.ndarray) -> np.ndarray:
    """The median of each row of a short 2-d array (NaN where a row holds one): np.median's
    numbers without its generic axis handling, which cost more than a fit's arithmetic."""
    s = np.sort(x, axis=1)
    m = s.shape[1] // 2
    mid = s[:, m] if s.shape[1] % 2 else (s[:, m - 1] + s[:, m]) / 2
    return np.where(np.isnan(s[:, -1]), np.nan, mid)


def _median(x: np.ndarray) -> float:
    """np.median of a short, non-empty 1-d array, without its ~40 us of generic axis handling."""
    return float(_medians(x[None, :])[0])


def measurement_noise(y: np.ndarray) -> float:
    """The scatter of single measurements over the latest half of a curve, from successive
    differences with the local trend removed (robust: MAD). Independent of any fit, whose
    residuals early in training are mostly misfit, not noise."""
    d = np.diff(y[-max(MIN_POINTS, len(y) // 2):])
    return 1.4826 * _median(np.abs(d - _median(d))) / math.sqrt(2) if d.size else 0.0


def predict_final(curve: list[tuple[int, float]], final_step: int, floor: float | None = None) -> Prediction | None:
    """Predicted value at `final_step` (lower is better) with its raw standard deviation.
    `floor`: a value the metric cannot go below (0 for a loss), or None."""
    return predict_finals([curve], final_step, floor)[0]


def predict_finals(
    curves: list[list[tuple[int, float]]], final_step: int, floor: float | None = None
) -> list[Prediction | None]:
    """predict_final of each curve, the same numbers: curves measured at the same steps
    (a Round's finished look-alikes cut at one step, which calibration extrapolates two
    dozen at a time) are fitted together, one array operation for all of them instead of
    one per curve."""
    out: list[Prediction | None] = [None] * len(curves)
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}  # by the steps measured: those steps, the curves
    for i, curve in enumerate(curves):
        if len(curve) >= MIN_POINTS:
            steps = np.array([s for s, _ in curve], dtype=float)
            groups.setdefault(steps.tobytes(), (steps, []))[1].append(i)
    for steps, members in groups.values():
        for i, pred in zip(members, _predict_group(steps, [curves[i] for i in members], final_step, floor)):
            out[i] = pred
    return out


def _predict_group(
    steps: np.ndarray, curves: list[list[tuple[int, float]]], final_step: int, floor: float | None
) -> list[Prediction | None]:
    ys = np.array([[v for _, v in c] for c in curves], dtype=float)
    n = steps.size
    scales, offsets = [], []
    for row in ys:
        scales.append(float(np.ptp(row)) or (abs(float(row.mean())) or 1.0))
        offsets.append(float(row[-1]))
    scale, offset = np.array(scales), np.array(offsets)
    y = (ys - offset[:, None]) / scale[:, None]
    t = steps / float(final_step)
    floor_n = None if floor is None else (floor - offset) / scale
    rows = np.arange(len(curves))
    fits = []  # per family: each curve's prediction and unweighted SSE
    for g, g1 in _bases(t):
        w = np.ones_like(y)
        for _ in range(2):  # a Huber reweighting pass: noisy spikes do not steer the fit
            c, a, sse = _fit_family(g, y, w, floor_n)
            k = np.argmin(sse, axis=1)
            ck, ak = c[rows, k], a[rows, k]
            r = y - (ck[:, None] + ak[:, None] * g[k])
            mad = _medians(np.abs(r)) * 1.4826
            mad = np.where(mad == 0.0, 1e-9, mad)
            u = np.abs(r) / (1.345 * mad)[:, None]
            w = np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12))
        fits.append((ck + ak * g1[k], ((y - (ck[:, None] + ak[:, None] * g[k])) ** 2).sum(axis=1)))
    out: list[Prediction | None] = []
    for i in range(len(curves)):
        preds, bics, resid = [], [], []
        for pred_all, sse_all in fits:
            pred, sse_k = float(pred_all[i]), float(sse_all[i])
            if not math.isfinite(pred) or not math.isfinite(sse_k):
                continue
            preds.append(pred)
            resid.append(math.sqrt(sse_k / max(1, n - 3)))
            bics.append(n * math.log(sse_k / n + 1e-12) + 3 * math.log(n))
        if not preds:
            out.append(None)
            continue
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
        out.append(Prediction(mean=mean * scales[i] + offsets[i], sd=sd * scales[i], families=len(preds),
                              noise=measurement_noise(y[i]) * scales[i]))
    return out


def reach(position: float, pred: Prediction) -> float:
    """How far the fit expects the curve to still improve from where it stands: the
    predicted drop below `position`, or the prediction's own uncertainty when that is
    larger (plateaus, noise)."""
    return max(position - pred.mean, pred.sd, 1e-12)
