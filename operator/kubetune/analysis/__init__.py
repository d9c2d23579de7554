"""Round analysis: a pure function of a Round's trials, written to Round.status.analysis."""
from __future__ import annotations

import math

from ..api import Round, Study, Trial
from ..core.round_plan import phase_of
from ..core.settings import resolve
from ..space import SearchSpace
from .boundary import boundary_warnings, top_share
from .curves import curve_findings
from .importance import importance
from .infeasible import infeasibility
from .isolation import isolation
from .model import Analysis, RankedTrial
from .reruns import rerun_statistics

__all__ = ["analyze_round", "Analysis"]


def analyze_round(study: Study, rnd: Round, trials: list[Trial]) -> Analysis:
    s = resolve(study, rnd)
    space = SearchSpace.of(rnd.spec)
    search = [t for t in trials if t.spec.purpose == "search"]
    finished = [
        t for t in search
        if phase_of(t) == "Succeeded" and t.status.objective is not None and math.isfinite(t.status.objective)
    ]
    sign = 1.0 if s.direction == "minimize" else -1.0
    ranked = sorted(finished, key=lambda t: sign * t.status.objective)  # type: ignore[operator]
    a = Analysis(
        best_trials=[RankedTrial(name=t.metadata.name, value=t.status.objective, parameters=t.spec.parameters)  # type: ignore[arg-type]
                     for t in ranked[:5]],
        boundaries=boundary_warnings(list(space.parameters), ranked),
        infeasible=infeasibility(list(space.parameters), search),
        importance=importance(space, finished, s.direction),
        isolation=isolation(list(rnd.spec.scientific), finished, s.direction),
        reruns=rerun_statistics(trials, s.direction),
    )
    for t in ranked[: min(3, top_share(len(ranked)))]:
        a.curves += curve_findings(t, s.direction, s.max_steps)
    a.messages = [w.message for w in a.boundaries]
    if a.infeasible.count:
        a.messages.append(
            f"{a.infeasible.count} of {a.infeasible.total} trials diverged, were infeasible or failed "
            f"({a.infeasible.fraction:.0%})"
        )
    a.messages += [r.message for r in a.infeasible.regions]
    a.messages += [c.message for c in a.curves]
    if a.reruns and a.reruns.message:
        a.messages.append(a.reruns.message)
    return a
