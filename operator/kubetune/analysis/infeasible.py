"""How many trials diverged or crashed, and where in the search space."""
from __future__ import annotations

from ..api import Parameter, Trial
from ..core.round_plan import phase_of
from .model import Infeasibility, InfeasibleRegion
from .regions import region

BAD = ("Infeasible", "Failed")


def infeasibility(params: list[Parameter], trials: list[Trial]) -> Infeasibility:
    ended = [t for t in trials if phase_of(t) in ("Succeeded", "EarlyStopped", *BAD)]
    bad = [t for t in ended if phase_of(t) in BAD]
    result = Infeasibility(count=len(bad), total=len(ended), fraction=(len(bad) / len(ended)) if ended else 0.0)
    if len(bad) < 2:
        return result
    for p in params:
        where = region(p, ended, lambda t: phase_of(t) in BAD)
        if where:
            verb = "were infeasible or failed" if p.type == "categorical" else "diverged or failed"
            result.regions.append(InfeasibleRegion(parameter=p.name, message=f"{where} {verb}"))
    return result
