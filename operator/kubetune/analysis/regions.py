"""Where in the search space a set of flagged trials lies: the wording the infeasible and
curve checks share ("all 4 trials with weight_decay <= 9.8e-05")."""
from __future__ import annotations

from collections.abc import Callable

from ..api import Parameter, Trial


def region(p: Parameter, trials: list[Trial], flagged: Callable[[Trial], bool]) -> str | None:
    """The trials with `p` in a region where every one is flagged, as "all N trials with ...":
    a categorical choice, or a run of at least two trials at either end of a numeric range.
    Only where some trial outside the region is not flagged: when everything is flagged, the
    cause is not this parameter."""
    having = [t for t in trials if p.name in t.spec.parameters]
    if p.type == "categorical":
        for choice in p.choices or []:
            group = [t for t in having if t.spec.parameters[p.name] == choice]
            hits = [t for t in group if flagged(t)]
            clean_elsewhere = any(not flagged(t) for t in having if t.spec.parameters[p.name] != choice)
            if len(hits) >= 2 and len(hits) == len(group) and clean_elsewhere:
                return f"all {len(group)} trials with {p.name} = {choice}"
        return None
    values = sorted(having, key=lambda t: float(t.spec.parameters[p.name]))
    flags = [flagged(t) for t in values]
    # the longest run of flagged trials at either end of the parameter's range
    for side in ("upper", "lower"):
        seq = flags[::-1] if side == "upper" else flags
        run = next((i for i, f in enumerate(seq) if not f), len(seq))
        if run >= 2 and run < len(seq):
            edge = values[-run] if side == "upper" else values[run - 1]
            v = float(edge.spec.parameters[p.name])
            return f"all {run} trials with {p.name} {'>=' if side == 'upper' else '<='} {v:.4g}"
    return None
