"""Re-run statistics: is the winner really better than the baseline, and by enough to matter?

`adopt` needs a gain both significant (the 95% confidence interval of the difference of the
means, Welch's, excludes no gain) and worth having (the mean gain is at least the minimum
improvement). That minimum is `reruns.minImprovement` or `reruns.minRelativeImprovement` x
the baseline's mean (the larger, where both are set), by default the noise of the runs
themselves: the larger of the re-runs' pooled standard deviation and how much their curves
move from step to step late in training. A gain smaller than what a new seed or one more step changes is not worth a new
baseline, however many runs make it significant.

Re-runs that gave identical values did not measure any noise (the training most likely
ignores its seed): no test is made of them, and the answer is to gather more evidence.
"""
from __future__ import annotations

import math
import statistics

from scipy import stats

from ..api import Reruns, Trial
from ..core.round_plan import phase_of
from .curves import late_jitter
from .model import RerunGroup, RerunStatistics

ALPHA = 0.05  # the interval is 1 - ALPHA two-sided
POWER = 0.8
MAX_RUNS = 50  # a gain that needs more runs per configuration than this to tell is not worth having
SAME = 1e-9  # values within this (relative to their size) of each other count as identical


def rerun_statistics(trials: list[Trial], direction: str, settings: Reruns | None = None) -> RerunStatistics | None:
    reruns = [t for t in trials if t.spec.purpose == "rerun"]
    if not reruns:
        return None
    runs = _runs(trials, reruns)
    values = {k: [t.status.objective for t in ts] for k, ts in runs.items()}
    groups = [
        RerunGroup(configuration=k, n=len(v), mean=statistics.fmean(v), std=statistics.stdev(v) if len(v) > 1 else None,
                   values=v)  # type: ignore[arg-type]
        for k, v in values.items()
    ]
    result = RerunStatistics(groups=groups)
    candidates = [g for g in groups if g.configuration != "baseline"]
    base = next((g for g in groups if g.configuration == "baseline"), None)
    if not candidates:
        result.message = "re-runs have not finished yet"
        return result
    sign = 1.0 if direction == "minimize" else -1.0
    winner = min(candidates, key=lambda g: sign * (g.mean or 0.0))
    result.winner = winner.configuration
    if base is None or base.n < 2 or winner.n < 2:
        result.recommendation = "gatherMoreEvidence"
        result.message = (f"{winner.configuration} has the best mean over {winner.n} runs; re-run the baseline "
                          "(reruns.includeBaseline) at least twice to compare")
        return result
    flat = [g for g in groups if g.n > 1 and _identical(g.values)]
    if flat:
        result.recommendation = "gatherMoreEvidence"
        result.message = _did_not_vary(flat)
        return result

    diff, se, df = _welch(values[winner.configuration], values["baseline"], sign)
    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    lo, hi = diff - half, diff + half
    p = float(stats.t.sf(diff / se, df))  # one-sided: the winner better than the baseline
    sd = math.sqrt((winner.std ** 2 + base.std ** 2) / 2)  # type: ignore[operator]
    jitters = [j for t in runs[winner.configuration] + runs["baseline"] if (j := late_jitter(t)) is not None]
    floor, basis = _min_improvement(settings, base.mean, sd, statistics.median(jitters) if jitters else None)  # type: ignore[arg-type]
    result.difference, result.p_value = _sig(diff), _sig(p)
    result.interval, result.min_improvement = [_sig(lo), _sig(hi)], _sig(floor)

    gain = (f"better than the baseline by {diff:.3g} on average (95% interval {lo:.3g} to {hi:.3g}, "
            f"{winner.n} and {base.n} runs, one-sided Welch test {_p(p)})")
    name = winner.configuration
    minimum = f"the minimum improvement worth adopting, {floor:.3g} ({basis})"
    if diff <= 0:
        result.recommendation = "keepBaseline"
        result.message = (f"keep the baseline: {winner.configuration} is not better on re-runs (difference "
                          f"{diff:.3g}, 95% interval {lo:.3g} to {hi:.3g}, {_p(p)})")
    elif diff < floor:
        result.recommendation = "keepBaseline"
        result.message = f"keep the baseline: {name} is {gain}, less than {minimum}"
    elif lo > 0:
        result.recommendation = "adopt"
        result.message = f"adopt {name}: {gain}, at least {minimum}"
    elif (needed := _runs_needed(diff, sd, max(winner.n, base.n))) is None:
        result.recommendation = "keepBaseline"
        result.message = (f"keep the baseline: {name} is {gain}; more than {MAX_RUNS} runs per configuration "
                          "would be needed to tell it from no gain")
    else:
        result.recommendation, result.reruns_needed = "gatherMoreEvidence", needed
        result.message = (f"gather more evidence: {name} is {gain}; about {needed} runs per configuration would tell "
                          f"such a gain from none with 80% power")
    return result


def _runs(trials: list[Trial], reruns: list[Trial]) -> dict[str, list[Trial]]:
    """Succeeded runs with a finite objective per configuration (a trial name or "baseline");
    the original run of a configuration is one more sample."""
    by_name = {t.metadata.name: t for t in trials}

    def ok(t: Trial) -> bool:
        return phase_of(t) == "Succeeded" and t.status.objective is not None and math.isfinite(t.status.objective)

    runs: dict[str, list[Trial]] = {}
    for t in reruns:
        if ok(t):
            runs.setdefault(t.spec.rerun_of or "?", []).append(t)
    for key, ts in runs.items():
        orig = by_name.get(key)
        if orig is not None and ok(orig):
            ts.append(orig)
    return runs


def _identical(values: list[float]) -> bool:
    return max(values) - min(values) <= SAME * max(1.0, max(abs(v) for v in values))


def _did_not_vary(flat: list[RerunGroup]) -> str:
    each = ", ".join(f"{g.configuration} gave {g.values[0]:.6g} on all {g.n} runs" for g in flat)
    return ("gather more evidence: the re-runs did not vary (" + each + "), so they measure no noise and no "
            "test can be made; the training most likely ignores its seed: seed its random number generators "
            "(data order, initialization, dropout) from KUBETUNE_SEED (kubetune.sdk.seed()) and re-run")


def _welch(winner: list[float], base: list[float], sign: float) -> tuple[float, float, float]:
    """Difference of the means (> 0: the winner is better), its standard error, Welch's degrees
    of freedom. Both groups have at least two values, not all identical in either."""
    vw, vb = statistics.variance(winner) / len(winner), statistics.variance(base) / len(base)
    se = math.sqrt(vw + vb)
    df = (vw + vb) ** 2 / (vw**2 / (len(winner) - 1) + vb**2 / (len(base) - 1))
    return sign * (statistics.fmean(base) - statistics.fmean(winner)), se, df


def _runs_needed(gain: float, sd: float, have: int) -> int | None:
    """Runs per configuration for the 95% interval to exclude no gain, were the true gain `gain`,
    with POWER (t quantiles: a handful of runs is no normal sample); more than `have`, None
    beyond MAX_RUNS."""
    if gain <= 0:
        return None
    for n in range(have + 1, MAX_RUNS + 1):
        df = 2 * n - 2
        if (stats.t.ppf(1 - ALPHA / 2, df) + stats.t.ppf(POWER, df)) * sd * math.sqrt(2 / n) <= gain:
            return n
    return None


def _min_improvement(settings: Reruns | None, baseline_mean: float, sd: float,
                     jitter: float | None) -> tuple[float, str]:
    """The smallest gain worth adopting, and where it comes from."""
    absolute = settings.min_improvement if settings else None
    relative = settings.min_relative_improvement if settings else None
    if absolute is not None or relative is not None:
        rel = (relative or 0.0) * abs(baseline_mean)
        if absolute is not None and absolute >= rel:
            return absolute, "reruns.minImprovement"
        return rel, f"reruns.minRelativeImprovement: {relative:.3g} of the baseline's mean"
    if jitter is not None and jitter > sd:
        return jitter, "by default: how much the re-runs' curves move from step to step late in training"
    return sd, "by default: the re-runs' pooled standard deviation"


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001"
