"""Round analysis: a pure function of a Round's trials, written to Round.status.analysis."""
from __future__ import annotations

from ..api import Round, Study, Trial
from ..core.round_plan import ranked
from ..core.settings import resolve
from ..space import SearchSpace
from .boundary import boundary_skipped, boundary_warnings, top_share
from .curves import curve_findings, curves_skipped, round_curves, step_findings
from .importance import importance, importance_basis, importance_skipped
from .infeasible import infeasibility
from .isolation import isolation
from .late_bloomers import late_bloomers
from .model import Analysis, RankedTrial
from .reruns import rerun_statistics

__all__ = ["analyze_round", "Analysis"]


def analyze_round(study: Study, rnd: Round, trials: list[Trial]) -> Analysis:
    s = resolve(study, rnd)
    space = SearchSpace.of(rnd.spec)
    params = list(space.parameters)
    search = [t for t in trials if t.spec.purpose == "search"]
    best_first = ranked(search, s.direction)
    a = Analysis(
        best_trials=[RankedTrial(name=t.metadata.name, value=t.status.objective, parameters=t.spec.parameters)  # type: ignore[arg-type]
                     for t in best_first[:5]],
        boundaries=boundary_warnings(params, best_first),
        infeasible=infeasibility(params, search),
        importance=importance(space, search, s.direction, s.strategy),
        importance_basis=importance_basis(space, search, s.direction, s.strategy),
        isolation=isolation(list(rnd.spec.scientific), search, s.direction),
        reruns=rerun_statistics(trials, s.direction, rnd.spec.reruns),
        curve_summary=round_curves(params, search, s.direction, s.max_steps, s.strategy),
    )
    for t in best_first[: min(3, top_share(len(best_first)))]:
        a.curves += curve_findings(t, s.direction, s.max_steps, s.strategy)
    a.curves += step_findings(trials, s.max_steps)
    a.curves += late_bloomers(search, s.direction)
    a.skipped = [m for m in (boundary_skipped(best_first), importance_skipped(space, search, s.direction, s.strategy),
                             curves_skipped(best_first)) if m]
    a.messages = [w.message for w in a.boundaries]
    if a.infeasible.count:
        a.messages.append(
            f"{a.infeasible.count} of {a.infeasible.total} trials diverged, were infeasible or failed "
            f"({a.infeasible.fraction:.0%})"
        )
    a.messages += [r.message for r in a.infeasible.regions]
    a.messages += [c.message for c in a.curves]
    a.messages += [c.message for c in a.curve_summary]
    if a.reruns and a.reruns.message:
        a.messages.append(a.reruns.message)
    a.messages += a.skipped
    return a
