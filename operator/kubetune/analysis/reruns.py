"""Re-run statistics: is the winner really better than the baseline, or was it luck?"""
from __future__ import annotations

import math
import statistics

from scipy import stats

from ..api import Trial
from ..core.round_plan import phase_of
from .model import RerunGroup, RerunStatistics

ALPHA = 0.05
POWER = 0.8


def rerun_statistics(trials: list[Trial], direction: str) -> RerunStatistics | None:
    reruns = [t for t in trials if t.spec.purpose == "rerun"]
    if not reruns:
        return None
    by_name = {t.metadata.name: t for t in trials}
    values: dict[str, list[float]] = {}
    for t in reruns:
        key = t.spec.rerun_of or "?"
        if phase_of(t) == "Succeeded" and t.status.objective is not None:
            values.setdefault(key, []).append(t.status.objective)
    for key in list(values):  # the original run of a configuration is one more sample
        orig = by_name.get(key)
        if orig is not None and orig.status.objective is not None and phase_of(orig) == "Succeeded":
            values[key].append(orig.status.objective)
    groups = [
        RerunGroup(configuration=k, n=len(v), mean=statistics.fmean(v), std=statistics.stdev(v) if len(v) > 1 else None,
                   values=v)
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
    diff = sign * (base.mean - winner.mean)  # type: ignore[operator]  # > 0: the winner is better
    result.difference = round(diff, 6)
    test = stats.ttest_ind(values[winner.configuration], values["baseline"], equal_var=False)
    p_two = float(test.pvalue) if math.isfinite(test.pvalue) else 1.0
    p = p_two / 2 if diff > 0 else 1 - p_two / 2  # one-sided: winner better than the baseline
    result.p_value = round(p, 6)
    sd = math.sqrt(((winner.std or 0.0) ** 2 + (base.std or 0.0) ** 2) / 2)
    if diff > 0 and sd > 0:
        z = stats.norm.ppf(1 - ALPHA) + stats.norm.ppf(POWER)
        result.reruns_needed = int(math.ceil(2 * (z * sd / diff) ** 2))
    if diff > 0 and p < ALPHA:
        result.recommendation = "adopt"
        result.message = (f"adopt {winner.configuration}: better than the baseline by {diff:.4g} on average over "
                          f"{winner.n} and {base.n} runs (one-sided Welch test p = {p:.3g})")
    elif diff <= 0 or (result.reruns_needed or 0) > 50:
        result.recommendation = "keepBaseline"
        result.message = (f"keep the baseline: {winner.configuration} is not better on re-runs "
                          f"(difference {diff:.4g}, p = {p:.3g})")
    else:
        result.recommendation = "gatherMoreEvidence"
        result.message = (f"gather more evidence: {winner.configuration} is better by {diff:.4g} but p = {p:.3g}; "
                          f"about {result.reruns_needed} runs per configuration would detect this difference "
                          f"with 80% power")
    return result
