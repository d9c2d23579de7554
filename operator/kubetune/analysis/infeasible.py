"""How many trials diverged or crashed, and where in the search space."""
from __future__ import annotations

from ..api import Parameter, Trial
from ..core.round_plan import phase_of
from .model import Infeasibility, InfeasibleRegion

BAD = ("Infeasible", "Failed")


def infeasibility(params: list[Parameter], trials: list[Trial]) -> Infeasibility:
    ended = [t for t in trials if phase_of(t) in ("Succeeded", "EarlyStopped", *BAD)]
    bad = [t for t in ended if phase_of(t) in BAD]
    result = Infeasibility(count=len(bad), total=len(ended), fraction=(len(bad) / len(ended)) if ended else 0.0)
    if len(bad) < 2:
        return result
    for p in params:
        region = _region(p, ended)
        if region:
            result.regions.append(InfeasibleRegion(parameter=p.name, message=region))
    return result


def _region(p: Parameter, ended: list[Trial]) -> str | None:
    having = [t for t in ended if p.name in t.spec.parameters]
    if p.type == "categorical":
        for choice in p.choices or []:
            group = [t for t in having if t.spec.parameters[p.name] == choice]
            bad = [t for t in group if phase_of(t) in BAD]
            # a region only where the rest of the space worked: when everything fails, the
            # cause is not this parameter (a broken command, a missing metric)
            worked_elsewhere = any(phase_of(t) not in BAD for t in having if t.spec.parameters[p.name] != choice)
            if len(bad) >= 2 and len(bad) == len(group) and worked_elsewhere:
                return f"all {len(group)} trials with {p.name} = {choice} were infeasible or failed"
        return None
    values = sorted(having, key=lambda t: float(t.spec.parameters[p.name]))
    flags = [phase_of(t) in BAD for t in values]
    # the longest run of bad trials at either end of the parameter's range
    for side in ("upper", "lower"):
        seq = flags[::-1] if side == "upper" else flags
        run = next((i for i, f in enumerate(seq) if not f), len(seq))
        if run >= 2 and run < len(seq):
            edge = values[-run] if side == "upper" else values[run - 1]
            v = float(edge.spec.parameters[p.name])
            op = ">=" if side == "upper" else "<="
            return f"all {run} trials with {p.name} {op} {v:.4g} diverged or failed"
    return None
